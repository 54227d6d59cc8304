//! The SAM template: clean for cfn-lint and checkov (any skipped check is
//! written next to its resource with its reason), and its table is the one
//! `decompte store init` makes, and its functions' permissions stop at the
//! keys they need.

use std::path::{Path, PathBuf};
use std::process::Command;

use decompte_core::Role;
use decompte_tests::dynamodb_local::DynamoLocal;
use decompte_tests::{report_body, Browser, TestApp};
use reqwest::StatusCode;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> PathBuf {
    root().join("infra/template.yaml")
}

/// The web ACL's stack (us-east-1), beside the main template.
fn waf_template() -> PathBuf {
    root().join("infra/waf.yaml")
}

fn tool(name: &str) -> Command {
    decompte_tests::infra_tool(name)
}

fn run(mut command: Command, what: &str) -> String {
    decompte_tests::run_tool(&mut command, what)
}

#[test]
fn cfn_lint_finds_nothing() {
    let mut command = tool("cfn-lint");
    command.arg(template()).arg(waf_template());
    run(command, "cfn-lint");
}

#[test]
fn checkov_finds_nothing() {
    let mut command = tool("checkov");
    command
        .arg("--file")
        .arg(template())
        .arg("--file")
        .arg(waf_template())
        .args([
            "--framework",
            "cloudformation",
            "--compact",
            "--skip-download",
        ])
        .env("BC_SKIP_MAPPING", "TRUE");
    let report = run(command, "checkov");
    decompte_tests::assert_checkov_clean(&report, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_declares_the_table_store_init_makes() {
    let local = DynamoLocal::shared();
    let table = format!("decompte-schema-{}", std::process::id());
    local.store(&table, &["56"]).await;
    let mut command = tool("python");
    command
        .arg(root().join("tests/infra/table_schema.py"))
        .arg(template())
        .arg(&local.endpoint)
        .arg(&table);
    run(command, "the table comparison");
}

/// Each function's DynamoDB permissions are limited to the partition keys
/// it needs (`dynamodb:LeadingKeys`): the publisher writes publication
/// records only, the app deletes sessions only. Checked against the keys
/// the app really writes: a login, declarations (with an idempotency key),
/// a failed login, a prefecture's second factor, a publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_touches_only_the_keys_its_policy_allows() {
    let local = DynamoLocal::shared();
    let table = format!("decompte-keys-{}", std::process::id());
    let store = std::sync::Arc::new(local.store(&table, &["56"]).await);
    let app = TestApp::start_on(store).await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let mut mairie = Browser::new(&app);
    assert_eq!(mairie.login(&mayor).await.status, StatusCode::SEE_OTHER);
    let declared = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56260", "2020-04-01", [1, 0, 0, 1, 0]),
            &[("idempotency-key", "keys-1")],
        )
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.text);
    let wrong = app
        .get(
            "/api/v1/me",
            Some("56260-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let mut cell = Browser::new(&app);
    assert_eq!(cell.login(&prefecture).await.location(), "/prefecture");
    let asked = app
        .post_json(
            "/api/v1/publications",
            Some(&prefecture),
            &serde_json::json!({"reason": "clés"}),
            &[],
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    // Santé publique France's series, imported from the prefecture page.
    let csrf = decompte_tests::csrf_of(&cell.get("/prefecture/spf").await.text);
    let imported = cell
        .post_multipart(
            "/prefecture/spf",
            &[("csrf", &csrf), ("departement", "56")],
            (
                "fichier",
                "spf.csv",
                b"dep;jour;incid_dc\n56;2020-04-01;2\n",
            ),
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.text);
    // A mairie called by the crisis cell.
    let called = cell
        .post_form(
            "/prefecture/relances",
            &[
                ("csrf", &csrf),
                ("date", "2020-04-01"),
                ("commune", "56001"),
            ],
        )
        .await;
    assert_eq!(called.status, StatusCode::SEE_OTHER, "{}", called.text);
    app.publish().await;
    let mut command = tool("python");
    command
        .arg(root().join("tests/infra/key_policy.py"))
        .arg(template())
        .arg(&local.endpoint)
        .arg(&table);
    println!("{}", run(command, "the key policy check"));
}
