//! The publish function on a year of Morbihan (249 communes × 365 days = 90,885
//! reports), as AWS runs it: the release binary built by
//! `scripts/lambda-build.sh`, under `cargo lambda watch`, reading DynamoDB
//! Local and writing to S3 and CloudFront on moto. Prints, for a requested full
//! publication and for the schedule's run after one correction: the time, the
//! files written (one PUT each), the CloudFront paths invalidated, and the
//! function's peak memory (VmHWM). Run with
//! `cargo bench -p decompte-tests --bench lambda_publication` (loading the
//! year takes about three minutes).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use decompte_store::Store;
use decompte_tests::dynamodb_local::DynamoLocal;
use decompte_tests::lambda_local::LambdaEmulator;
use decompte_tests::s3_local::MotoServer;
use decompte_tests::{correct, issue_code, load_year, morbihan};
use serde_json::json;

#[tokio::main]
async fn main() {
    let (communes, _) = morbihan();
    let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    let local = DynamoLocal::start(None, None);
    let store: Arc<dyn Store> = Arc::new(local.store("lambda", &["56"]).await);
    let loading = Instant::now();
    let loaded = load_year(Arc::clone(&store), &communes, start, 16, |_, _| false).await;
    println!(
        "loaded {loaded} reports in {:.0} s",
        loading.elapsed().as_secs_f64()
    );

    let moto = MotoServer::shared();
    let site = moto.fresh_sink("").await;
    let distribution = moto.create_distribution();
    let emulator = LambdaEmulator::start();
    let address = format!(
        "dynamodb://lambda?endpoint={}&region=eu-west-3",
        local.endpoint
    );
    let publish = emulator.start_publish(&address, moto, site.bucket(), &distribution);
    println!(
        "publish-fn ready {} ms after its start, peak memory {:.1} MiB",
        publish.start.as_millis(),
        mib(publish.process.peak_memory_kib())
    );

    let timer = Instant::now();
    let full = emulator
        .invoke(
            "publish-fn",
            &json!({"reason": "bench", "requested_by": "bench"}),
        )
        .await;
    println!(
        "requested full publication: {:.1} s, status {}, {} files written (one PUT each), peak \
            memory {:.1} MiB",
        timer.elapsed().as_secs_f64(),
        full["status"],
        full["files_changed"],
        mib(publish.process.peak_memory_kib())
    );

    // The biggest answer of the app: every current report, through the function URL.
    let ingest = emulator.start_ingest(&address);
    let code = issue_code(store.as_ref(), decompte_core::Role::Prefecture, None).await;
    let timer = Instant::now();
    let listing = reqwest::Client::new()
        .get(emulator.function_url("ingest-fn", "/api/v1/reports"))
        .bearer_auth(&code)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("the emulator answers");
    let status = listing.status();
    let gzipped = listing.bytes().await.expect("a body");
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut json)
        .expect("gzip");
    println!(
        "GET /api/v1/reports (every current report): {status}, {:.1} s, {:.1} MB of JSON sent as \
            {:.1} MB gzipped (a Lambda answer holds 6 MB), ingest-fn peak memory {:.1} MiB",
        timer.elapsed().as_secs_f64(),
        json.len() as f64 / 1e6,
        gzipped.len() as f64 / 1e6,
        mib(ingest.process.peak_memory_kib())
    );

    correct(store.as_ref(), &communes[0], start + Duration::days(100), 5).await;
    let timer = Instant::now();
    let scheduled = emulator
        .invoke("publish-fn", &json!({"schedule": "bench"}))
        .await;
    println!(
        "scheduled run after one correction: {:.2} s, {} files written, invalidated {}, peak \
            memory {:.1} MiB",
        timer.elapsed().as_secs_f64(),
        scheduled["files_changed"],
        scheduled["invalidated"],
        mib(publish.process.peak_memory_kib())
    );
}

fn mib(kib: Option<u64>) -> f64 {
    kib.unwrap_or(0) as f64 / 1024.0
}
