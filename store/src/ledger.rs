//! The one way a report is written, whatever the channel (the form, the API,
//! the prefecture, an import, the demonstration): [`Ledger::record`] checks
//! who may write it, validates it, applies the correction rule, brings its
//! instant to the stores' precision and writes it under the version
//! condition, with the idempotency record of the request if there is one.
//! Transport-free: the app, the command line and the tests call it alike.

use chrono::{DateTime, Utc};
use decompte_core::correction::{check_correction, CorrectionError};
use decompte_core::time::to_stored_precision;
use decompte_core::{CommuneCode, Draft, FieldError, Reach, Report, Role, Rules, Scope, Source};

use crate::{Credential, IdempotencyRecord, Ledgered, Store, StoreError};

/// How long a replayable answer is kept for an `Idempotency-Key`.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// Who writes: the credential (or the tool) recorded with the version, what
/// it may write, and through which channel.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Recorded as `recorded_by`: a credential id, or a tool's name. Never a secret.
    pub id: String,
    pub authority: Authority,
    pub source: Source,
}

/// What an actor may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// The communes a credential reaches: a mairie its own, a prefecture
    /// those of its départements.
    Reach(Reach),
    /// Nothing: the ministry reads and manages codes, but the figures are
    /// the mairies' and the prefectures'.
    ReadOnly,
}

impl Actor {
    /// The actor of a credential: what it reaches, or nothing for the ministry.
    pub fn credential(credential: &Credential, source: Source) -> Self {
        let authority = match credential.role {
            Role::National => Authority::ReadOnly,
            Role::Commune | Role::Prefecture => Authority::Reach(credential.reach()),
        };
        Self {
            id: credential.id.clone(),
            authority,
            source,
        }
    }

    /// An operator's tool (`decompte import`, the demonstration): the whole scope.
    pub fn tool(id: &str, source: Source) -> Self {
        Self {
            id: id.to_owned(),
            authority: Authority::Reach(Reach::All),
            source,
        }
    }

    pub fn may_write(&self, commune: &CommuneCode) -> bool {
        match &self.authority {
            Authority::Reach(reach) => reach.contains(commune),
            Authority::ReadOnly => false,
        }
    }

    /// Why this actor may not write `commune`, in French.
    fn refusal(&self, commune: &CommuneCode) -> String {
        match &self.authority {
            Authority::Reach(reach) => reach.out_of_reach(commune),
            Authority::ReadOnly => "Le code national permet de consulter, pas de déclarer : \
                les déclarations et corrections sont faites par les mairies et les préfectures."
                .to_owned(),
        }
    }
}

/// An `Idempotency-Key` request: its record is written in the same atomic
/// step as the report, with the answer that a replay will get.
pub struct Replay<'a> {
    /// The caller's id and the client's key, so that two clients never share a key.
    pub key: String,
    /// SHA-256 of the request body, to refuse the same key with another body.
    pub request_hash: String,
    /// The answer's body for the stored report.
    pub answer: &'a (dyn Fn(&Report) -> String + Sync),
}

/// Why a report was not written. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The actor may not write this commune; the French message says why.
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "{}",
        .0.iter().map(|e| format!("{} : {}", e.field, e.message)).collect::<Vec<_>>().join(" ; "),
    )]
    Invalid(Vec<FieldError>),
    /// The version named is not the current one.
    #[error("{message}")]
    Conflict {
        current: Option<Box<Report>>,
        message: String,
    },
    /// A concurrent request took the same idempotency key first.
    #[error("idempotency key already used by a concurrent request")]
    IdempotencyKeyTaken,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RecordError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { current } => {
                let message = CorrectionError::conflict_message(current.as_deref(), Some(0));
                RecordError::Conflict { current, message }
            }
            StoreError::IdempotencyKeyTaken => RecordError::IdempotencyKeyTaken,
            other => RecordError::Store(other),
        }
    }
}

/// The reports of a deployment: its store, its rules and its scope.
#[derive(Clone, Copy)]
pub struct Ledger<'a> {
    pub store: &'a dyn Store,
    pub rules: &'a Rules,
    pub scope: &'a Scope,
}

impl<'a> Ledger<'a> {
    pub fn new(store: &'a dyn Store, rules: &'a Rules, scope: &'a Scope) -> Self {
        Self {
            store,
            rules,
            scope,
        }
    }

