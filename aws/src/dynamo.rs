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
    Credential, IdempotencyRecord, Publication, PublicationStatus, ReportQuery, Result, Session,
    Store, StoreError,
};

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

fn commune_pk(commune: &CommuneCode) -> String {
    format!("COMMUNE#{commune}")
}

fn history_sk(date: NaiveDate, version: u32) -> String {
    format!("HISTORY#{date}#{version:06}")
}

/// The attributes a report item carries, current or historical.
fn report_attributes(report: &Report) -> Item {
    let counts = report
        .counts
        .iter()
        .map(|(k, v)| (k.clone(), n(v)))
        .collect();
    let mut item = Item::from([
        ("commune".into(), s(report.commune.as_str())),
        ("date".into(), s(report.date.to_string())),
        ("version".into(), n(report.version)),
        ("counts".into(), AttributeValue::M(counts)),
        ("recorded_at".into(), s(ts(report.recorded_at))),
        ("recorded_by".into(), s(&report.recorded_by)),
        ("source".into(), s(report.source.as_str())),
    ]);
    if let Some(reason) = &report.reason {
        item.insert("reason".into(), s(reason));
    }
    item
}

fn current_item(report: &Report) -> Item {
    let mut item = report_attributes(report);
    item.insert("PK".into(), s(commune_pk(&report.commune)));
    item.insert("SK".into(), s(format!("REPORT#{}", report.date)));
    item.insert(
        "G1PK".into(),
        s(format!("CURRENT#{}", report.commune.departement())),
    );
    item.insert(
        "G1SK".into(),
        s(format!(
            "{}#{}#{}",
            ts(report.recorded_at),
            report.commune,
            report.date
        )),
    );
    item.insert("G2PK".into(), s(format!("DAY#{}", report.date)));
    item.insert("G2SK".into(), s(report.commune.as_str()));
    item
}

fn history_item(report: &Report) -> Item {
    let mut item = report_attributes(report);
    item.insert("PK".into(), s(commune_pk(&report.commune)));
    item.insert("SK".into(), s(history_sk(report.date, report.version)));
    item
}

fn to_report(item: &Item) -> Result<Report> {
    let counts: Counts = item
        .get("counts")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| corrupt("counts"))?
        .iter()
        .map(|(k, v)| {
            v.as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .map(|n| (k.clone(), n))
                .ok_or_else(|| corrupt("counts"))
        })
        .collect::<Result<_>>()?;
    Ok(Report {
        commune: CommuneCode::parse(get_s(item, "commune")?).map_err(|_| corrupt("commune"))?,
        date: NaiveDate::parse_from_str(get_s(item, "date")?, "%Y-%m-%d")
            .map_err(|_| corrupt("date"))?,
        counts,
        version: get_n(item, "version")?,
        recorded_at: get_ts(item, "recorded_at")?,
        recorded_by: get_s(item, "recorded_by")?.to_owned(),
        source: get_s(item, "source")?
            .parse()
            .map_err(|_| corrupt("source"))?,
        reason: get_opt_s(item, "reason"),
    })
}

fn credential_item(credential: &Credential) -> Item {
    let mut item = Item::from([
        ("PK".into(), s("CREDENTIAL")),
        ("SK".into(), s(&credential.id)),
        ("id".into(), s(&credential.id)),
        ("role".into(), s(credential.role.as_str())),
        ("label".into(), s(&credential.label)),
        ("code_hash".into(), s(&credential.code_hash)),
        ("created_at".into(), s(ts(credential.created_at))),
    ]);
    if let Some(commune) = &credential.commune {
        item.insert("commune".into(), s(commune.as_str()));
    }
    if let Some(at) = credential.last_used_at {
        item.insert("last_used_at".into(), s(ts(at)));
    }
    if let Some(at) = credential.revoked_at {
        item.insert("revoked_at".into(), s(ts(at)));
    }
    item
}

