//! Two `decompte serve` processes on one PostgreSQL database behind HAProxy
//! behave as one app: a session, a CSRF token, an idempotency key work
//! whichever replica answers; one replica publishes, woken by the other's
//! writes; when it dies, the other takes over and the site stays online.

use std::time::{Duration, Instant};

use decompte_core::Role;
use decompte_store::prelude::*;
use decompte_tests::postgres_local::PostgresLocal;
use decompte_tests::replicas::{LoadBalancer, Replica, ReplicaSettings};
use decompte_tests::{csrf_of, http_client, issue_code, with_code, Browser};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Waits until `path` on `base` contains `needle`; returns how long it took.
async fn until_published(base: &str, path: &str, needle: &str, within: Duration) -> Duration {
    let client = http_client();
    let started = Instant::now();
    loop {
        let text = match client.get(format!("{base}{path}")).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                response.text().await.unwrap_or_default()
            }
            _ => String::new(),
        };
        if text.contains(needle) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{path} does not show `{needle}` after {within:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn api(
    request: reqwest::RequestBuilder,
    code: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = with_code(request, code);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn counts(hopital: u32) -> Value {
    json!({"hopital": hopital, "ehpad": 0, "esms": 0, "domicile": 1, "autre": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_a_load_balancer_are_one_app() {
    let database = PostgresLocal::shared().fresh_database().await;
    let store = decompte_store::PostgresStore::connect(&database)
        .await
        .expect("the store");
    let mairie = issue_code(&store, Role::Commune, Some("56260")).await;
    let prefecture = issue_code(&store, Role::Prefecture, None).await;
    let data = tempfile::tempdir().expect("a data folder");
    // The load balancer's port is known only once it listens, and the
    // replicas must know it first (their cookies' address): a port of its
    // own is taken, then given to both.
    let public_port = decompte_tests::process::free_port();
    let settings = ReplicaSettings {
        store: database.clone(),
        data_dir: data.path().to_owned(),
        public_url: format!("http://127.0.0.1:{public_port}"),
    };
    let first = Replica::start("a", &settings);
    assert!(
        first.log_text().contains("Site publié"),
        "the first replica publishes at its start: {}",
        first.log_text()
    );
    let second = Replica::start("b", &settings);
    assert!(
        second
            .log_text()
            .contains("Une autre instance de decompte publie le site"),
        "{}",
        second.log_text()
    );
    let balancer = LoadBalancer::start_on(public_port, &[first.port, second.port]);
    let base = balancer.url("");

    // A mairie, through the load balancer: the login on one replica, the
    // form on the other, its token accepted by the first.
    let mut browser = Browser::at(http_client(), base.clone());
    let login = browser.login(&mairie).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text);
    for _ in 0..4 {
        let form = browser.get("/saisie?date=2020-04-01").await;
        assert_eq!(form.status, StatusCode::OK, "a session on every replica");
    }
    let form = browser.get("/saisie?date=2020-04-01").await;
    let saved = browser
        .declare(&csrf_of(&form.text), "56260", "2020-04-01", [3, 1, 0, 2, 0])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    // On the public site within seconds, whichever replica took it.
    let took = until_published(
        &base,
        "/communes/56260.html",
        "<span class=\"n\">6</span>décès au total",
        Duration::from_secs(5),
    )
    .await;
    println!("a declaration through the load balancer is public after {took:?}");

    // The API with an idempotency key, sent twice (to both replicas): one version.
    let client = http_client();
    let body = json!({"commune": "56260", "date": "2020-04-02", "counts": counts(2)});
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(
            api(
                client.post(balancer.url("/api/v1/reports")).json(&body),
                &mairie,
                Some("replicas-1"),
            )
            .await,
        );
    }
    assert_eq!(answers[0].0, StatusCode::CREATED, "{}", answers[0].1);
    // A replay answers 200 (it created nothing) with the same report.
    assert_eq!(answers[1].0, StatusCode::OK, "{}", answers[1].1);
    assert_eq!(answers[0].1, answers[1].1, "the same answer, replayed");
    let history = store
        .history(
            &decompte_core::CommuneCode::parse("56260").expect("code"),
            chrono::NaiveDate::from_ymd_opt(2020, 4, 2).expect("day"),
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1, "one version for one key");

    // A republication asked of the replica that does not publish: the
    // other runs it.
    let (status, queued) = api(
        client
            .post(second.url("/api/v1/publications"))
            .json(&json!({"reason": "Vérification"})),
        &prefecture,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().expect("an id").to_owned();
    let started = Instant::now();
    loop {
        let (_, record) = api(
            client.get(second.url(&format!("/api/v1/publications/{id}"))),
            &prefecture,
            None,
        )
        .await;
        if record["status"] == "succeeded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the publication queued on the second replica did not run: {record}\n{}",
            first.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only one replica published.
    assert!(
        !second.log_text().contains("scheduled publication"),
        "the second replica published: {}",
        second.log_text()
    );

    // The publishing replica dies: the other takes the lease, the site
    // stays online and keeps being published.
    let killed = Instant::now();
    first.kill();
    let (status, corrected) = api(
        client.post(balancer.url("/api/v1/reports")).json(&json!({
            "commune": "56260",
            "date": "2020-04-01",
            "counts": {"hopital": 7, "ehpad": 1, "esms": 0, "domicile": 2, "autre": 0},
            "replaces_version": 1,
        })),
        &mairie,
        Some("replicas-2"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{corrected}");
    let took = until_published(
        &base,
        "/communes/56260.html",
        "<span class=\"n\">13</span>décès au total",
        Duration::from_secs(15),
    )
    .await;
    println!(
        "after the publishing replica was killed, a correction is public {:?} after the kill",
        killed.elapsed()
    );
    assert!(took < Duration::from_secs(15));
    assert!(
        second.log_text().contains("publisher's lease taken"),
        "{}",
        second.log_text()
    );
    let index = http_client()
        .get(balancer.url("/"))
        .send()
        .await
        .expect("the site");
    assert_eq!(index.status(), StatusCode::OK);

    // A replica stops on SIGTERM, in its own time.
    second.terminate();
}
