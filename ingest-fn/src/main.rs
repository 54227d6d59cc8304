//! `ingest-fn`: the app as an AWS Lambda function, behind API Gateway (HTTP
//! API) or a function URL. Configured by the same `DECOMPTE_*` variables as
//! `decompte serve`, plus `DECOMPTE_PUBLISH_FUNCTION`. The store is DynamoDB:
//! a function has no lasting disk for SQLite, which it is built without.

mod lambda;

use std::sync::Arc;

use clap::Parser;
use decompte_app::{AppConfig, AppState};
use decompte_aws::LambdaTrigger;
use decompte_config::{FunctionAddress, Options};
use decompte_core::clock::{Clock, SystemClock};
use decompte_store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "ingest-fn",
    about = "The decompte app as an AWS Lambda function"
)]
struct Environment {
    #[command(flatten)]
    options: Options,

    /// The publish function, invoked asynchronously on republication:
    /// `lambda://NAME_OR_ARN?endpoint=URL&region=REGION`.
    #[arg(long, env = "DECOMPTE_PUBLISH_FUNCTION")]
    publish_function: FunctionAddress,

    /// The secret the app's CloudFront distribution sends in
    /// `X-Decompte-Edge`: with it, requests without it are refused and the
    /// client address comes from CloudFront (infra/template.yaml sets it).
    #[arg(long, env = "DECOMPTE_EDGE_SECRET", hide_env_values = true)]
    edge_secret: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let started = std::time::Instant::now();
    let environment: Environment = decompte_config::function_environment("ingest-fn")?;
    let options = &environment.options;
    let store: Arc<dyn Store> = Arc::new(decompte_aws::function_store(options).await?);
    let function = &environment.publish_function;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let trigger =
        Arc::new(LambdaTrigger::connect(Arc::clone(&store), function, Arc::clone(&clock)).await);
    let state = AppState::new(store, AppConfig::from_options(options)?, trigger).with_clock(clock);
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        publish_function = %function.name,
        behind_the_edge = environment.edge_secret.is_some(),
        "ingest function ready"
    );
    lambda::run(decompte_app::router(state), environment.edge_secret).await
}
