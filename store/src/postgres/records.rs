//! Publication records, the prefectures' imports (reference series,
//! contacts) and the reminders, on PostgreSQL.
use tokio_postgres::Row;

use super::*;

fn raw_publication(row: &Row) -> Result<RawPublication> {
    let files_changed: Option<i64> = row.try_get(7).map_err(unavailable)?;
    Ok((
        row.try_get(0).map_err(unavailable)?,
        row.try_get(1).map_err(unavailable)?,
        row.try_get(2).map_err(unavailable)?,
        row.try_get(3).map_err(unavailable)?,
        row.try_get(4).map_err(unavailable)?,
        row.try_get(5).map_err(unavailable)?,
        row.try_get(6).map_err(unavailable)?,
        files_changed.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        row.try_get(8).map_err(unavailable)?,
    ))
}

#[async_trait]
impl Publications for PostgresStore {
    async fn insert_publication(&self, p: &Publication) -> Result<()> {
        let conn = self.pooled().await?;
        conn.execute(
            &format!(
                "INSERT INTO publications ({PUBLICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, \
                 $7, $8, $9)"
            ),
            &[
                &p.id,
                &p.status.as_str(),
                &p.requested_by,
                &p.reason,
                &ts(p.requested_at),
                &p.started_at.map(ts),
                &p.finished_at.map(ts),
                &p.files_changed.map(i64::from),
                &p.error,
            ],
        )
        .await
        .map_err(unavailable)?;
        if p.status == crate::PublicationStatus::Queued {
            // The replica that holds the publisher's lease runs it.
            conn.execute("SELECT pg_notify($1, '')", &[&CHANGES_CHANNEL])
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn update_publication(&self, p: &Publication) -> Result<()> {
        self.write_publication(p, "").await.map(drop)
    }

    async fn claim_publication(&self, p: &Publication) -> Result<bool> {
        self.write_publication(p, " AND status = 'queued'").await
    }

    async fn publication(&self, id: &str) -> Result<Option<Publication>> {
        let conn = self.pooled().await?;
        let row = conn
            .query_opt(
                &format!("SELECT {PUBLICATION_COLUMNS} FROM publications WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| raw_publication(&row).and_then(to_publication))
            .transpose()
    }

    async fn publications(&self, limit: usize) -> Result<Vec<Publication>> {
        let conn = self.pooled().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = conn
            .query(
                &format!(
                    "SELECT {PUBLICATION_COLUMNS} FROM publications ORDER BY requested_at DESC, \
                     id DESC LIMIT $1"
                ),
                &[&limit],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| raw_publication(row).and_then(to_publication))
            .collect()
    }
}

impl PostgresStore {
    /// Replaces what a prefecture imported for a département into `table`.
    async fn put_imported(
        &self,
        table: &str,
        column: &str,
        departement: &str,
        json: &str,
        imported_at: DateTime<Utc>,
        imported_by: &str,
    ) -> Result<()> {
        let conn = self.pooled().await?;
        conn.execute(
            &format!(
                "INSERT INTO {table} (departement, {column}, imported_at, imported_by) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (departement) DO UPDATE SET \
                 {column} = excluded.{column}, imported_at = excluded.imported_at, \
                 imported_by = excluded.imported_by"
            ),
            &[&departement, &json, &ts(imported_at), &imported_by],
        )
        .await
        .map(drop)
        .map_err(unavailable)
    }

    /// What a prefecture imported for a département into `table`: its JSON
    /// `column`, when and by whom.
    async fn imported(
        &self,
        table: &str,
        column: &str,
        departement: &str,
    ) -> Result<Option<RawImport>> {
        let conn = self.pooled().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT departement, {column}, imported_at, imported_by FROM {table} \
                     WHERE departement = $1"
                ),
                &[&departement],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))))
    }
}

fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

#[async_trait]
impl References for PostgresStore {
    async fn put_reference(&self, series: &ReferenceSeries) -> Result<()> {
        let days = serde_json::to_string(&series.days).map_err(corrupt)?;
        self.put_imported(
            "reference_series",
            "days",
            &series.departement,
            &days,
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
        let json = serde_json::to_string(&contacts.contacts).map_err(corrupt)?;
        self.put_imported(
            "contact_overrides",
            "contacts",
            &contacts.departement,
            &json,
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

#[async_trait]
impl Reminders for PostgresStore {
    async fn record_reminder(&self, r: &Reminder) -> Result<bool> {
        self.changed_one(
            "INSERT INTO reminders (date, commune, departement, channel, at, by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (date, commune) DO NOTHING",
            &[
                &r.date.to_string(),
                &r.commune.to_string(),
                &r.commune.departement().to_owned(),
                &r.channel,
                &ts(r.at),
                &r.by,
            ],
        )
        .await
    }

    async fn reminders(&self, date: NaiveDate, departement: &str) -> Result<Vec<Reminder>> {
        let conn = self.pooled().await?;
        let rows = conn
            .query(
                "SELECT commune, channel, at, by FROM reminders WHERE date = $1 AND \
                 departement = $2 ORDER BY commune",
                &[&date.to_string(), &departement],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(Reminder {
                    date,
                    commune: CommuneCode::parse(row.get::<_, &str>(0))
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    channel: row.get(1),
                    at: parse_ts(row.get(2))?,
                    by: row.get(3),
                })
            })
            .collect()
    }
}

impl PostgresStore {
    /// Writes the status of `p` where its record also meets `condition`
    /// (SQL after its id's); `true` if it did.
    async fn write_publication(&self, p: &Publication, condition: &str) -> Result<bool> {
        let conn = self.pooled().await?;
        conn.execute(
            &format!(
                "UPDATE publications SET status = $2, started_at = $3, finished_at = $4, \
                 files_changed = $5, error = $6 WHERE id = $1{condition}"
            ),
            &[
                &p.id,
                &p.status.as_str(),
                &p.started_at.map(ts),
                &p.finished_at.map(ts),
                &p.files_changed.map(i64::from),
                &p.error,
            ],
        )
        .await
        .map(|changed| changed == 1)
        .map_err(unavailable)
    }
}
