//! What AWS Lambda's event source mapping does with the table's stream, for
//! DynamoDB Local and the Lambda emulator (neither has one): the table's
//! stream turned on as the template declares it (keys only), its shards
//! polled four times a second from the latest record, the records whose
//! sort key starts with `REPORT#` kept (the template's filter), gathered for
//! at most the batching window from the first one, then handed to the
//! function in one synchronous invocation, one batch after the other (the
//! function's reserved concurrency is 1).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use decompte_config::TableAddress;
use serde_json::{json, Value};

use crate::lambda_local::LambdaEmulator;

/// Polls between reads of a shard, as Lambda does (four times a second).
const POLL: Duration = Duration::from_millis(250);
/// The template's `BatchSize`.
const BATCH_SIZE: usize = 1000;

/// A running pump; stops when dropped.
pub struct StreamPump {
    task: tokio::task::JoinHandle<()>,
    invocations: Arc<AtomicUsize>,
}

impl StreamPump {
    /// Turns on the stream of `table` (keys only) and starts pumping its new
    /// records into `function` on `emulator`, gathering them for `window`.
    pub async fn start(
        table: &TableAddress,
        emulator: &LambdaEmulator,
        function: &str,
        window: Duration,
    ) -> Self {
        let config = decompte_aws::sdk::config(&table.endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let answer = dynamodb
            .update_table()
            .table_name(&table.table)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::KeysOnly)
                    .build()
                    .expect("a stream specification"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot turn on the stream of {}: {e:?}", table.table));
        let arn = answer
            .table_description()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table's stream")
            .to_owned();
        let streams = aws_sdk_dynamodbstreams::Client::new(&config);
        let mut iterators = Vec::new();
        let description = streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .expect("describe the stream");
        for shard in description
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let iterator = streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard.shard_id().unwrap_or_default())
                .shard_iterator_type(ShardIteratorType::Latest)
                .send()
                .await
                .expect("a shard iterator");
            iterators.extend(iterator.shard_iterator().map(str::to_owned));
        }
        let invocations = Arc::new(AtomicUsize::new(0));
        let invoke = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            emulator.url()
        );
        let counted = Arc::clone(&invocations);
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut gathered: Vec<Value> = Vec::new();
            let mut first: Option<Instant> = None;
            loop {
                let mut next = Vec::with_capacity(iterators.len());
                for iterator in iterators {
                    let Ok(read) = streams.get_records().shard_iterator(&iterator).send().await
                    else {
                        next.push(iterator);
                        continue;
                    };
                    for record in read.records() {
                        if let Some(event) = event(record) {
                            first.get_or_insert_with(Instant::now);
                            gathered.push(event);
                        }
                    }
                    next.extend(read.next_shard_iterator().map(str::to_owned));
                }
                iterators = next;
                let due = first.is_some_and(|f| f.elapsed() >= window);
                if due || gathered.len() >= BATCH_SIZE {
                    let records: Vec<Value> = std::mem::take(&mut gathered);
                    first = None;
                    let answer = http
                        .post(&invoke)
                        .json(&json!({ "Records": records }))
                        .send()
                        .await;
                    match answer {
                        Ok(answer) if answer.status().is_success() => {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(answer) => {
                            eprintln!("stream pump: the function answered {}", answer.status())
                        }
                        Err(error) => eprintln!("stream pump: cannot invoke the function: {error}"),
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        });
        Self { task, invocations }
    }

    /// Invocations of the function that succeeded so far.
    pub fn invocations(&self) -> usize {
        self.invocations.load(Ordering::SeqCst)
    }
}

impl Drop for StreamPump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The record as Lambda hands it to the function, if the template's filter
/// (`SK` beginning with `REPORT#`) keeps it.
fn event(record: &Record) -> Option<Value> {
    let keys = record.dynamodb()?.keys()?;
    let text = |name: &str| match keys.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    let (pk, sk) = (text("PK")?, text("SK")?);
    if !sk.starts_with("REPORT#") {
        return None;
    }
    Some(json!({
        "eventSource": "aws:dynamodb",
        "eventName": record.event_name().map(|e| e.as_str()),
        "dynamodb": {"Keys": {"PK": {"S": pk}, "SK": {"S": sk}}},
    }))
}
