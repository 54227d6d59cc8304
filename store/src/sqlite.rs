//! The embedded default backend: one SQLite file (WAL mode), one connection behind
//! a mutex, every call run on tokio's blocking pool.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use decompte_core::{CommuneCode, Counts, Report, Role};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::model::{
    Credential, IdempotencyRecord, Publication, PublicationStatus, ReportQuery, Session,
};
use crate::{Result, Store, StoreError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS report_versions (
    commune     TEXT NOT NULL,
    date        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    counts      TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    source      TEXT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (commune, date, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS current_reports (
    commune     TEXT NOT NULL,
    date        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (commune, date)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS current_by_date ON current_reports (date);
CREATE INDEX IF NOT EXISTS current_by_recorded_at ON current_reports (recorded_at);
CREATE TABLE IF NOT EXISTS idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    commune      TEXT,
    label        TEXT NOT NULL,
    code_hash    TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash       TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_credential ON sessions (credential_id);
CREATE TABLE IF NOT EXISTS login_failures (
    key        TEXT NOT NULL,
    window     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (key, window)
);
CREATE TABLE IF NOT EXISTS publications (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    reason        TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    files_changed INTEGER,
    error         TEXT
);
"#;

/// SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (and creates if needed) the database file. A new file is
    /// readable by its owner only (0600; SQLite gives its journal the same).
    pub fn open(path: &Path) -> Result<Self> {
        create_private(path).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let connection = Connection::open(path).map_err(unavailable)?;
        Self::init(connection)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn init(connection: Connection) -> Result<Self> {
        connection
            .execute_batch(
                // FULL: a write is on disk before it is acknowledged, even in
                // WAL mode, so a power cut never loses an answered 201.
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )
            .map_err(unavailable)?;
        connection.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the blocking pool with the connection.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| StoreError::Unavailable("sqlite connection poisoned".into()))?;
            work(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// Creates `path` empty with mode 0600 if it does not exist yet.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// Instants are stored as fixed-width RFC 3339 text so that text order is time order.
fn ts(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("instant `{text}`: {e}")))
}

fn parse_opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

const REPORT_COLUMNS: &str =
    "v.commune, v.date, v.version, v.counts, v.recorded_at, v.recorded_by, v.source, v.reason";

/// Raw columns of a report row, converted outside rusqlite's closure so that
/// corrupt data becomes a [`StoreError::Corrupt`].
type RawReport = (
    String,
    String,
    u32,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn raw_report(row: &Row<'_>) -> rusqlite::Result<RawReport> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn to_report(raw: RawReport) -> Result<Report> {
    let (commune, date, version, counts, recorded_at, recorded_by, source, reason) = raw;
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    Ok(Report {
        commune: CommuneCode::parse(&commune).map_err(|e| corrupt("commune", &e))?,
        date: NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|e| corrupt("date", &e))?,
        counts: serde_json::from_str::<Counts>(&counts).map_err(|e| corrupt("counts", &e))?,
        version,
        recorded_at: parse_ts(&recorded_at)?,
        recorded_by,
        source: source.parse().map_err(|e: String| corrupt("source", &e))?,
        reason,
    })
}

fn query_reports(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Report>> {
    let mut statement = connection.prepare_cached(sql).map_err(unavailable)?;
    let raws = statement
        .query_map(params, raw_report)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    raws.into_iter().map(to_report).collect()
}

fn current_in(connection: &Connection, commune: &str, date: &str) -> Result<Option<Report>> {
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
         ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
         WHERE c.commune = ?1 AND c.date = ?2"
    );
    Ok(query_reports(connection, &sql, params![commune, date])?.pop())
}

type RawCredential = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

const CREDENTIAL_COLUMNS: &str =
    "id, role, commune, label, code_hash, created_at, last_used_at, revoked_at";

fn raw_credential(row: &Row<'_>) -> rusqlite::Result<RawCredential> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn to_credential(raw: RawCredential) -> Result<Credential> {
    let (id, role, commune, label, code_hash, created_at, last_used_at, revoked_at) = raw;
    Ok(Credential {
        id,
        role: role.parse::<Role>().map_err(StoreError::Corrupt)?,
        commune: commune
            .map(|c| CommuneCode::parse(&c))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        label,
        code_hash,
        created_at: parse_ts(&created_at)?,
        last_used_at: parse_opt_ts(last_used_at)?,
        revoked_at: parse_opt_ts(revoked_at)?,
    })
}

type RawPublication = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<String>,
);

const PUBLICATION_COLUMNS: &str =
    "id, status, requested_by, reason, requested_at, started_at, finished_at, files_changed, error";

fn raw_publication(row: &Row<'_>) -> rusqlite::Result<RawPublication> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn to_publication(raw: RawPublication) -> Result<Publication> {
    let (
        id,
        status,
        requested_by,
        reason,
        requested_at,
        started_at,
        finished_at,
        files_changed,
        error,
    ) = raw;
    Ok(Publication {
        id,
        status: PublicationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("publication status `{status}`")))?,
        requested_by,
        reason,
        requested_at: parse_ts(&requested_at)?,
        started_at: parse_opt_ts(started_at)?,
        finished_at: parse_opt_ts(finished_at)?,
        files_changed,
        error,
    })
}

#[async_trait]
impl Store for SqliteStore {
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
            let commune = report.commune.to_string();
            let date = report.date.to_string();
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let current: Option<u32> = tx
                .query_row(
                    "SELECT version FROM current_reports WHERE commune = ?1 AND date = ?2",
                    params![commune, date],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            if current.unwrap_or(0) + 1 != report.version {
                let current = current_in(&tx, &commune, &date)?;
                return Err(StoreError::Conflict { current: current.map(Box::new) });
            }
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
                    "INSERT OR REPLACE INTO idempotency (key, request_hash, status, body, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![record.key, record.request_hash, record.status, record.body, ts(record.created_at), ts(record.expires_at)],
                )
                .map_err(unavailable)?;
            }
            let counts = serde_json::to_string(&report.counts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let recorded_at = ts(report.recorded_at);
            tx.execute(
                "INSERT INTO report_versions (commune, date, version, counts, recorded_at, recorded_by, source, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![commune, date, report.version, counts, recorded_at, report.recorded_by, report.source.as_str(), report.reason],
            )
            .map_err(unavailable)?;
            tx.execute(
                "INSERT INTO current_reports (commune, date, version, recorded_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (commune, date) DO UPDATE SET version = excluded.version, recorded_at = excluded.recorded_at",
                params![commune, date, report.version, recorded_at],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn current_reports(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let commune = query.commune.as_ref().map(ToString::to_string);
        let from = query.from.map(|d| d.to_string());
        let to = query.to.map(|d| d.to_string());
        self.with(move |c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
                 ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
                 WHERE (?1 IS NULL OR c.commune = ?1) AND (?2 IS NULL OR c.date >= ?2) AND (?3 IS NULL OR c.date <= ?3) \
                 ORDER BY c.date, c.commune"
            );
            query_reports(c, &sql, params![commune, from, to])
        })
        .await
    }

    async fn history(&self, commune: &CommuneCode, date: NaiveDate) -> Result<Vec<Report>> {
        let commune = commune.to_string();
        self.with(move |c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM report_versions v WHERE v.commune = ?1 AND v.date = ?2 ORDER BY v.version"
            );
            query_reports(c, &sql, params![commune, date.to_string()])
        })
        .await
    }

    async fn versions(&self, query: &ReportQuery) -> Result<Vec<Report>> {
        let commune = query.commune.as_ref().map(ToString::to_string);
        let from = query.from.map(|d| d.to_string());
        let to = query.to.map(|d| d.to_string());
        self.with(move |c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM report_versions v \
                 WHERE (?1 IS NULL OR v.commune = ?1) AND (?2 IS NULL OR v.date >= ?2) AND (?3 IS NULL OR v.date <= ?3) \
                 ORDER BY v.date, v.commune, v.version"
            );
            query_reports(c, &sql, params![commune, from, to])
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
                    "SELECT key, request_hash, status, body, created_at, expires_at FROM idempotency WHERE key = ?1 AND expires_at > ?2",
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
            raw.map(|(key, request_hash, status, body, created_at, expires_at)| {
                Ok(IdempotencyRecord {
                    key,
                    request_hash,
                    status,
                    body,
                    created_at: parse_ts(&created_at)?,
                    expires_at: parse_ts(&expires_at)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn insert_credential(&self, credential: &Credential) -> Result<()> {
        let cr = credential.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO credentials (id, role, commune, label, code_hash, created_at, last_used_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    cr.id,
                    cr.role.as_str(),
                    cr.commune.as_ref().map(ToString::to_string),
                    cr.label,
                    cr.code_hash,
                    ts(cr.created_at),
                    cr.last_used_at.map(ts),
                    cr.revoked_at.map(ts)
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn credential_by_hash(&self, code_hash: &str) -> Result<Option<Credential>> {
        let code_hash = code_hash.to_owned();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE code_hash = ?1"),
                [code_hash],
                raw_credential,
            )
            .optional()
            .map_err(unavailable)?
            .map(to_credential)
            .transpose()
        })
        .await
    }

    async fn credential(&self, id: &str) -> Result<Option<Credential>> {
        let id = id.to_owned();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?1"),
                [id],
                raw_credential,
            )
            .optional()
            .map_err(unavailable)?
            .map(to_credential)
            .transpose()
        })
        .await
    }

    async fn credentials(&self) -> Result<Vec<Credential>> {
        self.with(move |c| {
            let mut statement = c
                .prepare(&format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"
                ))
                .map_err(unavailable)?;
            let raws = statement
                .query_map([], raw_credential)
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            raws.into_iter().map(to_credential).collect()
        })
        .await
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let id = id.to_owned();
        self.with(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            let changed = tx
                .execute(
                    "UPDATE credentials SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, ts(at)],
                )
                .map_err(unavailable)?;
            tx.execute("DELETE FROM sessions WHERE credential_id = ?1", [&id])
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn touch_credential(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        let id = id.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE credentials SET last_used_at = ?2 WHERE id = ?1",
                params![id, ts(at)],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn insert_session(&self, session: &Session) -> Result<()> {
        let s = session.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (id_hash, credential_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![s.id_hash, s.credential_id, ts(s.created_at), ts(s.expires_at)],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let id_hash = id_hash.to_owned();
        self.with(move |c| {
            let raw = c
                .query_row(
                    "SELECT id_hash, credential_id, created_at, expires_at FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
                    params![id_hash, ts(now)],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            raw.map(|(id_hash, credential_id, created_at, expires_at)| {
                Ok(Session {
                    id_hash,
                    credential_id,
                    created_at: parse_ts(&created_at)?,
                    expires_at: parse_ts(&expires_at)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_owned();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
                .map(drop)
                .map_err(unavailable)
        })
        .await
    }

    async fn delete_sessions_of(&self, credential_id: &str) -> Result<()> {
        let credential_id = credential_id.to_owned();
        self.with(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE credential_id = ?1",
                [credential_id],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn add_failure(
        &self,
        key: &str,
        window: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32> {
        let key = key.to_owned();
        self.with(move |c| {
            c.query_row(
                "INSERT INTO login_failures (key, window, count, expires_at) VALUES (?1, ?2, 1, ?3) \
                 ON CONFLICT (key, window) DO UPDATE SET count = count + 1 RETURNING count",
                params![key, ts(window), ts(expires_at)],
                |row| row.get(0),
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn failures(&self, key: &str, window: DateTime<Utc>, now: DateTime<Utc>) -> Result<u32> {
        let key = key.to_owned();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT count FROM login_failures WHERE key = ?1 AND window = ?2 AND expires_at > ?3",
                params![key, ts(window), ts(now)],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?
            .unwrap_or(0))
        })
        .await
    }

    async fn insert_publication(&self, publication: &Publication) -> Result<()> {
        let p = publication.clone();
        self.with(move |c| {
            c.execute(
                &format!("INSERT INTO publications ({PUBLICATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
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
        let p = publication.clone();
        self.with(move |c| {
            c.execute(
                "UPDATE publications SET status = ?2, started_at = ?3, finished_at = ?4, files_changed = ?5, error = ?6 WHERE id = ?1",
                params![p.id, p.status.as_str(), p.started_at.map(ts), p.finished_at.map(ts), p.files_changed, p.error],
            )
            .map(drop)
            .map_err(unavailable)
        })
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
                    "SELECT {PUBLICATION_COLUMNS} FROM publications ORDER BY requested_at DESC, id DESC LIMIT ?1"
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

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<()> {
        self.with(move |c| {
            let now = ts(now);
            for table in ["sessions", "idempotency", "login_failures"] {
                c.execute(
                    &format!("DELETE FROM {table} WHERE expires_at <= ?1"),
                    [&now],
                )
                .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}
