//! `publish-fn`: the publisher as an AWS Lambda function. It handles two
//! events: the schedule's (EventBridge Scheduler with the input
//! `{"schedule": "…"}`, or a classic EventBridge "Scheduled Event"), which
//! publishes only if a report changed or the day did; and a direct
//! invocation `{"reason", "requested_by"}` (the prefecture's "republier",
//! sent asynchronously by `ingest-fn`), which republishes everything and
//! records how it went. Configured by the same `DECOMPTE_*` variables as
//! `decompte serve`; reserved concurrency 1 keeps two publications apart.

use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use decompte_config::Settings;
use decompte_publish::{event, Publisher, SiteConfig};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "publish-fn",
    about = "The decompte publisher as an AWS Lambda function"
)]
struct Environment {
    #[command(flatten)]
    settings: Settings,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = std::time::Instant::now();
    let environment: Environment = decompte_config::function_environment("publish-fn")?;
    let settings = &environment.settings;
    let Some(site_address) = settings.site.as_deref().filter(|s| s.starts_with("s3://")) else {
        return Err(
            "DECOMPTE_SITE must name an s3:// bucket: a function has no lasting disk for the site"
                .into(),
        );
    };
    let store =
        decompte_store::open_table(settings.store.as_deref(), settings.departements.clone())
            .await
            .map_err(anyhow::Error::msg)?;
    let sink = decompte_publish::open_sink(Some(site_address), settings.data_dir.join("site"))
        .await
        .map_err(anyhow::Error::msg)?;
    let cdn = decompte_publish::open_cdn(settings.cdn.as_deref())
        .await
        .map_err(anyhow::Error::msg)
        .context("DECOMPTE_CDN")?;
    let publisher = Publisher::new(store, sink, SiteConfig::from_settings(settings)?).with_cdn(cdn);
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        "publish function ready"
    );
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |invocation: LambdaEvent<Value>| async move {
            event::handle(publisher, invocation.payload, Utc::now()).await
        },
    ))
    .await
}
