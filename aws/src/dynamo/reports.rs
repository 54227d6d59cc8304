//! Reports on DynamoDB: the current item and the history item of a version,
//! written in one `TransactWriteItems` under the version condition; reads by
//! key, by the `changes` index (per département, by `recorded_at`) and by the
//! `days` index.
use super::*;

#[async_trait]
impl Reports for DynamoStore {
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

    /// `BatchGetItem`, 100 keys a request, strongly consistent, following
    /// the keys DynamoDB leaves unprocessed.
    async fn current_of(&self, keys: &[(CommuneCode, NaiveDate)]) -> Result<Vec<Report>> {
        let mut reports = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk
                .iter()
                .map(|(commune, date)| {
                    Item::from([
                        ("PK".into(), s(commune_pk(commune))),
                        ("SK".into(), s(format!("REPORT#{date}"))),
                    ])
                })
                .collect();
            let mut attempt = 0u32;
            while !wanted.is_empty() {
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut wanted)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for capacity in output.consumed_capacity() {
                    self.meter_read(Some(capacity));
                }
                if let Some(items) = output.responses().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        reports.push(to_report(item)?);
                    }
                }
                if let Some(left) = output
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                {
                    wanted = left;
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        20 * u64::from(attempt.min(10)),
                    ))
                    .await;
                }
            }
        }
        Ok(reports)
    }

    async fn write_report(
        &self,
        _: Ledgered,
        report: &Report,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<()> {
        let mut items = Vec::with_capacity(3);
        items.extend(self.version_items(report)?);
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

    async fn write_reports(&self, _: Ledgered, reports: &[Report]) -> Result<()> {
        // A transaction holds 100 items: 50 reports (current and history).
        let mut written = 0;
        for batch in reports.chunks(50) {
            let mut items = Vec::with_capacity(batch.len() * 2);
            for report in batch {
                items.extend(self.version_items(report)?);
            }
            let error = match self.write_transaction(items).await {
                Ok(()) => {
                    written += batch.len();
                    continue;
                }
                Err((Some(codes), error)) => {
                    match codes.iter().position(|c| c == "ConditionalCheckFailed") {
                        Some(index) => {
                            let report = &batch[index / 2];
                            let current = self.current_report(&report.commune, report.date).await?;
                            StoreError::Conflict {
                                current: current.map(Box::new),
                            }
                        }
                        None => error,
                    }
                }
                Err((None, error)) => error,
            };
            return Err(if written == 0 {
                error
            } else {
                StoreError::Partial {
                    written,
                    error: Box::new(error),
                }
            });
        }
        Ok(())
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
                .all_current(&query.departements, None)
                .await?
                .into_iter()
                .filter(|r| query.matches(r))
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
                .all_current(&query.departements, None)
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
        let mut reports = self.all_current(&[], Some(since)).await?;
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
}

impl DynamoStore {
    /// The two puts of a new version: the current item, on the condition that
    /// the version it replaces is still current, and the history item.
    fn version_items(&self, report: &Report) -> Result<[TransactWriteItem; 2]> {
        let current = if report.version == 1 {
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
        };
        let history = put(
            &self.table,
            history_item(report),
            Some("attribute_not_exists(PK)"),
            vec![],
        )?;
        Ok([current, history])
    }
}
