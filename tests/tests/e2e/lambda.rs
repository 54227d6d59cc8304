//! Both functions as AWS runs them: the release `bootstrap` binaries built by
//! `cargo lambda build`, under `cargo lambda watch` (the Lambda runtime API,
//! the Invoke API and function URLs, emulated), with DynamoDB Local, and S3
//! and CloudFront on moto's server. The commune and the prefecture go through
//! the function URL; the app invokes the publish function through the Invoke
//! API; the schedule's event goes to the publish function directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use decompte_core::Role;
use decompte_publish::Sink;
use decompte_tests::dynamodb_local::DynamoLocal;
use decompte_tests::lambda_local::{artifact_dir, bootstrap, layer_dir, LambdaEmulator};
use decompte_tests::s3_local::MotoServer;
use decompte_tests::{csrf_of, issue_code, with_code, Browser};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Amazon Linux 2023's glibc: `provided.al2023` runs nothing that needs newer.
const AL2023_GLIBC: (u32, u32) = (2, 34);

#[test]
fn both_functions_are_built_for_amazon_linux_2023() {
    for function in ["ingest-fn", "publish-fn"] {
        let binary = bootstrap(function);
        let output = std::process::Command::new("objdump")
            .arg("-T")
            .arg(&binary)
            .output()
            .expect("objdump (binutils) reads the binary's dynamic symbols");
        assert!(
            output.status.success(),
            "objdump failed on {}",
            binary.display()
        );
        let symbols = String::from_utf8_lossy(&output.stdout);
        let mut needed: Vec<(u32, u32)> = symbols
            .split("GLIBC_")
            .skip(1)
            .filter_map(|rest| {
                let version: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let mut parts = version.split('.').filter_map(|p| p.parse().ok());
                Some((parts.next()?, parts.next().unwrap_or(0)))
            })
            .collect();
        needed.sort_unstable();
        let newest = needed.last().copied().expect("a dynamically linked binary");
        assert!(
            newest <= AL2023_GLIBC,
            "{function} needs GLIBC_{}.{}, newer than Amazon Linux 2023's 2.34",
            newest.0,
            newest.1
        );
        let zip = artifact_dir(function).join("bootstrap.zip");
        let size = std::fs::metadata(&zip)
            .unwrap_or_else(|e| panic!("{} ({e}): run ./scripts/lambda-build.sh", zip.display()))
            .len();
        println!(
            "{function}: needs glibc ≤ {}.{}, zip {:.1} MiB",
            newest.0,
            newest.1,
            size as f64 / 1_048_576.0
        );
    }
}

#[test]
fn a_function_refuses_a_data_layer_built_from_other_data() {
    let manifest = std::fs::read_to_string(layer_dir().join("MANIFEST"))
        .expect("the layer's MANIFEST: run ./scripts/lambda-build.sh");
    let communes = manifest
        .lines()
        .find(|line| line.ends_with("  data/communes.csv"))
        .expect("the communes in the layer's MANIFEST");
    // Another year's communes: same name, other content.
    let other = manifest.replace(communes, &format!("{}  data/communes.csv", "0".repeat(64)));
    let folder = tempfile::tempdir().expect("temporary folder");
    std::fs::write(folder.path().join("MANIFEST"), other).expect("write");
    let missing = folder.path().join("nothing here");
    for function in ["ingest-fn", "publish-fn"] {
        for (layer, said) in [
            (
                folder.path(),
                "was built from other data than this function (differs: data/communes.csv)",
            ),
            (missing.as_path(), "the data layer is missing"),
        ] {
            let output = std::process::Command::new(bootstrap(function))
                .env("DECOMPTE_DATA_LAYER", layer)
                .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
                .output()
                .expect("the function runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success() && stderr.contains(said),
                "{function} with the layer {}: {}\n{stderr}",
                layer.display(),
                output.status
            );
        }
    }
}

struct Http {
    client: reqwest::Client,
    emulator: String,
}

