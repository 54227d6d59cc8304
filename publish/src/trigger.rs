//! Starting a publication from the app: in this process locally
//! ([`InProcessTrigger`]), or by invoking the publish function on AWS
//! (`decompte-aws`'s `LambdaTrigger`). The app knows only the trait.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use decompte_store::{Publication, StoreError};

use crate::Publisher;

/// Starts a publication of the public site.
#[async_trait]
pub trait PublishTrigger: Send + Sync {
    /// Records a queued publication, starts it, and returns the record at once.
    async fn trigger(&self, requested_by: &str, reason: &str) -> Result<Publication, StoreError>;
}

/// Starts publications in this process, on a task of their own.
pub struct InProcessTrigger {
    publisher: Arc<Publisher>,
}

impl InProcessTrigger {
    pub fn new(publisher: Arc<Publisher>) -> Self {
        Self { publisher }
    }
}

#[async_trait]
impl PublishTrigger for InProcessTrigger {
    async fn trigger(&self, requested_by: &str, reason: &str) -> Result<Publication, StoreError> {
        let publication = self
            .publisher
            .request(requested_by, reason, Publication::new_id(), Utc::now())
            .await?;
        let publisher = Arc::clone(&self.publisher);
        let queued = publication.clone();
        tokio::spawn(async move {
            publisher.run_recorded(queued).await;
        });
        Ok(publication)
    }
}
