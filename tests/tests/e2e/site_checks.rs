//! The published site passes the checkers a reader's tools would apply: no broken
//! link (lychee) and open data that match their Table Schema (frictionless).

use std::process::Command;

use chrono::{Duration, NaiveDate, Utc};
use decompte_core::{Report, Source};
use decompte_tests::TestApp;

/// A site of three départements (one overseas), with every level: the
/// checkers follow the links between them and read every data file.
async fn published_site() -> TestApp {
    let app = TestApp::start_with(|options| {
        options.departements = vec!["29".into(), "56".into(), "974".into()];
    })
    .await;
    let store = app.store();
    let start = NaiveDate::from_ymd_opt(2020, 3, 20).expect("date");
    let scope = &app.app.state.config.scope;
    let communes: Vec<_> = scope
        .departement_codes()
        .flat_map(|d| scope.communes().filter(move |c| c.departement == d).take(8))
        .map(|c| c.code.clone())
        .collect();
    for (i, commune) in communes.iter().enumerate() {
        for day in 0..20 {
            let n = u32::try_from((i + day) % 4).unwrap_or(0);
            let report = Report {
                commune: commune.clone(),
                date: start + Duration::days(i64::try_from(day).unwrap_or(0)),
                counts: [
                    ("hopital", n),
                    ("ehpad", n / 2),
                    ("esms", 0),
                    ("domicile", n % 2),
                    ("autre", 0),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                version: 1,
                recorded_at: Utc::now(),
                recorded_by: "test".into(),
                source: Source::Api,
                reason: None,
                warnings: Vec::new(),
            };
            store.write_report(&report, None).await.expect("write");
        }
    }
    app.publish().await;
    app
}

fn run(program: &str, args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): run ./scripts/test.sh, which installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_link_of_the_site_resolves() {
    let app = published_site().await;
    let site = &app.app.site_dir;
    let (ok, report) = run(
        "lychee",
        &[
            "--offline",
            "--no-progress",
            "--include-fragments",
            "--root-dir",
            &site.display().to_string(),
            "--format",
            "compact",
            "**/*.html",
        ],
        site,
    );
    assert!(ok, "lychee found broken links:\n{report}");
    assert!(
        report.contains("Total") || report.contains("0 Errors") || report.contains('🔍'),
        "lychee checked nothing:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_data_match_their_table_schema() {
    let app = published_site().await;
    let data = app.app.site_dir.join("donnees");
    let (ok, report) = run("frictionless", &["validate", "datapackage.json"], &data);
    assert!(
        ok,
        "frictionless says the open data do not match their schema:\n{report}"
    );
    assert!(
        report.contains("deces.csv") || report.contains("VALID"),
        "frictionless validated nothing:\n{report}"
    );
    for folder in ["29", "56", "974"] {
        assert!(
            report.contains(&format!("departements/{folder}/deces.csv")),
            "frictionless did not validate département {folder}:\n{report}"
        );
    }
}