fn to_credential(item: &Item) -> Result<Credential> {
    Ok(Credential {
        id: get_s(item, "id")?.to_owned(),
        role: get_s(item, "role")?
            .parse::<Role>()
            .map_err(|_| corrupt("role"))?,
        commune: get_opt_s(item, "commune")
            .map(|c| CommuneCode::parse(&c))
            .transpose()
            .map_err(|_| corrupt("commune"))?,
        label: get_s(item, "label")?.to_owned(),
        code_hash: get_s(item, "code_hash")?.to_owned(),
        created_at: get_ts(item, "created_at")?,
        last_used_at: get_opt_ts(item, "last_used_at")?,
        revoked_at: get_opt_ts(item, "revoked_at")?,
    })
}

fn publication_attributes(p: &Publication) -> Item {
    let mut item = Item::from([
        ("id".into(), s(&p.id)),
        ("status".into(), s(p.status.as_str())),
        ("requested_by".into(), s(&p.requested_by)),
        ("reason".into(), s(&p.reason)),
        ("requested_at".into(), s(ts(p.requested_at))),
    ]);
    if let Some(at) = p.started_at {
        item.insert("started_at".into(), s(ts(at)));
    }
    if let Some(at) = p.finished_at {
        item.insert("finished_at".into(), s(ts(at)));
    }
    if let Some(files) = p.files_changed {
        item.insert("files_changed".into(), n(files));
    }
    if let Some(error) = &p.error {
        item.insert("error".into(), s(error));
    }
    item
}

