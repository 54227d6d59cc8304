//! Declarations through the API: a report sent, the list, a day's history.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use decompte_core::auth::hash_secret;
use decompte_core::time::parse_date;
use decompte_core::{CommuneCode, CountValue, Draft, FieldError, Role, Source};
use decompte_store::ReportQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ErrorBody};
use crate::service::{report_json, submit, ReportBody, SubmitError};
use crate::AppState;

use super::document::is_idempotency_key;
use super::{caller, out_of_reach, peer};

/// A report as submitted: the body of `POST /api/v1/reports`. The OpenAPI
/// document is generated from this very type, and the server parses bodies
/// with it (unknown fields refused): there is no second description to drift.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// INSEE code of the commune.
    #[schema(required = true, example = "56260")]
    commune: Option<String>,
    /// Day of the deaths, AAAA-MM-JJ (or JJ/MM/AAAA).
    #[schema(required = true, format = Date, example = "2020-04-01")]
    date: Option<String>,
    /// One integer ≥ 0 for every setting (`hopital`, `ehpad`, `esms`, `domicile`,
    /// `autre` by default).
    /// Read as JSON values, so that a wrong one gets its own French message.
    #[schema(required = true, value_type = BTreeMap<String, u32>)]
    counts: Option<BTreeMap<String, Value>>,
    /// The version this report replaces; absent for a first report.
    #[schema(minimum = 1)]
    replaces_version: Option<u32>,
    /// Why; required when a count goes down.
    reason: Option<String>,
    /// Save despite the warnings a first send answered with
    /// (`confirmation_required`): they are kept with the version.
    confirm: Option<bool>,
}

impl ReportInput {
    fn into_draft(self) -> Draft {
        Draft {
            commune: self.commune,
            date: self.date,
            counts: self
                .counts
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, CountValue::Json(value)))
                .collect(),
            replaces_version: self.replaces_version,
            reason: self.reason,
            confirm: self.confirm.unwrap_or(false),
            warnings: Vec::new(),
        }
    }
}

/// Reads a request body as JSON within the size limit.
pub(crate) async fn json_body(
    state: &AppState,
    request: Request,
) -> Result<(HeaderMap, Option<std::net::IpAddr>, Bytes), ApiError> {
    let limit = state.config.max_body_bytes;
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json"
        && !(essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Err(ApiError::unsupported_media_type());
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit))?;
    let peer = peer(&parts.extensions);
    Ok((parts.headers, peer, bytes))
}

/// Turns the JSON body into a draft with [`ReportInput`], refusing unknown
/// fields and wrong types with a French message for the field at fault.
pub fn draft_from_json(bytes: &[u8]) -> Result<Draft, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, ReportInput>(&mut deserializer) {
        Ok(input) if input.replaces_version == Some(0) => Err(ApiError::invalid(vec![body_error(
            "replaces_version",
            &serde_json::Error::io(std::io::ErrorKind::InvalidData.into()),
        )])),
        Ok(input) => Ok(input.into_draft()),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            Err(ApiError::invalid(vec![body_error(&path, &inner)]))
        }
    }
}

