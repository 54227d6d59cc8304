//! The HTML pages: login, the commune form, the prefecture page. They work
//! without JavaScript; every form carries a CSRF token; a refused form is shown
//! again with what the user typed and a French message next to each field.

// Handlers here return early with a ready `Response`, axum's own type.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Query, RawQuery, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::{Duration, NaiveDate, Utc};
use decompte_core::time::{fr_date, fr_datetime, fr_datetime_in, local_today, parse_date};
use decompte_core::{
    Commune, CommuneCode, Completeness, CountValue, Draft, FieldError, Report, Settings, Source,
};
use decompte_store::ReportQuery;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, BrowserSession};
use crate::error::ApiError;
use crate::service::{submit, SubmitError};
use crate::AppState;

mod codes;
mod day;
mod dictation;
mod extract;
mod form;
pub(crate) use form::form_draft;
mod contacts;
mod login;
mod prefecture;
mod proconnect;
mod second_factor;
mod signals;
mod situation;
mod spf;

use self::day::*;
use self::extract::*;
use self::form::*;
use self::login::*;
use self::prefecture::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/prefecture/codes",
            get(codes::codes_page).post(codes::issue_code),
        )
        .route(
            "/prefecture/codes/{id}/revocation",
            post(codes::revoke_code),
        )
        // A year of a département's versions is megabytes of CSV: gzip it (a
        // Lambda answer holds 6 MB at most). No secret is in it, so no BREACH.
        .route(
            "/prefecture/export.csv",
            get(codes::export_versions).layer(tower_http::compression::CompressionLayer::new()),
        )
        .route("/aide", get(help_page))
        .route("/plan", get(plan_page))
        .route("/connexion", get(login_page).post(login))
        .route("/connexion/session", get(login::keep_session))
        .route(
            "/connexion/verification",
            get(second_factor::verification_page).post(second_factor::verify),
        )
        .route("/deconnexion", post(logout))
        .route("/connexion/proconnect", get(proconnect::proconnect_start))
        .route(
            "/connexion/proconnect/retour",
            get(proconnect::proconnect_return),
        )
        .route("/saisie", get(form_page).post(form_submit))
        .route("/prefecture", get(prefecture_page))
        .route("/prefecture/signaux", get(signals::signals_page))
        .route("/prefecture/point", get(situation::situation_page))
        .route("/prefecture/point.pdf", get(situation::situation_pdf))
        .route(
            "/prefecture/saisie-groupee",
            get(dictation::dictation_page).post(dictation::dictation_submit),
        )
        .route("/prefecture/publications", post(prefecture_publish))
        .route("/prefecture/relances", post(prefecture_reminder))
        .route("/prefecture/spf", get(spf::spf_page))
        .route("/prefecture/contacts", get(contacts::contacts_page))
        .route("/prefecture/contacts.csv", get(contacts::contacts_csv))
        .route(
            "/prefecture/contacts",
            post(contacts::contacts_import).layer(DefaultBodyLimit::max(spf::MAX_FILE)),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        // Santé publique France's file: megabytes, on this route only.
        .route(
            "/prefecture/spf",
            post(spf::spf_import).layer(DefaultBodyLimit::max(spf::MAX_FILE)),
        )
}

type Fields = Vec<(String, String)>;

/// Parses a query string, falling back to defaults on anything malformed: a
/// hand-edited link shows the default page rather than an error.
fn lenient_query<T: serde::de::DeserializeOwned + Default>(raw: Option<String>) -> T {
    raw.and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default()
}

/// The day a page's query asks for: today when absent, and otherwise a day of
/// the crisis window, or a French `400` (never a day to compute with that lies
/// outside the calendar of the crisis).
/// The day a page is about: `default` when none is asked, else the day
/// asked, inside the crisis window up to `latest`.
fn asked_day(
    state: &AppState,
    asked: Option<&str>,
    default: NaiveDate,
    latest: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    match asked.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(default),
        Some(text) => state
            .config
            .rules
            .check_day(text, latest)
            .map_err(ApiError::bad_request),
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The tag of a credential in its pages, for what the phone keeps offline:
/// the same for every session of the credential, and no way back to its id.
fn offline_owner(credential_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("decompte-offline-owner:{credential_id}"));
    hex::encode(&digest[..12])
}

/// The context every app page shares.
fn base_context(state: &AppState, session: Option<&BrowserSession>, csrf: &str) -> Value {
    let user = session.map(|s| {
        let credential = &s.caller.credential;
        json!({
            // Which credential this page is for, as an opaque tag (pages
            // name people, never credential ids): what offline.js keeps on
            // the phone belongs to it, and is sent by its sessions only.
            "owner": offline_owner(&credential.id),
            "role": credential.role.as_str(),
            "supervisor": credential.role.is_supervisor(),
            "territory": s.caller.scope(&state.config.scope).label(),
            "label": credential.label,
            // How long the session lasts without activity: session.js says
            // so before it ends.
            "idle_seconds": state.config.idle_for(credential.role).as_secs(),
            "commune": credential.commune,
            "commune_name": credential.commune.as_ref()
                .and_then(|c| state.config.scope.get(c))
                .map(|c| c.name.clone()),
        })
    });
    json!({
        "crisis": state.config.crisis,
        "territory": state.config.scope.label(),
        "publisher": state.config.publisher,
        "state_brand": state.config.state_brand,
        "site_url": state.config.site_url,
        "user": user,
        "csrf": csrf,
    })
}

