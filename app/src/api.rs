//! The JSON API, under `/api/v1`, and its OpenAPI document.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use decompte_core::auth::hash_secret;
use decompte_core::time::parse_date;
use decompte_core::{CommuneCode, Completeness, CountValue, Draft, FieldError, Role, Source};
use decompte_store::{Publication, ReportQuery};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::OpenApi;

use crate::auth::{bearer_caller, client_key, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::service::{report_json, submit, ReportBody, SubmitError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        // Every current report is megabytes of JSON: gzip it (a Lambda answer
        // holds 6 MB at most). No secret is in it, so no BREACH.
        .route(
            "/api/v1/reports",
            post(post_report)
                .get(list_reports)
                .layer(tower_http::compression::CompressionLayer::new()),
        )
        .route("/api/v1/reports/{commune}/{date}/history", get(history))
        .route("/api/v1/completeness", get(completeness))
        .route("/api/v1/publications", post(post_publication))
        .route("/api/v1/publications/{id}", get(get_publication))
        .route("/api/v1/me", get(me))
        .route("/api/v1/openapi.json", get(openapi))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "decompte API", version = "1", description = "Déclaration et suivi des décès par \
        commune et par lieu de décès. Authentification : « Authorization: Bearer <code d'accès> \
            » ; pour un code de préfecture ou du niveau national, en plus, le code à six chiffres \
            de sa double authentification dans « X-TOTP: 123456 »."),
    paths(post_report, list_reports, history, completeness, post_publication, get_publication, me),
    components(schemas(
        ReportInput,
        ReportBody,
        ErrorBody,
        FieldError,
        Source,
        Role,
        ReportList,
        HistoryBody,
        CompletenessBody,
        DepartementCompleteness,
        MissingCommune,
        RepublishBody,
        PublicationBody,
        MeBody,
        MeDepartement,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []), ("bearer" = [], "totp" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Code d'accès remis par la préfecture"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "totp",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-TOTP",
                "Préfecture et niveau national : le code à six chiffres que montre en ce moment \
                l'application d'authentification associée au code d'accès (double \
                authentification, activée à la première connexion sur la page de connexion).",
            ))),
        );
    }
}

async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.config))
}

/// The OpenAPI document of this deployment: generated from the types the
/// server parses, with what only the configuration knows filled in — the
/// settings a report must count (each an integer from 0 to the largest
/// count allowed, none other), so that a body the document accepts has the
/// shape the server accepts, and one it refuses is refused.
pub fn document(config: &crate::AppConfig) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    let settings = &config.rules.settings;
    let count = json!({
        "type": "integer",
        "minimum": 0,
        "maximum": config.rules.max_per_cell,
    });
    let properties: serde_json::Map<String, Value> = settings
        .iter()
        .map(|setting| {
            let mut schema = count.clone();
            schema["description"] = json!(setting.label);
            (setting.key.clone(), schema)
        })
        .collect();
    let report = &mut doc["components"]["schemas"]["ReportInput"]["properties"];
    report["counts"] = json!({
        "type": "object",
        "description": "Un nombre entier de décès pour chaque lieu, 0 s'il n'y en a eu aucun.",
        "properties": properties,
        "required": settings.keys().collect::<Vec<_>>(),
        "additionalProperties": false,
    });
    // Read as options so that a missing one gets its French message, but
    // never null: the document says what the server takes.
    report["commune"]["type"] = json!("string");
    report["date"]["type"] = json!("string");
    report["commune"]["pattern"] = json!(COMMUNE_PATTERN);
    let day = day_pattern();
    report["date"]["pattern"] = json!(day);
    report["date"]
        .as_object_mut()
        .map(|date| date.remove("format"));
    report["reason"]["maxLength"] = json!(decompte_core::validation::MAX_REASON_CHARS);
    // The days and communes of queries and paths, read by the same parsers.
    if let Some(paths) = doc["paths"].as_object_mut() {
        let operations = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|operations| operations.values_mut());
        for operation in operations {
            let parameters = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                let pattern = match parameter["name"].as_str() {
                    Some("commune") => COMMUNE_PATTERN,
                    Some("date" | "from" | "to") => day.as_str(),
                    Some("Idempotency-Key") => {
                        parameter["schema"]["pattern"] = json!(IDEMPOTENCY_KEY_PATTERN);
                        parameter["schema"]["maxLength"] = json!(IDEMPOTENCY_KEY_MAX);
                        continue;
                    }
                    _ => continue,
                };
                // An empty query parameter is read as an absent one.
                let pattern = match parameter["in"].as_str() {
                    Some("query") => format!("^\\s*$|{pattern}"),
                    _ => pattern.to_owned(),
                };
                parameter["schema"]["pattern"] = json!(pattern);
            }
        }
    }
    doc
}

