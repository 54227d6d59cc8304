//! The embedded default backend: one SQLite file (WAL mode), one connection behind
//! a mutex, every call run on tokio's blocking pool.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{CommuneCode, Report};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::model::{
    ContactOverrides, Credential, IdempotencyRecord, Publication, ReferenceSeries, Reminder,
    ReportQuery, Session, Tally,
};
use crate::rows::*;
use crate::{
    Access, ChangeMark, Changes, Ledgered, Publications, References, Reminders, Reports, Result,
    Store, StoreError,
};

mod access;
mod publications;
mod reports;

/// How much of a bulk's WAL may wait for the commit's sync: past it, what
/// was written so far is flushed on a thread of its own while the next
/// batches are written ([`SqliteStore::flush_behind`]).
const WAL_FLUSH_BYTES: u64 = 64 << 20;

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
    warnings    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (commune, date, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS current_reports (
    commune     TEXT NOT NULL,
    date        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (commune, date)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS current_by_date ON current_reports (date);
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
    departements TEXT NOT NULL DEFAULT '',
    label        TEXT NOT NULL,
    code_hash    TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    issued_by    TEXT,
    expires_at   TEXT,
    totp_secret  TEXT,
    totp_confirmed_at TEXT,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    recovery_hashes TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash       TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    last_seen_at  TEXT,
    pending       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_by_credential ON sessions (credential_id);
CREATE TABLE IF NOT EXISTS login_failures (
    key        TEXT NOT NULL,
    window     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (key, window)
);
CREATE TABLE IF NOT EXISTS reminders (
    date        TEXT NOT NULL,
    commune     TEXT NOT NULL,
    departement TEXT NOT NULL,
    channel     TEXT NOT NULL,
    at          TEXT NOT NULL,
    by          TEXT NOT NULL,
    PRIMARY KEY (date, commune)
);
CREATE TABLE IF NOT EXISTS reference_series (
    departement TEXT PRIMARY KEY,
    days        TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    imported_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contact_overrides (
    departement TEXT PRIMARY KEY,
    contacts    TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    imported_by TEXT NOT NULL
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
///
/// Two connections to a database file: one for the writes and the reads
/// that must see them in the same transaction, one for the long reads of a
/// publication (every change of the last minutes, a département's current
/// reports), which in WAL mode read a snapshot without holding up the
/// writes. In memory, both are the same connection.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    /// The WAL's size at the last flush of a bulk, and whether one runs.
    flushed: Arc<Mutex<(u64, bool)>>,
}

impl SqliteStore {
    /// Opens (and creates if needed) the database file. A new file is
    /// readable by its owner only (0600; SQLite gives its journal the same).
    pub fn open(path: &Path) -> Result<Self> {
        create_private(path).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let connection = Connection::open(path).map_err(unavailable)?;
        let mut store = Self::init(connection)?;
        let reader = Connection::open(path).map_err(unavailable)?;
        reader
            .execute_batch(
                "PRAGMA query_only = ON; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536;",
            )
            .map_err(unavailable)?;
        store.reader = Arc::new(Mutex::new(reader));
        Ok(store)
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
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                    PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536;",
            )
            .map_err(unavailable)?;
        connection.execute_batch(SCHEMA).map_err(unavailable)?;
        migrate(&connection)?;
        let connection = Arc::new(Mutex::new(connection));
        Ok(Self {
            reader: Arc::clone(&connection),
            connection,
            flushed: Arc::default(),
        })
    }

    /// Inside a bulk, SQLite appends every page it writes to the WAL and
    /// syncs the WAL once, at the commit: for a national year, 3.4 GB the
    /// commit waited for (17 s). Once [`WAL_FLUSH_BYTES`] more are written,
    /// this flushes the WAL to disk on a thread of its own, while the next
    /// batches are written, so that the commit has little left to sync.
    /// Flushing earlier changes nothing of what is kept: only the commit
    /// makes the bulk's writes part of the database.
    fn flush_behind(&self, connection: &Connection) {
        let Some(wal) = connection
            .path()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}-wal"))
        else {
            return;
        };
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let Ok(mut flushed) = self.flushed.lock() else {
            return;
        };
        if flushed.1 || size < flushed.0 + WAL_FLUSH_BYTES {
            return;
        }
        *flushed = (size, true);
        let state = Arc::clone(&self.flushed);
        std::thread::spawn(move || {
            if let Err(error) = std::fs::File::open(&wal).and_then(|f| f.sync_data()) {
                tracing::debug!(%error, "the WAL could not be flushed ahead of the commit");
            }
            if let Ok(mut flushed) = state.lock() {
                flushed.1 = false;
            }
        });
    }

    /// Runs `work` on the blocking pool with the connection.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        Self::on(Arc::clone(&self.connection), work).await
    }

    /// Runs a long read on the blocking pool with the reading connection.
    async fn reading<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        Self::on(Arc::clone(&self.reader), work).await
    }

    async fn on<T, F>(connection: Arc<Mutex<Connection>>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
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

/// Brings a database made by an earlier version up to this schema.
fn migrate(connection: &Connection) -> Result<()> {
    let has_last_seen: bool = connection
        .prepare("SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'last_seen_at'")
        .and_then(|mut statement| statement.exists([]))
        .map_err(unavailable)?;
    if !has_last_seen {
        // Sessions of an earlier version count as active when they began.
        connection
            .execute_batch(
                "ALTER TABLE sessions ADD COLUMN last_seen_at TEXT; \
                 UPDATE sessions SET last_seen_at = created_at WHERE last_seen_at IS NULL;",
            )
            .map_err(unavailable)?;
    }
    // Columns added since: credentials of an earlier version reach the whole
    // deployment, were issued from the command line, never expire and have
    // no second factor; their sessions are whole.
    let added = [
        ("credentials", "departements", "TEXT NOT NULL DEFAULT ''"),
        ("credentials", "issued_by", "TEXT"),
        ("credentials", "expires_at", "TEXT"),
        ("credentials", "totp_secret", "TEXT"),
        ("credentials", "totp_confirmed_at", "TEXT"),
        (
            "credentials",
            "totp_last_step",
            "INTEGER NOT NULL DEFAULT 0",
        ),
        ("credentials", "recovery_hashes", "TEXT NOT NULL DEFAULT ''"),
        ("sessions", "pending", "INTEGER NOT NULL DEFAULT 0"),
        ("report_versions", "warnings", "TEXT NOT NULL DEFAULT ''"),
        // Reports written before it have none: a publisher reads them all
        // once (it kept no mark of this kind).
        ("current_reports", "seq", "INTEGER NOT NULL DEFAULT 0"),
    ];
    for (table, column, definition) in added {
        let present: bool = connection
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"
            ))
            .and_then(|mut statement| statement.exists([]))
            .map_err(unavailable)?;
        if !present {
            connection
                .execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition};"
                ))
                .map_err(unavailable)?;
        }
    }
    // Changes are read by number (`seq`), never by instant on SQLite: the
    // index by instant of earlier versions cost every write (an import of
    // a national year, a sixth of its time) and served nothing.
    connection
        .execute_batch(
            "CREATE INDEX IF NOT EXISTS current_by_seq ON current_reports (seq); \
             DROP INDEX IF EXISTS current_by_recorded_at;",
        )
        .map_err(unavailable)?;
    Ok(())
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

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
        row.get(8)?,
    ))
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

