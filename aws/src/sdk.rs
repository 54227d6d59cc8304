//! The one place that turns an [`Endpoint`] (the `endpoint=` and `region=` of
//! an address, and test keys) into the AWS SDK's configuration, for every
//! service: DynamoDB, S3, CloudFront, Lambda.
//!
//! A function finds its region and credentials in its environment (the
//! variables Lambda sets), which is all this module reads by default: the
//! functions do not carry `aws-config`'s whole credential chain (profiles,
//! SSO, STS, instance metadata). The local binary, built with the
//! `operator-credentials` feature, loads that chain, so that an operator's
//! profile or SSO session works.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use decompte_config::Endpoint;

/// Timeouts and retries of a client that must answer within a request.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub timeouts: TimeoutConfig,
    pub retries: RetryConfig,
}

impl Tuning {
    /// Connection in 2 s, an attempt in 4 s, the whole call (four attempts at
    /// most, throttling retried with backoff) in 10 s: below a Lambda
    /// function's timeout, so that a request always gets an answer.
    pub fn within_a_request() -> Self {
        Self {
            timeouts: TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(4))
                .operation_timeout(Duration::from_secs(10))
                .build(),
            retries: RetryConfig::standard().with_max_attempts(4),
        }
    }
}

/// The SDK configuration for `endpoint`: its region (a compatible endpoint
/// still needs one to sign requests), its URL, and explicit keys if given;
/// otherwise AWS's own service and the environment's credentials.
pub async fn config(endpoint: &Endpoint) -> SdkConfig {
    load(endpoint, None).await
}

/// The same, with explicit timeouts and retries.
pub async fn load(endpoint: &Endpoint, tuning: Option<Tuning>) -> SdkConfig {
    let region = match (&endpoint.region, &endpoint.url) {
        (Some(region), _) => Some(region.clone()),
        (None, Some(_)) => Some("eu-west-3".to_owned()),
        (None, None) => None,
    };
    let static_credentials = endpoint.static_credentials.as_ref().map(|(key, secret)| {
        aws_credential_types::Credentials::new(key, secret, None, None, "decompte")
    });
    let config = shared(region, static_credentials, tuning).await;
    match &endpoint.url {
        Some(url) => config.into_builder().endpoint_url(url).build(),
        None => config,
    }
}

/// The one HTTPS client of every AWS call: hyper 1 and rustls on ring.
fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[cfg(feature = "operator-credentials")]
async fn shared(
    region: Option<String>,
    credentials: Option<aws_credential_types::Credentials>,
    tuning: Option<Tuning>,
) -> SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    if let Some(tuning) = tuning {
        loader = loader
            .timeout_config(tuning.timeouts)
            .retry_config(tuning.retries);
    }
    loader.load().await
}

#[cfg(not(feature = "operator-credentials"))]
async fn shared(
    region: Option<String>,
    credentials: Option<aws_credential_types::Credentials>,
    tuning: Option<Tuning>,
) -> SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
    use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
    use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
    let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = region
        .or_else(|| variable("AWS_REGION"))
        .or_else(|| variable("AWS_DEFAULT_REGION"));
    // Lambda's own: the execution role's keys, for the environment's life.
    let credentials = credentials.or_else(|| {
        Some(aws_credential_types::Credentials::new(
            variable("AWS_ACCESS_KEY_ID")?,
            variable("AWS_SECRET_ACCESS_KEY")?,
            variable("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ))
    });
    let tuning = tuning.unwrap_or_else(|| Tuning {
        // aws-config's default: a connection within 3.1 s, calls as long as they take.
        timeouts: TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(3100))
            .build(),
        retries: RetryConfig::standard(),
    });
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::new(SystemTimeSource::new()))
        .timeout_config(tuning.timeouts)
        .retry_config(tuning.retries);
    builder.set_region(region.map(Region::new));
    builder.set_credentials_provider(credentials.map(SharedCredentialsProvider::new));
    builder.build()
}
