//! The PostgreSQL backend: several app replicas on one database, a standby
//! to fail over to (libpq's multi-host URL with
//! `target_session_attrs=read-write` finds the primary), TLS by rustls.
//!
//! The same rows as SQLite (`crate::rows`): instants as fixed-width RFC 3339
//! text, counts as JSON text, so that both compare and copy them alike; text
//! in the "C" collation (byte order: a département is the range of its
//! communes' codes, text order is time order, whatever the server's locale). A
//! report is written in one transaction that first locks the one row of
//! `change_counter`: writers take turns there, so the version condition is
//! checked against every write committed before, and the number each write
//! gets is the order of the commits (what [`ChangeMark::Sequence`] needs).
//! The schema is versioned (`decompte_schema`); opening the store applies
//! what is missing, under an advisory lock, so that replicas starting
//! together migrate once.

use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{CommuneCode, Report};
use tokio_postgres::Client;

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
mod connect;
mod records;
mod reports;

/// Each step of the schema, applied once, in order; a database records the
/// number of those it has.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE report_versions (
    commune     TEXT COLLATE "C" NOT NULL,
    date        TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    counts      TEXT COLLATE "C" NOT NULL,
    recorded_at TEXT COLLATE "C" NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C",
    warnings    TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (commune, date, version)
);
CREATE TABLE current_reports (
    commune     TEXT COLLATE "C" NOT NULL,
    date        TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    recorded_at TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    counts      TEXT COLLATE "C" NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (commune, date)
);
CREATE INDEX current_by_date ON current_reports (date);
CREATE INDEX current_by_recorded_at ON current_reports (recorded_at);
CREATE INDEX current_by_seq ON current_reports (seq);
CREATE TABLE change_counter (id INTEGER PRIMARY KEY, last BIGINT NOT NULL);
INSERT INTO change_counter (id, last) VALUES (1, 0);
CREATE TABLE idempotency (
    key          TEXT COLLATE "C" PRIMARY KEY,
    request_hash TEXT COLLATE "C" NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL
);
CREATE TABLE credentials (
    id           TEXT COLLATE "C" PRIMARY KEY,
    role         TEXT COLLATE "C" NOT NULL,
    commune      TEXT COLLATE "C",
    departements TEXT COLLATE "C" NOT NULL DEFAULT '',
    label        TEXT COLLATE "C" NOT NULL,
    code_hash    TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   TEXT COLLATE "C" NOT NULL,
    last_used_at TEXT COLLATE "C",
    revoked_at   TEXT COLLATE "C",
    issued_by    TEXT COLLATE "C",
    expires_at   TEXT COLLATE "C",
    totp_secret  TEXT COLLATE "C",
    totp_confirmed_at TEXT COLLATE "C",
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    recovery_hashes TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE TABLE sessions (
    id_hash       TEXT COLLATE "C" PRIMARY KEY,
    credential_id TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    last_seen_at  TEXT COLLATE "C" NOT NULL,
    pending       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_by_credential ON sessions (credential_id);
CREATE TABLE login_failures (
    key          TEXT COLLATE "C" NOT NULL,
    window_start TEXT COLLATE "C" NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE TABLE reminders (
    date        TEXT COLLATE "C" NOT NULL,
    commune     TEXT COLLATE "C" NOT NULL,
    departement TEXT COLLATE "C" NOT NULL,
    channel     TEXT COLLATE "C" NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    by          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (date, commune)
);
CREATE TABLE reference_series (
    departement TEXT COLLATE "C" PRIMARY KEY,
    days        TEXT COLLATE "C" NOT NULL,
    imported_at TEXT COLLATE "C" NOT NULL,
    imported_by TEXT COLLATE "C" NOT NULL
);
CREATE TABLE contact_overrides (
    departement TEXT COLLATE "C" PRIMARY KEY,
    contacts    TEXT COLLATE "C" NOT NULL,
    imported_at TEXT COLLATE "C" NOT NULL,
    imported_by TEXT COLLATE "C" NOT NULL
);
CREATE TABLE publications (
    id            TEXT COLLATE "C" PRIMARY KEY,
    status        TEXT COLLATE "C" NOT NULL,
    requested_by  TEXT COLLATE "C" NOT NULL,
    reason        TEXT COLLATE "C" NOT NULL,
    requested_at  TEXT COLLATE "C" NOT NULL,
    started_at    TEXT COLLATE "C",
    finished_at   TEXT COLLATE "C",
    files_changed BIGINT,
    error         TEXT COLLATE "C"
);
CREATE INDEX publications_by_request ON publications (requested_at);
"#,
    // 2: changes are read by number (`seq`), never by instant on PostgreSQL:
    // one index fewer to keep at each write.
    "DROP INDEX IF EXISTS current_by_recorded_at;",
];

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: deadpool_postgres::Pool,
    connector: Arc<connect::Connector>,
    /// The connection of an import in progress ([`Reports::begin_bulk`]),
    /// its transaction open: the import's reads and writes go through it.
    bulk: Arc<tokio::sync::Mutex<Option<deadpool_postgres::Object>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// A connection: one of the pool's, or the open import's.
enum Conn<'a> {
    Pooled(Box<deadpool_postgres::Object>),
    Bulk(tokio::sync::MappedMutexGuard<'a, deadpool_postgres::Object>),
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        match self {
            Conn::Pooled(object) => object,
            Conn::Bulk(guard) => guard,
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (libpq's URL: several hosts, `sslmode`,
    /// `sslrootcert`; the password from the URL, `PGPASSWORD` or the file
    /// `DECOMPTE_STORE_PASSWORD_FILE` names) and brings the schema up to
    /// date.
    pub async fn connect(url: &str) -> Result<Self> {
        let connector = connect::Connector::new(url)?;
        let store = Self {
            pool: connector.pool()?,
            connector: Arc::new(connector),
            bulk: Arc::new(tokio::sync::Mutex::new(None)),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the steps of [`MIGRATIONS`] the database lacks, in one
    /// transaction under an advisory lock; returns how many it applied.
    pub async fn migrate(&self) -> Result<usize> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tx = conn.transaction().await.map_err(unavailable)?;
        tx.batch_execute(
            "SET LOCAL client_min_messages = warning; \
             SELECT pg_advisory_xact_lock(5600000001); \
             CREATE TABLE IF NOT EXISTS decompte_schema (version INTEGER NOT NULL); \
             INSERT INTO decompte_schema (version) SELECT 0 WHERE NOT EXISTS \
             (SELECT 1 FROM decompte_schema);",
        )
        .await
        .map_err(unavailable)?;
        let version: i32 = tx
            .query_one("SELECT version FROM decompte_schema", &[])
            .await
            .map_err(unavailable)?
            .get(0);
        let done = usize::try_from(version).unwrap_or(0);
        if done > MIGRATIONS.len() {
            // A newer version of decompte migrated this database (a rolling
            // upgrade under way, or a version rolled back): each step keeps
            // what the versions before it read and write, so this one runs
            // on, and leaves the recorded version as it is.
            tracing::warn!(
                database = version,
                known = MIGRATIONS.len(),
                "the database's schema is newer than this version of decompte"
            );
            return Ok(0);
        }
        for step in MIGRATIONS.iter().skip(done) {
            tx.batch_execute(step).await.map_err(unavailable)?;
        }
        let now = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        tx.execute("UPDATE decompte_schema SET version = $1", &[&now])
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(MIGRATIONS.len().saturating_sub(done))
    }

    /// A connection of the pool.
    async fn pooled(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The open import's connection if there is one, else one of the pool.
    async fn conn(&self) -> Result<Conn<'_>> {
        let guard = self.bulk.lock().await;
        match tokio::sync::MutexGuard::try_map(guard, Option::as_mut) {
            Ok(bulk) => Ok(Conn::Bulk(bulk)),
            Err(_) => Ok(Conn::Pooled(Box::new(self.pooled().await?))),
        }
    }
}

/// What failed, with the server's own message and SQLSTATE when it said.
fn unavailable(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Unavailable(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Unavailable(error.to_string()),
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A version or a count as PostgreSQL's INTEGER.
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn uint(n: i32) -> Result<u32> {
    u32::try_from(n).map_err(|e| StoreError::Corrupt(format!("a negative number: {e}")))
}

/// The advisory lock whose holder publishes (`pg_try_advisory_lock`, held
/// by the lease's own connection: the server lets it go when that
/// connection ends, whatever ended it).
const PUBLISHER_LOCK: i64 = 5_600_000_002;

/// The channel on which writes of reports and queued publications are
/// announced (`NOTIFY`, delivered at commit) to the publisher.
pub(crate) const CHANGES_CHANNEL: &str = "decompte_changes";

/// How often the lease's holder checks that its connection still answers.
const LEASE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Holds the lease: checks the connection every [`LEASE_CHECK`]; tells the
/// holder once the connection ended or stopped answering.
async fn hold_lease(
    client: Client,
    driver: tokio::task::JoinHandle<()>,
    signals: crate::lease::LeaseSignals,
) {
    let check = async {
        loop {
            tokio::time::sleep(LEASE_CHECK).await;
            let answered =
                tokio::time::timeout(LEASE_CHECK * 2, client.simple_query("SELECT 1")).await;
            if !matches!(answered, Ok(Ok(_))) {
                return;
            }
        }
    };
    tokio::select! {
        _ = driver => {}
        () = check => {}
    }
    tracing::warn!("the publisher's lease is lost: its connection to PostgreSQL ended");
    signals.lose();
}

#[async_trait]
impl Store for PostgresStore {
    async fn lease_publisher(&self) -> Result<Option<crate::PublisherLease>> {
        let (lease, signals) = crate::PublisherLease::shared();
        let told = signals.clone();
        let (client, driver) = self
            .connector
            .connect_listening(move || told.changed())
            .await?;
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&PUBLISHER_LOCK])
            .await
            .map_err(unavailable)?
            .get(0);
        if !taken {
            // Dropping the client closes its connection.
            return Ok(None);
        }
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .await
            .map_err(unavailable)?;
        Ok(Some(lease.held_by(tokio::spawn(hold_lease(
            client, driver, signals,
        )))))
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<()> {
        let conn = self.pooled().await?;
        let now = ts(now);
        for table in ["sessions", "idempotency", "login_failures"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE expires_at <= $1"),
                &[&now],
            )
            .await
            .map_err(unavailable)?;
        }
        Ok(())
    }
}
