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
        _: Ledgered,
        report: &Report,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<()> {
        let report = report.clone();
        let idempotency = idempotency.cloned();
        self.with(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut writer = ReportWriter::new(&tx)?;
            // Dropped without a commit, the transaction undoes the write.
            writer.write(&report)?;
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
            drop(writer);
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn write_reports(&self, _: Ledgered, reports: &[Report]) -> Result<()> {
        let mut reports = reports.to_vec();
        // In the order of the primary keys: each insert lands next to the
        // previous one, not at a random page of a table of millions of rows.
        // (All or nothing, so the order of the batch does not matter.)
        reports.sort_unstable_by(|a, b| {
            (&a.commune, a.date, a.version).cmp(&(&b.commune, b.date, b.version))
        });
        let store = self.clone();
        self.with(move |connection| {
            let write = |c: &rusqlite::Connection| -> Result<()> {
                let mut writer = ReportWriter::new(c)?;
                for report in &reports {
                    writer.write(report)?;
                }
                Ok(())
            };
            // One transaction for the whole batch: all or nothing, and fast
            // (one sync to disk for a whole batch). Inside a bulk, a
            // savepoint in its transaction: the batch is still all or
            // nothing, and the bulk decides what is kept.
            if connection.is_autocommit() {
                let tx = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(unavailable)?;
                write(&tx)?;
                tx.commit().map_err(unavailable)
            } else {
                // Inside a bulk (an import's transaction), which a failure
                // undoes whole: no savepoint, whose journal would copy every
                // page the batch touches.
                write(connection)?;
                store.flush_behind(connection);
                Ok(())
            }
        })
        .await
    }

    async fn begin_bulk(&self, _: Ledgered, size: usize) -> Result<bool> {
        self.with(move |connection| {
            connection
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(unavailable)?;
            // A bulk in key order that at least doubles the table: its date
            // index is built again at the end (a sort), instead of taking
            // each report at a random place of it. In the transaction, so
            // that readers keep it and a bulk undone gives it back.
            let prepared = connection
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM current_reports",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .and_then(|written| {
                    if i64::try_from(size).unwrap_or(i64::MAX) >= written {
                        connection.execute_batch("DROP INDEX IF EXISTS current_by_date")?;
                    }
                    Ok(())
                });
            if prepared.is_err() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            prepared.map_err(unavailable)
        })
        .await?;
        Ok(true)
    }

    async fn end_bulk(&self, _: Ledgered, keep: bool) -> Result<()> {
        self.with(move |connection| {
            if !connection.is_autocommit() {
                connection
                    .execute_batch(if keep {
                        "CREATE INDEX IF NOT EXISTS current_by_date ON current_reports (date); COMMIT"
                    } else {
                        "ROLLBACK"
                    })
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn current_reports(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let select = format!(
            "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
             ON v.commune = c.commune AND v.date = c.date AND v.version = c.version"
        );
        self.by_departement(query, select, "c", |a, b| {
            (a.date, &a.commune).cmp(&(b.date, &b.commune))
        })
        .await
    }

    /// Many keys (an import's batch) are first looked for as the one range
    /// of the primary key they span: when none is in the store, no key is
    /// looked up on its own.
    async fn current_of(&self, keys: &[(CommuneCode, NaiveDate)]) -> Result<Vec<Report>> {
        let span = crate::rows::key_span(keys);
        let keys: Vec<(String, String)> = keys
            .iter()
            .map(|(c, d)| (c.to_string(), d.to_string()))
            .collect();
        self.with(move |c| {
            // One read transaction: one file lock for the whole batch, not
            // one per lookup (a savepoint: inside a bulk's transaction too).
            let tx = c.savepoint().map_err(unavailable)?;
            let mut raws = Vec::new();
            let any_stored = match &span {
                Some(span) => tx
                    .prepare_cached(
                        "SELECT 1 FROM current_reports WHERE (commune, date) >= (?1, ?2) \
                         AND (commune, date) <= (?3, ?4) LIMIT 1",
                    )
                    .and_then(|mut s| s.exists(params![span[0], span[1], span[2], span[3]]))
                    .map_err(unavailable)?,
                None => true,
            };
            if any_stored {
                let mut statement = tx.prepare(&current_sql()).map_err(unavailable)?;
                for (commune, date) in &keys {
                    let mut rows = statement
                        .query_map(params![commune, date], raw_report)
                        .map_err(unavailable)?;
                    if let Some(raw) = rows.next() {
                        raws.push(raw.map_err(unavailable)?);
                    }
                }
            }
            tx.commit().map_err(unavailable)?;
            raws.into_iter().map(to_report).collect()
        })
        .await
    }

    async fn current_tallies(
        &self,
        departement: &str,
        keys: &[String],
        flag: &str,
    ) -> Result<Vec<Tally>> {
        let range = (departement.to_owned(), format!("{departement}~"));
        let keys = keys.to_vec();
        let flag = flag.to_owned();
        // Both tables walked in the order of their primary key side by side
        // (a merge join): one seek of each at the range's start, instead of
        // one seek of `report_versions` per current report, as SQLite's
        // nested loop would. A pointer without its version is left out, as
        // a join would.
        self.reading(move |c| {
            let mut pointers = c
                .prepare_cached(
                    "SELECT commune, date, version, recorded_at FROM current_reports \
                     WHERE commune > ?1 AND commune < ?2 ORDER BY commune, date",
                )
                .map_err(unavailable)?;
            let mut versions = c
                .prepare_cached(
                    "SELECT commune, date, version, counts, recorded_by FROM report_versions \
                     WHERE commune > ?1 AND commune < ?2 ORDER BY commune, date, version",
                )
                .map_err(unavailable)?;
            let mut pointers = pointers
                .query(params![range.0, range.1])
                .map_err(unavailable)?;
            let mut versions = VersionCursor::new(
                versions
                    .query(params![range.0, range.1])
                    .map_err(unavailable)?,
            )?;
            let corrupt = |what: &str| StoreError::Corrupt(format!("current report: {what}"));
            let mut tallies = Vec::new();
            let mut counts = CountsReader::new(&keys);
            while let Some(row) = pointers.next().map_err(unavailable)? {
                let text = |i: usize| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
                let commune = text(0).map_err(unavailable)?;
                let date = text(1).map_err(unavailable)?;
                let version: i64 = row.get(2).map_err(unavailable)?;
                if !versions.find(commune, date, version)? {
                    continue;
                }
                tallies.push(Tally {
                    commune: CommuneCode::parse(commune).map_err(|_| corrupt("commune"))?,
                    date: crate::rows::parse_day(date).ok_or_else(|| corrupt("date"))?,
                    version: u32::try_from(version).map_err(|_| corrupt("version"))?,
                    counts: counts
                        .read(&versions.counts)
                        .ok_or_else(|| corrupt("counts"))?,
                    recorded_at: parse_ts(text(3).map_err(unavailable)?)?,
                    flagged: versions.recorded_by == flag,
                });
            }
            Ok(tallies)
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
        let select = format!("SELECT {REPORT_COLUMNS} FROM report_versions v");
        self.by_departement(query, select, "v", |a, b| {
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
        self.reading(move |c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
                 ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
                 WHERE c.recorded_at > ?1 ORDER BY c.recorded_at"
            );
            query_reports(c, &sql, [ts(since)])
        })
        .await
    }

    async fn change_mark(&self, _now: DateTime<Utc>) -> Result<ChangeMark> {
        self.reading(|c| last_seq(c).map(ChangeMark::Sequence))
            .await
    }

    /// In commit order: the last number is read first, then the reports up
    /// to it; whatever commits in between is numbered after it, and read
    /// next time.
    async fn changes_after(&self, mark: ChangeMark) -> Result<Changes> {
        let ChangeMark::Sequence(after) = mark else {
            return Err(StoreError::Corrupt(format!(
                "a mark of another store: {mark:?}"
            )));
        };
        self.reading(move |c| {
            let last = last_seq(c)?;
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
                 ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
                 WHERE c.seq > ?1 AND c.seq <= ?2 ORDER BY c.seq"
            );
            let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let reports = query_reports(c, &sql, [as_i64(after), as_i64(last)])?;
            Ok(Changes {
                reports,
                mark: ChangeMark::Sequence(last.max(after)),
            })
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

/// The number of the last write committed.
fn last_seq(c: &rusqlite::Connection) -> Result<u64> {
    let last: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM current_reports",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(u64::try_from(last).unwrap_or(0))
}

/// Writes reports as versions under the version condition, with its
/// statements prepared once for a whole batch.
struct ReportWriter<'t> {
    tx: &'t rusqlite::Connection,
    version: rusqlite::CachedStatement<'t>,
    /// A first version's pointer, unless the key has one.
    first: rusqlite::CachedStatement<'t>,
    /// A later version's pointer, if the key's is the version before.
    next: rusqlite::CachedStatement<'t>,
    /// The last number given to a write: the transaction holds the write
    /// lock, so numbers follow the order of the commits.
    seq: i64,
}

impl<'t> ReportWriter<'t> {
    fn new(tx: &'t rusqlite::Connection) -> Result<Self> {
        let prepare = |sql: &str| tx.prepare_cached(sql).map_err(unavailable);
        Ok(Self {
            tx,
            version: prepare(
                "INSERT INTO report_versions (commune, date, version, counts, recorded_at, \
                 recorded_by, source, reason, warnings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            first: prepare(
                "INSERT INTO current_reports (commune, date, version, recorded_at, seq) \
                 VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (commune, date) DO NOTHING",
            )?,
            next: prepare(
                "UPDATE current_reports SET version = ?3, recorded_at = ?4, seq = ?5 \
                 WHERE commune = ?1 AND date = ?2 AND version = ?3 - 1",
            )?,
            seq: tx
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM current_reports",
                    [],
                    |row| row.get(0),
                )
                .map_err(unavailable)?,
        })
    }

    /// Writes `report` as a version and makes it the current one, under the
    /// version condition: the pointer moves only from the version before
    /// (or is made for a first version), one statement that says whether
    /// it did; otherwise `Conflict`, with the current report, and nothing
    /// is written.
    fn write(&mut self, report: &Report) -> Result<()> {
        let commune = report.commune.as_str();
        let date = report.date.to_string();
        let recorded_at = ts(report.recorded_at);
        let seq = self.seq + 1;
        let moved = match report.version {
            1 => self.first.execute(params![commune, date, recorded_at, seq]),
            version => self
                .next
                .execute(params![commune, date, version, recorded_at, seq]),
        }
        .map_err(unavailable)?;
        if moved != 1 {
            return Err(StoreError::Conflict {
                current: current_in(self.tx, commune, &date)?.map(Box::new),
            });
        }
        self.seq = seq;
        let counts = serde_json::to_string(&report.counts)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.version
            .execute(params![
                commune,
                date,
                report.version,
                counts,
                recorded_at,
                report.recorded_by,
                report.source.as_str(),
                report.reason,
                report.warnings.join(",")
            ])
            .map_err(unavailable)?;
        Ok(())
    }
}

impl SqliteStore {
    /// Runs `select` (whose table is aliased `table`) with the conditions of
    /// `query` ([`report_filter`]: SQLite reads one range of the primary key
    /// or of the date index, never the whole table for a part of it), once
    /// per département asked for, and sorts the answer in `order`.
    async fn by_departement(
        &self,
        query: &ReportQuery,
        select: String,
        table: &'static str,
        order: fn(&Report, &Report) -> std::cmp::Ordering,
    ) -> Result<Vec<Report>> {
        let query = query.clone();
        let departements: Vec<Option<String>> = if query.departements.is_empty() {
            vec![None]
        } else {
            query.departements.iter().cloned().map(Some).collect()
        };
        // One commune's days are a short read: on the writer's connection, so
        // that it never waits behind a publication's long read of a whole
        // département on the reader's (a declaration reads the week before
        // for its warnings).
        let connection = match &query.commune {
            Some(_) => Arc::clone(&self.connection),
            None => Arc::clone(&self.reader),
        };
        Self::on(connection, move |c| {
            let mut reports = Vec::new();
            for departement in &departements {
                let (clause, values) =
                    report_filter(&query, departement.as_deref(), table, |n| format!("?{n}"));
                reports.extend(query_reports(
                    c,
                    &format!("{select}{clause}"),
                    rusqlite::params_from_iter(values.iter()),
                )?);
            }
            reports.sort_unstable_by(order);
            Ok(reports)
        })
        .await
    }
}

/// `report_versions` read in key order, one row at a time, its text kept in
/// buffers reused from row to row: the versions side of
/// [`Reports::current_tallies`]'s merge join.
struct VersionCursor<'s> {
    rows: rusqlite::Rows<'s>,
    /// Whether `rows` is past its last row.
    done: bool,
    commune: String,
    date: String,
    version: i64,
    counts: String,
    recorded_by: String,
}

impl<'s> VersionCursor<'s> {
    fn new(rows: rusqlite::Rows<'s>) -> Result<Self> {
        let mut cursor = Self {
            rows,
            done: false,
            commune: String::new(),
            date: String::new(),
            version: 0,
            counts: String::new(),
            recorded_by: String::new(),
        };
        cursor.advance()?;
        Ok(cursor)
    }

    fn advance(&mut self) -> Result<()> {
        let Some(row) = self.rows.next().map_err(unavailable)? else {
            self.done = true;
            return Ok(());
        };
        let text = |i: usize| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
        for (i, buffer) in [
            (0, &mut self.commune),
            (1, &mut self.date),
            (3, &mut self.counts),
            (4, &mut self.recorded_by),
        ] {
            buffer.clear();
            buffer.push_str(text(i).map_err(unavailable)?);
        }
        self.version = row.get(2).map_err(unavailable)?;
        Ok(())
    }

    /// Moves to the version `(commune, date, version)`, past every row
    /// before it; whether it is there.
    fn find(&mut self, commune: &str, date: &str, version: i64) -> Result<bool> {
        let wanted = (commune, date, version);
        while !self.done && (self.commune.as_str(), self.date.as_str(), self.version) < wanted {
            self.advance()?;
        }
        Ok(!self.done && (self.commune.as_str(), self.date.as_str(), self.version) == wanted)
    }
}
