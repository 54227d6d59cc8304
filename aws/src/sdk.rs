//! The one place that turns an [`Endpoint`] (the `endpoint=` and `region=` of
//! an address, and test keys) into the AWS SDK's configuration, for every
//! service: DynamoDB, S3, CloudFront, Lambda.

use decompte_config::Endpoint;

/// The SDK configuration for `endpoint`: its region (a compatible endpoint
/// still needs one to sign requests), its URL, and explicit keys if given;
/// otherwise AWS's own service and the standard credential chain.
pub async fn config(endpoint: &Endpoint) -> aws_config::SdkConfig {
    load(
        aws_config::defaults(aws_config::BehaviorVersion::latest()),
        endpoint,
    )
    .await
}

/// The same, from a loader that already carries other settings (timeouts, retries).
pub async fn load(
    mut loader: aws_config::ConfigLoader,
    endpoint: &Endpoint,
) -> aws_config::SdkConfig {
    // The one HTTPS client of every AWS call: hyper 1 and rustls on ring.
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    loader = loader.http_client(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https(),
    );
    if let Some(region) = &endpoint.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    } else if endpoint.url.is_some() {
        loader = loader.region(aws_config::Region::new("eu-west-3"));
    }
    if let Some(url) = &endpoint.url {
        loader = loader.endpoint_url(url);
    }
    if let Some((key, secret)) = &endpoint.static_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            key, secret, None, None, "decompte",
        ));
    }
    loader.load().await
}