    /// Writes `draft` as the next version of its (commune, day), at `now`.
    pub async fn record(
        &self,
        actor: &Actor,
        draft: &Draft,
        replay: Option<Replay<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Report, RecordError> {
        if let Some(code) = draft
            .commune
            .as_deref()
            .and_then(|c| CommuneCode::parse(c).ok())
        {
            if !actor.may_write(&code) {
                return Err(RecordError::Forbidden(actor.refusal(&code)));
            }
        }
        let now = to_stored_precision(now);
        let valid = self
            .rules
            .validate(draft, self.scope, now)
            .map_err(RecordError::Invalid)?;
        let current = self
            .store
            .current_report(&valid.commune, valid.date)
            .await?;
        let version = match check_correction(current.as_ref(), &valid, &self.rules.settings) {
            Ok(version) => version,
            Err(CorrectionError::Conflict { current }) => {
                let message =
                    CorrectionError::conflict_message(current.as_deref(), valid.replaces_version);
                return Err(RecordError::Conflict { current, message });
            }
            Err(CorrectionError::LowerWithoutReason(fields)) => {
                return Err(RecordError::Invalid(fields))
            }
        };
        let report = Report {
            commune: valid.commune,
            date: valid.date,
            counts: valid.counts,
            version,
            recorded_at: now,
            recorded_by: actor.id.clone(),
            source: actor.source,
            reason: valid.reason,
            warnings: valid.warnings,
        };
        let record = replay.map(|replay| IdempotencyRecord {
            key: replay.key,
            request_hash: replay.request_hash,
            status: 201,
            body: (replay.answer)(&report),
            created_at: now,
            expires_at: now + chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS),
        });
        self.store
            .write_report(Ledgered::new(), &report, record.as_ref())
            .await?;
        // One line per declaration a person made; bulk imports and the
        // demonstration, thousands at a time, only at debug level.
        if report.source == Source::Import {
            tracing::debug!(
                commune = %report.commune, date = %report.date, version = report.version,
                recorded_by = %report.recorded_by, "report imported"
            );
        } else {
            tracing::info!(
                event = "report_recorded", commune = %report.commune, date = %report.date,
                version = report.version, source = %report.source,
                recorded_by = %report.recorded_by, "report recorded"
            );
        }
        Ok(report)
    }

    /// Makes the writes up to [`Ledger::end_bulk`] one unit where the
    /// store can ([`crate::Reports::begin_bulk`]): an import of many batches,
    /// about `size` reports.
    pub async fn begin_bulk(&self, size: usize) -> Result<bool, StoreError> {
        self.store.begin_bulk(Ledgered::new(), size).await
    }

    /// Ends the unit [`Ledger::begin_bulk`] began: keeps its writes, or
    /// undoes them.
    pub async fn end_bulk(&self, keep: bool) -> Result<(), StoreError> {
        self.store.end_bulk(Ledgered::new(), keep).await
    }

    /// Imports drafts as the value of their (commune, day): a new one is
    /// created, one that differs corrects whatever version is current, with
    /// `reason`, and one that is the same is left alone. Each is checked as
    /// [`Ledger::record`] checks one, then all are written together with
    /// [`crate::Reports::write_reports`] (on SQLite in one transaction: one
    /// refusal, and nothing is written); the current reports of the batch's
    /// (commune, day)s are read at once. Returns what was written and how
    /// many were the same.
    pub async fn import_batch(
        &self,
        actor: &Actor,
        drafts: &[Draft],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Report>, usize), (usize, RecordError)> {
        let batch = Self::check_batch(self.rules, self.scope, actor, drafts, now)?;
        self.write_checked(batch, reason).await
    }

    /// The first half of [`Ledger::import_batch`], which needs no store:
    /// who may write each draft, and the rules. An import checks the next
    /// batch on another thread while this one is written.
    pub fn check_batch(
        rules: &Rules,
        scope: &Scope,
        actor: &Actor,
        drafts: &[Draft],
        now: DateTime<Utc>,
    ) -> Result<CheckedBatch, (usize, RecordError)> {
        let now = to_stored_precision(now);
        let mut valid = Vec::with_capacity(drafts.len());
        for (index, draft) in drafts.iter().enumerate() {
            if let Some(code) = draft
                .commune
                .as_deref()
                .and_then(|c| CommuneCode::parse(c).ok())
            {
                if !actor.may_write(&code) {
                    return Err((index, RecordError::Forbidden(actor.refusal(&code))));
                }
            }
            let checked = rules
                .validate(draft, scope, now)
                .map_err(|fields| (index, RecordError::Invalid(fields)))?;
            valid.push(checked);
        }
        Ok(CheckedBatch {
            actor: actor.clone(),
            valid,
            now,
        })
    }

