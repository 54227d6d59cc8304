//! The JSON API, under `/api/v1`, and its OpenAPI document: `document`
//! (the document and the constraints it states), `reports` (declarations,
//! their list and history), `supervision` (completeness, publications, who
//! the caller is); what they share is here.

mod document;
mod reports;
mod supervision;

pub use document::{document, ApiDoc};
pub use reports::{draft_from_json, ReportInput};

use document::openapi;
use reports::{history, list_reports, post_report};
use supervision::{completeness, get_publication, me, post_publication};

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use decompte_core::CommuneCode;

use crate::auth::{bearer_caller, client_key, Caller};
use crate::error::ApiError;
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

/// The client's address, when the server knows it.
pub(super) fn peer(request_extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

pub(super) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<Caller, ApiError> {
    let client = client_key(state, headers, peer);
    bearer_caller(state, headers, &client, state.now()).await
}

pub(super) fn require_supervisor(caller: &Caller) -> Result<(), ApiError> {
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
