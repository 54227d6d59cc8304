//! API writes on loopback, in one run: one `decompte serve` on SQLite, one
//! on PostgreSQL, two on PostgreSQL behind HAProxy; then the freshness of a
//! declaration sent to the replica that does not publish (until its
//! commune's page shows it, through the load balancer). Prints writes per
//! second, p50 and p99 of the answers, and the freshness p50 and p95.
//!
//! Build the release binary first, then run the bench:
//! `cargo build --release -p decompte --features postgres,aws && cargo bench -p decompte-tests --bench replicas`
//! (`DECOMPTE_BENCH_SECONDS`, 10 by default: the length of each load).

use std::sync::Arc;
use std::time::{Duration, Instant};

use decompte_core::time::fr_date;
use decompte_core::Role;
use decompte_tests::postgres_local::PostgresLocal;
use decompte_tests::replicas::{LoadBalancer, Replica, ReplicaSettings};
use decompte_tests::{issue_code, with_code};

/// Concurrent writers, each a mairie declaring its commune day after day.
const WRITERS: usize = 32;

/// The first communes of the Morbihan, one per writer.
fn communes() -> Vec<String> {
    let scope = decompte_config::Options::for_data_dir(std::env::temp_dir())
        .scope()
        .expect("scope");
    scope
        .communes()
        .take(WRITERS)
        .map(|c| c.code.to_string())
        .collect()
}

async fn codes(store: &dyn decompte_store::Store, communes: &[String]) -> Vec<String> {
    let mut codes = Vec::new();
    for commune in communes {
        codes.push(issue_code(store, Role::Commune, Some(commune)).await);
    }
    codes
}

/// `WRITERS` tasks posting new days for `seconds`: (writes, p50, p99).
async fn load(
    base: &str,
    communes: &[String],
    codes: &[String],
    seconds: u64,
) -> (usize, Duration, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(WRITERS)
        .build()
        .expect("client");
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (commune, code) in communes.iter().zip(codes) {
        let (client, base, commune, code) = (
            client.clone(),
            base.to_owned(),
            commune.clone(),
            code.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let first = chrono::NaiveDate::from_ymd_opt(2020, 3, 1).expect("day");
            let mut latencies = Vec::new();
            let mut day = 0;
            while Instant::now() < until {
                let date = first + chrono::Duration::days(day);
                day += 1;
                let body = serde_json::json!({
                    "commune": commune, "date": date.to_string(),
                    "counts": {"hopital": 1, "ehpad": 0, "esms": 0, "domicile": 0, "autre": 0},
                });
                let sent = Instant::now();
                let answer = with_code(client.post(format!("{base}/api/v1/reports")), &code)
                    .json(&body)
                    .send()
                    .await
                    .expect("an answer");
                assert_eq!(answer.status().as_u16(), 201, "{:?}", answer.text().await);
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (all.len(), at(0.5), at(0.99))
}

fn report(what: &str, (writes, p50, p99): (usize, Duration, Duration), seconds: u64) {
    println!(
        "{what:<40} {:>7.0} writes/s   p50 {:>6.1} ms   p99 {:>6.1} ms",
        writes as f64 / seconds as f64,
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("DECOMPTE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let communes = communes();
    println!("{WRITERS} writers, {seconds} s each, release build of decompte serve");

    // One replica on SQLite.
    let folder = tempfile::tempdir().expect("folder");
    let store =
        decompte_store::SqliteStore::open(&folder.path().join("decompte.sqlite")).expect("sqlite");
    let sqlite_codes = codes(&store, &communes).await;
    drop(store);
    let settings = ReplicaSettings {
        store: "sqlite".into(),
        data_dir: folder.path().to_owned(),
        public_url: "http://127.0.0.1".into(),
        env: Vec::new(),
    };
    let alone = Replica::start("sqlite", &settings);
    report(
        "one replica, SQLite",
        load(&alone.url(""), &communes, &sqlite_codes, seconds).await,
        seconds,
    );
    drop(alone);

    // One replica on PostgreSQL, then two behind HAProxy.
    let server = PostgresLocal::start();
    for replicas in [1, 2] {
        let database = server.fresh_database().await;
        let store = decompte_store::PostgresStore::connect(&database)
            .await
            .expect("postgres");
        let pg_codes = codes(&store, &communes).await;
        let (settings, _data, public_port) = ReplicaSettings::shared(&database);
        let running: Vec<Replica> = (0..replicas)
            .map(|n| Replica::start(&format!("pg{replicas}-{n}"), &settings))
            .collect();
        let ports: Vec<u16> = running.iter().map(|r| r.port).collect();
        let balancer = LoadBalancer::start_on(public_port, &ports);
        let what = if replicas == 1 {
            "one replica, PostgreSQL (via HAProxy)".to_owned()
        } else {
            format!("{replicas} replicas, PostgreSQL, HAProxy")
        };
        report(
            &what,
            load(&balancer.url(""), &communes, &pg_codes, seconds).await,
            seconds,
        );
        if replicas == 2 {
            freshness(&running[1], &balancer, &pg_codes[0], &communes[0]).await;
        }
        let _ = Arc::new(store);
    }
}

/// Declarations sent to `follower` (which does not publish) one after the
/// other: the time until their commune's page shows them on the site.
async fn freshness(follower: &Replica, balancer: &LoadBalancer, code: &str, commune: &str) {
    let client = reqwest::Client::new();
    let first = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("day");
    let mut delays = Vec::new();
    for day in 0..40 {
        let date = first + chrono::Duration::days(day);
        let body = serde_json::json!({
            "commune": commune, "date": date.to_string(),
            "counts": {"hopital": 1, "ehpad": 0, "esms": 0, "domicile": 0, "autre": 0},
        });
        let answer = with_code(client.post(follower.url("/api/v1/reports")), code)
            .json(&body)
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status().as_u16(), 201);
        let accepted = Instant::now();
        let shown = fr_date(date);
        loop {
            let page = client
                .get(balancer.url(&format!("/communes/{commune}.html")))
                .send()
                .await
                .expect("the site");
            if page.text().await.unwrap_or_default().contains(&shown) {
                break;
            }
            assert!(
                accepted.elapsed() < Duration::from_secs(30),
                "{date} never shown"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        delays.push(accepted.elapsed());
    }
    delays.sort();
    println!(
        "freshness across two replicas (sent to the one that does not publish): p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        delays[delays.len() / 2].as_secs_f64(),
        delays[delays.len() * 95 / 100].as_secs_f64(),
        delays[delays.len() - 1].as_secs_f64()
    );
}
