//! What a publication costs on S3 and CloudFront (moto's server on loopback):
//! PUT requests and time for a first full publication of Morbihan × 365 days,
//! then after one correction, and the CloudFront paths invalidated. Run with
//! `cargo bench -p decompte-tests --bench s3_publication`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use decompte_publish::{CloudFront, CloudFrontConfig, Publisher, SiteConfig};
use decompte_store::{SqliteStore, Store};
use decompte_tests::s3_local::MotoServer;
use decompte_tests::sample_report;

#[tokio::main]
async fn main() {
    let settings = decompte::Settings::for_data_dir(std::env::temp_dir());
    let config = SiteConfig::from_settings(&settings).expect("config");
    let communes: Vec<_> = config.scope.communes().map(|c| c.code.clone()).collect();
    let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    for (index, commune) in communes.iter().enumerate() {
        for day in 0..365_i64 {
            let hopital =
                u32::try_from((index + usize::try_from(day).unwrap_or(0)) % 3).unwrap_or(0);
            let mut report = sample_report(commune, start + Duration::days(day), 1, hopital);
            report.recorded_at = (start + Duration::days(day))
                .and_hms_opt(18, 0, 0)
                .unwrap_or_default()
                .and_utc();
            store.write_report(&report, None).await.expect("load");
        }
    }
    let moto = MotoServer::shared();
    let sink = Arc::new(moto.fresh_sink("").await);
    let distribution = moto.create_distribution();
    let mut cdn = CloudFrontConfig::parse(&format!(
        "cloudfront://{distribution}?endpoint={}",
        moto.endpoint
    ))
    .expect("address");
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

    let mut corrected = sample_report(&communes[0], start + Duration::days(100), 2, 5);
    corrected.recorded_at = Utc::now();
    store
        .write_report(&corrected, None)
        .await
        .expect("correction");
    let before = sink.puts();
    let timer = Instant::now();
    let after = publisher
        .publish_if_changed(Utc::now())
        .await
        .expect("publication")
        .expect("a change");
    println!(
        "after one correction: {} PUT requests ({:?}), {:.2} s; CloudFront paths invalidated: {} {:?}",
        sink.puts() - before,
        after.written,
        timer.elapsed().as_secs_f64(),
        after.invalidated.len(),
        after.invalidated
    );
    assert_eq!(moto.invalidations(&distribution).len(), 2);
}
