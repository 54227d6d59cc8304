//! The published site passes the checkers a reader's tools would apply: no broken
//! link (lychee), open data that match their Table Schema (frictionless), and
//! HTML that the Nu HTML Checker (vnu) finds valid, the app's pages too.

use std::process::Command;

use chrono::{Duration, NaiveDate, Utc};
use decompte_core::{Report, Role, Source};
use decompte_tests::{csrf_of, Browser, TestApp};

/// A site of three départements (one overseas), with every level: the
/// checkers follow the links between them and read every data file.
async fn published_site() -> TestApp {
    published_site_with(None).await
}

/// [`published_site`], under the rule of small counts if `small_counts`.
async fn published_site_with(small_counts: Option<u32>) -> TestApp {
    let app = TestApp::start_with(|options| {
        options.departements = vec!["29".into(), "56".into(), "974".into()];
        options.small_counts = small_counts;
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
            store
                .write_report(decompte_store::Ledgered::for_fixtures(), &report, None)
                .await
                .expect("write");
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
    // Rows by commune, and by département under the rule of small counts.
    for small_counts in [None, Some(5)] {
        let app = published_site_with(small_counts).await;
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
        let header = std::fs::read_to_string(data.join("deces.csv")).expect("csv");
        assert_eq!(
            header.starts_with("date,code_departement,"),
            small_counts.is_some(),
            "{}",
            &header[..80]
        );
    }
}

/// The Nu HTML Checker's errors on `files` (vnu.jar from npm, on Java 17).
fn vnu_errors(files: &[std::path::PathBuf]) -> Vec<String> {
    let jar = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/browser/node_modules/vnu-jar/build/dist/vnu.jar"
    );
    assert!(
        std::path::Path::new(jar).is_file(),
        "vnu.jar is missing: run ./scripts/test.sh, which installs it with npm"
    );
    let output = Command::new("java")
        .args(["-jar", jar, "--errors-only", "--format", "json"])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("java -jar vnu.jar could not start: {e}"));
    let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap_or_else(|e| {
        panic!(
            "vnu gave no JSON report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    report["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{}:{}: {}",
                m["url"]
                    .as_str()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default(),
                m["lastLine"],
                m["message"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn html_files(folder: &std::path::Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("site folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            html_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "html") {
            into.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_kind_is_valid_html() {
    // Every page of a site of three départements.
    let site = published_site().await;
    let mut files = Vec::new();
    html_files(&site.app.site_dir, &mut files);
    assert!(files.len() > 30, "{} pages", files.len());

    // A site of one département (its overview lists communes), and the app's pages.
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let pages = tempfile::tempdir().expect("folder");
    let mut browser = Browser::new(&app);
    let mut keep = |name: &str, html: &str| {
        let path = pages.path().join(format!("{name}.html"));
        std::fs::write(&path, html).expect("write page");
        files.push(path);
    };
    keep("connexion", &browser.get("/connexion").await.text);
    keep("aide", &browser.get("/aide").await.text);
    keep("plan", &browser.get("/plan").await.text);
    // The second factor's page, then the login again, to its end.
    let second = browser.login_code_only(&prefecture).await;
    assert!(
        second.text.contains("Double authentification"),
        "{}",
        second.text
    );
    keep("second-facteur", &second.text);
    browser.login(&prefecture).await;
    for (name, path) in [
        ("saisie", "/saisie?commune=56260&date=2020-04-01"),
        ("prefecture", "/prefecture?date=2020-04-01"),
        ("codes", "/prefecture/codes"),
        (
            "saisie-groupee",
            "/prefecture/saisie-groupee?date=2020-04-01",
        ),
        ("signaux", "/prefecture/signaux?date=2020-04-10"),
        ("spf", "/prefecture/spf"),
        ("point", "/prefecture/point?date=2020-04-01"),
        ("contacts", "/prefecture/contacts"),
    ] {
        let answer = browser.get(path).await;
        assert_eq!(answer.status, reqwest::StatusCode::OK, "{path}");
        keep(name, &answer.text);
    }
    // The form refusing a count, and asking to confirm an unlikely one.
    let form = browser.get("/saisie?commune=56260&date=2020-04-01").await;
    let csrf = csrf_of(&form.text);
    let refused = browser
        .post_form(
            "/saisie",
            &[
                ("csrf", &csrf),
                ("commune", "56260"),
                ("date", "2020-04-01"),
                ("n_hopital", "-1"),
                ("n_ehpad", "0"),
                ("n_esms", "0"),
                ("n_domicile", "0"),
                ("n_autre", "0"),
            ],
        )
        .await;
    keep("saisie-refusee", &refused.text);
    let unlikely = browser
        .declare(&csrf, "56021", "2020-04-01", [0, 0, 0, 80, 0])
        .await;
    assert!(unlikely.text.contains("Confirmer"), "{}", unlikely.text);
    keep("saisie-avertissement", &unlikely.text);
    let csrf = csrf_of(&browser.get("/saisie").await.text);
    browser
        .declare(&csrf, "56260", "2020-04-01", [2, 1, 0, 0, 0])
        .await;
    app.publish().await;
    keep("app-404", &browser.get("/nulle-part").await.text);
    for page in ["index.html", "communes/56260.html", "methodologie.html"] {
        keep(
            &format!("un-departement-{}", page.replace('/', "-")),
            &app.site_file(page),
        );
    }

    // Under the rule of small counts: a day one commune declared (withheld).
    let small = TestApp::start_with(|options| options.small_counts = Some(5)).await;
    let prefecture = small.issue(Role::Prefecture, None).await;
    let mut agent = Browser::new(&small);
    agent.login(&prefecture).await;
    let csrf = csrf_of(&agent.get("/saisie").await.text);
    agent
        .declare(&csrf, "56260", "2020-04-01", [2, 1, 0, 0, 0])
        .await;
    agent
        .declare(&csrf, "56260", "2020-04-02", [1, 0, 0, 0, 0])
        .await;
    agent
        .declare(&csrf, "56121", "2020-04-02", [0, 0, 0, 0, 0])
        .await;
    small.publish().await;
    for page in [
        "index.html",
        "communes/56260.html",
        "lieux/hopital.html",
        "methodologie.html",
    ] {
        let html = small.site_file(page);
        assert!(html.contains("petits effectifs"), "{page}");
        keep(
            &format!("petits-effectifs-{}", page.replace('/', "-")),
            &html,
        );
    }

    // The second factor's enrolment page.
    let fresh = decompte_app::auth::issue_credential(
        app.store().as_ref(),
        decompte_core::issuance::Issue::new(Role::Prefecture, None, "Cellule de crise"),
        None,
        chrono::Utc::now(),
    )
    .await
    .expect("issue")
    .1;
    let mut newcomer = Browser::new(&app);
    let enrolment = newcomer.login_code_only(&fresh.display_grouped()).await;
    assert!(enrolment.text.contains("code QR"), "{}", enrolment.text);
    keep("enrolement", &enrolment.text);

    let errors = vnu_errors(&files);
    assert!(
        errors.is_empty(),
        "the Nu HTML Checker found {} error(s) in {} pages:\n{}",
        errors.len(),
        files.len(),
        errors.join("\n")
    );

    // The check can fail: a page with an unclosed element and a bad attribute.
    let bad = pages.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!doctype html><html lang=fr><title>t</title><main><p><div align=middle></main>",
    )
    .expect("write");
    assert!(!vnu_errors(&[bad]).is_empty(), "vnu found nothing wrong");
}