/// The French message for a body that `ReportInput` refused at `path`.
pub(super) fn body_error(path: &str, error: &serde_json::Error) -> FieldError {
    let text = error.to_string();
    if let Some(unknown) = text
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        return FieldError::new(
            unknown,
            format!(
                "Le champ « {unknown} » est inconnu. Champs \
            possibles : commune, date, counts, replaces_version, reason."
            ),
        );
    }
    if error.is_syntax() || error.is_eof() {
        return FieldError::new(
            "body",
            format!(
                "Le corps de la requête n'est pas un JSON valide \
            ({error}) : envoyez un objet comme {{\"commune\": \"56260\", \"date\": \"2020-04-01\", \
            \"counts\": {{…}}}}."
            ),
        );
    }
    let field = path.split('.').next().unwrap_or(path);
    match field {
        "commune" => FieldError::new(
            "commune",
            "Le code commune doit être une chaîne, par exemple \
            \"56260\".",
        ),
        "date" => FieldError::new(
            "date",
            "La date doit être une chaîne AAAA-MM-JJ, par exemple \
            \"2020-04-01\".",
        ),
        "counts" => FieldError::new(
            "counts",
            "« counts » doit être un objet : un nombre par lieu, \
            par exemple {\"hopital\": 0, \"ehpad\": 2, …}.",
        ),
        "replaces_version" => FieldError::new(
            "replaces_version",
            "« replaces_version » doit être \
            le numéro (entier ≥ 1) de la version que vous corrigez.",
        ),
        "reason" => FieldError::new("reason", "Le motif doit être un texte."),
        _ => FieldError::new(
            "body",
            "Le corps de la requête doit être un objet JSON : \
            {\"commune\", \"date\", \"counts\", \"replaces_version\", \"reason\"}.",
        ),
    }
}

pub(super) fn replay(status: u16, body: String) -> Response {
    // A replayed creation answers 200: the report exists, and this request created nothing.
    let status = if status == 201 {
        StatusCode::OK
    } else {
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        "idempotent-replayed",
        header::HeaderValue::from_static("true"),
    );
    response
}

