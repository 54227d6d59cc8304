//! `publish-fn`: the publisher as an AWS Lambda function. It handles two
//! events: the schedule's (EventBridge Scheduler with the input
//! `{"schedule": "…"}`, or a classic EventBridge "Scheduled Event"), which
//! publishes only if a report changed or the day did; and a direct
//! invocation `{"reason", "requested_by"}` (the prefecture's "republier",
//! sent asynchronously by `ingest-fn`), which republishes everything and
//! records how it went. Configured by the same `DECOMPTE_*` variables as
//! `decompte serve`; reserved concurrency 1 keeps two publications apart.

mod event;

use std::sync::Arc;

use clap::Parser;
use decompte_aws::CloudFront;
use decompte_config::{CdnAddress, Options};
use decompte_publish::{Cdn, Publisher, SiteConfig};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "publish-fn",
    about = "The decompte publisher as an AWS Lambda function"
)]
struct Environment {
    #[command(flatten)]
    options: Options,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = std::time::Instant::now();
    let environment: Environment = decompte_config::function_environment("publish-fn")?;
    let options = &environment.options;
    let store = Arc::new(decompte_aws::function_store(options).await?);
    let sink = Arc::new(decompte_aws::function_sink(options).await?);
    let cdn: Option<Arc<dyn Cdn>> = match &options.cdn {
        CdnAddress::None => None,
        CdnAddress::CloudFront(distribution) => {
            Some(Arc::new(CloudFront::connect(distribution).await))
        }
    };
    let publisher = Publisher::new(store, sink, SiteConfig::from_options(options)?).with_cdn(cdn);
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        "publish function ready"
    );
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |invocation: LambdaEvent<Value>| async move {
            event::handle(publisher, invocation.payload, publisher.now()).await
        },
    ))
    .await
}
