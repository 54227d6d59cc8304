//! Submitting a report from the app (the form, the API): the caller's
//! credential becomes the [`Actor`] of the one write path, [`Ledger::record`].

use chrono::{DateTime, Utc};
use decompte_core::plausibility::{self, Warning};
use decompte_core::{CommuneCode, Draft, FieldError, Report, Source};
use decompte_store::{Actor, Ledger, RecordError, Replay, StoreError};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Why a submission was refused. Nothing was written in any case.
#[derive(Debug)]
pub enum SubmitError {
    Invalid(Vec<FieldError>),
    /// Figures to look at again: nothing saved until the author confirms.
    Warnings(Vec<Warning>),
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
            SubmitError::Warnings(warnings) => ApiError::warnings(warnings),
            SubmitError::Conflict { current, message } => {
                ApiError::conflict(message, current.as_deref().map(report_json))
            }
            SubmitError::IdempotencyKeyTaken => ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "idempotency_in_progress",
                "Une requête avec la même clé d'idempotence est en cours : réessayez dans un \
                    instant.",
            ),
            SubmitError::Other(error) => error,
        }
    }
}

impl From<RecordError> for SubmitError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Forbidden(message) => SubmitError::Other(ApiError::forbidden(message)),
            RecordError::Invalid(fields) => SubmitError::Invalid(fields),
            RecordError::Conflict { current, message } => {
                SubmitError::Conflict { current, message }
            }
            RecordError::IdempotencyKeyTaken => SubmitError::IdempotencyKeyTaken,
            RecordError::Store(error) => SubmitError::Other(error.into()),
        }
    }
}

impl From<StoreError> for SubmitError {
    fn from(error: StoreError) -> Self {
        RecordError::from(error).into()
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
    /// The warnings its author confirmed before saving (`implausible`,
    /// `jump`, `old_day`); absent if there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
            warnings: report.warnings.clone(),
        }
    }
}

/// The JSON form of a stored report, as the API returns it.
pub fn report_json(report: &Report) -> Value {
    serde_json::to_value(ReportBody::from(report)).unwrap_or(Value::Null)
}

/// Validates and writes one report through the ledger. `idempotency` is the
/// caller-scoped key and the hash of the request body; its record is written
/// atomically with the report, with the API's answer for a replay.
pub async fn submit(
    state: &AppState,
    caller: &Caller,
    draft: &Draft,
    source: Source,
    idempotency: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<Report, SubmitError> {
    let credential = &caller.credential;
    let actor = Actor::credential(credential, source);
    let config = &state.config;
    // Figures to look at again: saved only once confirmed, and then the
    // warnings confirmed are kept with the version.
    let warnings = warnings_of(state, draft, now).await?;
    let mut draft = draft.clone();
    if !warnings.is_empty() {
        if !draft.confirm {
            return Err(SubmitError::Warnings(warnings));
        }
        draft.warnings = warnings.iter().map(|w| w.code.to_owned()).collect();
    }
    let draft = &draft;
    let answer = |report: &Report| report_json(report).to_string();
    let replay = idempotency.map(|(key, request_hash)| Replay {
        key,
        request_hash,
        answer: &answer,
    });
    let report = match Ledger::new(state.store.as_ref(), &config.rules, &config.scope)
        .record(&actor, draft, replay, now)
        .await
        .map_err(SubmitError::from)
    {
        Ok(report) => report,
        // Who wrote the current version, named as people know it.
        Err(SubmitError::Conflict { current, message }) => {
            let message = match current.as_deref() {
                Some(report) => {
                    let names = labels(state, vec![report.recorded_by.clone()]).await;
                    match names.get(&report.recorded_by) {
                        Some(label) => message.replace(&report.recorded_by, label),
                        None => message,
                    }
                }
                None => message,
            };
            return Err(SubmitError::Conflict { current, message });
        }
        Err(error) => return Err(error),
    };
    state.publisher.report_written();
    Ok(report)
}

/// What a caller is told of who asked for a publication and why.
pub enum Requester {
    /// Its own, the timer's, its prefecture's (a credential that shares
    /// one of its départements), or any for the national level: the label.
    Known(String),
    /// Another prefecture's or the national level's: its kind only.
    Other(&'static str),
}

impl Requester {
    pub fn is_known(&self) -> bool {
        matches!(self, Requester::Known(_))
    }

    pub fn label(&self) -> &str {
        match self {
            Requester::Known(label) => label,
            Requester::Other(kind) => kind,
        }
    }
}

/// Who asked for each of these publications, as `caller` may know it
/// (by the requester's id). A publication concerns the whole site, so every
/// prefecture sees that it happened; who asked and why stay with the
/// requester's prefecture and the national level.
pub async fn requesters(
    state: &AppState,
    caller: &Caller,
    requested_by: impl IntoIterator<Item = String>,
) -> std::collections::HashMap<String, Requester> {
    let deployment = &state.config.scope;
    let mut seen = std::collections::HashMap::new();
    for id in requested_by {
        if seen.contains_key(&id) {
            continue;
        }
        let credential = match state.store.credential(&id).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "a requester could not be read");
                None
            }
        };
        let requester = match credential {
            None if id == decompte_publish::AUTOMATIC => Requester::Known(id.clone()),
            None if id == caller.id() => Requester::Known(id.clone()),
            None if caller.role() == decompte_core::Role::National => Requester::Known(id.clone()),
            None => Requester::Other("Un outil de l'exploitant"),
            Some(credential) => {
                let known = credential.id == caller.id()
                    || caller.role() == decompte_core::Role::National
                    || (credential.role == decompte_core::Role::Prefecture
                        && caller
                            .reach()
                            .shares_departement_with(&credential.reach(), deployment));
                if known {
                    Requester::Known(credential.label)
                } else if credential.role == decompte_core::Role::National {
                    Requester::Other("Le niveau national")
                } else {
                    Requester::Other("Une autre préfecture")
                }
            }
        };
        seen.insert(id, requester);
    }
    seen
}

