//! Reports on PostgreSQL: versions, current pointers and idempotency
//! records, written in one transaction behind the lock of the change
//! counter, under the version condition.
use std::collections::{HashMap, HashSet};

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

use super::*;

/// The current pointer of each key `k` (a `commune`, a `date`), probed key
/// by key in the primary key: `OFFSET 0` keeps the planner from turning it
/// into a join that reads the whole table at each batch of an import (its
/// statistics do not see the rows the import's transaction added).
const PROBE_CURRENT: &str = "CROSS JOIN LATERAL (SELECT c.commune, c.date, c.version, \
     c.recorded_at FROM current_reports c WHERE c.commune = k.commune AND c.date = k.date \
     OFFSET 0) c";

const CURRENT_JOIN: &str = "FROM current_reports c JOIN report_versions v \
     ON v.commune = c.commune AND v.date = c.date AND v.version = c.version";

fn raw(row: &Row) -> Result<RawReport> {
    let get = |i: usize| -> Result<String> { row.try_get(i).map_err(unavailable) };
    let version: i32 = row.try_get(2).map_err(unavailable)?;
    Ok((
        get(0)?,
        get(1)?,
        uint(version)?,
        get(3)?,
        get(4)?,
        get(5)?,
        get(6)?,
        row.try_get(7).map_err(unavailable)?,
        get(8)?,
    ))
}

async fn query_reports(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Report>> {
    let rows = client.query(sql, params).await.map_err(unavailable)?;
    rows.iter()
        .map(|row| raw(row).and_then(to_report))
        .collect()
}

async fn current_in(client: &Client, commune: &str, date: &str) -> Result<Option<Report>> {
    let sql =
        format!("SELECT {REPORT_COLUMNS} {CURRENT_JOIN} WHERE c.commune = $1 AND c.date = $2");
    Ok(query_reports(client, &sql, &[&commune, &date]).await?.pop())
}

/// Takes the change counter's lock (writers take turns from here to their
/// commit) and returns its last number.
async fn lock_counter(client: &Client) -> Result<i64> {
    Ok(client
        .query_one(
            "SELECT last FROM change_counter WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(unavailable)?
        .get(0))
}

/// From how many reports a batch is written with `COPY` (an import).
const COPY_FROM: usize = 32;

/// A version as `report_versions` stores it, in its columns' order.
struct VersionRow<'r> {
    commune: &'r str,
    date: String,
    version: i32,
    counts: String,
    recorded_at: String,
    recorded_by: &'r str,
    source: &'static str,
    reason: &'r Option<String>,
    warnings: String,
}

impl<'r> VersionRow<'r> {
    fn of(report: &'r Report) -> Result<Self> {
        Ok(Self {
            commune: report.commune.as_str(),
            date: report.date.to_string(),
            version: int(report.version),
            counts: serde_json::to_string(&report.counts)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            recorded_at: ts(report.recorded_at),
            recorded_by: &report.recorded_by,
            source: report.source.as_str(),
            reason: &report.reason,
            warnings: report.warnings.join(","),
        })
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 9] {
        [
            &self.commune,
            &self.date,
            &self.version,
            &self.counts,
            &self.recorded_at,
            &self.recorded_by,
            &self.source,
            self.reason,
            &self.warnings,
        ]
    }
}

/// Writes a batch sorted by key and version (an import): the current
/// versions of its keys read at once and every report checked against them
/// (and against the one before it in the batch), the versions sent with
/// `COPY`, the current pointers set in one statement, each key numbered
/// after `seq` in order. Returns the last number given.
///
/// A batch of first versions, each key once (an import into an empty
/// store), is sent without reading anything first: the primary key of the
/// current pointers is then its version condition. If a key has a pointer
/// after all, that `COPY` fails, is undone, and the batch is checked key by
/// key as any other, to say which.
async fn copy_in(client: &Client, reports: &[Report], seq: i64) -> Result<i64> {
    let first = reports.iter().all(|r| r.version == 1)
        && reports
            .windows(2)
            .all(|p| (&p[0].commune, p[0].date) != (&p[1].commune, p[1].date));
    if first {
        client
            .batch_execute("SAVEPOINT first")
            .await
            .map_err(unavailable)?;
        let sent = async {
            let seq = set_pointers(client, reports.iter().collect(), &HashSet::new(), seq).await?;
            copy_versions(client, reports).await?;
            Ok::<_, StoreError>(seq)
        }
        .await;
        let end = match sent {
            Ok(_) => "RELEASE SAVEPOINT first",
            Err(_) => "ROLLBACK TO SAVEPOINT first; RELEASE SAVEPOINT first",
        };
        client.batch_execute(end).await.map_err(unavailable)?;
        if let Ok(seq) = sent {
            return Ok(seq);
        }
    }
    let existed = check_versions(client, reports).await?;
    let pointers = copy_versions(client, reports).await?;
    set_pointers(client, pointers, &existed, seq).await
}

/// Checks that each report follows the current version of its key (or the
/// batch's previous version of it); returns the keys that had a current
/// report before the batch.
async fn check_versions(client: &Client, reports: &[Report]) -> Result<HashSet<(String, String)>> {
    let mut keys: Vec<(&str, String)> = reports
        .iter()
        .map(|r| (r.commune.as_str(), r.date.to_string()))
        .collect();
    keys.dedup();
    let (communes, dates): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(c, d)| (*c, d.as_str())).unzip();
    let mut current: HashMap<(String, String), u32> = client
        .query(
            &format!(
                "SELECT c.commune, c.date, c.version FROM UNNEST($1::text[], $2::text[]) \
                 AS k(commune, date) {PROBE_CURRENT}"
            ),
            &[&communes, &dates],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|row| Ok(((row.get(0), row.get(1)), uint(row.get(2))?)))
        .collect::<Result<_>>()?;
    let existed = current.keys().cloned().collect();
    for report in reports {
        let key = (report.commune.to_string(), report.date.to_string());
        let before = current.get(&key).copied().unwrap_or(0);
        if before + 1 != report.version {
            return Err(StoreError::Conflict {
                current: current_in(client, &key.0, &key.1).await?.map(Box::new),
            });
        }
        current.insert(key, report.version);
    }
    Ok(existed)
}

