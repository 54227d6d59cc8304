//! The storage contract of decompte and its embedded backend.
//!
//! Architecture invariant: only this crate knows SQL (the DynamoDB backend is
//! in `decompte-aws`). The [`Store`] trait is shaped for a conditional-write
//! key-value store: a report version is written together with the current
//! pointer and the idempotency record in one atomic step, on the condition
//! that the version it replaces is still current. Every backend passes the
//! suite in `conformance` (feature `testing`).

#[cfg(feature = "testing")]
pub mod conformance;
pub mod lease;
pub mod ledger;
mod model;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{CommuneCode, Report};

pub use lease::PublisherLease;
pub use ledger::{Actor, Authority, CheckedBatch, Ledger, RecordError, Replay};

/// The store's traits, to call any of its methods on a `dyn Store`.
pub mod prelude {
    pub use crate::{Access, Publications, References, Reminders, Reports, Store};
}
pub use model::{
    ContactOverrides, Credential, IdempotencyRecord, Publication, PublicationRequest,
    PublicationStatus, ReferenceSeries, Reminder, ReportQuery, SecondFactor, Session, Tally,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The version condition failed: another write got there first.
    #[error("version conflict")]
    Conflict { current: Option<Box<Report>> },
    /// The idempotency key was taken by a concurrent request between read and write.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// The backend cannot be reached or failed; nothing was written.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A batch written in several atomic steps stopped after `written` reports
    /// (the first ones, in the order given); the rest was not written.
    #[error("{written} report(s) written, then: {error}")]
    Partial {
        written: usize,
        error: Box<StoreError>,
    },
}

/// What the store's report writes take: made by the [`Ledger`] only (and,
/// behind the `testing` feature, by the conformance suite and the tests'
/// fixtures), so that a write that bypasses the ledger's rules does not
/// compile.
#[derive(Debug, Clone, Copy)]
pub struct Ledgered {
    _private: (),
}

impl Ledgered {
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }

    /// For the tests' fixtures, which write reports as they are (past
    /// instants, a chosen version) without the ledger's checks.
    #[cfg(feature = "testing")]
    pub const fn for_fixtures() -> Self {
        Self::new()
    }
}

/// A position in the changes of the reports, which a reader (the publisher)
/// keeps to read only what changed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeMark {
    /// The store numbers each write inside its transaction, in commit
    /// order: whatever is numbered after it was committed after it, and is
    /// read once, with no margin (SQLite).
    Sequence(u64),
    /// The latest `recorded_at` read. A write takes its instant before it
    /// commits, so the changes after it include those recorded up to
    /// [`CHANGE_MARGIN_MINUTES`] before it, some of them read already
    /// (DynamoDB).
    Instant(DateTime<Utc>),
}

/// How far before an [`ChangeMark::Instant`] the changes after it begin: a
/// write takes its instant before it commits, and a request lasts at most a
/// few store timeouts.
pub const CHANGE_MARGIN_MINUTES: i64 = 2;

/// What [`Reports::changes_after`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The current reports written after the mark, in the order written
    /// (after an instant, also those of the margin before it).
    pub reports: Vec<Report>,
    /// The mark to read the next changes after.
    pub mark: ChangeMark,
}

