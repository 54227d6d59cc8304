//! Telling the CDN in front of the site what a publication changed: one
//! CloudFront invalidation per publication, of the changed paths only, or of
//! everything (`/*`, billed as one path) when more than [`WILDCARD_ABOVE`]
//! paths changed.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_cloudfront::Client;
use decompte_store::aws::{parse_address, Endpoint};

use crate::Outcome;

/// Above this many changed paths, one wildcard replaces them. AWS bills each
/// invalidated path beyond 1,000 a month and counts `/*` as one: a correction
/// changes 7 paths, a new day or a full republication a few hundred.
pub const WILDCARD_ABOVE: usize = 15;

/// The paths to invalidate after `outcome`: every page and data file written
/// or deleted, and `/` with `index.html`. Fingerprinted assets are left out: a
/// changed asset has a new name, so no cache holds it.
pub fn invalidation_paths(outcome: &Outcome) -> Vec<String> {
    let mut paths: Vec<String> = outcome
        .written
        .iter()
        .chain(&outcome.deleted)
        .filter(|path| !path.starts_with("assets/"))
        .flat_map(|path| {
            let url = format!("/{path}");
            if path == "index.html" {
                vec!["/".to_owned(), url]
            } else {
                vec![url]
            }
        })
        .collect();
    paths.sort();
    paths.dedup();
    if paths.len() > WILDCARD_ABOVE {
        vec!["/*".to_owned()]
    } else {
        paths
    }
}

/// A CDN whose cached copies of the site can be invalidated.
#[async_trait]
pub trait Cdn: Send + Sync {
    /// Invalidates `paths` in one request; returns the invalidation's id.
    async fn invalidate(&self, paths: &[String], reference: &str) -> Result<String, String>;
}

/// Which distribution, and how to reach CloudFront.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudFrontConfig {
    pub distribution_id: String,
    pub endpoint: Endpoint,
}

impl CloudFrontConfig {
    /// Parses `cloudfront://DISTRIBUTION_ID?endpoint=URL&region=REGION`.
    pub fn parse(address: &str) -> Result<Self, String> {
        let (id, endpoint) = parse_address(
            address,
            "cloudfront",
            "cloudfront://DISTRIBUTION_ID?endpoint=URL&region=REGION",
        )?;
        if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{id}` is not a CloudFront distribution id (letters and digits, like E2QWRUHAPOMQZL)"
            ));
        }
        let mut endpoint = endpoint;
        // CloudFront is a global service, signed for us-east-1.
        endpoint.region.get_or_insert_with(|| "us-east-1".into());
        Ok(Self {
            distribution_id: id.to_owned(),
            endpoint,
        })
    }
}

/// Invalidations of one CloudFront distribution.
pub struct CloudFront {
    client: Client,
    distribution_id: String,
    sent: AtomicUsize,
}

impl CloudFront {
    pub async fn connect(config: &CloudFrontConfig) -> Self {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        let shared = config.endpoint.load(loader).await;
        Self {
            client: Client::new(&shared),
            distribution_id: config.distribution_id.clone(),
            sent: AtomicUsize::new(0),
        }
    }

    /// Invalidation requests sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Cdn for CloudFront {
    async fn invalidate(&self, paths: &[String], reference: &str) -> Result<String, String> {
        let quantity = i32::try_from(paths.len()).map_err(|e| e.to_string())?;
        let batch = InvalidationBatch::builder()
            .caller_reference(reference)
            .paths(
                Paths::builder()
                    .quantity(quantity)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .build()
            .map_err(|e| e.to_string())?;
        let answer = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| format!("{}", aws_sdk_cloudfront::error::DisplayErrorContext(e)))?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(answer
            .invalidation()
            .map(|i| i.id().to_owned())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(written: &[&str], deleted: &[&str]) -> Outcome {
        Outcome {
            written: written.iter().map(|p| (*p).to_owned()).collect(),
            deleted: deleted.iter().map(|p| (*p).to_owned()).collect(),
            ..Outcome::default()
        }
    }

    #[test]
    fn a_correction_invalidates_its_pages_and_the_root() {
        let paths = invalidation_paths(&outcome(
            &[
                "donnees/deces.csv",
                "communes/56260.html",
                "index.html",
                "manifest.json",
            ],
            &[],
        ));
        assert_eq!(
            paths,
            [
                "/",
                "/communes/56260.html",
                "/donnees/deces.csv",
                "/index.html",
                "/manifest.json"
            ]
        );
    }

    #[test]
    fn assets_are_never_invalidated_and_nothing_changed_means_nothing_sent() {
        assert!(invalidation_paths(&outcome(&["assets/style.0a1b2c.css"], &[])).is_empty());
        assert!(invalidation_paths(&outcome(&[], &[])).is_empty());
        assert_eq!(
            invalidation_paths(&outcome(&[], &["communes/56999.html"])),
            ["/communes/56999.html"]
        );
    }

    #[test]
    fn many_paths_become_one_wildcard() {
        let pages: Vec<String> = (0..=WILDCARD_ABOVE)
            .map(|i| format!("communes/56{i:03}.html"))
            .collect();
        let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
        assert_eq!(invalidation_paths(&outcome(&refs, &[])), ["/*"]);
        assert_eq!(
            invalidation_paths(&outcome(&refs[..WILDCARD_ABOVE], &[])).len(),
            WILDCARD_ABOVE
        );
    }

    #[test]
    fn addresses_parse_with_a_default_region() {
        let config = CloudFrontConfig::parse("cloudfront://E2QWRUHAPOMQZL").expect("parse");
        assert_eq!(config.distribution_id, "E2QWRUHAPOMQZL");
        assert_eq!(config.endpoint.region.as_deref(), Some("us-east-1"));
        let local =
            CloudFrontConfig::parse("cloudfront://E1?endpoint=http://127.0.0.1:5000").expect("x");
        assert_eq!(local.endpoint.url.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(CloudFrontConfig::parse("cloudfront://").is_err());
        assert!(CloudFrontConfig::parse("cloudfront://E1/x").is_err());
        assert!(CloudFrontConfig::parse("s3://E1").is_err());
    }
}