/// Sends every version with `COPY`; returns the last version of each key,
/// in the batch's order, for its current pointer.
async fn copy_versions<'r>(client: &Client, reports: &'r [Report]) -> Result<Vec<&'r Report>> {
    let sink = client
        .copy_in(
            "COPY report_versions (commune, date, version, counts, recorded_at, recorded_by, \
             source, reason, warnings) FROM STDIN BINARY",
        )
        .await
        .map_err(unavailable)?;
    let text = Type::TEXT;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(
        sink,
        &[
            text.clone(),
            text.clone(),
            Type::INT4,
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
            text
        ]
    ));
    let mut pointers: Vec<&Report> = Vec::new();
    for report in reports {
        let row = VersionRow::of(report)?;
        writer
            .as_mut()
            .write(&row.params())
            .await
            .map_err(unavailable)?;
        match pointers.last_mut() {
            Some(last) if last.commune == report.commune && last.date == report.date => {
                *last = report
            }
            _ => pointers.push(report),
        }
    }
    writer.finish().await.map_err(unavailable)?;
    Ok(pointers)
}

/// Points each key at its last version, numbered after `seq` in order: the
/// pointers of new keys sent with `COPY` too (an import into an empty
/// store: all of them), those of keys that had one updated. Returns the
/// last number given.
async fn set_pointers(
    client: &Client,
    pointers: Vec<&Report>,
    existed: &HashSet<(String, String)>,
    mut seq: i64,
) -> Result<i64> {
    let sink = client
        .copy_in(
            "COPY current_reports (commune, date, version, recorded_at, seq, counts, recorded_by) \
             FROM STDIN BINARY",
        )
        .await
        .map_err(unavailable)?;
    let mut fresh = std::pin::pin!(BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT
        ]
    ));
    let (mut communes, mut dates, mut versions, mut instants, mut numbers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut counts, mut authors) = (Vec::new(), Vec::new());
    for report in pointers {
        seq += 1;
        let date = report.date.to_string();
        let count = serde_json::to_string(&report.counts)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !existed.contains(&(report.commune.to_string(), date.clone())) {
            fresh
                .as_mut()
                .write(&[
                    &report.commune.as_str(),
                    &date,
                    &int(report.version),
                    &ts(report.recorded_at),
                    &seq,
                    &count,
                    &report.recorded_by,
                ])
                .await
                .map_err(unavailable)?;
            continue;
        }
        communes.push(report.commune.as_str());
        dates.push(date);
        versions.push(int(report.version));
        instants.push(ts(report.recorded_at));
        numbers.push(seq);
        counts.push(count);
        authors.push(report.recorded_by.as_str());
    }
    fresh.finish().await.map_err(unavailable)?;
    if communes.is_empty() {
        return Ok(seq);
    }
    client
        .execute(
            // An upsert: each key found by its primary key, whatever the
            // planner thinks of the table's size.
            "INSERT INTO current_reports (commune, date, version, recorded_at, seq, counts, \
             recorded_by) SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], \
             $5::bigint[], $6::text[], $7::text[]) ON CONFLICT (commune, date) DO UPDATE SET \
             version = excluded.version, recorded_at = excluded.recorded_at, seq = excluded.seq, \
             counts = excluded.counts, recorded_by = excluded.recorded_by",
            &[
                &communes, &dates, &versions, &instants, &numbers, &counts, &authors,
            ],
        )
        .await
        .map_err(unavailable)?;
    Ok(seq)
}