/// The current report of a (commune, day), with its version's columns.
fn current_sql() -> String {
    format!(
        "SELECT {REPORT_COLUMNS} FROM current_reports c JOIN report_versions v \
         ON v.commune = c.commune AND v.date = c.date AND v.version = c.version \
         WHERE c.commune = ?1 AND c.date = ?2"
    )
}

fn current_in(connection: &Connection, commune: &str, date: &str) -> Result<Option<Report>> {
    Ok(query_reports(connection, &current_sql(), params![commune, date])?.pop())
}

fn raw_credential(row: &Row<'_>) -> rusqlite::Result<RawCredential> {
    Ok(RawCredential {
        id: row.get(0)?,
        role: row.get(1)?,
        commune: row.get(2)?,
        departements: row.get(3)?,
        label: row.get(4)?,
        code_hash: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
        revoked_at: row.get(8)?,
        issued_by: row.get(9)?,
        expires_at: row.get(10)?,
        totp_secret: row.get(11)?,
        totp_confirmed_at: row.get(12)?,
        totp_last_step: row.get(13)?,
        recovery_hashes: row.get(14)?,
    })
}

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

#[async_trait]
impl Store for SqliteStore {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made before sessions had `last_seen_at` and credentials
    /// their départements opens; its sessions count as active when they
    /// began, its prefecture codes reach the whole deployment.
    #[test]
    fn an_older_database_is_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.sqlite");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, credential_id TEXT NOT NULL, \
             created_at TEXT NOT NULL, expires_at TEXT NOT NULL); \
             INSERT INTO sessions VALUES ('h', 'c', '2020-04-01T10:00:00.000000Z', \
             '2020-04-01T18:00:00.000000Z'); \
             CREATE TABLE credentials (id TEXT PRIMARY KEY, role TEXT NOT NULL, commune TEXT, \
             label TEXT NOT NULL, code_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, \
             last_used_at TEXT, revoked_at TEXT); \
             INSERT INTO credentials VALUES ('prefecture-1', 'prefecture', NULL, 'Préfecture', \
             'x', '2020-04-01T10:00:00.000000Z', NULL, NULL);",
        )
        .expect("old schema");
        drop(old);
        let store = SqliteStore::open(&path).expect("migrated");
        let connection = store.connection.lock().expect("lock");
        let last_seen: String = connection
            .query_row(
                "SELECT last_seen_at FROM sessions WHERE id_hash = 'h'",
                [],
                |r| r.get(0),
            )
            .expect("read");
        assert_eq!(last_seen, "2020-04-01T10:00:00.000000Z");
        drop(connection);
        let credential = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(store.credential("prefecture-1"))
            .expect("read")
            .expect("kept");
        assert_eq!(credential.reach(), decompte_core::Reach::All);
    }
}