    /// The second half of [`Ledger::import_batch`]: the batch
    /// [`Ledger::check_batch`] checked, written under the correction rule.
    pub async fn write_checked(
        &self,
        batch: CheckedBatch,
        reason: &str,
    ) -> Result<(Vec<Report>, usize), (usize, RecordError)> {
        let CheckedBatch { actor, valid, now } = batch;
        let actor = &actor;
        if valid.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let keys: Vec<(CommuneCode, chrono::NaiveDate)> =
            valid.iter().map(|v| (v.commune.clone(), v.date)).collect();
        let current: std::collections::HashMap<(CommuneCode, chrono::NaiveDate), Report> = self
            .store
            .current_of(&keys)
            .await
            .map_err(|e| (0, e.into()))?
            .into_iter()
            .map(|r| ((r.commune.clone(), r.date), r))
            .collect();
        let mut reports = Vec::with_capacity(valid.len());
        // The draft each report comes from, to say which one a refusal is about.
        let mut origin = Vec::with_capacity(valid.len());
        let mut unchanged = 0;
        for (index, mut checked) in valid.into_iter().enumerate() {
            let existing = current.get(&(checked.commune.clone(), checked.date));
            if existing.is_some_and(|c| c.counts == checked.counts) {
                unchanged += 1;
                continue;
            }
            checked.replaces_version = existing.map(|c| c.version);
            if existing.is_some() {
                checked.reason = Some(reason.to_owned());
            }
            let version = match check_correction(existing, &checked, &self.rules.settings) {
                Ok(version) => version,
                Err(CorrectionError::Conflict { current }) => {
                    let message = CorrectionError::conflict_message(
                        current.as_deref(),
                        checked.replaces_version,
                    );
                    return Err((index, RecordError::Conflict { current, message }));
                }
                Err(CorrectionError::LowerWithoutReason(fields)) => {
                    return Err((index, RecordError::Invalid(fields)))
                }
            };
            reports.push(Report {
                commune: checked.commune,
                date: checked.date,
                counts: checked.counts,
                version,
                recorded_at: now,
                recorded_by: actor.id.clone(),
                source: actor.source,
                reason: checked.reason,
                warnings: checked.warnings,
            });
            origin.push(index);
        }
        self.store
            .write_reports(Ledgered::new(), &reports)
            .await
            .map_err(|e| match e {
                StoreError::Partial { written, error } => (
                    written,
                    RecordError::Store(StoreError::Partial { written, error }),
                ),
                // Which draft met a newer version: the one of the same day.
                StoreError::Conflict { current } => {
                    let index = current
                        .as_deref()
                        .and_then(|c| {
                            reports
                                .iter()
                                .position(|r| r.commune == c.commune && r.date == c.date)
                        })
                        .map_or(0, |at| origin[at]);
                    (index, StoreError::Conflict { current }.into())
                }
                other => (0, other.into()),
            })?;
        tracing::info!(
            reports = reports.len(), unchanged, recorded_by = %actor.id, source = %actor.source,
            "reports recorded in one batch"
        );
        Ok((reports, unchanged))
    }
}

/// Drafts [`Ledger::check_batch`] checked for an actor at an instant, which
/// only [`Ledger::write_checked`] reads.
#[derive(Debug)]
pub struct CheckedBatch {
    actor: Actor,
    valid: Vec<decompte_core::ValidDraft>,
    now: DateTime<Utc>,
}

/// The one other way a report is written: a copy of another store's
/// history (`decompte store copy`), each version as it was, with who, when
/// and why. The versions are written under the same condition, level by
/// level (every first version, then every second one, …), so that each
/// follows the one before it in the target, in batches of `batch`.
pub async fn restore(
    store: &dyn Store,
    versions: &[Report],
    batch: usize,
) -> Result<(), StoreError> {
    let mut levels: std::collections::BTreeMap<u32, Vec<Report>> =
        std::collections::BTreeMap::new();
    for report in versions {
        levels
            .entry(report.version)
            .or_default()
            .push(report.clone());
    }
    for reports in levels.values() {
        for chunk in reports.chunks(batch.max(1)) {
            store.write_reports(Ledgered::new(), chunk).await?;
        }
    }
    Ok(())
}
