//! Publication records on SQLite.
use super::*;

#[async_trait]
impl Publications for SqliteStore {
    async fn insert_publication(&self, publication: &Publication) -> Result<()> {
        let p = publication.clone();
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO publications ({PUBLICATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, \
                    ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    p.id,
                    p.status.as_str(),
                    p.requested_by,
                    p.reason,
                    ts(p.requested_at),
                    p.started_at.map(ts),
                    p.finished_at.map(ts),
                    p.files_changed,
                    p.error
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn update_publication(&self, publication: &Publication) -> Result<()> {
        self.write_publication(publication, "").await.map(drop)
    }

    async fn claim_publication(&self, publication: &Publication) -> Result<bool> {
        self.write_publication(publication, " AND status = 'queued'")
            .await
    }

    async fn publication(&self, id: &str) -> Result<Option<Publication>> {
        let id = id.to_owned();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {PUBLICATION_COLUMNS} FROM publications WHERE id = ?1"),
                [id],
                raw_publication,
            )
            .optional()
            .map_err(unavailable)?
            .map(to_publication)
            .transpose()
        })
        .await
    }

    async fn publications(&self, limit: usize) -> Result<Vec<Publication>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut statement = c
                .prepare(&format!(
                    "SELECT {PUBLICATION_COLUMNS} FROM publications ORDER BY requested_at DESC, id \
                        DESC LIMIT ?1"
                ))
                .map_err(unavailable)?;
            let raws = statement
                .query_map([limit], raw_publication)
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            raws.into_iter().map(to_publication).collect()
        })
        .await
    }
}

#[async_trait]
impl References for SqliteStore {
    async fn put_reference(&self, series: &ReferenceSeries) -> Result<()> {
        let days =
            serde_json::to_string(&series.days).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put_imported(
            "reference_series",
            "days",
            &series.departement,
            days,
            series.imported_at,
            &series.imported_by,
        )
        .await
    }

    async fn reference(&self, departement: &str) -> Result<Option<ReferenceSeries>> {
        let row = self
            .imported("reference_series", "days", departement)
            .await?;
        row.map(to_reference).transpose()
    }

    async fn put_contacts(&self, contacts: &ContactOverrides) -> Result<()> {
        let json = serde_json::to_string(&contacts.contacts)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put_imported(
            "contact_overrides",
            "contacts",
            &contacts.departement,
            json,
            contacts.imported_at,
            &contacts.imported_by,
        )
        .await
    }

    async fn contacts(&self, departement: &str) -> Result<Option<ContactOverrides>> {
        let row = self
            .imported("contact_overrides", "contacts", departement)
            .await?;
        row.map(to_contacts).transpose()
    }
}

impl SqliteStore {
    /// What a prefecture imported for a département into `table`: the
    /// département, its JSON `column`, when and by whom.
    /// Replaces what a prefecture imported for a département into `table`:
    /// its JSON `column`, when and by whom.
    async fn put_imported(
        &self,
        table: &'static str,
        column: &'static str,
        departement: &str,
        json: String,
        imported_at: DateTime<Utc>,
        imported_by: &str,
    ) -> Result<()> {
        let (departement, imported_by) = (departement.to_owned(), imported_by.to_owned());
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO {table} (departement, {column}, imported_at, imported_by) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (departement) DO UPDATE SET \
                     {column} = ?2, imported_at = ?3, imported_by = ?4"
                ),
                params![departement, json, ts(imported_at), imported_by],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn imported(
        &self,
        table: &'static str,
        column: &'static str,
        departement: &str,
    ) -> Result<Option<RawImport>> {
        let departement = departement.to_owned();
        self.with(move |c| {
            c.query_row(
                &format!(
                    "SELECT departement, {column}, imported_at, imported_by FROM {table} \
                     WHERE departement = ?1"
                ),
                [departement],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl Reminders for SqliteStore {
    async fn record_reminder(&self, reminder: &Reminder) -> Result<bool> {
        let r = reminder.clone();
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO reminders (date, commune, departement, channel, at, by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    r.date.to_string(),
                    r.commune.as_str(),
                    r.commune.departement(),
                    r.channel,
                    ts(r.at),
                    r.by
                ],
            )
            .map(|inserted| inserted == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn reminders(&self, date: NaiveDate, departement: &str) -> Result<Vec<Reminder>> {
        let departement = departement.to_owned();
        self.with(move |c| {
            let mut statement = c
                .prepare(
                    "SELECT commune, channel, at, by FROM reminders WHERE date = ?1 AND \
                     departement = ?2 ORDER BY commune",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![date.to_string(), departement], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(commune, channel, at, by)| {
                    Ok(Reminder {
                        date,
                        commune: CommuneCode::parse(&commune)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        channel,
                        at: parse_ts(&at)?,
                        by,
                    })
                })
                .collect()
        })
        .await
    }
}

impl SqliteStore {
    /// Writes the status of `publication` where its record also meets
    /// `condition` (SQL after its id's); `true` if it did.
    async fn write_publication(
        &self,
        publication: &Publication,
        condition: &'static str,
    ) -> Result<bool> {
        let p = publication.clone();
        self.with(move |c| {
            c.execute(
                &format!(
                    "UPDATE publications SET status = ?2, started_at = ?3, finished_at = ?4, \
                    files_changed = ?5, error = ?6 WHERE id = ?1{condition}"
                ),
                params![
                    p.id,
                    p.status.as_str(),
                    p.started_at.map(ts),
                    p.finished_at.map(ts),
                    p.files_changed,
                    p.error
                ],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
        })
        .await
    }
}