fn to_publication(item: &Item) -> Result<Publication> {
    Ok(Publication {
        id: get_s(item, "id")?.to_owned(),
        status: PublicationStatus::parse(get_s(item, "status")?)
            .ok_or_else(|| corrupt("status"))?,
        requested_by: get_s(item, "requested_by")?.to_owned(),
        reason: get_s(item, "reason")?.to_owned(),
        requested_at: get_ts(item, "requested_at")?,
        started_at: get_opt_ts(item, "started_at")?,
        finished_at: get_opt_ts(item, "finished_at")?,
        files_changed: item
            .get("files_changed")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()),
        error: get_opt_s(item, "error"),
    })
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
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(4))
                    // Below the Lambda function's timeout, so that a request always gets an answer.
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(4));
        let shared = crate::sdk::load(loader, &config.endpoint).await;
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

    /// Creates the table, its indexes and its TTL; does nothing if they exist.
    pub async fn init(&self) -> Result<bool> {
        let exists = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => true,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(error) => return Err(unavailable(error)),
        };
        if !exists {
            let key = |name: &str, kind: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
            };
            let attribute = |name: &str| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
            };
            let index = |name: &str,
                         pk: &str,
                         sk: &str,
                         projection: ProjectionType|
             -> Result<GlobalSecondaryIndex> {
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(
                        key(pk, KeyType::Hash).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )
                    .key_schema(
                        key(sk, KeyType::Range).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            };
            let mut request = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest);
            for name in ["PK", "SK", "G1PK", "G1SK", "G2PK", "G2SK"] {
                request = request.attribute_definitions(
                    attribute(name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
            }
            request = request
                .key_schema(
                    key("PK", KeyType::Hash).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .key_schema(
                    key("SK", KeyType::Range).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .global_secondary_indexes(index(
                    CHANGES_INDEX,
                    "G1PK",
                    "G1SK",
                    ProjectionType::All,
                )?)
                .global_secondary_indexes(index(
                    DAYS_INDEX,
                    "G2PK",
                    "G2SK",
                    ProjectionType::KeysOnly,
                )?);
            request.send().await.map_err(unavailable)?;
        }
        for _ in 0..120 {
            let table = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(unavailable)?;
            if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(unavailable)?;
        let enabled = ttl
            .time_to_live_description()
            .and_then(|d| d.attribute_name())
            .is_some_and(|name| name == "ttl");
        if !enabled {
            let specification = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(specification)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(!exists)
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
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s("CREDENTIAL"))
            .key("SK", s(id))
            .update_expression("SET #attribute = :at")
            .condition_expression(condition)
            .expression_attribute_names("#attribute", attribute)
            .expression_attribute_values(":at", s(ts(at)))
            .send()
            .await;
        match result {
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
    async fn all_current(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Report>> {
        let mut reports = Vec::new();
        for departement in &self.departements {
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
            let codes = cancellation_codes(&error, |e| {
                match e {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(
                    c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect(),
                ),
                _ => None,
            }
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
    async fn current_report(
        &self,
        commune: &CommuneCode,
        date: NaiveDate,
    ) -> Result<Option<Report>> {
        self.get(&commune_pk(commune), &format!("REPORT#{date}"))
            .await?
            .as_ref()
            .map(to_report)
            .transpose()
    }

    async fn write_report(
        &self,
        report: &Report,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<()> {
        let mut items = Vec::with_capacity(3);
        items.push(if report.version == 1 {
            put(
                &self.table,
                current_item(report),
                Some("attribute_not_exists(PK)"),
                vec![],
            )?
        } else {
            put(
                &self.table,
                current_item(report),
                Some("version = :previous"),
                vec![(":previous", n(report.version - 1))],
            )?
        });
        items.push(put(
            &self.table,
            history_item(report),
            Some("attribute_not_exists(PK)"),
            vec![],
        )?);
        if let Some(record) = idempotency {
            let item = Item::from([
                ("PK".into(), s(format!("IDEMPOTENCY#{}", record.key))),
                ("SK".into(), s("IDEMPOTENCY")),
                ("request_hash".into(), s(&record.request_hash)),
                ("status".into(), n(record.status)),
                ("body".into(), s(&record.body)),
                ("created_at".into(), s(ts(record.created_at))),
                ("expires_at".into(), s(ts(record.expires_at))),
                ("ttl".into(), epoch(record.expires_at)),
            ]);
            // An expired record may linger until DynamoDB's TTL removes it.
            items.push(put(
                &self.table,
                item,
                Some("attribute_not_exists(PK) OR expires_at <= :now"),
                vec![(":now", s(ts(record.created_at)))],
            )?);
        }
        match self.write_transaction(items).await {
            Ok(()) => Ok(()),
            Err((Some(codes), error)) => {
                if codes.first().map(String::as_str) == Some("ConditionalCheckFailed")
                    || codes.get(1).map(String::as_str) == Some("ConditionalCheckFailed")
                {
                    let current = self.current_report(&report.commune, report.date).await?;
                    Err(StoreError::Conflict {
                        current: current.map(Box::new),
                    })
                } else if codes.get(2).map(String::as_str) == Some("ConditionalCheckFailed") {
                    Err(StoreError::IdempotencyKeyTaken)
                } else if codes.iter().any(|c| c == "TransactionConflict") {
                    // Still contended after every attempt: someone else is writing this day.
                    let current = self.current_report(&report.commune, report.date).await?;
                    match current {
                        Some(current) if current.version >= report.version => {
                            Err(StoreError::Conflict {
                                current: Some(Box::new(current)),
                            })
                        }
                        _ => Err(error),
                    }
                } else {
                    Err(error)
                }
            }
            Err((None, error)) => Err(error),
        }
    }

    async fn current_reports(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let mut reports = match &query.commune {
            Some(commune) => {
                let from = query
                    .from
                    .map_or("REPORT#".to_owned(), |d| format!("REPORT#{d}"));
                let to = query
                    .to
                    .map_or("REPORT#~".to_owned(), |d| format!("REPORT#{d}"));
                let items = self
                    .query_all(
                        None,
                        "PK = :pk AND SK BETWEEN :from AND :to",
                        vec![
                            (":pk", s(commune_pk(commune))),
                            (":from", s(from)),
                            (":to", s(to)),
                        ],
                        true,
                        None,
                    )
                    .await?;
                items.iter().map(to_report).collect::<Result<Vec<_>>>()?
            }
            None => self
                .all_current(None)
                .await?
                .into_iter()
                .filter(|r| {
                    query.from.is_none_or(|f| r.date >= f) && query.to.is_none_or(|t| r.date <= t)
                })
                .collect(),
        };
        reports.sort_by(|a, b| (a.date, &a.commune).cmp(&(b.date, &b.commune)));
        Ok(reports)
    }

    async fn history(&self, commune: &CommuneCode, date: NaiveDate) -> Result<Vec<Report>> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :prefix)",
                vec![
                    (":pk", s(commune_pk(commune))),
                    (":prefix", s(format!("HISTORY#{date}#"))),
                ],
                true,
                None,
            )
            .await?;
        items.iter().map(to_report).collect()
    }

    async fn versions(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let communes: BTreeSet<CommuneCode> = match &query.commune {
            Some(commune) => BTreeSet::from([commune.clone()]),
            None => self
                .all_current(None)
                .await?
                .into_iter()
                .map(|r| r.commune)
                .collect(),
        };
        let from = query
            .from
            .map_or("HISTORY#".to_owned(), |d| format!("HISTORY#{d}#"));
        let to = query
            .to
            .map_or("HISTORY#~".to_owned(), |d| format!("HISTORY#{d}#~"));
        let mut versions = Vec::new();
        for commune in communes {
            let items = self
                .query_all(
                    None,
                    "PK = :pk AND SK BETWEEN :from AND :to",
                    vec![
                        (":pk", s(commune_pk(&commune))),
                        (":from", s(from.clone())),
                        (":to", s(to.clone())),
                    ],
                    true,
                    None,
                )
                .await?;
            for item in &items {
                versions.push(to_report(item)?);
            }
        }
        versions
            .sort_by(|a, b| (a.date, &a.commune, a.version).cmp(&(b.date, &b.commune, b.version)));
        Ok(versions)
    }

    async fn reported_communes(&self, date: NaiveDate) -> Result<BTreeSet<CommuneCode>> {
        let items = self
            .query_all(
                Some(DAYS_INDEX),
                "G2PK = :day",
                vec![(":day", s(format!("DAY#{date}")))],
                true,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| CommuneCode::parse(get_s(item, "G2SK")?).map_err(|_| corrupt("G2SK")))
            .collect()
    }

    async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<Report>> {
        let mut reports = self.all_current(Some(since)).await?;
        reports.retain(|r| r.recorded_at > since);
        reports.sort_by_key(|r| r.recorded_at);
        Ok(reports)
    }

    async fn idempotency_record(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        let Some(item) = self
            .get(&format!("IDEMPOTENCY#{key}"), "IDEMPOTENCY")
            .await?
        else {
            return Ok(None);
        };
        let record = IdempotencyRecord {
            key: key.to_owned(),
            request_hash: get_s(&item, "request_hash")?.to_owned(),
            status: get_n(&item, "status")?,
            body: get_s(&item, "body")?.to_owned(),
            created_at: get_ts(&item, "created_at")?,
            expires_at: get_ts(&item, "expires_at")?,
        };
        Ok((record.expires_at > now).then_some(record))
    }

    async fn insert_credential(&self, credential: &Credential) -> Result<()> {
        let lookup = Item::from([
            ("PK".into(), s(format!("CODEHASH#{}", credential.code_hash))),
            ("SK".into(), s("CODEHASH")),
            ("credential_id".into(), s(&credential.id)),
        ]);
        let items = vec![
            put(
                &self.table,
                credential_item(credential),
                Some("attribute_not_exists(PK)"),
                vec![],
            )?,
            put(
                &self.table,
                lookup,
                Some("attribute_not_exists(PK)"),
                vec![],
            )?,
        ];
        self.write_transaction(items).await.map_err(|(_, e)| e)
    }

    async fn credential_by_hash(&self, code_hash: &str) -> Result<Option<Credential>> {
        let Some(lookup) = self
            .get(&format!("CODEHASH#{code_hash}"), "CODEHASH")
            .await?
        else {
            return Ok(None);
        };
        self.credential(get_s(&lookup, "credential_id")?).await
    }

    async fn credential(&self, id: &str) -> Result<Option<Credential>> {
        self.get("CREDENTIAL", id)
            .await?
            .as_ref()
            .map(to_credential)
            .transpose()
    }

    async fn credentials(&self) -> Result<Vec<Credential>> {
        let items = self
            .query_all(None, "PK = :pk", vec![(":pk", s("CREDENTIAL"))], true, None)
            .await?;
        let mut credentials = items
            .iter()
            .map(to_credential)
            .collect::<Result<Vec<_>>>()?;
        credentials.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(credentials)
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let revoked = self
            .stamp_credential(
                id,
                "revoked_at",
                at,
                "attribute_exists(PK) AND attribute_not_exists(revoked_at)",
            )
            .await?;
        if revoked {
            self.delete_sessions_of(id).await?;
        }
        Ok(revoked)
    }

    async fn touch_credential(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.stamp_credential(id, "last_used_at", at, "attribute_exists(PK)")
            .await
            .map(drop)
    }

    async fn insert_session(&self, session: &Session) -> Result<()> {
        let item = Item::from([
            ("PK".into(), s(format!("SESSION#{}", session.id_hash))),
            ("SK".into(), s("SESSION")),
            ("credential_id".into(), s(&session.credential_id)),
            ("created_at".into(), s(ts(session.created_at))),
            ("expires_at".into(), s(ts(session.expires_at))),
            ("ttl".into(), epoch(session.expires_at)),
        ]);
        let index = Item::from([
            (
                "PK".into(),
                s(format!("CREDENTIAL_SESSIONS#{}", session.credential_id)),
            ),
            ("SK".into(), s(&session.id_hash)),
            ("ttl".into(), epoch(session.expires_at)),
        ]);
        let items = vec![
            put(&self.table, item, None, vec![])?,
            put(&self.table, index, None, vec![])?,
        ];
        self.write_transaction(items).await.map_err(|(_, e)| e)
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let Some(item) = self.get(&format!("SESSION#{id_hash}"), "SESSION").await? else {
            return Ok(None);
        };
        let session = Session {
            id_hash: id_hash.to_owned(),
            credential_id: get_s(&item, "credential_id")?.to_owned(),
            created_at: get_ts(&item, "created_at")?,
            expires_at: get_ts(&item, "expires_at")?,
        };
        Ok((session.expires_at > now).then_some(session))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(format!("SESSION#{id_hash}")))
            .key("SK", s("SESSION"))
            .send()
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn delete_sessions_of(&self, credential_id: &str) -> Result<()> {
        let pk = format!("CREDENTIAL_SESSIONS#{credential_id}");
        let items = self
            .query_all(None, "PK = :pk", vec![(":pk", s(&pk))], true, None)
            .await?;
        for item in items {
            let hash = get_s(&item, "SK")?.to_owned();
            self.delete_session(&hash).await?;
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("PK", s(&pk))
                .key("SK", s(&hash))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn add_failure(
        &self,
        key: &str,
        window: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("FAILURES#{key}")))
            .key("SK", s(ts(window)))
            .update_expression("ADD failures :one SET expires_at = :expires, #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", s(ts(expires_at)))
            .expression_attribute_values(":ttl", epoch(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .attributes
            .as_ref()
            .map_or(Err(corrupt("failures")), |item| get_n(item, "failures"))
    }

    async fn failures(&self, key: &str, window: DateTime<Utc>, now: DateTime<Utc>) -> Result<u32> {
        match self.get(&format!("FAILURES#{key}"), &ts(window)).await? {
            Some(item) if get_ts(&item, "expires_at")? > now => get_n(&item, "failures"),
            _ => Ok(0),
        }
    }

    async fn insert_publication(&self, publication: &Publication) -> Result<()> {
        self.update_publication(publication).await
    }

    async fn update_publication(&self, p: &Publication) -> Result<()> {
        let mut by_id = publication_attributes(p);
        by_id.insert("PK".into(), s(format!("PUBLICATION#{}", p.id)));
        by_id.insert("SK".into(), s("PUBLICATION"));
        let mut listed = publication_attributes(p);
        listed.insert("PK".into(), s("PUBLICATIONS"));
        listed.insert("SK".into(), s(format!("{}#{}", ts(p.requested_at), p.id)));
        let items = vec![
            put(&self.table, by_id, None, vec![])?,
            put(&self.table, listed, None, vec![])?,
        ];
        self.write_transaction(items).await.map_err(|(_, e)| e)
    }

    async fn publication(&self, id: &str) -> Result<Option<Publication>> {
        self.get(&format!("PUBLICATION#{id}"), "PUBLICATION")
            .await?
            .as_ref()
            .map(to_publication)
            .transpose()
    }

    async fn publications(&self, limit: usize) -> Result<Vec<Publication>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_all(
                None,
                "PK = :pk",
                vec![(":pk", s("PUBLICATIONS"))],
                false,
                Some(limit),
            )
            .await?;
        items.iter().take(limit).map(to_publication).collect()
    }

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
