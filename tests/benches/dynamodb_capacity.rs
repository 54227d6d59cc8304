//! Capacity and time on DynamoDB Local, as DynamoDB reports them
//! (`ReturnConsumedCapacity`): a new report, a correction, an API request, a
//! full publication of Morbihan × 365 days and an incremental one after one
//! correction. Run with `cargo bench -p decompte-tests --bench dynamodb_capacity`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use decompte_aws::{Capacity, DynamoStore};
use decompte_core::Role;
use decompte_publish::{MemorySink, Publisher};
use decompte_store::prelude::*;
use decompte_tests::dynamodb_local::DynamoLocal;
use decompte_tests::{morbihan, report_body, sample_report, TestApp};

fn delta(before: Capacity, after: Capacity) -> (f64, f64) {
    (
        after.read_units - before.read_units,
        after.write_units - before.write_units,
    )
}

#[tokio::main]
async fn main() {
    let local = DynamoLocal::start(None, None);
    let store: DynamoStore = local.store("capacity", &["56"]).await;
    let (communes, site_config) = morbihan();
    let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");

    // One write, store level.
    let before = store.consumed();
    store
        .write_report(
            decompte_store::Ledgered::for_fixtures(),
            &sample_report(&communes[0], start, 1, 1),
            None,
        )
        .await
        .expect("write");
    let (_, new_report) = delta(before, store.consumed());
    let before = store.consumed();
    store
        .write_report(
            decompte_store::Ledgered::for_fixtures(),
            &sample_report(&communes[0], start, 2, 2),
            None,
        )
        .await
        .expect("write");
    let (_, correction) = delta(before, store.consumed());
    println!("write units, new report: {new_report:.1}; correction: {correction:.1}");

    // One API request, everything included (authentication, idempotency, the write).
    let app = TestApp::start_on(Arc::new(store.clone())).await;
    let code = app.issue(Role::Commune, Some(communes[1].as_str())).await;
    let before = store.consumed();
    let answer = app
        .post_json(
            "/api/v1/reports",
            Some(&code),
            &report_body(communes[1].as_str(), "2020-03-01", [1, 0, 0, 0, 0]),
            &[("Idempotency-Key", "k")],
        )
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
    let (reads, writes) = delta(before, store.consumed());
    println!(
        "one API report with an Idempotency-Key: {reads:.1} read units, {writes:.1} write units"
    );

    // A year of reports from every commune, in the generator's batches
    // (ordered atomic batches of 50): the bulk load on DynamoDB Local.
    let loading = Instant::now();
    let store_arc: Arc<dyn Store> = Arc::new(store.clone());
    let before = store.consumed();
    let written = decompte_tests::national::generate(
        Arc::clone(&store_arc),
        &site_config.scope,
        &site_config.settings,
        // The first two communes' first day were written above.
        start + Duration::days(1),
        365,
        |_| {},
    )
    .await;
    let seconds = loading.elapsed().as_secs_f64();
    let (_, writes) = delta(before, store.consumed());
    println!(
        "bulk load: {written} reports in {seconds:.1} s, {:.0} reports/s, {writes:.0} write units \
            ({:.1} per report)",
        written as f64 / seconds,
        writes / written as f64
    );

    let sink = Arc::new(MemorySink::default());
    let publisher = Publisher::new(Arc::clone(&store_arc), sink.clone(), site_config.clone());
    let now = Utc::now();
    let before = store.consumed();
    let timer = Instant::now();
    let outcome = publisher.publish(now).await.expect("full publication");
    let (reads, _) = delta(before, store.consumed());
    println!(
        "full publication: {reads:.0} read units, {:.2} s, {} files written",
        timer.elapsed().as_secs_f64(),
        outcome.written.len()
    );

    let before = store.consumed();
    let timer = Instant::now();
    let unchanged = publisher.publish_if_changed(now).await.expect("check");
    let (reads, _) = delta(before, store.consumed());
    println!(
        "timer check with nothing new: {reads:.1} read units, {:.3} s, published: {}",
        timer.elapsed().as_secs_f64(),
        unchanged.is_some()
    );

    // What the timer's query returns, to compare with what DynamoDB Local charges for it.
    let since = Utc::now() - Duration::minutes(2);
    let before = store.consumed();
    let recent = store.changed_since(since).await.expect("changes");
    let (reads, _) = delta(before, store.consumed());
    println!(
        "changes since two minutes ago: {} reports returned, {reads:.1} read units charged",
        recent.len()
    );

    let current = store
        .current_report(&communes[5], start + Duration::days(100))
        .await
        .expect("read")
        .expect("exists");
    store
        .write_report(
            decompte_store::Ledgered::for_fixtures(),
            &sample_report(&communes[5], current.date, current.version + 1, 9),
            None,
        )
        .await
        .expect("correction");
    let before = store.consumed();
    let timer = Instant::now();
    let outcome = publisher
        .publish_if_changed(now)
        .await
        .expect("incremental")
        .expect("published");
    let (reads, _) = delta(before, store.consumed());
    println!(
        "incremental publication after one correction: {reads:.0} read units, {:.2} s, {} files \
            written",
        timer.elapsed().as_secs_f64(),
        outcome.written.len()
    );

    // A cold start: a new publisher (a new Lambda instance) resumes from the
    // state the last publication left in the sink.
    store
        .write_report(
            decompte_store::Ledgered::for_fixtures(),
            &sample_report(&communes[6], current.date, current.version + 1, 9),
            None,
        )
        .await
        .expect("correction");
    let cold = Publisher::new(Arc::clone(&store_arc), sink, site_config);
    let before = store.consumed();
    let timer = Instant::now();
    let outcome = cold
        .publish_if_changed(Utc::now())
        .await
        .expect("cold start")
        .expect("published");
    let (reads, writes) = delta(before, store.consumed());
    println!(
        "cold start after one correction (resumed from the state in the sink): {reads:.0} read \
            units, {writes:.1} write units, {:.2} s, {} files written",
        timer.elapsed().as_secs_f64(),
        outcome.written.len()
    );
    local.stop();
}
