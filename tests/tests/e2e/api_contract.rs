//! schemathesis against the running API and its own OpenAPI document, as a
//! mairie and as a prefecture (with its second factor): no 5xx, every answer
//! documented (status, content type, headers, body), every request the
//! document refuses refused by the server, authentication never ignored.
//!
//! As a mairie, every check runs, `positive_data_acceptance` included:
//! every request the document allows is accepted (or refused only for its
//! credentials or its data: 401, 403, 404, 409), so the document states
//! every constraint the server's parsers enforce — calendar days, the
//! `Idempotency-Key`'s characters. As a prefecture, that one check is left
//! out: a prefecture reaches every commune of the département, so a
//! well-formed report is also judged on what only the data decides — a day
//! outside the crisis window, a correction that lowers a count without a
//! reason (a documented 422 in French).

use std::path::Path;
use std::process::Command;

use decompte_core::Role;
use decompte_tests::{test_totp_secret, TestApp};

/// Runs schemathesis as the holder of `code`; returns its summary.
fn schemathesis(
    app: &TestApp,
    code: &str,
    totp_secret: Option<&str>,
    excluded_checks: &[&str],
) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("api");
    let binary = dir.join(".venv/bin/schemathesis");
    assert!(
        binary.is_file(),
        "{} is missing: run ./scripts/tools.sh, which installs schemathesis",
        binary.display()
    );
    let mut command = Command::new(binary);
    command
        .current_dir(&dir)
        .env("SCHEMATHESIS_HOOKS", "totp_hook")
        .env("DECOMPTE_TOTP_SECRET", totp_secret.unwrap_or(""))
        .env("DECOMPTE_CODE", code)
        .env("NO_COLOR", "1")
        .args(["--config-file", "schemathesis.toml"])
        .args(["run", &app.url("/api/v1/openapi.json")])
        .args(["--checks", "all"])
        .args(["--max-examples", "100", "--workers", "2"]);
    if !excluded_checks.is_empty() {
        command.args(["--exclude-checks", &excluded_checks.join(",")]);
    }
    let output = command.output().expect("run schemathesis");
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
    println!("as a mairie:\n{}", schemathesis(&app, &mayor, None, &[]));
    println!(
        "as a prefecture:\n{}",
        schemathesis(
            &app,
            &prefecture,
            Some(&secret),
            &["positive_data_acceptance"]
        )
    );
}
