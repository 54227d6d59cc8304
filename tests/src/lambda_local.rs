//! The Lambda functions as AWS runs them, on loopback: `cargo lambda watch
//! --only-lambda-apis` (PyPI `cargo-lambda`, installed by `scripts/tools.sh`)
//! emulates the Lambda runtime API, the Invoke API and function URLs, and the
//! release binaries built by `cargo lambda build` (`scripts/lambda-build.sh`)
//! run against it, each in its own process, exactly as the `bootstrap` that
//! AWS starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{start_listening, Guarded};
use crate::s3_local::MotoServer;

/// Where `cargo lambda build` puts a function (`target/lambda/<name>/`).
pub fn artifact_dir(function: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/lambda")
        .join(function)
}

/// The functions' data layer as Lambda unpacks it (`decompte/` of `layer.zip`).
pub fn layer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lambda/layer/decompte")
}

/// The built `bootstrap` of a function; fails, saying how to build it, if absent.
pub fn bootstrap(function: &str) -> PathBuf {
    let path = artifact_dir(function).join("bootstrap");
    assert!(
        path.is_file(),
        "{} is missing: build the functions with ./scripts/lambda-build.sh (./scripts/test.sh does \
            it first)",
        path.display()
    );
    path
}

/// The emulator.
pub struct LambdaEmulator {
    pub port: u16,
    process: Guarded,
}

impl LambdaEmulator {
    pub fn start() -> Self {
        let hint = "run ./scripts/test.sh, which installs cargo-lambda (PyPI)";
        let (port, process) = start_listening(Duration::from_secs(60), hint, |port| {
            Guarded::start(
                "cargo lambda watch",
                "cargo",
                &[
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                    &port.to_string(),
                ],
                &[],
                &log_path(&format!("emulator-{port}")),
                hint,
            )
        });
        Self { port, process }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the emulator logged, for a failing test's message.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// The function URL of `function`, for `path`.
    pub fn function_url(&self, function: &str, path: &str) -> String {
        format!("{}/lambda-url/{function}{path}", self.url())
    }

    /// Starts the built `function` against the emulator with `envs`; returns
    /// once it is ready to take events, with how long its start took.
    pub fn start_function(&self, function: &str, envs: &[(&str, String)]) -> Function {
        let binary = bootstrap(function);
        let mut all: Vec<(&str, String)> = vec![
            (
                "AWS_LAMBDA_RUNTIME_API",
                format!("{}/.rt/{function}", self.url()),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".to_owned()),
            // Local servers take any key; never look for instance credentials.
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            // The data layer scripts/lambda-build.sh builds beside the
            // functions, which Lambda would unpack at /opt/decompte.
            ("DECOMPTE_DATA_LAYER", layer_dir().display().to_string()),
        ];
        all.extend(envs.iter().cloned());
        let started = std::time::Instant::now();
        let process = Guarded::start(
            function,
            &binary.display().to_string(),
            &[],
            &all,
            &log_path(&format!("{function}-{}", self.port)),
            "build it with ./scripts/lambda-build.sh",
        );
        process.wait_for_log("function ready", Duration::from_secs(30));
        Function {
            start: started.elapsed(),
            process,
        }
    }
}

impl LambdaEmulator {
    /// Starts `publish-fn` on the table at `store_address`, publishing to
    /// `bucket` on `moto` and invalidating `distribution` there.
    pub fn start_publish(
        &self,
        store_address: &str,
        moto: &MotoServer,
        bucket: &str,
        distribution: &str,
    ) -> Function {
        self.start_function(
            "publish-fn",
            &[
                ("DECOMPTE_STORE", store_address.to_owned()),
                (
                    "DECOMPTE_SITE",
                    format!("s3://{bucket}?endpoint={}&region=us-east-1", moto.endpoint),
                ),
                (
                    "DECOMPTE_CDN",
                    format!("cloudfront://{distribution}?endpoint={}", moto.endpoint),
                ),
            ],
        )
    }

    /// Starts `ingest-fn` on the table at `store_address`, republishing through
    /// this emulator's `publish-fn`.
    pub fn start_ingest(&self, store_address: &str) -> Function {
        self.start_ingest_logging(store_address, "info")
    }

    /// [`Self::start_ingest`] with `RUST_LOG` at `level`.
    pub fn start_ingest_logging(&self, store_address: &str, level: &str) -> Function {
        self.start_function(
            "ingest-fn",
            &[
                ("DECOMPTE_STORE", store_address.to_owned()),
                (
                    "DECOMPTE_PUBLISH_FUNCTION",
                    format!(
                        "lambda://publish-fn?endpoint={}&region=us-east-1",
                        self.url()
                    ),
                ),
                // The emulator speaks plain http: cookies without Secure, as on loopback.
                ("DECOMPTE_PUBLIC_URL", self.url()),
                // The tests replay 2020: no warning for an old day.
                ("DECOMPTE_OLD_DAY_AFTER", "0".to_owned()),
                ("RUST_LOG", level.to_owned()),
            ],
        )
    }

    /// Invokes `function` through the Invoke API, as EventBridge Scheduler or
    /// the AWS CLI would; returns its answer.
    pub async fn invoke(&self, function: &str, payload: &serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.url()
            ))
            .json(payload)
            .send()
            .await
            .expect("the emulator answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert!(status.is_success(), "{function} answered {status}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{function} answered no JSON ({e}): {text}"))
    }
}

/// A running function.
pub struct Function {
    /// From starting the process to its "ready" log line.
    pub start: Duration,
    pub process: Guarded,
}

impl Function {
    /// The function's last lines that are not debug or trace (a panic's
    /// message among them), for a failing test's message.
    pub fn log_tail(&self) -> String {
        let text = self.process.log_text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| {
                !line.contains("\"level\":\"TRACE\"") && !line.contains("\"level\":\"DEBUG\"")
            })
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `init_ms` as the function logged it (from `main` to ready).
    pub fn init_ms(&self) -> Option<u64> {
        self.process.log_text().lines().find_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            value.get("fields")?.get("init_ms")?.as_u64()
        })
    }
}

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("decompte-{}-{name}.log", std::process::id()))
}
