//! Publication records on DynamoDB: one item per publication, and one in the
//! list of publications, newest last.
use super::*;

#[async_trait]
impl Publications for DynamoStore {
    async fn insert_publication(&self, publication: &Publication) -> Result<()> {
        self.update_publication(publication).await
    }

    async fn update_publication(&self, p: &Publication) -> Result<()> {
        self.write_publication(p, false).await.map(drop)
    }

    async fn claim_publication(&self, p: &Publication) -> Result<bool> {
        self.write_publication(p, true).await
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
}

/// A reference series is one item, `REFERENCE#56` / `SPF`, its days a JSON
/// object (800 days weigh about 20 KB, far under an item's 400 KB).
#[async_trait]
impl References for DynamoStore {
    async fn put_reference(&self, series: &ReferenceSeries) -> Result<()> {
        let days =
            serde_json::to_string(&series.days).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put_imported(
            &series.departement,
            ("SPF", "days", days),
            series.imported_at,
            &series.imported_by,
        )
        .await
    }

    async fn reference(&self, departement: &str) -> Result<Option<ReferenceSeries>> {
        let Some(item) = self.get(&format!("REFERENCE#{departement}"), "SPF").await? else {
            return Ok(None);
        };
        Ok(Some(ReferenceSeries {
            departement: get_s(&item, "departement")?.to_owned(),
            days: serde_json::from_str(get_s(&item, "days")?).map_err(|_| corrupt("days"))?,
            imported_at: get_ts(&item, "imported_at")?,
            imported_by: get_s(&item, "imported_by")?.to_owned(),
        }))
    }

    /// The contacts are the same partition's `CONTACTS` item, a JSON object
    /// (900 communes weigh about 70 KB).
    async fn put_contacts(&self, contacts: &ContactOverrides) -> Result<()> {
        let json = serde_json::to_string(&contacts.contacts)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put_imported(
            &contacts.departement,
            ("CONTACTS", "contacts", json),
            contacts.imported_at,
            &contacts.imported_by,
        )
        .await
    }

    async fn contacts(&self, departement: &str) -> Result<Option<ContactOverrides>> {
        let Some(item) = self
            .get(&format!("REFERENCE#{departement}"), "CONTACTS")
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(ContactOverrides {
            departement: get_s(&item, "departement")?.to_owned(),
            contacts: serde_json::from_str(get_s(&item, "contacts")?)
                .map_err(|_| corrupt("contacts"))?,
            imported_at: get_ts(&item, "imported_at")?,
            imported_by: get_s(&item, "imported_by")?.to_owned(),
        }))
    }
}

impl DynamoStore {
    /// What a prefecture imported for `departement`: the item
    /// `REFERENCE#<departement>` / `sort_key`, its JSON in `column`.
    async fn put_imported(
        &self,
        departement: &str,
        (sort_key, column, json): (&str, &str, String),
        imported_at: chrono::DateTime<chrono::Utc>,
        imported_by: &str,
    ) -> Result<()> {
        let item: Item = [
            ("PK", s(format!("REFERENCE#{departement}"))),
            ("SK", s(sort_key)),
            ("departement", s(departement)),
            (column, s(json)),
            ("imported_at", s(ts(imported_at))),
            ("imported_by", s(imported_by)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        self.write_transaction(vec![put(&self.table, item, None, vec![])?])
            .await
            .map_err(|(_, e)| e)
    }
}

/// A day's reminders of a département share a partition, `REMINDERS#56#2020-04-01`,
/// one item per commune; the first one of a commune stands (a conditional put).
#[async_trait]
impl Reminders for DynamoStore {
    async fn record_reminder(&self, reminder: &Reminder) -> Result<bool> {
        let item: Item = [
            (
                "PK",
                s(format!(
                    "REMINDERS#{}#{}",
                    reminder.commune.departement(),
                    reminder.date
                )),
            ),
            ("SK", s(reminder.commune.as_str())),
            ("channel", s(reminder.channel.clone())),
            ("at", s(ts(reminder.at))),
            ("by", s(reminder.by.clone())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn reminders(&self, date: NaiveDate, departement: &str) -> Result<Vec<Reminder>> {
        let items = self
            .query_all(
                None,
                "PK = :pk",
                vec![(":pk", s(format!("REMINDERS#{departement}#{date}")))],
                true,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(Reminder {
                    date,
                    commune: CommuneCode::parse(get_s(item, "SK")?).map_err(|_| corrupt("SK"))?,
                    channel: get_s(item, "channel")?.to_owned(),
                    at: get_ts(item, "at")?,
                    by: get_s(item, "by")?.to_owned(),
                })
            })
            .collect()
    }
}

impl DynamoStore {
    /// Writes both items of `p` (the record and its entry in the list);
    /// if `only_queued`, only while the record is still queued: `false`
    /// when it was not.
    async fn write_publication(&self, p: &Publication, only_queued: bool) -> Result<bool> {
        let mut by_id = publication_attributes(p);
        by_id.insert("PK".into(), s(format!("PUBLICATION#{}", p.id)));
        by_id.insert("SK".into(), s("PUBLICATION"));
        let mut listed = publication_attributes(p);
        listed.insert("PK".into(), s("PUBLICATIONS"));
        listed.insert("SK".into(), s(format!("{}#{}", ts(p.requested_at), p.id)));
        let by_id = if only_queued {
            // `status` is one of DynamoDB's reserved words: named here.
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(by_id))
                .condition_expression("#status = :queued")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":queued", s(PublicationStatus::Queued.as_str()))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            TransactWriteItem::builder().put(put).build()
        } else {
            put(&self.table, by_id, None, vec![])?
        };
        let items = vec![by_id, put(&self.table, listed, None, vec![])?];
        match self.write_transaction(items).await {
            Ok(()) => Ok(true),
            Err((Some(codes), _))
                if only_queued
                    && codes.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
            {
                Ok(false)
            }
            Err((_, error)) => Err(error),
        }
    }
}
