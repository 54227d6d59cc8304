//! The publisher's lease: among the app's replicas on one store, the one that
//! publishes. Its holder learns from the lease when any replica wrote
//! reports or queued a publication, and when the lease is lost (the store
//! stopped answering the connection that holds it), so that it stops
//! publishing and tries to take the lease again.

use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// The right to publish, held while this value lives (dropping it gives the
/// lease back) and until [`PublisherLease::lost`] completes.
pub struct PublisherLease {
    changes: Arc<Notify>,
    lost: watch::Receiver<bool>,
    /// The task that holds the lease in the store, stopped with the lease.
    holder: Option<tokio::task::JoinHandle<()>>,
    /// A sole lease's sender, kept so that `lost` never completes.
    _sole: Option<watch::Sender<bool>>,
}

impl std::fmt::Debug for PublisherLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherLease")
            .field("shared", &self.holder.is_some())
            .field("lost", &*self.lost.borrow())
            .finish()
    }
}

/// What the task holding a lease uses to tell its holder.
#[derive(Clone)]
pub struct LeaseSignals {
    changes: Arc<Notify>,
    lost: Arc<watch::Sender<bool>>,
}

impl LeaseSignals {
    /// Another replica (or this one) committed reports or queued a publication.
    pub fn changed(&self) {
        self.changes.notify_one();
    }

    /// The lease is gone: its holder must stop publishing.
    pub fn lose(&self) {
        self.lost.send_replace(true);
    }
}

impl PublisherLease {
    /// The lease of a store that one process owns: never lost, and no
    /// change announced by others (this process's own writes wake its
    /// publisher directly).
    pub fn sole() -> Self {
        let (sender, lost) = watch::channel(false);
        Self {
            changes: Arc::new(Notify::new()),
            lost,
            holder: None,
            _sole: Some(sender),
        }
    }

    /// A lease of a store that several processes share, not held yet, and
    /// the signals the task that will hold it tells its holder with.
    pub fn shared() -> (Self, LeaseSignals) {
        let (sender, lost) = watch::channel(false);
        let changes = Arc::new(Notify::new());
        let signals = LeaseSignals {
            changes: Arc::clone(&changes),
            lost: Arc::new(sender),
        };
        let lease = Self {
            changes,
            lost,
            holder: None,
            _sole: None,
        };
        (lease, signals)
    }

    /// The lease, held by `task` (stopped when the lease is dropped).
    pub fn held_by(mut self, task: tokio::task::JoinHandle<()>) -> Self {
        self.holder = Some(task);
        self
    }

    /// Whether processes other than this one share the lease's store (and
    /// may publish once this one stops).
    pub fn is_shared(&self) -> bool {
        self._sole.is_none()
    }

    /// Completes when a replica announces a change.
    pub async fn changed(&self) {
        self.changes.notified().await;
    }

    /// Completes when the lease is lost.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the holder's task ended: the lease is lost too.
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Whether the lease is lost already (or its holder's task ended).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow() || self.lost.has_changed().is_err()
    }
}

impl Drop for PublisherLease {
    fn drop(&mut self) {
        if let Some(holder) = self.holder.take() {
            holder.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sole_lease_is_never_lost() {
        let lease = PublisherLease::sole();
        assert!(!lease.is_shared());
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), lease.lost()).await;
        assert!(waited.is_err(), "a sole lease was lost");
    }

    #[tokio::test]
    async fn a_shared_lease_hears_changes_and_its_loss() {
        let (tell, told) = tokio::sync::oneshot::channel();
        let (lease, signals) = PublisherLease::shared();
        let lease = lease.held_by(tokio::spawn(async move {
            signals.changed();
            let _ = told.await;
            signals.lose();
        }));
        assert!(lease.is_shared());
        lease.changed().await;
        assert!(!lease.is_lost());
        let _ = tell.send(());
        lease.lost().await;
        assert!(lease.is_lost());
    }
}