impl Http {
    fn url(&self, path: &str) -> String {
        format!("{}/lambda-url/ingest-fn{path}", self.emulator)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("the emulator answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, code: &str, body: &Value) -> (StatusCode, Value) {
        self.send(with_code(self.client.post(self.url(path)), code).json(body))
            .await
    }

    async fn get(&self, path: &str, code: &str) -> (StatusCode, Value) {
        self.send(with_code(self.client.get(self.url(path)), code))
            .await
    }

    /// Waits for a publication to end; returns its record.
    async fn finished_publication(&self, id: &str, code: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(&format!("/api/v1/publications/{id}"), code).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if matches!(body["status"].as_str(), Some("succeeded" | "failed")) {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "publication {id} did not end: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn republish(&self, code: &str, reason: &str) -> Value {
        let (status, queued) = self
            .post("/api/v1/publications", code, &json!({ "reason": reason }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        let id = queued["id"].as_str().expect("a publication id").to_owned();
        self.finished_publication(&id, code).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_declares_and_the_prefecture_republishes_through_the_functions() {
    let dynamo = DynamoLocal::shared();
    let table = format!("decompte-lambda-{}", std::process::id());
    let store = Arc::new(dynamo.store(&table, &["56"]).await);
    let moto = MotoServer::shared();
    let site = moto.fresh_sink("").await;
    let distribution = moto.create_distribution();
    let emulator = LambdaEmulator::start();

    let store_address = format!(
        "dynamodb://{table}?endpoint={}&region=eu-west-3",
        dynamo.endpoint
    );
    let publish = emulator.start_publish(&store_address, moto, site.bucket(), &distribution);
    // At trace level, the most a deployment can log: still no secret (checked at the end).
    let ingest = emulator.start_ingest_logging(&store_address, "trace");

    let mairie = issue_code(store.as_ref(), Role::Commune, Some("56260")).await;
    let prefecture = issue_code(store.as_ref(), Role::Prefecture, None).await;
    let http = Http {
        client: decompte_tests::http_client(),
        emulator: emulator.url(),
    };

    // The mairie of Vannes declares a day with the form, through the function
    // URL: login page, code, session cookie, form, CSRF token, confirmation.
    let mut browser = Browser::at(http.client.clone(), http.url(""));
    let login = browser.login(&mairie).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text);
    assert_eq!(login.location(), "/saisie");
    let form = browser.get("/saisie?date=2020-04-01").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let csrf = csrf_of(&form.text);
    let saved = browser
        .declare(&csrf, "56260", "2020-04-01", [3, 1, 0, 2, 0])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let confirmation = browser.get(&saved.location()).await;
    assert!(
        confirmation.text.contains("Déclaration enregistrée"),
        "{} ({})\n--- ingest-fn:\n{}\n--- emulator:\n{}",
        confirmation.text,
        confirmation.status,
        ingest.log_tail(),
        emulator.log_text()
    );

    // The prefecture republishes: the app invokes the publish function.
    let first = http.republish(&prefecture, "Première publication").await;
    assert_eq!(
        first["status"],
        "succeeded",
        "{first}\n{}",
        publish.process.log_text()
    );
    let index = text(&site, "index.html").await;
    assert!(
        index.contains("<span class=\"n\">6</span> décès au total"),
        "{index}"
    );
    let commune = text(&site, "communes/56260.html").await;
    assert!(commune.contains("Vannes"), "{commune}");
    let csv = text(&site, "donnees/deces.csv").await;
    assert!(csv.contains("\n2020-04-01,56260,Vannes,3,"), "{csv}");
    for (path, content_type) in [
        ("index.html", "text/html; charset=utf-8"),
        ("communes/56260.html", "text/html; charset=utf-8"),
        ("donnees/deces.csv", "text/csv; charset=utf-8"),
        ("donnees/deces.json", "application/json"),
        ("manifest.json", "application/json"),
    ] {
        let (found, _) = site
            .metadata(path)
            .await
            .expect("head")
            .unwrap_or_else(|| panic!("{path} is on S3"));
        assert_eq!(found, content_type, "{path}");
    }
    let invalidations = moto.invalidations(&distribution);
    assert_eq!(
        invalidations,
        [["/*"]],
        "a first publication invalidates everything at once"
    );

    // Big answers come gzipped through API Gateway's format (a Lambda answer
    // holds 6 MB at most; a year of a département's reports is more).
    let listing = with_code(http.client.get(http.url("/api/v1/reports")), &prefecture)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("the emulator answers");
    assert_eq!(listing.status(), StatusCode::OK);
    assert_eq!(
        listing
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let gzipped = listing.bytes().await.expect("a body");
    let mut reports = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&gzipped[..]),
        &mut reports,
    )
    .expect("gzip");
    assert!(reports.contains("\"total\":6"), "{reports}");

    // The same again: nothing changed, nothing uploaded, nothing invalidated.
    let before = site.listing().await.expect("listing");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = http.republish(&prefecture, "Sans changement").await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["files_changed"], 0, "{second}");
    assert_eq!(
        site.listing().await.expect("listing"),
        before,
        "no object rewritten"
    );
    assert_eq!(moto.invalidations(&distribution).len(), 1);

    // The data both functions read from their layer: the map drawn with
    // Vannes' outline (the contours, packed from the layer's CSV), the
    // DSFR's stylesheet served by the app as the repository has it.
    let index = text(&site, "index.html").await;
    assert!(
        index.contains("<a href=\"communes/56260.html\"><path class=\"k")
            && index.contains("\" d=\"M-19379 -476567l50 35 28-11 6 25 31 1 7 37 20"),
        "no map of Vannes in the published index.html"
    );
    let stylesheet = http
        .client
        .get(http.url("/app/dsfr/dsfr.min.css"))
        .send()
        .await
        .expect("the DSFR's stylesheet");
    assert_eq!(stylesheet.status(), StatusCode::OK);
    let served = stylesheet.bytes().await.expect("its bytes");
    let shipped = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../templates/static/dsfr/dsfr.min.css"),
    )
    .expect("the repository's stylesheet");
    assert!(served == shipped, "the app served another DSFR stylesheet");

    // A correction, then the schedule's event: the changed pages only.
    let (status, corrected) = http
        .post(
            "/api/v1/reports",
            &mairie,
            &json!({
                "commune": "56260",
                "date": "2020-04-01",
                "counts": {"hopital": 4, "ehpad": 1, "esms": 0, "domicile": 2, "autre": 0},
                "replaces_version": 1,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{corrected}");
    let scheduled = emulator
        .invoke("publish-fn", &json!({"schedule": "decompte"}))
        .await;
    assert_eq!(scheduled["published"], true, "{scheduled}");
    assert!(text(&site, "index.html")
        .await
        .contains("<span class=\"n\">7</span> décès au total"));
    let invalidated: Vec<String> =
        serde_json::from_value(scheduled["invalidated"].clone()).expect("paths");
    assert_eq!(
        moto.invalidations(&distribution).last(),
        Some(&invalidated),
        "CloudFront got exactly the changed paths"
    );
    assert!(
        invalidated.contains(&"/communes/56260.html".to_owned()),
        "{invalidated:?}"
    );
    assert!(invalidated.contains(&"/".to_owned()), "{invalidated:?}");
    assert!(
        invalidated
            .iter()
            .all(|p| p != "/*" && !p.starts_with("/assets/")),
        "{invalidated:?}"
    );
    let again = emulator
        .invoke("publish-fn", &json!({"schedule": "decompte"}))
        .await;
    assert_eq!(again["published"], false, "{again}");

    // At RUST_LOG=trace, the function logged every request — and none of
    // its secrets: the access codes (in the form and in `Authorization`),
    // the session cookie, the CSRF token, the second factor's six digits.
    let log = ingest.process.log_text();
    assert!(log.contains("TRACE"), "the function logged at trace level");
    let session = browser
        .cookies
        .get("decompte_session")
        .expect("a session cookie")
        .clone();
    let lowered = log.to_lowercase();
    assert!(
        !lowered.contains("bearer "),
        "an Authorization header is in the function's log"
    );
    assert!(
        !lowered.contains("x-totp"),
        "the second factor's header is in the function's log"
    );
    let secrets = [
        ("the mairie's code", mairie.clone()),
        ("the mairie's code as typed", mairie.replace('-', "")),
        ("the prefecture's code", prefecture.clone()),
        ("the session id", session.clone()),
        ("the CSRF token", csrf.clone()),
    ];
    for (what, secret) in secrets {
        assert!(!log.contains(&secret), "{what} is in the function's log");
    }

    // What the functions cost, for the closing note (`--nocapture` shows it).
    for (name, function) in [("ingest-fn", &ingest), ("publish-fn", &publish)] {
        println!(
            "{name}: start {} ms (process start to ready), init {} ms (logged), peak memory {:.1} \
                MiB",
            function.start.as_millis(),
            function
                .init_ms()
                .map_or("?".to_owned(), |ms| ms.to_string()),
            function.process.peak_memory_kib().unwrap_or(0) as f64 / 1024.0
        );
    }
    println!(
        "S3 objects: {}; files changed after one correction: {}; CloudFront paths invalidated: {}",
        before.len(),
        scheduled["files_changed"],
        invalidated.len()
    );
}

async fn text(site: &decompte_aws::S3Sink, path: &str) -> String {
    let bytes = site
        .read(path)
        .await
        .expect("read from S3")
        .unwrap_or_else(|| panic!("{path} is on S3"));
    String::from_utf8(bytes).expect("utf-8")
}
