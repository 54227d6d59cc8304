//! The HTTP app of decompte: the commune form, the prefecture page and the JSON API.
//!
//! Architecture invariant: only this crate knows HTTP. It builds one axum
//! [`Router`] from an [`AppState`]; the local server (`decompte serve`) and the
//! Lambda function (`ingest-fn`) both serve that same router, so no route
//! exists twice. It knows nothing of AWS: publications start through the
//! [`PublishTrigger`] it is given. Every
//! write goes through [`service::submit`], whatever the channel.

pub mod api;
pub mod auth;
pub mod config;
pub mod contact;
pub mod error;
pub mod mail;
pub mod oidc;
mod pages;
pub mod pdf;
pub mod report;
pub mod second_factor;
pub mod service;

/// The app's parsers of outside input, public so that the fuzz targets
/// (`fuzz/`) reach them: a report's JSON body as `POST /api/v1/reports`
/// reads it, and the declaration form's fields as `POST /saisie` reads them.
pub mod parse {
    use decompte_core::{CommuneCode, Draft, Settings};

    pub use crate::api::draft_from_json as report_json;

    /// The form's fields (as `application/x-www-form-urlencoded` decodes
    /// them) as a draft for `commune`.
    pub fn form(fields: &[(String, String)], commune: &CommuneCode, settings: &Settings) -> Draft {
        crate::pages::form_draft(fields, commune, settings)
    }
}

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use decompte_store::Store;
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{AppConfig, ThrottlePolicy};
pub use decompte_publish::PublishTrigger;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<AppConfig>,
    pub publisher: Arc<dyn PublishTrigger>,
    /// Where "now" comes from: the system's, or the one a test set.
    pub clock: Arc<dyn decompte_core::clock::Clock>,
    /// Set when the process was asked to stop: `/readyz` then turns the
    /// load balancer away while the requests in flight end.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    templates: Arc<minijinja::Environment<'static>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        config: AppConfig,
        publisher: Arc<dyn PublishTrigger>,
    ) -> Self {
        Self {
            store,
            config: Arc::new(config),
            publisher,
            clock: Arc::new(decompte_core::clock::SystemClock),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            templates: Arc::new(decompte_templates::environment()),
        }
    }

    /// The same app going by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn decompte_core::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the app's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// `GET /readyz`: whether this replica can serve, its store answering and
/// not stopping (a load balancer sends it nothing otherwise), beside
/// `/healthz`, which only says the process is alive.
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Ce serveur s'arrête : les déclarations vont aux autres serveurs.",
        )
            .into_response();
    }
    match state.store.publications(1).await {
        Ok(_) => "ok".into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Le stockage ne répond pas : ce serveur ne peut pas recevoir de déclarations.",
            )
                .into_response()
        }
    }
}

/// The whole app: pages, API, health check and the app's stylesheet.
pub fn router(state: AppState) -> Router {
    // Whenever cookies are Secure the app is reached over HTTPS only: say so
    // to browsers for a year, so that no later visit starts in plain http.
    let hsts = state.config.secure_cookies.then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    Router::new()
        .merge(api::routes())
        .merge(pages::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        // The app's static files, compressed (the DSFR's stylesheet is 419 kB,
        // 52 kB gzipped): they are what a first visit waits for before it
        // shows anything. Pages are not (they carry a CSRF token).
        .merge(
            Router::new()
                .route("/app/style.css", get(stylesheet))
                .route("/app/offline.js", get(offline_script))
                .route("/app/session.js", get(session_script))
                .route("/app/sw.js", get(service_worker))
                .route("/app/dsfr/{*path}", get(dsfr_file))
                .layer(tower_http::compression::CompressionLayer::new()),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn(log_refusals))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; worker-src 'self'; \
                style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
                form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(tower::util::option_layer(hsts))
}

/// Every `401` and `403` is a security event: the method and the path (never
/// the query, the headers or the body, where codes travel).
async fn log_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if status == axum::http::StatusCode::UNAUTHORIZED || status == axum::http::StatusCode::FORBIDDEN
    {
        tracing::warn!(
            event = "access_refused",
            status = status.as_u16(),
            %method,
            path = %path.chars().take(200).collect::<String>(),
            "request refused"
        );
    }
    response
}

/// A file of the Système de design de l'État: its stylesheet, fonts, icons.
async fn dsfr_file(
    axum::extract::Path(path): axum::extract::Path<String>,
) -> axum::response::Response {
    match decompte_templates::dsfr_file(&path) {
        Some(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    decompte_publish::headers::content_type(&path),
                ),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn offline_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        decompte_templates::OFFLINE_SCRIPT,
    )
}

/// The service worker, at `/app/`, controls the form at `/saisie` too.
async fn service_worker() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                axum::http::HeaderName::from_static("service-worker-allowed"),
                "/",
            ),
        ],
        decompte_templates::SERVICE_WORKER,
    )
}

async fn session_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        decompte_templates::SESSION_SCRIPT,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        decompte_templates::STYLESHEET,
    )
}
