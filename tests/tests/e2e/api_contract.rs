//! schemathesis against the running API and its own OpenAPI document, as a
//! mairie and as a prefecture (with its second factor): no 5xx, every answer
//! documented (status, content type, headers, body), every request the
//! document refuses refused by the server, authentication never ignored.
//!
//! One check is left out, on purpose: `positive_data_acceptance` expects
//! every request the document allows to succeed, but a report can be
//! well-formed and still refused by what only the data decides — a day
//! outside the crisis window, a commune outside the caller's reach, a
//! correction of a version that does not exist or that lowers a count
//! without a reason (a documented 404, 409 or 422 in French).

use std::path::Path;
use std::process::Command;

use decompte_core::Role;
use decompte_tests::{test_totp_secret, TestApp};

/// Runs schemathesis as the holder of `code`; returns its summary.
fn schemathesis(app: &TestApp, code: &str, totp_secret: Option<&str>) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("api");
    let binary = dir.join(".venv/bin/schemathesis");
    assert!(
        binary.is_file(),
        "{} is missing: run ./scripts/tools.sh, which installs schemathesis",
        binary.display()
    );
    let output = Command::new(binary)
        .current_dir(&dir)
        .env("SCHEMATHESIS_HOOKS", "totp_hook")
        .env("DECOMPTE_TOTP_SECRET", totp_secret.unwrap_or(""))
        .env("DECOMPTE_CODE", code)
        .env("NO_COLOR", "1")
        .args(["--config-file", "schemathesis.toml"])
        .args(["run", &app.url("/api/v1/openapi.json")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "100", "--workers", "2"])
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{text}"
    );
    text.lines()
        .filter(|l| l.contains("generated") || l.contains(" passed") || l.contains("Seed"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_openapi_document_says() {
    // schemathesis tries wrong codes on purpose: the throttle must not turn
    // its expected 401s into 429s.
    let app = TestApp::start_with(|options| options.login_failures = 1_000_000).await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let secret = test_totp_secret(&prefecture).expect("a prefecture's test secret");
    println!("as a mairie:\n{}", schemathesis(&app, &mayor, None));
    println!(
        "as a prefecture:\n{}",
        schemathesis(&app, &prefecture, Some(&secret))
    );
}
