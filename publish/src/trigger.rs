//! Starting a publication from the app: in this process locally
//! ([`InProcessTrigger`]), or by invoking the publish function on AWS
//! (`decompte-aws`'s `LambdaTrigger`). The app knows only the trait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use decompte_store::{Publication, StoreError};

use crate::Publisher;

/// Starts a publication of the public site.
#[async_trait]
pub trait PublishTrigger: Send + Sync {
    /// Records a queued publication, starts it, and returns the record at once.
    async fn trigger(&self, requested_by: &str, reason: &str) -> Result<Publication, StoreError>;

    /// A report was just written: publish it soon. Locally this wakes the
    /// publication loop, which waits a moment for more and publishes what
    /// changed; on AWS the schedule does it.
    fn report_written(&self) {}
}

/// Starts publications in this process, on a task of their own, and wakes
/// the publication loop when a report is written. A replica that does not
/// hold the publisher's lease only records the request: the holder runs it.
pub struct InProcessTrigger {
    publisher: Arc<Publisher>,
    written: Arc<tokio::sync::Notify>,
    leading: Arc<AtomicBool>,
}

impl InProcessTrigger {
    /// `written` is notified at each report written (see
    /// [`PublishTrigger::report_written`]); `leading` says whether this
    /// process holds the publisher's lease.
    pub fn new(
        publisher: Arc<Publisher>,
        written: Arc<tokio::sync::Notify>,
        leading: Arc<AtomicBool>,
    ) -> Self {
        Self {
            publisher,
            written,
            leading,
        }
    }
}

#[async_trait]
impl PublishTrigger for InProcessTrigger {
    async fn trigger(&self, requested_by: &str, reason: &str) -> Result<Publication, StoreError> {
        let publication = self
            .publisher
            .request(
                requested_by,
                reason,
                Publication::new_id(),
                self.publisher.now(),
            )
            .await?;
        if !self.leading.load(Ordering::SeqCst) {
            tracing::info!(id = %publication.id, "publication left to the replica that publishes");
            return Ok(publication);
        }
        let publisher = Arc::clone(&self.publisher);
        let queued = publication.clone();
        tokio::spawn(async move {
            publisher.run_recorded(queued).await;
        });
        Ok(publication)
    }

    fn report_written(&self) {
        self.written.notify_one();
    }
}