/// The labels of these credential ids (« Mairie de Vannes », « Cellule de
/// crise »): what pages show of who did something. An id that is no
/// credential (a tool: an import, the demonstration) is its own label; one
/// the store cannot read now is left out.
pub async fn labels(
    state: &AppState,
    ids: Vec<String>,
) -> std::collections::HashMap<String, String> {
    let mut labels = std::collections::HashMap::new();
    for id in ids {
        if labels.contains_key(&id) {
            continue;
        }
        match state.store.credential(&id).await {
            Ok(Some(credential)) => {
                labels.insert(id, credential.label);
            }
            Ok(None) => {
                labels.insert(id.clone(), id);
            }
            Err(error) => tracing::warn!(%error, "a credential's label could not be read"),
        }
    }
    labels
}

/// The label of one credential id, the id itself when it has none.
pub async fn label(state: &AppState, id: &str) -> String {
    labels(state, vec![id.to_owned()])
        .await
        .remove(id)
        .unwrap_or_else(|| id.to_owned())
}

/// The warnings of a draft (`plausibility`): none for one that is not valid
/// (the ledger says what is wrong with it).
pub async fn warnings_of(
    state: &AppState,
    draft: &Draft,
    now: DateTime<Utc>,
) -> Result<Vec<Warning>, SubmitError> {
    let config = &state.config;
    let Ok(valid) = config.rules.validate(draft, &config.scope, now) else {
        return Ok(Vec::new());
    };
    let Some(commune) = config.scope.get(&valid.commune) else {
        return Ok(Vec::new());
    };
    let week_before = state
        .store
        .current_reports(&decompte_store::ReportQuery {
            commune: Some(valid.commune.clone()),
            from: Some(valid.date - chrono::Duration::days(7)),
            to: Some(valid.date - chrono::Duration::days(1)),
            ..decompte_store::ReportQuery::default()
        })
        .await?
        .iter()
        .map(Report::total)
        .collect::<Vec<_>>();
    let context = plausibility::Context {
        population: commune.population,
        expected_daily: commune.population as f64
            * config.death_rates.daily_rate(&commune.departement),
        week_before: &week_before,
        today: decompte_core::time::local_today(&commune.departement, now),
        old_after: config.old_day_after,
    };
    let total = valid.counts.values().map(|&n| u64::from(n)).sum();
    Ok(plausibility::warnings(total, valid.date, &context))
}

/// Asks for a publication on behalf of a prefecture or the national level.
pub async fn republish(
    state: &AppState,
    caller: &Caller,
    reason: &str,
) -> Result<decompte_store::Publication, decompte_store::StoreError> {
    let publication = state.publisher.trigger(caller.id(), reason).await?;
    tracing::info!(
        event = "publication_requested",
        credential = %caller.id(),
        publication = %publication.id,
        "publication requested"
    );
    Ok(publication)
}

/// The contacts of the mairies of `codes`: the public directory's
/// (`data/mairies.csv`), each replaced by what the prefecture set for its
/// département (`/prefecture/contacts`).
pub async fn mairie_contacts(
    state: &AppState,
    codes: &std::collections::BTreeSet<&str>,
) -> Result<std::collections::BTreeMap<String, decompte_config::MairieContact>, StoreError> {
    let mut contacts = decompte_config::mairie_contacts(codes);
    let departements: std::collections::BTreeSet<String> = codes
        .iter()
        .filter_map(|code| CommuneCode::parse(code).ok())
        .map(|code| code.departement().to_owned())
        .collect();
    for departement in departements {
        let Some(set) = state.store.contacts(&departement).await? else {
            continue;
        };
        for (code, (telephone, email)) in set.contacts {
            if codes.contains(code.as_str()) {
                contacts.insert(code, decompte_config::MairieContact { telephone, email });
            }
        }
    }
    Ok(contacts)
}
