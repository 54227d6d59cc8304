//! An S3 server on loopback: moto's server mode (PyPI `moto[server]`, installed
//! by `scripts/tools.sh`), one per test binary, a bucket per test. A test that
//! cannot start it fails and says why.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{start_listening, Guarded};

use decompte_aws::S3Sink;
use decompte_config::{BucketAddress, Endpoint};

pub struct MotoServer {
    pub endpoint: String,
    _process: Guarded,
}

impl MotoServer {
    fn start() -> Self {
        let hint = "run ./scripts/test.sh, which installs moto[server]";
        let (port, process) = start_listening(Duration::from_secs(30), hint, |port| {
            Guarded::start(
                "moto_server",
                "moto_server",
                &["-H", "127.0.0.1", "-p", &port.to_string()],
                &[],
                &std::env::temp_dir()
                    .join(format!("decompte-moto-{}-{port}.log", std::process::id())),
                hint,
            )
        });
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _process: process,
        }
    }

    /// The server shared by every test of this process.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    pub fn config(&self, bucket: &str, prefix: &str) -> BucketAddress {
        BucketAddress {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: Endpoint {
                url: Some(self.endpoint.clone()),
                // moto reads the region from the host name, us-east-1 on loopback.
                region: Some("us-east-1".into()),
                static_credentials: Some(("local".into(), "local".into())),
            },
        }
    }

    /// A sink on a new, empty bucket.
    pub async fn fresh_sink(&self, prefix: &str) -> S3Sink {
        static BUCKETS: AtomicU32 = AtomicU32::new(0);
        let bucket = format!(
            "decompte-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::SeqCst)
        );
        let sink = S3Sink::connect(&self.config(&bucket, prefix)).await;
        sink.create_bucket_if_missing()
            .await
            .unwrap_or_else(|e| panic!("cannot create bucket {bucket} on moto: {e}"));
        sink
    }
}

impl MotoServer {
    /// A new CloudFront distribution on this server; returns its id.
    pub fn create_distribution(&self) -> String {
        self.cloudfront(&["create"]).trim().to_owned()
    }

    /// The paths of each invalidation of `distribution`, oldest first.
    pub fn invalidations(&self, distribution: &str) -> Vec<Vec<String>> {
        let text = self.cloudfront(&["invalidations", distribution]);
        let batches: Vec<serde_json::Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("unreadable invalidations ({e}): {text}"));
        batches
            .iter()
            .map(|b| {
                b["paths"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    fn cloudfront(&self, args: &[&str]) -> String {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("moto/cloudfront.py");
        let output = std::process::Command::new("python3")
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e})"));
        assert!(
            output.status.success(),
            "CloudFront on moto failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}