/// Reports: the current value and every version of each (commune, day), and
/// the idempotency records written with them. What the ledger, the app's
/// readers and the publisher need.
#[async_trait]
pub trait Reports: Send + Sync {
    async fn current_report(
        &self,
        commune: &CommuneCode,
        date: NaiveDate,
    ) -> Result<Option<Report>>;
    /// Writes many new versions (an import), each under its version condition,
    /// without idempotency records. A backend with transactions of any size
    /// (SQLite) writes them in one: a stale version, and nothing is written.
    /// Others write them in order, in atomic batches, and say in
    /// [`StoreError::Partial`] how many were written before a failure.
    async fn write_reports(&self, by: Ledgered, reports: &[Report]) -> Result<()>;
    /// Makes the writes of this store up to [`Reports::end_bulk`] one unit,
    /// all or nothing, where the backend can (SQLite: one transaction, which
    /// holds other writers back until it ends); returns whether it does.
    /// Elsewhere (DynamoDB) a no-op: each [`Reports::write_reports`] stands
    /// alone and says what it wrote. For an import of many batches, by one
    /// process. Inside a bulk, a batch that fails may leave part of it
    /// written until the bulk ends: after a failure, end it undone.
    /// `size` says about how many reports the bulk will write, for a store
    /// that prepares for it (SQLite builds its date index again at the end
    /// of a bulk that at least doubles its table, instead of inserting into
    /// it in date order while the rest is written in key order).
    async fn begin_bulk(&self, by: Ledgered, size: usize) -> Result<bool> {
        let _ = (by, size);
        Ok(false)
    }
    /// Ends the unit [`Reports::begin_bulk`] began: keeps its writes, or
    /// undoes every one of them.
    async fn end_bulk(&self, by: Ledgered, keep: bool) -> Result<()> {
        let _ = (by, keep);
        Ok(())
    }
    /// Writes `report` as a new version. Succeeds only if the current version of
    /// its (commune, day) is `report.version - 1` (none for version 1); otherwise
    /// [`StoreError::Conflict`] with the current report and nothing written. The
    /// idempotency record, if any, is written in the same atomic step.
    async fn write_report(
        &self,
        by: Ledgered,
        report: &Report,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<()>;
    async fn current_reports(&self, query: &ReportQuery) -> Result<Vec<Report>>;
    /// The current reports of these (commune, day)s, those that exist, in
    /// any order: what a batch of an import replaces. This default reads
    /// them one by one.
    async fn current_of(&self, keys: &[(CommuneCode, NaiveDate)]) -> Result<Vec<Report>> {
        let mut reports = Vec::new();
        for (commune, date) in keys {
            if let Some(report) = self.current_report(commune, *date).await? {
                reports.push(report);
            }
        }
        Ok(reports)
    }
    /// Every version of a (commune, day), oldest first.
    async fn history(&self, commune: &CommuneCode, date: NaiveDate) -> Result<Vec<Report>>;
    /// Every version of every report matching `query`, by date, commune and version.
    async fn versions(&self, query: &ReportQuery) -> Result<Vec<Report>>;
    /// Communes that have a report for `date`.
    async fn reported_communes(&self, date: NaiveDate) -> Result<BTreeSet<CommuneCode>>;
    /// Current reports recorded strictly after `since`: what a store that
    /// marks changes by instant (DynamoDB) publishes from. The SQL stores,
    /// which number their writes, keep no index by instant and read the
    /// whole table for it.
    async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<Report>>;
    /// The mark of every write committed now: a reader that then reads the
    /// store, and later [`Reports::changes_after`] this mark, misses no
    /// write. This default marks by instant (`now`).
    async fn change_mark(&self, now: DateTime<Utc>) -> Result<ChangeMark> {
        Ok(ChangeMark::Instant(now))
    }
    /// The current reports written after `mark` (a mark of this store's
    /// kind) and the mark after them. This default reads by instant, from
    /// [`CHANGE_MARGIN_MINUTES`] before it.
    async fn changes_after(&self, mark: ChangeMark) -> Result<Changes> {
        let ChangeMark::Instant(after) = mark else {
            return Err(StoreError::Corrupt(format!(
                "a mark of another store: {mark:?}"
            )));
        };
        let since = after
            .checked_sub_signed(chrono::Duration::minutes(CHANGE_MARGIN_MINUTES))
            .unwrap_or(after);
        let reports = self.changed_since(since).await?;
        let latest = reports.iter().map(|r| r.recorded_at).max();
        Ok(Changes {
            mark: ChangeMark::Instant(latest.map_or(after, |l| l.max(after))),
            reports,
        })
    }
    /// The current reports of a département as [`Tally`]s (the counts of
    /// `keys`, `flagged` when recorded by `flag`): what a publication reads.
    /// A backend may read them faster than whole reports.
    async fn current_tallies(
        &self,
        departement: &str,
        keys: &[String],
        flag: &str,
    ) -> Result<Vec<Tally>> {
        let reports = self
            .current_reports(&ReportQuery {
                departements: vec![departement.to_owned()],
                ..ReportQuery::default()
            })
            .await?;
        Ok(reports.iter().map(|r| Tally::of(r, keys, flag)).collect())
    }

    /// The record of `key`, unless it expired at `now`.
    async fn idempotency_record(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>>;
}

/// Who may come in: credentials, sessions and the counters of failed logins.
/// What the app's authentication needs.
#[async_trait]
pub trait Access: Send + Sync {
    async fn insert_credential(&self, credential: &Credential) -> Result<()>;
    async fn credential_by_hash(&self, code_hash: &str) -> Result<Option<Credential>>;
    async fn credential(&self, id: &str) -> Result<Option<Credential>>;
    async fn credentials(&self) -> Result<Vec<Credential>>;
    /// Returns false if no such credential exists or it was already revoked.
    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool>;
    async fn touch_credential(&self, id: &str, at: DateTime<Utc>) -> Result<()>;
    /// Sets the départements a credential reaches (an agent's, from the
    /// rules at its sign-in); false if no such credential exists.
    async fn set_departements(&self, id: &str, departements: &[String]) -> Result<bool>;

    // The second factor (TOTP) of the prefecture and national credentials.
    /// Begins an enrolment with `secret`, replacing one begun before; false
    /// if the credential is unknown or its second factor already confirmed.
    async fn begin_second_factor(&self, id: &str, secret: &str) -> Result<bool>;
    /// Confirms the enrolment begun with `secret` (the holder typed a right
    /// code, of time step `step`) and keeps the hashes of its recovery
    /// codes; false if another enrolment replaced it or it is confirmed.
    async fn confirm_second_factor(
        &self,
        id: &str,
        secret: &str,
        step: u64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Accepts time step `step` once: false if it, or a later one, was
    /// already accepted (a code seen once is never good again).
    async fn use_second_factor_step(&self, id: &str, step: u64) -> Result<bool>;
    /// Uses up a recovery code by its hash: false if there is no such
    /// unused code.
    async fn use_recovery_code(&self, id: &str, hash: &str) -> Result<bool>;

    // Sessions.
    async fn insert_session(&self, session: &Session) -> Result<()>;
    /// The session, unless it expired at `now`.
    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Records activity on a session (its idle timeout starts again).
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()>;
    /// Ends every session of a credential (on revocation).
    async fn delete_sessions_of(&self, credential_id: &str) -> Result<()>;

    // Login throttling: failures counted per key in fixed windows.
    /// Adds one failure to `key` in the window starting at `window`; returns the new count.
    async fn add_failure(
        &self,
        key: &str,
        window: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32>;
    /// Failures of `key` in `window`; zero once the counter expired at `now`.
    async fn failures(&self, key: &str, window: DateTime<Utc>, now: DateTime<Utc>) -> Result<u32>;
}

/// The record of each publication, for the prefecture page and the API.
#[async_trait]
pub trait Publications: Send + Sync {
    async fn insert_publication(&self, publication: &Publication) -> Result<()>;
    async fn update_publication(&self, publication: &Publication) -> Result<()>;
    async fn publication(&self, id: &str) -> Result<Option<Publication>>;
    /// The latest publications, newest first.
    async fn publications(&self, limit: usize) -> Result<Vec<Publication>>;
    /// Writes `publication` (its new status and start) only if the stored
    /// record is still queued: `true` if this caller took it, `false` if
    /// another process runs it already — a publication runs once, whichever
    /// replica or function picks it up.
    async fn claim_publication(&self, publication: &Publication) -> Result<bool>;
}

/// Reference series imported by the prefectures, to compare the declarations with.
#[async_trait]
pub trait References: Send + Sync {
    /// Replaces the département's series.
    async fn put_reference(&self, series: &ReferenceSeries) -> Result<()>;
    async fn reference(&self, departement: &str) -> Result<Option<ReferenceSeries>>;
    /// Replaces the département's mairie contacts.
    async fn put_contacts(&self, contacts: &ContactOverrides) -> Result<()>;
    async fn contacts(&self, departement: &str) -> Result<Option<ContactOverrides>>;
}

/// The mairies the crisis cell reached about a day they had not declared.
#[async_trait]
pub trait Reminders: Send + Sync {
    /// Records `reminder` unless the commune was already reached about that
    /// day: `true` if recorded, `false` if an earlier one stands.
    async fn record_reminder(&self, reminder: &Reminder) -> Result<bool>;
    /// The reminders of a day for the communes of a département, in commune order.
    async fn reminders(&self, date: NaiveDate, departement: &str) -> Result<Vec<Reminder>>;
}

/// The storage contract: the five parts above, each method atomic on its
/// own, and the upkeep of expired records. Backends implement each part in a
/// module of its own.
#[async_trait]
pub trait Store: Reports + Access + Publications + References + Reminders + 'static {
    /// Reclaims the space of expired sessions, idempotency records and throttling
    /// counters. Reads never return expired records anyway; a backend with its own
    /// expiry (DynamoDB's TTL) may do nothing here.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<()>;

    /// Takes the publisher's lease among the processes that share this
    /// store, if no other holds it: `Ok(None)` while another does. A store
    /// one process owns (SQLite's file) or whose publications run in a
    /// function of their own (DynamoDB) grants it at once, for good.
    async fn lease_publisher(&self) -> Result<Option<PublisherLease>> {
        Ok(Some(PublisherLease::sole()))
    }
}
