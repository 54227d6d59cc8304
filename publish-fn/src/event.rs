//! The events the publish function answers, whatever runs it: the schedule's,
//! the table's stream (declarations written), and a direct request for a
//! publication.

use chrono::{DateTime, Utc};
use decompte_store::{PublicationRequest, PublicationStatus};
use serde_json::{json, Value};

use decompte_publish::Publisher;

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The schedule, or the table's stream: publish if a report changed or
    /// the day did.
    Scheduled,
    /// A person asked for a full republication.
    Requested(PublicationRequest),
}

impl Event {
    /// Reads an invocation's payload. `{"reason", "requested_by"}` is a
    /// request; `{"schedule": …}` (EventBridge Scheduler's input), an
    /// EventBridge "Scheduled Event" or a batch of the table's stream
    /// (`{"Records": [{"eventSource": "aws:dynamodb", …}]}`) is the schedule:
    /// what changed is read from the table, not from the records.
    pub fn parse(payload: Value) -> Result<Self, String> {
        if payload.get("requested_by").is_some() {
            return serde_json::from_value(payload)
                .map(Event::Requested)
                .map_err(|e| {
                    format!(
                        "invalid publication request: {e} (expected {{\"reason\", \
                    \"requested_by\"}})"
                    )
                });
        }
        let scheduler = payload.get("schedule").is_some();
        let eventbridge =
            payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
        let stream = payload
            .get("Records")
            .and_then(Value::as_array)
            .and_then(|records| records.first())
            .and_then(|record| record.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:dynamodb");
        if scheduler || eventbridge || stream {
            return Ok(Event::Scheduled);
        }
        Err(
            "unrecognised event: expected {\"reason\", \"requested_by\"}, {\"schedule\": …}, an \
            EventBridge Scheduled Event or DynamoDB stream records"
                .into(),
        )
    }
}

/// How long a scheduled invocation goes on publishing while data files wait.
const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(40);

/// Handles one invocation; an error is returned to the runtime, so that the
/// function's error metric and alarm see a failed publication.
pub async fn handle(
    publisher: &Publisher,
    payload: Value,
    now: DateTime<Utc>,
) -> Result<Value, String> {
    match Event::parse(payload)? {
        // Data files a national morning left waiting are written by this
        // invocation, not one more at each tick after the declarations stop.
        Event::Scheduled => match publisher.publish_settled(SETTLE_WITHIN).await {
            Ok(None) => Ok(json!({ "published": false })),
            Ok(Some(outcome)) => {
                tracing::info!(
                    files_changed = outcome.files_changed(),
                    invalidated = outcome.invalidated.len(),
                    "scheduled publication"
                );
                Ok(json!({
                    "published": true,
                    "files_changed": outcome.files_changed(),
                    "invalidated": outcome.invalidated,
                }))
            }
            Err(error) => {
                tracing::error!(%error, "scheduled publication failed");
                Err(format!("scheduled publication failed: {error}"))
            }
        },
        Event::Requested(request) => {
            let publication = match &request.publication_id {
                // The app already recorded it as queued.
                Some(id) => decompte_store::Publication::queued(
                    &request,
                    id.clone(),
                    request.requested_at.unwrap_or(now),
                ),
                None => publisher
                    .request(
                        &request.requested_by,
                        &request.reason,
                        decompte_store::Publication::new_id(),
                        now,
                    )
                    .await
                    .map_err(|e| format!("cannot record the publication: {e}"))?,
            };
            let publication = publisher.run_recorded(publication).await;
            let answer = serde_json::to_value(&publication).map_err(|e| e.to_string())?;
            if publication.status == PublicationStatus::Failed {
                return Err(format!(
                    "publication {} failed: {}",
                    publication.id,
                    publication.error.unwrap_or_default()
                ));
            }
            Ok(answer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart() {
        assert_eq!(
            Event::parse(json!({"schedule": "decompte"})),
            Ok(Event::Scheduled)
        );
        assert_eq!(
            Event::parse(json!({
                "version": "0",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "detail": {},
            })),
            Ok(Event::Scheduled)
        );
        let Ok(Event::Requested(request)) =
            Event::parse(json!({"reason": "correction", "requested_by": "PREF"}))
        else {
            panic!("a request");
        };
        assert_eq!(request.requested_by, "PREF");
        assert_eq!(request.publication_id, None);
        assert_eq!(
            Event::parse(json!({"Records": [{
                "eventID": "1",
                "eventName": "MODIFY",
                "eventSource": "aws:dynamodb",
                "dynamodb": {"Keys": {"PK": {"S": "COMMUNE#56260"}, "SK": {"S": "REPORT#2020-04-01"}}},
            }]})),
            Ok(Event::Scheduled)
        );
        assert!(Event::parse(json!({"Records": [{"eventSource": "aws:s3"}]})).is_err());
        assert!(Event::parse(json!({"requested_by": 3})).is_err());
        assert!(Event::parse(json!({})).is_err());
        assert!(Event::parse(json!("republier")).is_err());
    }
}
