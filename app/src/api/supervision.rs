//! What the crisis cell and the ministry ask: which communes declared a
//! day, publications, and who the caller is.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use decompte_core::{Completeness, FieldError, Role};
use decompte_store::Publication;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::AppState;

use super::reports::json_body;
use super::{caller, peer, require_supervisor};

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
pub(crate) async fn completeness(
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
pub(crate) async fn post_publication(
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
pub(crate) async fn get_publication(
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
pub(crate) async fn me(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<MeBody>, ApiError> {
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
