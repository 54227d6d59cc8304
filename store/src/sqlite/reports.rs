//! Reports on SQLite: versions, current pointers and idempotency records,
//! written in one immediate transaction under the version condition.
use super::*;

#[async_trait]
impl Reports for SqliteStore {
    async fn current_report(
        &self,
        commune: &CommuneCode,
        date: NaiveDate,
    ) -> Result<Option<Report>> {
        let commune = commune.to_string();
        self.with(move |c| current_in(c, &commune, &date.to_string()))
            .await
    }

    async fn write_report(
        &self,
        report: &Report,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<()> {
        let report = report.clone();
        let idempotency = idempotency.cloned();
        self.with(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            check_version(&tx, &report)?;
            if let Some(record) = &idempotency {
                let taken: bool = tx
                    .query_row(
                        "SELECT 1 FROM idempotency WHERE key = ?1 AND expires_at > ?2",
                        params![record.key, ts(record.created_at)],
                        |_| Ok(true),
                    )
                    .optional()
                    .map_err(unavailable)?
                    .unwrap_or(false);
                if taken {
                    return Err(StoreError::IdempotencyKeyTaken);
                }
                tx.execute(
                    "INSERT OR REPLACE INTO idempotency (key, request_hash, status, body, \
                        created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        record.key,
                        record.request_hash,
                        record.status,
                        record.body,
                        ts(record.created_at),
                        ts(record.expires_at),
                    ],
                )
                .map_err(unavailable)?;
            }
            insert_version(&tx, &report)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn write_reports(&self, reports: &[Report]) -> Result<()> {
        let reports = reports.to_vec();
        self.with(move |connection| {
            // One transaction for the whole batch: all or nothing, and fast
            // (one sync to disk for a whole import).
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for report in &reports {
                check_version(&tx, report)?;
                insert_version(&tx, report)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn current_reports(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
             ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
             WHERE (?1 IS NULL OR c.commune = ?1) AND (?2 IS NULL OR c.date >= ?2) AND (?3 \
                 IS NULL OR c.date <= ?3) AND (?4 IS NULL OR (c.commune > ?4 AND c.commune < \
                 ?4 || '~')) \
             ORDER BY c.date, c.commune"
        );
        self.by_departement(query, sql, |a, b| {
            (a.date, &a.commune).cmp(&(b.date, &b.commune))
        })
        .await
    }

    async fn history(&self, commune: &CommuneCode, date: NaiveDate) -> Result<Vec<Report>> {
        let commune = commune.to_string();
        self.with(move |c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM report_versions v WHERE v.commune = ?1 AND v.date = \
                    ?2 ORDER BY v.version"
            );
            query_reports(c, &sql, params![commune, date.to_string()])
        })
        .await
    }

    async fn versions(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM report_versions v \
             WHERE (?1 IS NULL OR v.commune = ?1) AND (?2 IS NULL OR v.date >= ?2) AND (?3 \
                 IS NULL OR v.date <= ?3) AND (?4 IS NULL OR (v.commune > ?4 AND v.commune < \
                 ?4 || '~')) \
             ORDER BY v.date, v.commune, v.version"
        );
        self.by_departement(query, sql, |a, b| {
            (a.date, &a.commune, a.version).cmp(&(b.date, &b.commune, b.version))
        })
        .await
    }

    async fn reported_communes(&self, date: NaiveDate) -> Result<BTreeSet<CommuneCode>> {
        self.with(move |c| {
            let mut statement = c
                .prepare_cached("SELECT commune FROM current_reports WHERE date = ?1")
                .map_err(unavailable)?;
            let codes = statement
                .query_map([date.to_string()], |row| row.get::<_, String>(0))
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            codes
                .iter()
                .map(|code| {
                    CommuneCode::parse(code).map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect()
        })
        .await
    }

    async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<Report>> {
        self.with(move |c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
                 ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
                 WHERE c.recorded_at > ?1 ORDER BY c.recorded_at"
            );
            query_reports(c, &sql, [ts(since)])
        })
        .await
    }

    async fn idempotency_record(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        let key = key.to_owned();
        self.with(move |c| {
            let raw = c
                .query_row(
                    "SELECT key, request_hash, status, body, created_at, expires_at FROM \
                        idempotency WHERE key = ?1 AND expires_at > ?2",
                    params![key, ts(now)],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, u16>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            raw.map(
                |(key, request_hash, status, body, created_at, expires_at)| {
                    Ok(IdempotencyRecord {
                        key,
                        request_hash,
                        status,
                        body,
                        created_at: parse_ts(&created_at)?,
                        expires_at: parse_ts(&expires_at)?,
                    })
                },
            )
            .transpose()
        })
        .await
    }
}

/// Refuses `report` unless it is the next version of its (commune, day), with
/// the current report in the conflict.
fn check_version(tx: &rusqlite::Transaction<'_>, report: &Report) -> Result<()> {
    let commune = report.commune.as_str();
    let date = report.date.to_string();
    let current: Option<u32> = tx
        .prepare_cached("SELECT version FROM current_reports WHERE commune = ?1 AND date = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![commune, date], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    if current.unwrap_or(0) + 1 == report.version {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            current: current_in(tx, commune, &date)?.map(Box::new),
        })
    }
}

/// Writes `report` as a version and makes it the current one.
fn insert_version(tx: &rusqlite::Transaction<'_>, report: &Report) -> Result<()> {
    let commune = report.commune.as_str();
    let date = report.date.to_string();
    let counts =
        serde_json::to_string(&report.counts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let recorded_at = ts(report.recorded_at);
    tx.prepare_cached(
        "INSERT INTO report_versions (commune, date, version, counts, recorded_at, recorded_by, \
            source, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            commune,
            date,
            report.version,
            counts,
            recorded_at,
            report.recorded_by,
            report.source.as_str(),
            report.reason
        ])
    })
    .map_err(unavailable)?;
    tx.prepare_cached(
        "INSERT INTO current_reports (commune, date, version, recorded_at) VALUES (?1, ?2, ?3, \
            ?4) ON CONFLICT (commune, date) DO UPDATE SET version = excluded.version, \
            recorded_at = excluded.recorded_at",
    )
    .and_then(|mut statement| {
        statement.execute(params![commune, date, report.version, recorded_at])
    })
    .map_err(unavailable)?;
    Ok(())
}

impl SqliteStore {
    /// Runs a report query whose `?4` is one département (a commune code
    /// starts with its département's), once per département asked for, and
    /// merges the answers in `order`: each run reads one range of the
    /// primary key, not the whole table.
    async fn by_departement(
        &self,
        query: &ReportQuery,
        sql: String,
        order: fn(&Report, &Report) -> std::cmp::Ordering,
    ) -> Result<Vec<Report>> {
        let commune = query.commune.as_ref().map(ToString::to_string);
        let from = query.from.map(|d| d.to_string());
        let to = query.to.map(|d| d.to_string());
        let departements: Vec<Option<String>> = if query.departements.is_empty() {
            vec![None]
        } else {
            query.departements.iter().cloned().map(Some).collect()
        };
        self.with(move |c| {
            let mut reports = Vec::new();
            for departement in &departements {
                reports.extend(query_reports(
                    c,
                    &sql,
                    params![commune, from, to, departement],
                )?);
            }
            if departements.len() > 1 {
                reports.sort_by(order);
            }
            Ok(reports)
        })
        .await
    }
}
