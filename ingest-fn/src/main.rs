//! `ingest-fn`: the app as an AWS Lambda function, behind API Gateway (HTTP
//! API) or a function URL. Configured by the same `DECOMPTE_*` variables as
//! `decompte serve`, plus `DECOMPTE_PUBLISH_FUNCTION`.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use decompte_config::Settings;
use decompte_ingest::lambda::{LambdaTrigger, PublishFunction};
use decompte_ingest::{AppConfig, AppState};

#[derive(Debug, Parser)]
#[command(
    name = "ingest-fn",
    about = "The decompte app as an AWS Lambda function"
)]
struct Environment {
    #[command(flatten)]
    settings: Settings,

    /// The publish function, invoked asynchronously on republication:
    /// `lambda://NAME_OR_ARN?endpoint=URL&region=REGION`.
    #[arg(long, env = "DECOMPTE_PUBLISH_FUNCTION")]
    publish_function: String,
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let started = std::time::Instant::now();
    let environment: Environment = decompte_config::function_environment("ingest-fn")?;
    let settings = &environment.settings;
    let store =
        decompte_store::open_table(settings.store.as_deref(), settings.departements.clone())
            .await
            .map_err(anyhow::Error::msg)?;
    let function = PublishFunction::parse(&environment.publish_function)
        .map_err(anyhow::Error::msg)
        .context("DECOMPTE_PUBLISH_FUNCTION")?;
    let trigger = Arc::new(LambdaTrigger::connect(Arc::clone(&store), &function).await);
    let state = AppState::new(store, AppConfig::from_settings(settings)?, trigger);
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        publish_function = %function.name,
        "ingest function ready"
    );
    decompte_ingest::lambda::run(decompte_ingest::router(state)).await
}
