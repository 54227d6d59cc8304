//! CloudFront as the site's [`Cdn`]: one invalidation per publication, of the
//! paths [`decompte_publish::cdn::invalidation_paths`] chose.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_cloudfront::Client;
use decompte_config::DistributionAddress;
use decompte_publish::cdn::{Cdn, CdnError};

/// Invalidations of one CloudFront distribution.
pub struct CloudFront {
    client: Client,
    distribution_id: String,
    sent: AtomicUsize,
}

impl CloudFront {
    pub async fn connect(config: &DistributionAddress) -> Self {
        let shared = crate::sdk::config(&config.endpoint).await;
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
    async fn invalidate(&self, paths: &[String], reference: &str) -> Result<String, CdnError> {
        let quantity = i32::try_from(paths.len()).map_err(|e| CdnError(e.to_string()))?;
        let batch = InvalidationBatch::builder()
            .caller_reference(reference)
            .paths(
                Paths::builder()
                    .quantity(quantity)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| CdnError(e.to_string()))?,
            )
            .build()
            .map_err(|e| CdnError(e.to_string()))?;
        let answer = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| CdnError(aws_sdk_cloudfront::error::DisplayErrorContext(e).to_string()))?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(answer
            .invalidation()
            .map(|i| i.id().to_owned())
            .unwrap_or_default())
    }
}
