//! Submitting a report: the one path every channel (API, form) goes through.

use chrono::{DateTime, Utc};
use decompte_core::correction::{check_correction, CorrectionError};
use decompte_core::time::paris_today;
use decompte_core::{CommuneCode, Draft, FieldError, Report, Source};
use decompte_store::{IdempotencyRecord, StoreError};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// How long a replayable answer is kept for an `Idempotency-Key`.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// Why a submission was refused. Nothing was written in any case.
#[derive(Debug)]
pub enum SubmitError {
    Invalid(Vec<FieldError>),
    Conflict {
        current: Option<Box<Report>>,
        message: String,
    },
    /// A concurrent request took the same idempotency key first.
    IdempotencyKeyTaken,
    Other(ApiError),
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Invalid(fields) => ApiError::invalid(fields),
            SubmitError::Conflict { current, message } => {
                ApiError::conflict(message, current.as_deref().map(report_json))
            }
            SubmitError::IdempotencyKeyTaken => ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "idempotency_in_progress",
                "Une requête avec la même clé d'idempotence est en cours : réessayez dans un instant.",
            ),
            SubmitError::Other(error) => error,
        }
    }
}

impl From<StoreError> for SubmitError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { current } => {
                let message = CorrectionError::conflict_message(current.as_deref(), Some(0));
                SubmitError::Conflict { current, message }
            }
            StoreError::IdempotencyKeyTaken => SubmitError::IdempotencyKeyTaken,
            other => SubmitError::Other(other.into()),
        }
    }
}

/// A stored report as the API returns it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReportBody {
    /// INSEE code of the commune.
    #[schema(value_type = String, example = "56260")]
    pub commune: CommuneCode,
    /// Day of the deaths (Europe/Paris).
    #[schema(value_type = String, format = Date, example = "2020-04-01")]
    pub date: chrono::NaiveDate,
    /// Count by setting key.
    pub counts: std::collections::BTreeMap<String, u32>,
    pub total: u64,
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// The credential id that wrote this version (never a secret).
    pub recorded_by: String,
    pub source: Source,
    pub reason: Option<String>,
}

impl From<&Report> for ReportBody {
    fn from(report: &Report) -> Self {
        Self {
            commune: report.commune.clone(),
            date: report.date,
            counts: report.counts.clone(),
            total: report.total(),
            version: report.version,
            recorded_at: report.recorded_at,
            recorded_by: report.recorded_by.clone(),
            source: report.source,
            reason: report.reason.clone(),
        }
    }
}

/// The JSON form of a stored report, as the API returns it.
pub fn report_json(report: &Report) -> Value {
    serde_json::to_value(ReportBody::from(report)).unwrap_or(Value::Null)
}

/// Validates and writes one report. `idempotency` is the caller-scoped key and
/// the hash of the request body; its record is written atomically with the report.
pub async fn submit(
    state: &AppState,
    caller: &Caller,
    draft: &Draft,
    source: Source,
    idempotency: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<Report, SubmitError> {
    if let Some(code) = draft
        .commune
        .as_deref()
        .and_then(|c| CommuneCode::parse(c).ok())
    {
        if !caller.may_access(&code) {
            return Err(SubmitError::Other(ApiError::forbidden(format!(
                "Votre code d'accès ne permet de déclarer que pour la commune {} : vous ne pouvez pas déclarer pour la commune {code}.",
                caller.credential.commune.as_ref().map_or("?", |c| c.as_str())
            ))));
        }
    }
    let now = decompte_core::time::to_stored_precision(now);
    let config = &state.config;
    let valid = config
        .rules
        .validate(draft, &config.scope, paris_today(now))
        .map_err(SubmitError::Invalid)?;
    let current = state
        .store
        .current_report(&valid.commune, valid.date)
        .await
        .map_err(SubmitError::from)?;
    let version = match check_correction(current.as_ref(), &valid, &config.rules.settings) {
        Ok(version) => version,
        Err(CorrectionError::Conflict { current }) => {
            let message =
                CorrectionError::conflict_message(current.as_deref(), valid.replaces_version);
            return Err(SubmitError::Conflict { current, message });
        }
        Err(CorrectionError::LowerWithoutReason(fields)) => {
            return Err(SubmitError::Invalid(fields))
        }
    };
    let report = Report {
        commune: valid.commune,
        date: valid.date,
        counts: valid.counts,
        version,
        recorded_at: now,
        recorded_by: caller.id().to_owned(),
        source,
        reason: valid.reason,
    };
    let record = idempotency.map(|(key, request_hash)| IdempotencyRecord {
        key,
        request_hash,
        status: 201,
        body: report_json(&report).to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS),
    });
    state.store.write_report(&report, record.as_ref()).await?;
    tracing::info!(
        commune = %report.commune, date = %report.date, version = report.version,
        source = %report.source, recorded_by = %report.recorded_by, "report recorded"
    );
    Ok(report)
}
