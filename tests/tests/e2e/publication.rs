//! Publication is incremental: nothing changed, nothing written; one correction,
//! only the files that show it.

use decompte_core::Role;
use decompte_tests::{report_body, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_writes_only_what_changed() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    for (commune, counts) in [
        ("56260", [3, 1, 0, 0, 0]),
        ("56121", [0, 2, 0, 1, 0]),
        ("56001", [0, 0, 0, 0, 0]),
    ] {
        let answer = app
            .post_json(
                "/api/v1/reports",
                Some(&prefecture),
                &report_body(commune, "2020-04-01", counts),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let first = app.publish().await;
    assert!(first.written.len() > 249, "{}", first.written.len());
    assert_eq!(
        first.written.last().map(String::as_str),
        Some("manifest.json"),
        "manifest last"
    );
    assert!(
        first
            .written
            .first()
            .is_some_and(|p| p.starts_with("assets/")),
        "assets first"
    );

    let again = app.publish().await;
    assert_eq!(again.files_changed(), 0, "{again:?}");

    // Correct Vannes' hospital count: its page, the overview, the hospital page,
    // the data files and the manifest change; nothing else.
    let mut correction = report_body("56260", "2020-04-01", [4, 1, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    let answer = app
        .post_json("/api/v1/reports", Some(&prefecture), &correction, &[])
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let after = app.publish().await;
    let mut written = after.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            "communes/56260.html",
            "donnees/deces.csv",
            "donnees/deces.csv.gz",
            "donnees/deces.json",
            "index.html",
            "lieux/hopital.html",
            "manifest.json"
        ],
    );
    assert!(after.deleted.is_empty());

    // The manifest lists every file with its hash and size.
    let manifest: serde_json::Value =
        serde_json::from_str(&app.site_file("manifest.json")).expect("manifest");
    let files = manifest["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), after.unchanged + after.written.len() - 1);
    let csv = files
        .iter()
        .find(|f| f["path"] == "donnees/deces.csv")
        .expect("csv in manifest");
    assert_eq!(
        csv["size"].as_u64(),
        Some(app.site_file("donnees/deces.csv").len() as u64)
    );
    assert!(manifest["watermark"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_that_fails_half_way_leaves_the_previous_site_whole() {
    use decompte_publish::{render, write_site, MemorySink, SiteConfig};
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    app.post_json(
        "/api/v1/reports",
        Some(&prefecture),
        &report_body("56260", "2020-04-01", [3, 1, 0, 0, 0]),
        &[],
    )
    .await;
    let config: SiteConfig = app.app.publisher.config().clone();
    let today = chrono::NaiveDate::from_ymd_opt(2020, 5, 1).expect("date");
    let store = app.store();
    let reports = store
        .current_reports(&Default::default())
        .await
        .expect("reports");
    let sink = MemorySink::default();
    let first = render::render(&reports, &config, today).expect("render");
    write_site(&first, &sink, chrono::Utc::now())
        .await
        .expect("first publication");
    let published = sink.files();

    let mut correction = report_body("56260", "2020-04-01", [9, 1, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    app.post_json("/api/v1/reports", Some(&prefecture), &correction, &[])
        .await;
    let reports = store
        .current_reports(&Default::default())
        .await
        .expect("reports");
    let second = render::render(&reports, &config, today).expect("render");
    sink.fail_after(2);
    assert!(write_site(&second, &sink, chrono::Utc::now())
        .await
        .is_err());
    let after = sink.files();
    // The manifest is the previous one, and every file it names is still there.
    assert_eq!(after.get("manifest.json"), published.get("manifest.json"));
    let manifest: serde_json::Value =
        serde_json::from_slice(after.get("manifest.json").expect("manifest")).expect("json");
    for file in manifest["files"].as_array().into_iter().flatten() {
        assert!(after.contains_key(file["path"].as_str().unwrap_or_default()));
    }
    // The overview, written last among pages, still shows the old figures.
    assert_eq!(after.get("index.html"), published.get("index.html"));

    // Recorded for the prefecture page, in French, with the detail.
    let failing = std::sync::Arc::new(MemorySink::default());
    failing.fail_after(2);
    let publisher = decompte_publish::Publisher::new(store.clone(), failing, config);
    let queued = publisher
        .request(
            "PREF",
            "essai",
            decompte_store::Publication::new_id(),
            chrono::Utc::now(),
        )
        .await
        .expect("queued");
    let failed = publisher.run_recorded(queued).await;
    assert_eq!(failed.status, decompte_store::PublicationStatus::Failed);
    let error = failed.error.unwrap_or_default();
    assert!(
        error.starts_with(
            "Le site n’a pas pu être écrit ; la version précédente reste en ligne (détail : "
        ),
        "{error}"
    );
    let recorded = store.publications(1).await.expect("publications");
    assert_eq!(recorded[0].error.as_deref(), Some(error.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_renders_only_after_a_write() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let publisher = &app.app.publisher;
    let now = chrono::Utc::now();
    assert!(
        publisher
            .publish_if_changed(now)
            .await
            .expect("publish")
            .is_some(),
        "the first run always publishes"
    );
    assert!(
        publisher
            .publish_if_changed(now)
            .await
            .expect("publish")
            .is_none(),
        "nothing was written since"
    );
    let answer = app
        .post_json(
            "/api/v1/reports",
            Some(&prefecture),
            &report_body("56260", "2020-04-01", [1, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let outcome = publisher
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("a write was made");
    assert!(outcome.written.contains(&"communes/56260.html".to_owned()));
    assert!(publisher
        .publish_if_changed(now)
        .await
        .expect("publish")
        .is_none());
    // The timer's publications are recorded: the prefecture page says how
    // fresh the public site is.
    let recorded = app.store().publications(10).await.expect("publications");
    assert!(
        recorded
            .iter()
            .any(|p| p.requested_by == decompte_publish::AUTOMATIC
                && p.status == decompte_store::PublicationStatus::Succeeded),
        "{recorded:?}"
    );
    let mut browser = decompte_tests::Browser::new(&app);
    browser.login(&prefecture).await;
    let page = browser.get("/prefecture").await;
    assert!(
        page.text
            .contains("Le site public a été mis à jour <strong>il y a moins d’une minute</strong>"),
        "{}",
        page.text
    );
    // A slow write that took its instant before the last watermark is still seen.
    let store = app.store();
    let published = store
        .current_reports(&Default::default())
        .await
        .expect("reports");
    let watermark = published
        .iter()
        .map(|r| r.recorded_at)
        .max()
        .expect("watermark");
    let mut late = published[0].clone();
    late.commune = decompte_core::CommuneCode::parse("56121").expect("code");
    late.recorded_at = watermark - chrono::Duration::seconds(30);
    store
        .write_report(decompte_store::Ledgered::for_fixtures(), &late, None)
        .await
        .expect("write");
    let outcome = publisher
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("the late write is published");
    assert!(outcome.written.contains(&"communes/56121.html".to_owned()));
    assert!(publisher
        .publish_if_changed(now)
        .await
        .expect("publish")
        .is_none());
    // A new day renders again (completeness on the overview moves with it).
    assert!(publisher
        .publish_if_changed(now + chrono::Duration::days(1))
        .await
        .expect("publish")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_page_gets_the_french_404_page_at_any_depth() {
    let app = TestApp::start().await;
    app.publish().await;
    for path in ["/nimporte-quoi.html", "/communes/99999.html", "/a/b/c"] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            answer.text.contains("Page introuvable"),
            "{path}: {}",
            answer.text
        );
        // Its links start at the root, so they work wherever it is served.
        assert!(
            answer.text.contains("href=\"/index.html\""),
            "{}",
            answer.text
        );
    }
}

/// A declaration wakes the publication loop: it is on its commune's page
/// without waiting for the timer (here an hour). How soon is measured by a
/// bench, not here: this waits up to 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_is_published_without_waiting_for_the_timer() {
    let app = TestApp::start().await;
    app.publish().await;
    app.app
        .spawn_publish_timer(std::time::Duration::from_secs(3600), None, false);
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let answer = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56260", "2020-04-01", [4, 3, 0, 2, 1]),
            &[],
        )
        .await;
    assert_eq!(
        answer.status,
        reqwest::StatusCode::CREATED,
        "{}",
        answer.text
    );
    let started = std::time::Instant::now();
    loop {
        let page = app.get("/communes/56260.html", None).await;
        if page.text.contains("01/04/2020") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the declaration is still not on the commune page"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Paris midnight is a new day for the site (the completeness of the last
/// days moves): the minute before it, nothing new is published; the minute
/// after, the pages that show the last days are rendered again, though no
/// report changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paris_midnight_renders_the_pages_of_the_last_days_again() {
    use chrono::TimeZone;
    use decompte_publish::Publisher;
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let answer = app
        .post_json(
            "/api/v1/reports",
            Some(&prefecture),
            &report_body("56260", "2026-12-03", [1, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let site = tempfile::tempdir().expect("site folder");
    let sink = folder_sink(site.path());
    let publisher = Publisher::new(app.store(), sink, app.app.publisher.config().clone());
    // 23:50 on 4 December in Paris (UTC+1).
    let at = |h, m| {
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 4, h, m, 0)
            .single()
            .expect("instant")
    };
    publisher.publish(at(22, 50)).await.expect("publish");
    assert!(publisher
        .publish_if_changed(at(22, 59))
        .await
        .expect("publish")
        .is_none());
    let after = publisher
        .publish_if_changed(at(23, 1))
        .await
        .expect("publish")
        .expect("a new day in Paris");
    assert!(
        after.written.contains(&"index.html".to_owned()),
        "{:?}",
        after.written
    );
}

/// After `decompte store copy`, the site goes on from the new store, whose
/// writes are numbered afresh, lower than the mark the publisher kept: the
/// publisher starts over rather than miss them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_numbered_afresh_is_published_in_full() {
    use decompte_publish::Publisher;
    use decompte_store::conformance::report;
    use decompte_store::Reports;
    let app = TestApp::start().await;
    let config = app.app.publisher.config().clone();
    let day = |d| chrono::NaiveDate::from_ymd_opt(2020, 4, d).expect("day");
    let fixture = decompte_store::Ledgered::for_fixtures();
    let old = decompte_store::SqliteStore::in_memory().expect("store");
    for d in 1..=5 {
        old.write_report(fixture, &report("56260", day(d), 1, d), None)
            .await
            .expect("write");
    }
    let site = tempfile::tempdir().expect("site folder");
    let sink = folder_sink(site.path());
    let now = chrono::Utc::now();
    Publisher::new(std::sync::Arc::new(old), sink.clone(), config.clone())
        .publish(now)
        .await
        .expect("publish");
    // The new store: one write so far, numbered 1.
    let new = decompte_store::SqliteStore::in_memory().expect("store");
    new.write_report(fixture, &report("56260", day(1), 1, 7), None)
        .await
        .expect("write");
    let outcome = Publisher::new(std::sync::Arc::new(new), sink, config)
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("the new store's figures");
    assert!(outcome.written.contains(&"communes/56260.html".to_owned()));
    let csv = std::fs::read_to_string(site.path().join("site/donnees/deces.csv")).expect("csv");
    assert!(csv.contains("2020-04-01,56260,Vannes,7,"), "{csv}");
    assert!(!csv.contains("2020-04-05,56260"), "{csv}");
}

/// A crisis fills the store in bulk (an import of every commune's days,
/// with the instant of the import), then a mairie corrects a day: the
/// timer's publication reads that one change, renders its département only,
/// and the state kept between publications names no report (it was a list
/// of every report written within minutes of the last one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_bulk_import_a_correction_renders_its_departement_only() {
    use decompte_publish::{Publisher, STATE};
    let app = TestApp::start_with(|options| {
        options.departements = vec!["29".into(), "56".into(), "974".into()];
    })
    .await;
    let store = app.store();
    let config = app.app.publisher.config().clone();
    let now = chrono::Utc::now();
    let first_day = chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("day");
    let reports: Vec<decompte_core::Report> = config
        .scope
        .communes()
        .flat_map(|commune| {
            (0..20).map(move |offset| decompte_core::Report {
                commune: commune.code.clone(),
                date: first_day + chrono::Duration::days(offset),
                counts: [("hopital".to_owned(), 1)].into_iter().collect(),
                version: 1,
                recorded_at: now,
                recorded_by: "import".into(),
                source: decompte_core::Source::Import,
                reason: None,
                warnings: Vec::new(),
            })
        })
        .collect();
    assert!(reports.len() > 10_000, "{}", reports.len());
    assert!(store
        .begin_bulk(decompte_store::Ledgered::for_fixtures(), reports.len())
        .await
        .expect("bulk"));
    store
        .write_reports(decompte_store::Ledgered::for_fixtures(), &reports)
        .await
        .expect("import");
    store
        .end_bulk(decompte_store::Ledgered::for_fixtures(), true)
        .await
        .expect("commit");

    let site = tempfile::tempdir().expect("site folder");
    let sink = folder_sink(site.path());
    let publisher = Publisher::new(store.clone(), sink.clone(), config.clone());
    publisher.publish(now).await.expect("first publication");
    let state = std::fs::read(site.path().join("publisher").join(STATE)).expect("state");
    assert!(state.len() < 20_000, "a state of {} bytes", state.len());

    let prefecture = app.issue(Role::Prefecture, None).await;
    let mut correction = report_body("29019", "2020-04-03", [5, 0, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    let answer = app
        .post_json("/api/v1/reports", Some(&prefecture), &correction, &[])
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    // A new process, seconds after the import.
    let resumed = Publisher::new(store.clone(), sink, config);
    let outcome = resumed
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("the correction is new");
    let elsewhere: Vec<&String> = outcome
        .written
        .iter()
        .filter(|p| p.contains("/56") || p.contains("/974") || p.contains("departements/56"))
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
    assert!(outcome.written.contains(&"communes/29019.html".to_owned()));
    assert!(resumed
        .publish_if_changed(now)
        .await
        .expect("nothing new")
        .is_none());
}

/// With three départements, a correction rewrites its commune's page, its
/// département's page and files, the whole-scope data and the scope's pages:
/// nothing of the other départements. A new process resumes from the state
/// the last publication left beside the manifest, without a full run; a
/// state rendered by other templates or another configuration is not resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_rewrites_its_departement_only_and_a_new_process_resumes() {
    use decompte_publish::{Publisher, SiteConfig, STATE};
    let app = TestApp::start_with(|options| {
        options.departements = vec!["29".into(), "56".into(), "974".into()];
    })
    .await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    for commune in ["29019", "56260", "97411"] {
        let answer = app
            .post_json(
                "/api/v1/reports",
                Some(&prefecture),
                &report_body(commune, "2020-04-01", [1, 0, 0, 0, 0]),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let config: SiteConfig = app.app.publisher.config().clone();
    let site = tempfile::tempdir().expect("site folder");
    let sink = folder_sink(site.path());
    let publisher = Publisher::new(app.store(), sink.clone(), config.clone());
    let now = chrono::Utc::now();
    let first = publisher.publish(now).await.expect("first publication");
    assert!(first.written.contains(&"departements/974.html".to_owned()));
    assert!(
        site.path().join("publisher").join(STATE).exists(),
        "the state is kept out of the site"
    );
    assert!(!site.path().join("site").join(STATE).exists());
    assert!(publisher
        .publish_if_changed(now)
        .await
        .expect("nothing new")
        .is_none());

    let mut correction = report_body("29019", "2020-04-01", [5, 0, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    let answer = app
        .post_json("/api/v1/reports", Some(&prefecture), &correction, &[])
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    // A new process: another publisher on the same folder.
    let resumed = Publisher::new(app.store(), sink.clone(), config.clone());
    let outcome = resumed
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("the correction is new");
    let mut written = outcome.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            "communes/29019.html",
            "departements/29.html",
            "donnees/deces.csv",
            "donnees/deces.csv.gz",
            "donnees/departements/29/deces.csv",
            "donnees/departements/29/deces.csv.gz",
            "donnees/departements/29/deces.json",
            "index.html",
            "lieux/hopital.html",
            "manifest.json",
        ]
    );
    assert!(outcome.unchanged > 550, "{}", outcome.unchanged);
    let whole = std::fs::read_to_string(site.path().join("site/donnees/deces.csv")).expect("csv");
    assert!(
        whole.contains("2020-04-01,29019,Brest,5,0,0,0,0,5\n"),
        "{whole}"
    );
    assert!(whole.contains("2020-04-01,97411,Saint-Denis,1,"), "{whole}");
    // The result is what a full publication from scratch writes.
    let fresh = tempfile::tempdir().expect("another folder");
    Publisher::new(app.store(), folder_sink(fresh.path()), config.clone())
        .publish(now)
        .await
        .expect("from scratch");
    for path in [
        "index.html",
        "departements/29.html",
        "donnees/deces.csv",
        "donnees/deces.csv.gz",
    ] {
        assert_eq!(
            std::fs::read(site.path().join("site").join(path)).expect("incremental"),
            std::fs::read(fresh.path().join("site").join(path)).expect("from scratch"),
            "{path}"
        );
    }

    // Another configuration (here another publisher name) does not resume: all is rendered.
    let mut other = config.clone();
    other.publisher = "Préfecture de région".into();
    let full = Publisher::new(app.store(), sink, other)
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("a full publication");
    assert!(full.written.len() > 550, "{}", full.written.len());
}

/// In the middle of a national morning every département changes between
/// two publications: in the same process, a publication renders the pages
/// of the communes that declared and of their départements from the days it
/// kept, and writes the data files of as many départements as its budget
/// allows, the longest waiting first; the next publications, with no new
/// report, write the others and then compose the whole-scope files. The
/// site is then what a full publication writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_patched_first_and_data_files_follow() {
    use decompte_publish::{Publisher, SiteConfig};
    let app = TestApp::start_with(|options| {
        options.departements = vec!["29".into(), "56".into(), "974".into()];
    })
    .await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let declare =
        |commune: &'static str, day: &'static str, counts: [u32; 5], version: Option<u32>| {
            let mut body = report_body(commune, day, counts);
            if let Some(version) = version {
                body["replaces_version"] = json!(version);
            }
            body
        };
    for commune in ["29019", "56260", "97411"] {
        let answer = app
            .post_json(
                "/api/v1/reports",
                Some(&prefecture),
                &declare(commune, "2020-04-01", [1, 0, 0, 0, 0], None),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let config: SiteConfig = app.app.publisher.config().clone();
    let site = tempfile::tempdir().expect("site folder");
    let publisher = Publisher::new(app.store(), folder_sink(site.path()), config.clone())
        .with_data_budget(std::time::Duration::ZERO);
    let now = chrono::Utc::now();
    publisher.publish(now).await.expect("first publication");

    // A correction in the Finistère, a new day in the Morbihan.
    for body in [
        declare("29019", "2020-04-01", [5, 0, 0, 0, 0], Some(1)),
        declare("56260", "2020-04-02", [0, 2, 0, 0, 0], None),
    ] {
        let answer = app
            .post_json("/api/v1/reports", Some(&prefecture), &body, &[])
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    let patched = publisher
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("two reports are new");
    let mut written = patched.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            "communes/29019.html",
            "communes/56260.html",
            "departements/29.html",
            "departements/56.html",
            // One département's data files (the budget is zero), not the
            // whole-scope files: the Morbihan's still wait.
            "donnees/departements/29/deces.csv",
            "donnees/departements/29/deces.csv.gz",
            "donnees/departements/29/deces.json",
            // A new day: every setting's page shows it.
            "index.html",
            "lieux/autre.html",
            "lieux/domicile.html",
            "lieux/ehpad.html",
            "lieux/esms.html",
            "lieux/hopital.html",
            "manifest.json",
        ]
    );
    assert!(publisher.pending().await, "the Morbihan's data files wait");
    let page = std::fs::read_to_string(site.path().join("site/communes/56260.html")).expect("page");
    assert!(
        page.contains("au 02/04/2020"),
        "the new day is on its commune's page"
    );

    let caught_up = publisher
        .publish_if_changed(now)
        .await
        .expect("publish")
        .expect("data files wait");
    let mut written = caught_up.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            "donnees/deces.csv",
            "donnees/deces.csv.gz",
            "donnees/departements/56/deces.csv",
            "donnees/departements/56/deces.csv.gz",
            "donnees/departements/56/deces.json",
            "manifest.json",
        ]
    );
    assert!(!publisher.pending().await);
    let methodology =
        std::fs::read_to_string(site.path().join("site/methodologie.html")).expect("methodology");
    assert!(
        methodology.contains("les fichiers de données de chaque département suivent"),
        "the methodology says data files may follow the pages"
    );
    assert!(publisher
        .publish_if_changed(now)
        .await
        .expect("nothing new")
        .is_none());

    // A run that does not come back at once (the scheduled function,
    // `decompte publish --changes`) writes every waiting data file before
    // it returns: two départements wait after its first publication.
    for body in [
        declare("29019", "2020-04-01", [6, 0, 0, 0, 0], Some(2)),
        declare("97411", "2020-04-02", [0, 0, 3, 0, 0], None),
    ] {
        let answer = app
            .post_json("/api/v1/reports", Some(&prefecture), &body, &[])
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    let settled = publisher
        .publish_settled(std::time::Duration::from_secs(60))
        .await
        .expect("publish")
        .expect("two reports are new");
    for file in [
        "communes/29019.html",
        "communes/97411.html",
        "donnees/departements/29/deces.csv",
        "donnees/departements/974/deces.csv",
        "donnees/deces.csv",
    ] {
        assert!(
            settled.written.iter().any(|w| w == file),
            "{file} in {:?}",
            settled.written
        );
    }
    assert!(!publisher.pending().await);

    // The result is what a full publication from scratch writes.
    let fresh = tempfile::tempdir().expect("another folder");
    Publisher::new(app.store(), folder_sink(fresh.path()), config)
        .publish(now)
        .await
        .expect("from scratch");
    let (ours, theirs) = (site.path().join("site"), fresh.path().join("site"));
    let files = files_under(&theirs);
    assert_eq!(files_under(&ours), files);
    for path in files.iter().filter(|p| p.as_str() != "manifest.json") {
        assert!(
            std::fs::read(ours.join(path)).expect("patched")
                == std::fs::read(theirs.join(path)).expect("from scratch"),
            "{path} differs from a full publication's"
        );
    }
}

/// Under the rule of small counts, the site never shows one commune's
/// count: a day only one commune declared, with a death, waits for a
/// second one; then the département's figures of the day are published,
/// never a commune's, on the pages as in the open data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_rule_of_small_counts_a_day_one_commune_declared_waits_for_a_second() {
    let app = TestApp::start_with(|options| options.small_counts = Some(5)).await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let declare = |commune: &'static str, counts: [u32; 5]| {
        let app = &app;
        let prefecture = &prefecture;
        async move {
            let answer = app
                .post_json(
                    "/api/v1/reports",
                    Some(prefecture),
                    &report_body(commune, "2020-04-01", counts),
                    &[],
                )
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        }
    };
    // Vannes alone: 2 deaths at hospital, 1 at home.
    declare("56260", [2, 0, 0, 1, 0]).await;
    app.publish().await;
    let csv = app.site_file("donnees/deces.csv");
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "date,code_departement,nom_departement,hopital,ehpad,esms,domicile,autre,total,\
             communes_declarantes",
            "2020-04-01,56,Morbihan,,,,,,,1",
        ]
    );
    let overview = app.site_file("index.html");
    assert!(
        overview.contains("non publié : une seule commune a déclaré ce jour"),
        "{overview}"
    );
    assert!(overview.contains("<span class=\"n\">0</span> décès au total"));
    let vannes = app.site_file("communes/56260.html");
    assert!(vannes.contains("<td>déclaré</td>"), "{vannes}");
    assert!(!vannes.contains("décès au total"), "{vannes}");
    assert!(!vannes.contains("<svg"), "no chart of a commune");

    // Lorient declares none: the day is the département's, 3 deaths.
    declare("56121", [0, 0, 0, 0, 0]).await;
    app.publish().await;
    let csv = app.site_file("donnees/deces.csv");
    assert!(
        csv.ends_with("2020-04-01,56,Morbihan,2,0,0,1,0,3,2\n"),
        "{csv}"
    );
    let overview = app.site_file("index.html");
    assert!(overview.contains("<span class=\"n\">3</span> décès au total"));
    assert!(!overview.contains("non publié : une seule commune"));
    // No page names a commune's count: Vannes' and Lorient's read the same.
    let lorient = app.site_file("communes/56121.html");
    let strip = |page: &str| {
        page.replace("Vannes", "X")
            .replace("Lorient", "X")
            .replace("56260", "C")
            .replace("56121", "C")
    };
    let (vannes, lorient) = (
        strip(&app.site_file("communes/56260.html")),
        strip(&lorient),
    );
    let differing: Vec<(&str, &str)> = vannes
        .lines()
        .zip(lorient.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(
        differing.iter().all(|(a, _)| a.contains("habitants")),
        "{differing:#?}"
    );
    // Nor when a commune declared: comparing two publications would say
    // whose declaration moved the département's day.
    for page in ["communes/56260.html", "index.html"] {
        let text = app.site_file(page);
        assert!(!text.contains("Dernière déclaration"), "{page}: {text}");
    }
    let manifest = app.site_file("manifest.json");
    assert!(!manifest.contains("\"watermark\": \"20"), "{manifest}");
    let schema = app.site_file("donnees/schema.json");
    assert!(schema.contains("petits effectifs (k = 5)"), "{schema}");
}

/// Every file of the site folder, relative to it, `/`-separated.
fn files_under(root: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut files = std::collections::BTreeSet::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read the site folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under the root");
                files.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files
}

/// What the public site may hold: pages, their assets, the open data and the
/// manifest of the published files.
fn is_published_kind(path: &str) -> bool {
    let page = path.ends_with(".html")
        && (!path.contains('/')
            || ["communes/", "departements/", "lieux/"]
                .iter()
                .any(|folder| path.starts_with(folder)));
    page || path.starts_with("assets/")
        || path.starts_with("donnees/")
        || ["manifest.json", "robots.txt"].contains(&path)
}

/// `decompte serve` serves the site folder whole, and on AWS the distribution
/// serves the bucket: they hold the published pages, assets and open data,
/// nothing else. The publisher's state (the reports just published, with
/// their communes, days, versions and instants) is kept out of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_holds_only_what_is_published() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let answer = app
        .post_json(
            "/api/v1/reports",
            Some(&prefecture),
            &report_body("56260", "2020-04-01", [3, 1, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    app.publish().await;
    let mut correction = report_body("56260", "2020-04-01", [4, 1, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    let answer = app
        .post_json("/api/v1/reports", Some(&prefecture), &correction, &[])
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    app.app
        .publisher
        .publish_if_changed(chrono::Utc::now())
        .await
        .expect("publish")
        .expect("the correction is new");

    let on_disk = files_under(&app.app.site_dir);
    let unexpected: Vec<&String> = on_disk.iter().filter(|p| !is_published_kind(p)).collect();
    assert!(
        unexpected.is_empty(),
        "not published files in the site: {unexpected:?}"
    );
    // Every file is one the manifest names (and the manifest itself).
    let manifest: serde_json::Value =
        serde_json::from_str(&app.site_file("manifest.json")).expect("manifest");
    let mut named: std::collections::BTreeSet<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_owned))
        .collect();
    named.insert("manifest.json".into());
    assert_eq!(on_disk, named);

    // The state is kept, out of the site, and cannot be reached through it.
    let private = app
        .app
        .site_dir
        .parent()
        .expect("the data folder")
        .join("publisher")
        .join(decompte_publish::STATE);
    assert!(private.exists(), "{}", private.display());
    for path in [
        "/publication-state.json.gz",
        "/../publisher/publication-state.json.gz",
        "/%2e%2e/publisher/publication-state.json.gz",
    ] {
        let answer = app.get(path, None).await;
        assert_ne!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
    }
}

/// The site folder of `root` (`site/`), the publisher's files beside it.
fn folder_sink(root: &std::path::Path) -> std::sync::Arc<decompte_publish::FolderSink> {
    std::sync::Arc::new(decompte_publish::FolderSink::new(
        root.join("site"),
        root.join("publisher"),
    ))
}
