//! What a publication costs on S3 and CloudFront (moto's server on loopback):
//! PUT requests and time for a first full publication of Morbihan × 365 days,
//! then after one correction, and the CloudFront paths invalidated. Run with
//! `cargo bench -p decompte-tests --bench s3_publication`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use decompte_aws::CloudFront;
use decompte_config::CdnAddress;
use decompte_publish::Publisher;
use decompte_store::SqliteStore;
use decompte_tests::s3_local::MotoServer;
use decompte_tests::{correct, load_year, morbihan};

#[tokio::main]
async fn main() {
    let (communes, config) = morbihan();
    let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    load_year(store.clone(), &communes, start, 1, |_, _| false).await;
    let moto = MotoServer::shared();
    let sink = Arc::new(moto.fresh_sink("").await);
    let distribution = moto.create_distribution();
    let CdnAddress::CloudFront(mut cdn) =
        format!("cloudfront://{distribution}?endpoint={}", moto.endpoint)
            .parse()
            .expect("address")
    else {
        panic!("a CloudFront address");
    };
    cdn.endpoint.static_credentials = Some(("local".into(), "local".into()));
    let publisher = Publisher::new(store.clone(), sink.clone(), config)
        .with_cdn(Some(Arc::new(CloudFront::connect(&cdn).await)));

    let timer = Instant::now();
    let first = publisher
        .publish(Utc::now())
        .await
        .expect("first publication");
    println!(
        "first full publication, {} reports: {} PUT requests ({} files), {:.1} s, invalidated {:?}",
        communes.len() * 365,
        sink.puts(),
        first.written.len(),
        timer.elapsed().as_secs_f64(),
        first.invalidated
    );

    correct(store.as_ref(), &communes[0], start + Duration::days(100), 5).await;
    let before = sink.puts();
    let timer = Instant::now();
    let after = publisher
        .publish_if_changed(Utc::now())
        .await
        .expect("publication")
        .expect("a change");
    println!(
        "after one correction: {} PUT requests ({:?}), {:.2} s; CloudFront paths invalidated: {} \
            {:?}",
        sink.puts() - before,
        after.written,
        timer.elapsed().as_secs_f64(),
        after.invalidated.len(),
        after.invalidated
    );
    assert_eq!(moto.invalidations(&distribution).len(), 2);
}