/// What the server reads as a commune code (`CommuneCode::parse`).
const COMMUNE_PATTERN: &str = r"^\s*([0-9]{5}|2[ABab][0-9]{3})\s*$";
/// What the server reads as a day (`time::parse_date`: AAAA-MM-JJ or
/// JJ/MM/AAAA, a year from 1000 to 9999), calendar days only: a month of
/// 30 days has no 31st, February its 29th in leap years only.
fn day_pattern() -> String {
    let year = "[1-9][0-9]{3}";
    // Years divisible by 4 but not by 100, or by 400.
    let leap = "([1-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[13579][26])00)";
    let (long, short, february) = ("(0?[13578]|1[02])", "(0?[469]|11)", "0?2");
    let (d31, d30, d28) = (
        "(0?[1-9]|[12][0-9]|3[01])",
        "(0?[1-9]|[12][0-9]|30)",
        "(0?[1-9]|1[0-9]|2[0-8])",
    );
    let iso = format!("{year}-({long}-{d31}|{short}-{d30}|{february}-{d28})|{leap}-{february}-29");
    let french =
        format!("({d31}/{long}|{d30}/{short}|{d28}/{february})/{year}|29/{february}/{leap}");
    format!(r"^\s*({iso}|{french})\s*$")
}

/// What the server takes as an `Idempotency-Key`: 1 to 200 printable ASCII
/// characters, without a space at either end.
const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,198}[!-~])?$";
const IDEMPOTENCY_KEY_MAX: usize = 200;

/// Whether `key` is an `Idempotency-Key` the server takes
/// ([`IDEMPOTENCY_KEY_PATTERN`]).
fn is_idempotency_key(key: &str) -> bool {
    let printable = |c: char| (' '..='~').contains(&c);
    (1..=IDEMPOTENCY_KEY_MAX).contains(&key.len())
        && key.chars().all(printable)
        && !key.starts_with(' ')
        && !key.ends_with(' ')
}

/// The client's address, when the server knows it.
fn peer(request_extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<Caller, ApiError> {
    let client = client_key(state, headers, peer);
    bearer_caller(state, headers, &client, state.now()).await
}

fn require_supervisor(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_supervisor() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Cette opération est réservée à la préfecture.",
        ))
    }
}

