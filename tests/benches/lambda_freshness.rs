//! Freshness on AWS's shape: the delay from a declaration's 201, answered by
//! `ingest-fn` under the Lambda emulator on DynamoDB Local, to the change in
//! the site's `donnees/deces.csv` on S3 (moto), published by `publish-fn`
//! woken by the table's stream as the template wires it (keys only, records
//! of `REPORT#` items, a batching window of 10 s, one invocation at a time:
//! `StreamPump` plays the event source mapping). 100 declarations at one a
//! second, as a busy evening would send them; prints p50, p95, the maximum
//! and how many publications the stream woke. Run with
//! `cargo bench -p decompte-tests --bench lambda_freshness` (about three
//! minutes; build the functions first with ./scripts/lambda-build.sh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use decompte_core::Role;
use decompte_publish::Sink;
use decompte_store::Store;
use decompte_tests::dynamodb_local::DynamoLocal;
use decompte_tests::lambda_local::LambdaEmulator;
use decompte_tests::s3_local::MotoServer;
use decompte_tests::stream_pump::StreamPump;
use decompte_tests::{issue_code, report_body};
use serde_json::json;

const DECLARATIONS: usize = 100;
/// The template's `MaximumBatchingWindowInSeconds`.
const WINDOW: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() {
    let local = DynamoLocal::start(None, None);
    let table = "freshness";
    let store: Arc<dyn Store> = Arc::new(local.store(table, &["56"]).await);
    let moto = MotoServer::shared();
    let site = moto.fresh_sink("").await;
    let distribution = moto.create_distribution();
    let emulator = LambdaEmulator::start();
    let address = format!(
        "dynamodb://{table}?endpoint={}&region=eu-west-3",
        local.endpoint
    );
    let _publish = emulator.start_publish(&address, moto, site.bucket(), &distribution);
    let _ingest = emulator.start_ingest(&address);
    let first = emulator
        .invoke(
            "publish-fn",
            &json!({"reason": "bench", "requested_by": "bench"}),
        )
        .await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let pump = StreamPump::start(&local.config(table), &emulator, "publish-fn", WINDOW).await;
    let mayor = issue_code(store.as_ref(), Role::Commune, Some("56260")).await;

    // The declarations, one a second, on a task of their own.
    let url = emulator.function_url("ingest-fn", "/api/v1/reports");
    let declaring = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
        let mut accepted = Vec::with_capacity(DECLARATIONS);
        let mut pace = tokio::time::interval(Duration::from_secs(1));
        for day in 0..DECLARATIONS {
            pace.tick().await;
            let date = start + chrono::Duration::days(day as i64);
            let answer = http
                .post(&url)
                .bearer_auth(&mayor)
                .json(&report_body("56260", &date.to_string(), [1, 0, 0, 0, 0]))
                .send()
                .await
                .expect("ingest-fn answers");
            let status = answer.status();
            assert_eq!(
                status.as_u16(),
                201,
                "{}",
                answer.text().await.unwrap_or_default()
            );
            accepted.push(Instant::now());
        }
        accepted
    });

    // The public file, read again and again: the first time it shows n of
    // the commune's days is when the n-th declaration became public.
    let mut shown = Vec::with_capacity(DECLARATIONS);
    let watching = Instant::now();
    while shown.len() < DECLARATIONS {
        assert!(
            watching.elapsed() < Duration::from_secs(DECLARATIONS as u64 + 120),
            "only {} of {DECLARATIONS} declarations public after {:?}",
            shown.len(),
            watching.elapsed()
        );
        let csv = site
            .read("donnees/deces.csv")
            .await
            .expect("read the site")
            .unwrap_or_default();
        let rows = String::from_utf8_lossy(&csv).matches(",56260,").count();
        while shown.len() < rows.min(DECLARATIONS) {
            shown.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let accepted = declaring.await.expect("the declarations");
    let mut delays: Vec<Duration> = accepted
        .iter()
        .zip(&shown)
        .map(|(accepted, shown)| shown.saturating_duration_since(*accepted))
        .collect();
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "freshness under the Lambda emulator (stream, window {} s) over {} declarations at one a \
         second: p50 {:.1} s, p95 {:.1} s, max {:.1} s; {} publications woken by the stream",
        WINDOW.as_secs(),
        delays.len(),
        at(0.5).as_secs_f64(),
        at(0.95).as_secs_f64(),
        delays[delays.len() - 1].as_secs_f64(),
        pump.invocations()
    );
}
