//! Reaching an AWS service or a compatible one (DynamoDB Local, a sovereign
//! DynamoDB- or S3-compatible service): the `endpoint=` and `region=` of a
//! `scheme://NAME?…` address, and the SDK configuration built from them.

/// Where a service is, beyond its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// A compatible endpoint; AWS's own if absent.
    pub url: Option<String>,
    pub region: Option<String>,
    /// Explicit keys (tests against local servers); the standard AWS chain if absent.
    pub static_credentials: Option<(String, String)>,
}

/// Splits `scheme://LOCATION?endpoint=URL&region=REGION` into the location and
/// the endpoint; `shape` is what the error shows as the expected address.
pub fn parse_address<'a>(
    address: &'a str,
    scheme: &str,
    shape: &str,
) -> Result<(&'a str, Endpoint), String> {
    let rest = address
        .strip_prefix(scheme)
        .and_then(|rest| rest.strip_prefix("://"))
        .ok_or_else(|| format!("`{address}` is not a {shape} address"))?;
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    if location.is_empty() {
        return Err(format!("`{address}` names nothing: expected {shape}"));
    }
    Ok((location, Endpoint::from_query(address, query)?))
}

impl Endpoint {
    /// Reads the query string of `address` (`endpoint=URL&region=REGION`).
    pub fn from_query(address: &str, query: &str) -> Result<Self, String> {
        let mut endpoint = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", value)) => endpoint.url = Some(value.to_owned()),
                Some(("region", value)) => endpoint.region = Some(value.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown parameter `{pair}` in `{address}`: use endpoint= and region="
                    ))
                }
            }
        }
        Ok(endpoint)
    }

    /// Applies region, endpoint and credentials to an SDK configuration loader.
    pub async fn load(&self, mut loader: aws_config::ConfigLoader) -> aws_config::SdkConfig {
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        } else if self.url.is_some() {
            // A compatible endpoint still needs a region to sign requests.
            loader = loader.region(aws_config::Region::new("eu-west-3"));
        }
        if let Some(url) = &self.url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                key, secret, None, None, "decompte",
            ));
        }
        loader.load().await
    }
}