/// Leaves `seq` as the counter's last number (committed with the writes),
/// and tells the publisher at commit (one notification per transaction).
async fn set_counter(client: &Client, seq: i64) -> Result<()> {
    client
        .execute(
            &format!(
                "WITH counted AS (UPDATE change_counter SET last = $1 WHERE id = 1 RETURNING 1) \
                 SELECT pg_notify('{CHANGES_CHANNEL}', '') FROM counted"
            ),
            &[&seq],
        )
        .await
        .map(drop)
        .map_err(unavailable)
}

/// Checks `report` against the current version and writes it, numbered `seq`.
async fn check_and_insert(client: &Client, report: &Report, seq: i64) -> Result<()> {
    let commune = report.commune.as_str();
    let date = report.date.to_string();
    let current: Option<i32> = client
        .query_opt(
            "SELECT version FROM current_reports WHERE commune = $1 AND date = $2",
            &[&commune, &date],
        )
        .await
        .map_err(unavailable)?
        .map(|row| row.get(0));
    if current.map_or(0, |v| v.max(0).unsigned_abs()) + 1 != report.version {
        return Err(StoreError::Conflict {
            current: current_in(client, commune, &date).await?.map(Box::new),
        });
    }
    let row = VersionRow::of(report)?;
    client
        .execute(
            "INSERT INTO report_versions (commune, date, version, counts, recorded_at, \
             recorded_by, source, reason, warnings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &row.params(),
        )
        .await
        .map_err(unavailable)?;
    client
        .execute(
            "INSERT INTO current_reports (commune, date, version, recorded_at, seq, counts, \
             recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (commune, date) DO \
             UPDATE SET version = excluded.version, recorded_at = excluded.recorded_at, \
             seq = excluded.seq, counts = excluded.counts, recorded_by = excluded.recorded_by",
            &[
                &row.commune,
                &row.date,
                &row.version,
                &row.recorded_at,
                &seq,
                &row.counts,
                &row.recorded_by,
            ],
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Begins a transaction, or a savepoint inside an import's; returns which.
async fn begin(conn: &Conn<'_>) -> Result<bool> {
    let savepoint = matches!(conn, Conn::Bulk(_));
    conn.batch_execute(if savepoint {
        "SAVEPOINT batch"
    } else {
        "BEGIN"
    })
    .await
    .map_err(unavailable)?;
    Ok(savepoint)
}

/// Ends the transaction (or the savepoint, inside an import) `outcome`
/// was written in: kept if it is `Ok`, undone otherwise.
async fn finish<T>(client: &Client, savepoint: bool, outcome: Result<T>) -> Result<T> {
    let end = match (&outcome, savepoint) {
        (Ok(_), false) => "COMMIT",
        (Err(_), false) => "ROLLBACK",
        (Ok(_), true) => "RELEASE SAVEPOINT batch",
        (Err(_), true) => "ROLLBACK TO SAVEPOINT batch",
    };
    match client.batch_execute(end).await {
        Ok(()) => outcome,
        Err(error) => outcome.and(Err(unavailable(error))),
    }
}

#[async_trait]
impl Reports for PostgresStore {
    async fn current_report(
        &self,
        commune: &CommuneCode,
        date: NaiveDate,
    ) -> Result<Option<Report>> {
        let conn = self.conn().await?;
        current_in(&conn, commune.as_str(), &date.to_string()).await
    }

    async fn write_report(
        &self,
        _: Ledgered,
        report: &Report,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<()> {
        let conn = self.conn().await?;
        let savepoint = begin(&conn).await?;
        let written = async {
            let seq = lock_counter(&conn).await? + 1;
            if let Some(record) = idempotency {
                let taken = conn
                    .query_opt(
                        "SELECT 1 FROM idempotency WHERE key = $1 AND expires_at > $2",
                        &[&record.key, &ts(record.created_at)],
                    )
                    .await
                    .map_err(unavailable)?
                    .is_some();
                if taken {
                    return Err(StoreError::IdempotencyKeyTaken);
                }
                conn.execute(
                    "INSERT INTO idempotency (key, request_hash, status, body, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET \
                     request_hash = excluded.request_hash, status = excluded.status, \
                     body = excluded.body, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at",
                    &[
                        &record.key,
                        &record.request_hash,
                        &i32::from(record.status),
                        &record.body,
                        &ts(record.created_at),
                        &ts(record.expires_at),
                    ],
                )
                .await
                .map_err(unavailable)?;
            }
            check_and_insert(&conn, report, seq).await?;
            set_counter(&conn, seq).await
        }
        .await;
        finish(&conn, savepoint, written).await
    }

    async fn write_reports(&self, _: Ledgered, reports: &[Report]) -> Result<()> {
        let mut reports = reports.to_vec();
        reports.sort_unstable_by(|a, b| {
            (&a.commune, a.date, a.version).cmp(&(&b.commune, b.date, b.version))
        });
        let conn = self.conn().await?;
        let savepoint = begin(&conn).await?;
        let written = async {
            let mut seq = lock_counter(&conn).await?;
            if reports.len() >= COPY_FROM {
                seq = copy_in(&conn, &reports, seq).await?;
            } else {
                for report in &reports {
                    seq += 1;
                    check_and_insert(&conn, report, seq).await?;
                }
            }
            set_counter(&conn, seq).await
        }
        .await;
        finish(&conn, savepoint, written).await
    }

    async fn begin_bulk(&self, _: Ledgered, size: usize) -> Result<bool> {
        let mut bulk = self.bulk.lock().await;
        if bulk.is_some() {
            return Ok(true);
        }
        let conn = self.pooled().await?;
        conn.batch_execute("BEGIN").await.map_err(unavailable)?;
        // A bulk at least as large as every write so far (a first import):
        // the date index is built again at its end, with one sort, instead
        // of taking each report at a random place. Dropping it holds the
        // table until the bulk ends: the app's reads of reports wait for a
        // first import; imports into a store in service keep the index.
        let prepared = async {
            let written: i64 = conn
                .query_one("SELECT last FROM change_counter WHERE id = 1", &[])
                .await?
                .get(0);
            if i64::try_from(size).unwrap_or(i64::MAX) >= written {
                conn.batch_execute("DROP INDEX IF EXISTS current_by_date")
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        }
        .await;
        if let Err(error) = prepared {
            let _ = conn.batch_execute("ROLLBACK").await;
            return Err(unavailable(error));
        }
        *bulk = Some(conn);
        Ok(true)
    }

    async fn end_bulk(&self, _: Ledgered, keep: bool) -> Result<()> {
        let Some(conn) = self.bulk.lock().await.take() else {
            return Ok(());
        };
        let ended = conn
            .batch_execute(if keep {
                // Without the notice that the index is there already (a
                // bulk that kept it), which a terminal would show.
                "SET LOCAL client_min_messages = warning; \
                 CREATE INDEX IF NOT EXISTS current_by_date ON current_reports (date); COMMIT"
            } else {
                "ROLLBACK"
            })
            .await;
        if ended.is_err() {
            // Not back to the pool inside a failed transaction.
            let _ = conn.batch_execute("ROLLBACK").await;
        }
        ended.map_err(unavailable)?;
        if keep {
            // The planner's statistics, now that the tables grew at once: a
            // publication right after reads each département by its range
            // of the primary key, not the whole table.
            conn.batch_execute("ANALYZE current_reports, report_versions")
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn current_reports(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let select = format!("SELECT {REPORT_COLUMNS} {CURRENT_JOIN}");
        let mut reports = self.by_departement(query, &select, "c").await?;
        reports.sort_unstable_by(|a, b| (a.date, &a.commune).cmp(&(b.date, &b.commune)));
        Ok(reports)
    }

    /// Many keys (an import's batch) are first looked for as the one range
    /// of the primary key they span, with one descent: when none is in the
    /// store (an import into an empty store, or a département's first), no
    /// key is probed. Otherwise each key is probed on its own, whatever the
    /// range holds between them.
    async fn current_of(&self, keys: &[(CommuneCode, NaiveDate)]) -> Result<Vec<Report>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn().await?;
        if let Some(span) = crate::rows::key_span(keys) {
            // In the primary key's order, so that the planner walks it
            // rather than the table, whatever its statistics say.
            let found = conn
                .query_opt(
                    "SELECT 1 FROM current_reports WHERE (commune, date) >= ($1, $2) \
                     AND (commune, date) <= ($3, $4) ORDER BY commune, date LIMIT 1",
                    &[&span[0], &span[1], &span[2], &span[3]],
                )
                .await
                .map_err(unavailable)?;
            if found.is_none() {
                return Ok(Vec::new());
            }
        }
        let communes: Vec<String> = keys.iter().map(|(c, _)| c.to_string()).collect();
        let dates: Vec<String> = keys.iter().map(|(_, d)| d.to_string()).collect();
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM UNNEST($1::text[], $2::text[]) AS k(commune, date) \
             {PROBE_CURRENT} JOIN report_versions v ON v.commune = c.commune \
             AND v.date = c.date AND v.version = c.version"
        );
        query_reports(&conn, &sql, &[&communes, &dates]).await
    }

    async fn current_tallies(
        &self,
        departement: &str,
        keys: &[String],
        flag: &str,
    ) -> Result<Vec<Tally>> {
        let conn = self.pooled().await?;
        let (from, to) = (departement.to_owned(), format!("{departement}~"));
        let rows = conn
            .query(
                "SELECT c.commune, c.date, c.version, c.counts, c.recorded_at, \
                 c.recorded_by = $3 FROM current_reports c WHERE c.commune > $1 AND c.commune < $2",
                &[&from, &to, &flag],
            )
            .await
            .map_err(unavailable)?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("current report: {what}"));
        let mut counts = CountsReader::new(keys);
        rows.iter()
            .map(|row| {
                let text = |i: usize| row.try_get::<_, &str>(i).map_err(unavailable);
                Ok(Tally {
                    commune: CommuneCode::parse(text(0)?).map_err(|_| corrupt("commune"))?,
                    date: crate::rows::parse_day(text(1)?).ok_or_else(|| corrupt("date"))?,
                    version: uint(row.try_get(2).map_err(unavailable)?)?,
                    counts: counts.read(text(3)?).ok_or_else(|| corrupt("counts"))?,
                    recorded_at: parse_ts(text(4)?)?,
                    flagged: row.try_get(5).map_err(unavailable)?,
                })
            })
            .collect()
    }

    async fn history(&self, commune: &CommuneCode, date: NaiveDate) -> Result<Vec<Report>> {
        let conn = self.pooled().await?;
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM report_versions v WHERE v.commune = $1 AND v.date = $2 \
             ORDER BY v.version"
        );
        query_reports(&conn, &sql, &[&commune.as_str(), &date.to_string()]).await
    }

    async fn versions(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let select = format!("SELECT {REPORT_COLUMNS} FROM report_versions v");
        let mut reports = self.by_departement(query, &select, "v").await?;
        reports.sort_unstable_by(|a, b| {
            (a.date, &a.commune, a.version).cmp(&(b.date, &b.commune, b.version))
        });
        Ok(reports)
    }

    async fn reported_communes(&self, date: NaiveDate) -> Result<BTreeSet<CommuneCode>> {
        let conn = self.pooled().await?;
        let rows = conn
            .query(
                "SELECT commune FROM current_reports WHERE date = $1",
                &[&date.to_string()],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                CommuneCode::parse(row.get::<_, &str>(0))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<Report>> {
        let conn = self.pooled().await?;
        let sql = format!(
            "SELECT {REPORT_COLUMNS} {CURRENT_JOIN} WHERE c.recorded_at > $1 ORDER BY c.recorded_at"
        );
        query_reports(&conn, &sql, &[&ts(since)]).await
    }

    async fn change_mark(&self, _now: DateTime<Utc>) -> Result<ChangeMark> {
        let conn = self.pooled().await?;
        last_seq(&conn).await.map(ChangeMark::Sequence)
    }

    /// In commit order: the counter is read first (committed with the
    /// writes it numbered), then the reports up to it.
    async fn changes_after(&self, mark: ChangeMark) -> Result<Changes> {
        let ChangeMark::Sequence(after) = mark else {
            return Err(StoreError::Corrupt(format!(
                "a mark of another store: {mark:?}"
            )));
        };
        let conn = self.pooled().await?;
        let last = last_seq(&conn).await?;
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {REPORT_COLUMNS} {CURRENT_JOIN} WHERE c.seq > $1 AND c.seq <= $2 ORDER BY c.seq"
        );
        let reports = query_reports(&conn, &sql, &[&as_i64(after), &as_i64(last)]).await?;
        Ok(Changes {
            reports,
            mark: ChangeMark::Sequence(last.max(after)),
        })
    }

    async fn idempotency_record(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        let conn = self.pooled().await?;
        let row = conn
            .query_opt(
                "SELECT key, request_hash, status, body, created_at, expires_at FROM idempotency \
                 WHERE key = $1 AND expires_at > $2",
                &[&key, &ts(now)],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| {
            let status: i32 = row.get(2);
            Ok(IdempotencyRecord {
                key: row.get(0),
                request_hash: row.get(1),
                status: u16::try_from(status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                body: row.get(3),
                created_at: parse_ts(row.get(4))?,
                expires_at: parse_ts(row.get(5))?,
            })
        })
        .transpose()
    }
}

/// The number of the last write committed.
async fn last_seq(client: &Client) -> Result<u64> {
    let last: i64 = client
        .query_one("SELECT last FROM change_counter WHERE id = 1", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    Ok(u64::try_from(last).unwrap_or(0))
}

impl PostgresStore {
    /// Runs `select` (whose table is aliased `table`) with the conditions of
    /// `query` ([`report_filter`]), once per département asked for.
    async fn by_departement(
        &self,
        query: &ReportQuery,
        select: &str,
        table: &str,
    ) -> Result<Vec<Report>> {
        let conn = self.pooled().await?;
        let departements: Vec<Option<&String>> = if query.departements.is_empty() {
            vec![None]
        } else {
            query.departements.iter().map(Some).collect()
        };
        let mut reports = Vec::new();
        for departement in departements {
            let (clause, values) =
                report_filter(query, departement.map(String::as_str), table, |n| {
                    format!("${n}")
                });
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                .iter()
                .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            reports.extend(query_reports(&conn, &format!("{select}{clause}"), &params).await?);
        }
        Ok(reports)
    }
}
