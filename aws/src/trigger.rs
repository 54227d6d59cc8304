//! Republication on AWS: the app records a queued publication, then invokes
//! the publish function asynchronously.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use decompte_config::FunctionAddress;
use decompte_core::clock::Clock;
use decompte_publish::PublishTrigger;
use decompte_store::{Publication, PublicationRequest, PublicationStatus, Store, StoreError};

/// Starts publications by invoking the publish function asynchronously
/// (invocation type `Event`): the prefecture gets its answer at once, and the
/// function records how the publication ends.
pub struct LambdaTrigger {
    store: Arc<dyn Store>,
    client: aws_sdk_lambda::Client,
    function: String,
    clock: Arc<dyn Clock>,
}

impl LambdaTrigger {
    /// Invokes `function`, recording publications at `clock`'s time (the app's).
    pub async fn connect(
        store: Arc<dyn Store>,
        function: &FunctionAddress,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let shared = crate::sdk::config(&function.endpoint).await;
        Self {
            store,
            client: aws_sdk_lambda::Client::new(&shared),
            function: function.name.clone(),
            clock,
        }
    }
}

#[async_trait]
impl PublishTrigger for LambdaTrigger {
    async fn trigger(&self, requested_by: &str, reason: &str) -> Result<Publication, StoreError> {
        let now = self.clock.now();
        let id = Publication::new_id();
        let request = PublicationRequest {
            reason: reason.into(),
            requested_by: requested_by.into(),
            publication_id: Some(id.clone()),
            requested_at: Some(now),
        };
        let mut publication = Publication::queued(&request, id, now);
        self.store.insert_publication(&publication).await?;
        let payload =
            serde_json::to_vec(&request).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let invoked = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await;
        if let Err(error) = invoked {
            let error = aws_sdk_lambda::error::DisplayErrorContext(error).to_string();
            tracing::error!(%error, function = %self.function, "could not invoke the publish \
                function");
            publication.status = PublicationStatus::Failed;
            publication.finished_at = Some(self.clock.now());
            publication.error = Some(format!(
                "la fonction de publication n’a pas pu être lancée : {error}"
            ));
            self.store.update_publication(&publication).await?;
        }
        Ok(publication)
    }
}
