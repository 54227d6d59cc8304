//! The DynamoDB backend: one table, `PK`/`SK` strings, a `ttl` attribute, two
//! global secondary indexes. Works against AWS, DynamoDB Local and any
//! DynamoDB-compatible endpoint.
//!
//! Items (see ARCHITECTURE.md for the reasons):
//!
//! | item | PK | SK | indexes |
//! | --- | --- | --- | --- |
//! | current report | `COMMUNE#56001` | `REPORT#2020-04-01` | `changes`: `G1PK`=`CURRENT#56`, `G1SK`=`recorded_at#commune#date`; `days`: `G2PK`=`DAY#2020-04-01`, `G2SK`=`56001` |
//! | report version | `COMMUNE#56001` | `HISTORY#2020-04-01#000002` | |
//! | idempotency record | `IDEMPOTENCY#key` | `IDEMPOTENCY` | ttl |
//! | credential | `CREDENTIAL` | `id` | |
//! | code hash → credential | `CODEHASH#hash` | `CODEHASH` | |
//! | session | `SESSION#hash` | `SESSION` | ttl |
//! | sessions of a credential | `CREDENTIAL_SESSIONS#id` | `hash` | ttl |
//! | login failures | `FAILURES#key` | `window` | ttl |
//! | publication | `PUBLICATION#id` | `PUBLICATION` | |
//! | publication list | `PUBLICATIONS` | `requested_at#id` | |
//! | reference series | `REFERENCE#56` | `SPF` | |
//! | mairie contacts of a prefecture | `REFERENCE#56` | `CONTACTS` | |
//! | reminder of a day | `REMINDERS#56#2020-04-01` | `56260` | |
//!
//! A new version is written with the current item and the idempotency record in
//! one `TransactWriteItems` under a condition on the current version.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnConsumedCapacity,
    ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use decompte_core::{CommuneCode, Counts, Report, Role};

use decompte_config::TableAddress;
use decompte_store::{
    Access, ContactOverrides, Credential, IdempotencyRecord, Ledgered, Publication,
    PublicationStatus, Publications, ReferenceSeries, References, Reminder, Reminders, ReportQuery,
    Reports, Result, SecondFactor, Session, Store, StoreError,
};

mod access;
mod items;
mod publications;
mod reports;
mod schema;

use items::*;

type Item = HashMap<String, AttributeValue>;

/// Capacity units consumed, as DynamoDB reports them (`ReturnConsumedCapacity`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub read_units: f64,
    pub write_units: f64,
}

/// The DynamoDB store. Cheap to clone; clones share their capacity meter.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Départements whose reports this deployment reads across communes.
    departements: Vec<String>,
    meter: std::sync::Arc<std::sync::Mutex<Capacity>>,
    /// Items per query page; DynamoDB's own 1 MB pages if absent.
    page_size: Option<i32>,
}

const CHANGES_INDEX: &str = "changes";
const DAYS_INDEX: &str = "days";
/// Attempts of a transaction that DynamoDB cancels for a concurrent one.
const TRANSACTION_ATTEMPTS: u32 = 8;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn ts(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn epoch(instant: DateTime<Utc>) -> AttributeValue {
    n(instant.timestamp())
}

fn unavailable<E: std::fmt::Debug + ProvideErrorMetadata>(error: SdkError<E>) -> StoreError {
    let detail = match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("")
        ),
        None => format!("{error:?}"),
    };
    StoreError::Unavailable(detail)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("DynamoDB item without a valid `{what}`"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(name))
}

fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(name))
}

fn get_ts(item: &Item, name: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(get_s(item, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt(name))
}

fn get_opt_ts(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    match get_opt_s(item, name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| corrupt(name)),
    }
}

fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem> {
    let mut builder = Put::builder().table_name(table).set_item(Some(item));
    if let Some(condition) = condition {
        builder = builder.condition_expression(condition);
    }
    for (name, value) in values {
        builder = builder.expression_attribute_values(name, value);
    }
    let put = builder
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Why DynamoDB cancelled a transaction, item by item.
fn cancellation_codes<E: ProvideErrorMetadata + std::fmt::Debug>(
    error: &SdkError<E>,
    reasons: impl Fn(&E) -> Option<Vec<String>>,
) -> Option<Vec<String>> {
    error.as_service_error().and_then(reasons)
}

impl DynamoStore {
    /// Connects with explicit timeouts and retries (throttling is retried with
    /// backoff by the SDK's standard retry policy).
    pub async fn connect(config: &TableAddress, departements: Vec<String>) -> Self {
        let tuning = crate::sdk::Tuning::within_a_request();
        let shared = crate::sdk::load(&config.endpoint, Some(tuning)).await;
        Self {
            client: Client::new(&shared),
            table: config.table.clone(),
            departements,
            meter: std::sync::Arc::default(),
            page_size: None,
        }
    }

    /// Asks for pages of at most `items` items, so that tests cross many pages
    /// with few reports.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items.max(1));
        self
    }

    /// Capacity consumed by this store (and its clones) so far.
    pub fn consumed(&self) -> Capacity {
        self.meter.lock().map(|m| *m).unwrap_or_default()
    }

    fn meter_read(&self, capacity: Option<&ConsumedCapacity>) {
        let units = capacity.and_then(ConsumedCapacity::capacity_units);
        if let (Some(units), Ok(mut meter)) = (units, self.meter.lock()) {
            meter.read_units += units;
        }
    }

    fn meter_write<'a>(&self, capacities: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let units: f64 = capacities
            .into_iter()
            .filter_map(ConsumedCapacity::capacity_units)
            .sum();
        if let Ok(mut meter) = self.meter.lock() {
            meter.write_units += units;
        }
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.meter_read(output.consumed_capacity());
        Ok(output.item)
    }

    /// Sets an instant attribute of a credential if `condition` holds; returns whether it did.
    async fn stamp_credential(
        &self,
        id: &str,
        attribute: &str,
        at: DateTime<Utc>,
        condition: &str,
    ) -> Result<bool> {
        self.update_credential(
            id,
            "SET #attribute = :at",
            condition,
            vec![("#attribute", attribute)],
            vec![(":at", s(ts(at)))],
        )
        .await
    }

    /// Updates a credential if `condition` holds; returns whether it did.
    async fn update_credential(
        &self,
        id: &str,
        update: &str,
        condition: &str,
        names: Vec<(&str, &str)>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s("CREDENTIAL"))
            .key("SK", s(id))
            .update_expression(update)
            .condition_expression(condition);
        for (name, attribute) in names {
            request = request.expression_attribute_names(name, attribute);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Runs a query to its end, page after page.
    async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            if let Some(index) = index {
                request = request.index_name(index);
            } else {
                request = request.consistent_read(true);
            }
            let wanted = limit
                .map(|l| i32::try_from(l.saturating_sub(items.len()).max(1)).unwrap_or(i32::MAX));
            if let Some(page) = match (wanted, self.page_size) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            } {
                request = request.limit(page);
            }
            for (name, value) in &values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            let output = request
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable)?;
            self.meter_read(output.consumed_capacity());
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && limit.is_none_or(|l| items.len() < l) => {
                    start = Some(key)
                }
                _ => return Ok(items),
            }
        }
    }

    /// Every current report of the deployment's départements.
    /// The current reports of `departements` (all of the deployment's if
    /// empty), recorded after `since` if given: one query of the `changes`
    /// index per département.
    async fn all_current(
        &self,
        departements: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Report>> {
        let mut reports = Vec::new();
        let departements = if departements.is_empty() {
            &self.departements
        } else {
            departements
        };
        for departement in departements {
            let mut values = vec![(":p", s(format!("CURRENT#{departement}")))];
            let condition = match since {
                Some(since) => {
                    // Sort keys start with the instant; "~" sorts after any "#…" suffix.
                    values.push((":s", s(format!("{}#~", ts(since)))));
                    "G1PK = :p AND G1SK > :s"
                }
                None => "G1PK = :p",
            };
            for item in self
                .query_all(Some(CHANGES_INDEX), condition, values, true, None)
                .await?
            {
                reports.push(to_report(&item)?);
            }
        }
        Ok(reports)
    }

    async fn write_transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> std::result::Result<(), (Option<Vec<String>>, StoreError)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let error = match result {
                Ok(output) => {
                    self.meter_write(output.consumed_capacity());
                    return Ok(());
                }
                Err(error) => error,
            };
            use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
            let codes = cancellation_codes(&error, |e| match e {
                TransactWriteItemsError::TransactionCanceledException(c) => Some(
                    c.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect(),
                ),
                _ => None,
            });
            let conflict_only = codes.as_ref().is_some_and(|codes| {
                codes.iter().any(|c| c == "TransactionConflict")
                    && !codes.iter().any(|c| c == "ConditionalCheckFailed")
            });
            if conflict_only && attempt < TRANSACTION_ATTEMPTS {
                // Another transaction held one of the items: try again shortly.
                let jitter = u64::from(rand_jitter()) % 40;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                continue;
            }
            return Err((codes, unavailable(error)));
        }
    }
}

/// A little jitter for retries, without a random number generator dependency.
fn rand_jitter() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

#[async_trait]
impl Store for DynamoStore {
    async fn purge_expired(&self, _now: DateTime<Utc>) -> Result<()> {
        // DynamoDB's TTL deletes expired items by itself; reads already ignore them.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_items_round_trip() {
        let report = Report {
            commune: CommuneCode::parse("2A004").expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, 1).expect("date"),
            counts: [("hopital".to_owned(), 2), ("ehpad".to_owned(), 0)]
                .into_iter()
                .collect(),
            version: 3,
            recorded_at: Utc::now(),
            recorded_by: "cred".into(),
            source: decompte_core::Source::Form,
            reason: Some("motif".into()),
            warnings: Vec::new(),
        };
        let mut expected = report.clone();
        expected.recorded_at = DateTime::parse_from_rfc3339(&ts(report.recorded_at))
            .expect("ts")
            .with_timezone(&Utc);
        assert_eq!(
            to_report(&current_item(&report)).expect("current"),
            expected
        );
        assert_eq!(
            to_report(&history_item(&report)).expect("history"),
            expected
        );
        assert_eq!(
            get_s(&current_item(&report), "G1PK").expect("G1PK"),
            "CURRENT#2A"
        );
    }
}