/// `GET /aide`: how to declare, in plain French, for anyone (no login: the
/// access letter links to it).
async fn help_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut context = open_page_context(&state, &headers).await;
    let settings: Vec<Value> = state
        .config
        .rules
        .settings
        .iter()
        .map(|s| json!({"key": s.key, "label": s.label}))
        .collect();
    merge(&mut context, json!({"settings": settings}));
    render(&state, StatusCode::OK, "app/aide.html", context)
}

/// `GET /plan`: every page of the app the caller may open (the RGAA asks
/// for a second way to find pages besides the menu, criterion 12.1).
async fn plan_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let context = open_page_context(&state, &headers).await;
    render(&state, StatusCode::OK, "app/plan.html", context)
}

/// The context of a page anyone may open, signed in or not (then it shows
/// the menu of the caller's code).
async fn open_page_context(state: &AppState, headers: &HeaderMap) -> Value {
    let session = auth::browser_session(state, headers, state.now())
        .await
        .ok()
        .flatten();
    let csrf = session.as_ref().map_or("", |s| s.csrf.as_str()).to_owned();
    base_context(state, session.as_ref(), &csrf)
}

/// `response` with these `Set-Cookie` values appended.
fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

fn render(state: &AppState, status: StatusCode, template: &str, context: Value) -> Response {
    match state
        .templates
        .get_template(template)
        .and_then(|t| t.render(context))
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, template, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(
                    "<!doctype html><html \
                lang=\"fr\"><title>Erreur</title><p>Erreur interne : réessayez dans un \
                instant.</p></html>"
                        .to_owned(),
                ),
            )
                .into_response()
        }
    }
}

fn error_page(state: &AppState, session: Option<&BrowserSession>, error: &ApiError) -> Response {
    let home = session.map_or("/saisie", home_for);
    let (heading, back_href, back_label) = match error.status {
        StatusCode::BAD_REQUEST if home == "/prefecture" => (
            "Demande incorrecte",
            home,
            "Revenir à la page de la préfecture",
        ),
        StatusCode::BAD_REQUEST => ("Demande incorrecte", home, "Revenir au formulaire"),
        StatusCode::FORBIDDEN => ("Accès refusé", "/saisie", "Revenir au formulaire"),
        StatusCode::NOT_FOUND => ("Introuvable", "/saisie", "Revenir au formulaire"),
        StatusCode::TOO_MANY_REQUESTS => {
            ("Trop de tentatives", "/connexion", "Revenir à la connexion")
        }
        StatusCode::SERVICE_UNAVAILABLE => (
            "Service momentanément indisponible",
            "/saisie",
            "Revenir au formulaire",
        ),
        _ => ("Erreur", "/saisie", "Revenir au formulaire"),
    };
    let mut context = base_context(state, session, session.map_or("", |s| s.csrf.as_str()));
    merge(
        &mut context,
        json!({
            "heading": heading,
            "message": error.body.message,
            "back_href": back_href,
            "back_label": back_label,
        }),
    );
    let mut response = render(state, error.status, "app/error.html", context);
    for (name, value) in &error.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

/// The session of the request, or a redirection to the login page.
async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<BrowserSession, Response> {
    match auth::browser_session(state, headers, state.now()).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Redirect::to("/connexion").into_response()),
        Err(error) => Err(error_page(state, None, &error.into())),
    }
}

fn check_csrf(state: &AppState, session: &BrowserSession, fields: &Fields) -> Result<(), Response> {
    if field(fields, "csrf").is_some_and(|given| auth::tokens_match(&session.csrf, given)) {
        Ok(())
    } else {
        Err(error_page(
            state,
            Some(session),
            &ApiError::forbidden(
                "Le formulaire a expiré ou ne \
            vient pas de ce site. Rechargez la page et recommencez : rien n'a été enregistré.",
            ),
        ))
    }
}

fn prefecture_only(state: &AppState, session: BrowserSession) -> Result<BrowserSession, Response> {
    if session.caller.is_supervisor() {
        Ok(session)
    } else {
        Err(error_page(
            state,
            Some(&session),
            &ApiError::forbidden(
                "Cette page est réservée à la \
            préfecture. Votre code d'accès permet de déclarer les décès de votre commune.",
            ),
        ))
    }
}

/// A logged-in browser; anyone else is sent to the login page.
fn home_for(session: &BrowserSession) -> &'static str {
    if session.caller.is_supervisor() {
        "/prefecture"
    } else {
        "/saisie"
    }
}