/// Declare or correct a report.
#[utoipa::path(post, path = "/api/v1/reports", request_body = ReportInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Rejouer la même requête \
        avec la même clé ne crée rien de plus")),
    responses(
        (status = 201, description = "Enregistrée", body = ReportBody),
        (status = 200, description = "Requête idempotente rejouée", body = ReportBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (
            status = 409,
            description = "Version périmée ; « current » donne la déclaration actuelle",
            body = ErrorBody,
        ),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn post_report(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let now = state.now();
    let peer = peer(request.extensions());
    let caller = caller(&state, request.headers(), peer).await?;
    let (headers, _, bytes) = json_body(&state, request).await?;
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|k| is_idempotency_key(k))
                .ok_or_else(|| {
                    ApiError::invalid(vec![FieldError::new(
                        "Idempotency-Key",
                        "L'en-tête Idempotency-Key doit être un texte de 1 à 200 caractères ASCII \
                         imprimables, sans espace au début ni à la fin.",
                    )])
                })?;
            Some((
                format!("{}:{key}", caller.id()),
                hash_secret("request", &String::from_utf8_lossy(&bytes)),
            ))
        }
    };
    if let Some((key, request_hash)) = &idempotency {
        if let Some(record) = state.store.idempotency_record(key, now).await? {
            return if &record.request_hash == request_hash {
                Ok(replay(record.status, record.body))
            } else {
                Err(key_reused())
            };
        }
    }
    let draft = draft_from_json(&bytes)?;
    let source = if caller.is_prefecture() {
        Source::Prefecture
    } else {
        Source::Api
    };
    match submit(&state, &caller, &draft, source, idempotency.clone(), now).await {
        Ok(report) => Ok((StatusCode::CREATED, Json(report_json(&report))).into_response()),
        Err(SubmitError::IdempotencyKeyTaken) => {
            // A concurrent request with the same key won: answer as its replay.
            let (key, request_hash) = idempotency.unwrap_or_default();
            match state.store.idempotency_record(&key, now).await? {
                Some(record) if record.request_hash == request_hash => {
                    Ok(replay(record.status, record.body))
                }
                Some(_) => Err(key_reused()),
                None => Err(SubmitError::IdempotencyKeyTaken.into()),
            }
        }
        // A concurrent request with the same key and body may have written
        // first (its version, then the condition failed here): its replay.
        Err(conflict @ SubmitError::Conflict { .. }) => {
            if let Some((key, request_hash)) = &idempotency {
                if let Some(record) = state.store.idempotency_record(key, now).await? {
                    if &record.request_hash == request_hash {
                        return Ok(replay(record.status, record.body));
                    }
                }
            }
            Err(conflict.into())
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "Cette clé d'idempotence a déjà servi pour une autre requête : utilisez une nouvelle clé \
            pour une nouvelle déclaration.",
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportFilter {
    /// INSEE code; a commune credential always sees its own commune.
    commune: Option<String>,
    /// First day, inclusive (AAAA-MM-JJ).
    from: Option<String>,
    /// Last day, inclusive (AAAA-MM-JJ).
    to: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportList {
    reports: Vec<ReportBody>,
}

pub(super) fn parse_day(field: &str, text: Option<&str>) -> Result<Option<NaiveDate>, FieldError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => parse_date(t).map(Some).ok_or_else(|| {
            FieldError::new(field, format!("« {t} » n'est pas une date AAAA-MM-JJ."))
        }),
    }
}

pub(super) fn parse_commune(state: &AppState, text: &str) -> Result<CommuneCode, ApiError> {
    let code = CommuneCode::parse(text)
        .map_err(|e| ApiError::invalid(vec![FieldError::new("commune", format!("{e}."))]))?;
    if state.config.scope.contains(&code) {
        Ok(code)
    } else {
        Err(ApiError::not_found(format!(
            "La commune {code} n'est pas dans le périmètre de cette préfecture ({}).",
            state.config.scope.label()
        )))
    }
}

/// Current reports, filtered.
#[utoipa::path(get, path = "/api/v1/reports", params(ReportFilter),
    responses(
        (status = 200, body = ReportList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Commune inconnue du périmètre", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub(crate) async fn list_reports(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<ReportList>, ApiError> {
    let caller = caller(&state, request.headers(), peer(request.extensions())).await?;
    let Query(filter) = Query::<ReportFilter>::try_from_uri(request.uri()).map_err(|_| {
        ApiError::invalid(vec![FieldError::new(
            "query",
            "Paramètres possibles : commune, from, to.",
        )])
    })?;
    let mut errors = Vec::new();
    let from = parse_day("from", filter.from.as_deref())
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let to = parse_day("to", filter.to.as_deref())
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let commune = match filter
        .commune
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(text) => Some(parse_commune(&state, text)?),
        None => None,
    };
    let commune = match commune {
        Some(code) if !caller.may_access(&code) => return Err(out_of_reach(&caller, &code)),
        Some(code) => Some(code),
        None if caller.role() == Role::Commune => caller.credential.commune.clone(),
        None => None,
    };
    let reports = state
        .store
        .current_reports(&ReportQuery {
            commune,
            departements: caller.query_departements(&state.config.scope),
            from,
            to,
        })
        .await?;
    Ok(Json(ReportList {
        reports: reports.iter().map(ReportBody::from).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryBody {
    /// Every version, oldest first.
    versions: Vec<ReportBody>,
}

/// Every version of a report, oldest first.
#[utoipa::path(get, path = "/api/v1/reports/{commune}/{date}/history",
    params(
        ("commune" = String, Path),
        ("date" = String, Path),
    ),
    responses(
        (status = 200, body = HistoryBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub(crate) async fn history(
    State(state): State<AppState>,
    Path((commune, date)): Path<(String, String)>,
    request: Request,
) -> Result<Json<HistoryBody>, ApiError> {
    let caller = caller(&state, request.headers(), peer(request.extensions())).await?;
    let code = parse_commune(&state, &commune)?;
    if !caller.may_access(&code) {
        return Err(out_of_reach(&caller, &code));
    }
    let date = parse_day("date", Some(&date))
        .map_err(|e| ApiError::invalid(vec![e]))?
        .ok_or_else(|| ApiError::not_found("Date absente."))?;
    let versions = state.store.history(&code, date).await?;
    Ok(Json(HistoryBody {
        versions: versions.iter().map(ReportBody::from).collect(),
    }))
}
