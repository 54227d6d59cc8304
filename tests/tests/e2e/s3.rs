//! The site published to an S3 server (moto): only new or changed files are
//! uploaded, each with its content type and cache policy.

use std::sync::Arc;

use chrono::Utc;
use decompte_core::Role;
use decompte_publish::{Publisher, Sink};
use decompte_tests::s3_local::MotoServer;
use decompte_tests::{report_body, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_is_uploaded_to_s3_incrementally() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    for (commune, counts) in [("56260", [3, 1, 0, 0, 0]), ("56121", [0, 2, 0, 1, 0])] {
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
    let sink = Arc::new(MotoServer::shared().fresh_sink("site").await);
    let publisher = Publisher::new(
        app.store(),
        sink.clone(),
        app.app.publisher.config().clone(),
    );

    let first = publisher
        .publish(Utc::now())
        .await
        .expect("first publication");
    assert!(first.written.len() > 249);
    // One PUT per file, and one for the publisher's state (not a page of the site).
    assert_eq!(sink.puts(), first.written.len() + 1, "one PUT per file");
    // The state is kept under the prefix the distribution is denied, not in the site.
    assert!(sink
        .read_private(decompte_publish::STATE)
        .await
        .expect("read")
        .is_some());
    assert!(sink
        .read(decompte_publish::STATE)
        .await
        .expect("read")
        .is_none());
    let baseline = sink.puts();
    let index = String::from_utf8(
        sink.read("index.html")
            .await
            .expect("read")
            .expect("index.html"),
    )
    .expect("utf-8");
    assert!(
        index.contains("<span class=\"n\">7</span> décès au total"),
        "{index}"
    );
    let csv = String::from_utf8(
        sink.read("donnees/deces.csv")
            .await
            .expect("read")
            .expect("csv"),
    )
    .expect("utf-8");
    assert!(
        csv.contains("\n2020-04-01,56260,Vannes,3,1,0,0,0,4\n"),
        "{csv}"
    );
    for (path, content_type, cache) in [
        (
            "index.html",
            "text/html; charset=utf-8",
            "public, max-age=60",
        ),
        (
            "communes/56260.html",
            "text/html; charset=utf-8",
            "public, max-age=60",
        ),
        (
            "donnees/deces.csv",
            "text/csv; charset=utf-8",
            "public, max-age=60",
        ),
        (
            "donnees/deces.json",
            "application/json",
            "public, max-age=60",
        ),
        ("manifest.json", "application/json", "no-cache"),
    ] {
        assert_eq!(
            sink.metadata(path).await.expect("head"),
            Some((content_type.to_owned(), cache.to_owned())),
            "{path}"
        );
    }
    let stylesheet = first
        .written
        .iter()
        .find(|p| p.starts_with("assets/"))
        .expect("stylesheet");
    assert_eq!(
        sink.metadata(stylesheet)
            .await
            .expect("head")
            .map(|(_, cache)| cache),
        Some("public, max-age=31536000, immutable".to_owned())
    );

    // Nothing changed: nothing uploaded.
    let again = publisher
        .publish(Utc::now())
        .await
        .expect("second publication");
    assert_eq!(again.files_changed(), 0);
    assert_eq!(sink.puts(), baseline, "nothing changed, nothing uploaded");

    // One correction: only the files that show it.
    let mut correction = report_body("56260", "2020-04-01", [4, 1, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    assert_eq!(
        app.post_json("/api/v1/reports", Some(&prefecture), &correction, &[])
            .await
            .status,
        StatusCode::CREATED
    );
    let after = publisher
        .publish(Utc::now())
        .await
        .expect("third publication");
    assert_eq!(after.written.len(), 7, "{:?}", after.written);
    assert_eq!(
        sink.puts(),
        baseline + 7 + 1,
        "the files that show it, and the state"
    );
    let index = String::from_utf8(
        sink.read("index.html")
            .await
            .expect("read")
            .expect("index.html"),
    )
    .expect("utf-8");
    assert!(index.contains("<span class=\"n\">8</span> décès au total"));
}

/// With the site in object storage, `decompte serve` holds no site of its
/// own: its `/` leads to the login, as the Lambda function's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_publishing_to_object_storage_leads_its_root_to_the_login() {
    let folder = tempfile::tempdir().expect("folder");
    let mut settings = decompte_config::Options::for_data_dir(folder.path().to_owned());
    settings.site = "s3://decompte-site/site?endpoint=http://127.0.0.1:9&region=eu-west-3"
        .parse()
        .expect("an S3 address");
    let app = decompte::LocalApp::open(&settings).await.expect("the app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("address");
    tokio::spawn(decompte::serve_on(
        listener,
        app.router(),
        std::future::pending(),
    ));
    let answer = decompte_tests::http_client()
        .get(format!("http://{address}/"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/connexion")
    );
}