/// `403` for a commune the caller does not reach, saying what it reaches.
pub(crate) fn out_of_reach(caller: &Caller, code: &CommuneCode) -> ApiError {
    ApiError::forbidden(caller.reach().out_of_reach(code))
}

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
async fn json_body(
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
fn body_error(path: &str, error: &serde_json::Error) -> FieldError {
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

fn replay(status: u16, body: String) -> Response {
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
async fn post_report(
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

fn key_reused() -> ApiError {
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

fn parse_day(field: &str, text: Option<&str>) -> Result<Option<NaiveDate>, FieldError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => parse_date(t).map(Some).ok_or_else(|| {
            FieldError::new(field, format!("« {t} » n'est pas une date AAAA-MM-JJ."))
        }),
    }
}

fn parse_commune(state: &AppState, text: &str) -> Result<CommuneCode, ApiError> {
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
async fn list_reports(
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
async fn history(
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct MissingCommune {
    commune: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CompletenessBody {
    #[schema(format = Date)]
    date: String,
    expected: usize,
    reported: usize,
    /// Each département of the caller's scope, in code order.
    departements: Vec<DepartementCompleteness>,
    missing: Vec<MissingCommune>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DepartementCompleteness {
    code: String,
    name: String,
    expected: usize,
    reported: usize,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompletenessParams {
    /// The day (AAAA-MM-JJ); today in the caller's time zone by default.
    date: Option<String>,
    /// One département of the caller's scope; all of them by default.
    departement: Option<String>,
}

/// Which communes have reported for a day (prefecture and national only),
/// in the caller's départements.
#[utoipa::path(get, path = "/api/v1/completeness", params(CompletenessParams),
    responses(
        (status = 200, body = CompletenessBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn completeness(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<CompletenessBody>, ApiError> {
    let caller = caller(&state, request.headers(), peer(request.extensions())).await?;
    require_supervisor(&caller)?;
    let Query(param) = Query::<CompletenessParams>::try_from_uri(request.uri()).map_err(|_| {
        ApiError::invalid(vec![FieldError::new(
            "date",
            "Paramètres possibles : date, departement.",
        )])
    })?;
    let mut scope = caller.scope(&state.config.scope);
    if let Some(asked) = param
        .departement
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        if !scope.has_departement(asked) {
            return Err(ApiError::forbidden(format!(
                "Le département « {asked} » n'est pas dans votre périmètre ({}).",
                scope.label()
            )));
        }
        scope = scope.restrict([asked]);
    }
    let now = state.now();
    let date = match param
        .date
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => scope.today(now),
        Some(text) => state
            .config
            .rules
            .check_day(text, scope.latest_today(now))
            .map_err(|message| ApiError::invalid(vec![FieldError::new("date", message)]))?,
    };
    let reported = state.store.reported_communes(date).await?;
    let c = Completeness::compute(date, &scope, &reported);
    let departements = c
        .by_departement(&scope)
        .into_iter()
        .map(|d| DepartementCompleteness {
            code: d.code,
            name: d.name,
            expected: d.expected,
            reported: d.reported,
        })
        .collect();
    Ok(Json(CompletenessBody {
        date: date.to_string(),
        expected: c.expected,
        reported: c.reported.len(),
        departements,
        missing: c
            .missing
            .into_iter()
            .map(|m| MissingCommune {
                commune: m.code.to_string(),
                name: m.name,
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RepublishBody {
    /// Why the site is republished now.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicationBody {
    id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    status: String,
    requested_by: String,
    reason: String,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    files_changed: Option<u32>,
    error: Option<String>,
}

impl From<&Publication> for PublicationBody {
    fn from(p: &Publication) -> Self {
        Self {
            id: p.id.clone(),
            status: p.status.as_str().into(),
            requested_by: p.requested_by.clone(),
            reason: p.reason.clone(),
            started_at: p.started_at.map(|t| t.to_rfc3339()),
            finished_at: p.finished_at.map(|t| t.to_rfc3339()),
            files_changed: p.files_changed,
            error: p.error.clone(),
        }
    }
}

/// Ask for a republication of the public site now (prefecture only).
#[utoipa::path(post, path = "/api/v1/publications", request_body = RepublishBody,
    responses(
        (status = 202, body = PublicationBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn post_publication(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let caller = caller(&state, request.headers(), peer(request.extensions())).await?;
    require_supervisor(&caller)?;
    let (_, _, bytes) = json_body(&state, request).await?;
    let input: RepublishBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        RepublishBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::invalid(vec![FieldError::new(
                "reason",
                "Envoyez {\"reason\": \"…\"}.",
            )])
        })?
    };
    let reason = input.reason.unwrap_or_default();
    let publication = crate::service::republish(&state, &caller, reason.trim()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublicationBody::from(&publication)),
    )
        .into_response())
}

/// The state of a publication (prefecture only).
#[utoipa::path(get, path = "/api/v1/publications/{id}", params(("id" = String, Path)),
    responses(
        (status = 200, body = PublicationBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn get_publication(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<PublicationBody>, ApiError> {
    let caller = caller(&state, request.headers(), peer(request.extensions())).await?;
    require_supervisor(&caller)?;
    let not_found = || ApiError::not_found(format!("Aucune publication « {id} »."));
    let publication = state.store.publication(&id).await?.ok_or_else(not_found)?;
    // Another prefecture's request is as if it did not exist.
    let requester = crate::service::requesters(
        &state,
        &caller,
        std::iter::once(publication.requested_by.clone()),
    )
    .await;
    if !requester
        .get(&publication.requested_by)
        .is_some_and(crate::service::Requester::is_known)
    {
        return Err(not_found());
    }
    Ok(Json(PublicationBody::from(&publication)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeBody {
    role: Role,
    commune: Option<String>,
    commune_name: Option<String>,
    /// The départements the credential reaches (a mairie: its commune's).
    departements: Vec<MeDepartement>,
    credential_id: String,
    label: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeDepartement {
    code: String,
    name: String,
}

/// Who the access code belongs to, and what it reaches.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    responses((status = 200, body = MeBody), (status = 401, body = ErrorBody)),
)]
async fn me(State(state): State<AppState>, request: Request) -> Result<Json<MeBody>, ApiError> {
    let caller = caller(&state, request.headers(), peer(request.extensions())).await?;
    let deployment = &state.config.scope;
    let departements = caller
        .reach()
        .departements(deployment)
        .into_iter()
        .map(|code| MeDepartement {
            code: code.to_owned(),
            name: deployment
                .departement_name(code)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    let credential = caller.credential;
    Ok(Json(MeBody {
        role: credential.role,
        commune_name: credential
            .commune
            .as_ref()
            .and_then(|c| deployment.get(c))
            .map(|c| c.name.clone()),
        commune: credential.commune.map(String::from),
        departements,
        credential_id: credential.id,
        label: credential.label,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document's day pattern accepts exactly what the server's parser
    /// reads, in both forms, padded or not, across leap years and centuries.
    #[test]
    fn the_day_pattern_is_the_parser() {
        let pattern = regex::Regex::new(&day_pattern()).expect("a valid pattern");
        let mut checked = 0;
        for year in [
            "0000", "0999", "1000", "1900", "2000", "2019", "2020", "2100", "2400", "9999",
        ] {
            for month in 0..=13 {
                for day in 0..=32 {
                    for (m, d) in [
                        (format!("{month}"), format!("{day}")),
                        (format!("{month:02}"), format!("{day:02}")),
                    ] {
                        for text in [format!("{year}-{m}-{d}"), format!("{d}/{m}/{year}")] {
                            assert_eq!(
                                pattern.is_match(&text),
                                decompte_core::time::parse_date(&text).is_some(),
                                "{text}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000);
        for text in [
            "0000-0-0",
            "7/35/8003",
            "2020-02-30",
            "29/02/2100",
            " 2020-04-01 ",
        ] {
            assert_eq!(
                pattern.is_match(text),
                decompte_core::time::parse_date(text).is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn the_idempotency_key_pattern_is_the_check() {
        let pattern = regex::Regex::new(IDEMPOTENCY_KEY_PATTERN).expect("a valid pattern");
        let long = "k".repeat(IDEMPOTENCY_KEY_MAX);
        let too_long = "k".repeat(IDEMPOTENCY_KEY_MAX + 1);
        for key in [
            "a", "abc-123", "a b", " a", "a ", "", "\tx", "é", &long, &too_long, "~!", "a\u{7f}",
        ] {
            let by_pattern = pattern.is_match(key) && key.len() <= IDEMPOTENCY_KEY_MAX;
            assert_eq!(by_pattern, is_idempotency_key(key), "{key:?}");
        }
    }
}
