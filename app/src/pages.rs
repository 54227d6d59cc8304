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
use decompte_core::time::{fr_date, fr_datetime, paris_today, parse_date};
use decompte_core::{
    Commune, CommuneCode, Completeness, CountValue, Draft, FieldError, Report, Source,
};
use decompte_store::ReportQuery;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, BrowserSession};
use crate::error::ApiError;
use crate::service::{submit, SubmitError};
use crate::AppState;

mod codes;

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
        .route("/connexion", get(login_page).post(login))
        .route("/deconnexion", post(logout))
        .route("/saisie", get(form_page).post(form_submit))
        .route("/prefecture", get(prefecture_page))
        .route("/prefecture/publications", post(prefecture_publish))
        .layer(DefaultBodyLimit::max(64 * 1024))
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
fn asked_day(
    state: &AppState,
    asked: Option<&str>,
    today: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    match asked.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(today),
        Some(text) => state
            .config
            .rules
            .check_day(text, today)
            .map_err(ApiError::bad_request),
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The context every app page shares.
fn base_context(state: &AppState, session: Option<&BrowserSession>, csrf: &str) -> Value {
    let user = session.map(|s| {
        let credential = &s.caller.credential;
        json!({
            "role": credential.role.as_str(),
            "label": credential.label,
            "commune": credential.commune,
            "commune_name": credential.commune.as_ref().and_then(|c| state.config.scope.get(c)).map(|c| c.name.clone()),
        })
    });
    json!({
        "crisis": state.config.crisis,
        "territory": state.config.scope.label(),
        "publisher": state.config.publisher,
        "site_url": state.config.site_url,
        "user": user,
        "csrf": csrf,
    })
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
            (StatusCode::INTERNAL_SERVER_ERROR, Html("<!doctype html><html lang=\"fr\"><title>Erreur</title><p>Erreur interne : réessayez dans un instant.</p></html>".to_owned())).into_response()
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
        json!({"heading": heading, "message": error.body.message, "back_href": back_href, "back_label": back_label}),
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
    match auth::browser_session(state, headers, Utc::now()).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Redirect::to("/connexion").into_response()),
        Err(error) => Err(error_page(state, None, &error.into())),
    }
}

fn check_csrf(state: &AppState, session: &BrowserSession, fields: &Fields) -> Result<(), Response> {
    if field(fields, "csrf").is_some_and(|given| auth::tokens_match(&session.csrf, given)) {
        Ok(())
    } else {
        Err(error_page(state, Some(session), &ApiError::forbidden("Le formulaire a expiré ou ne vient pas de ce site. Rechargez la page et recommencez : rien n'a été enregistré.")))
    }
}

fn prefecture_only(state: &AppState, session: BrowserSession) -> Result<BrowserSession, Response> {
    if session.caller.is_prefecture() {
        Ok(session)
    } else {
        Err(error_page(state, Some(&session), &ApiError::forbidden("Cette page est réservée à la préfecture. Votre code d'accès permet de déclarer les décès de votre commune.")))
    }
}

/// A logged-in browser; anyone else is sent to the login page.
struct LoggedIn(BrowserSession);

impl FromRequestParts<AppState> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        require_session(state, &parts.headers).await.map(LoggedIn)
    }
}

/// A logged-in prefecture user; a commune user gets `403`.
struct PrefectureUser(BrowserSession);

impl FromRequestParts<AppState> for PrefectureUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let LoggedIn(session) = LoggedIn::from_request_parts(parts, state).await?;
        prefecture_only(state, session).map(PrefectureUser)
    }
}

/// A form posted by a logged-in browser, with a valid CSRF token.
struct SignedForm {
    session: BrowserSession,
    fields: Fields,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let session = auth::browser_session(state, &parts.headers, Utc::now())
            .await
            .map_err(|error| error_page(state, None, &error.into()))?;
        // A declaration typed before the session expired is carried through
        // the login, but only from a page of this app: a page of another site
        // could otherwise post figures of its choosing into the mayor's form.
        let keeps_draft =
            parts.uri.path() == "/saisie" && auth::same_origin(&state.config, &parts.headers);
        let Form(fields) = Form::<Fields>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(session) = session else {
            if keeps_draft {
                // The session expired while the form was being filled in: ask
                // for the code again and carry what was typed through the login.
                return Err(login_form(
                    state,
                    StatusCode::UNAUTHORIZED,
                    None,
                    Some("Votre session a expiré. Saisissez à nouveau votre code d'accès : les chiffres que vous avez saisis sont conservés."),
                    &draft_of(&fields, ""),
                ));
            }
            return Err(Redirect::to("/connexion").into_response());
        };
        check_csrf(state, &session, &fields)?;
        Ok(Self { session, fields })
    }
}

/// A signed form posted by a prefecture user.
struct PrefectureForm(SignedForm);

impl FromRequest<AppState> for PrefectureForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let SignedForm { session, fields } = SignedForm::from_request(request, state).await?;
        let session = prefecture_only(state, session)?;
        Ok(Self(SignedForm { session, fields }))
    }
}

fn home_for(session: &BrowserSession) -> &'static str {
    if session.caller.is_prefecture() {
        "/prefecture"
    } else {
        "/saisie"
    }
}

// Login and logout.

#[derive(Deserialize)]
struct LoginQuery {
    deconnecte: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    if let Ok(Some(session)) = auth::browser_session(&state, &headers, Utc::now()).await {
        return Redirect::to(home_for(&session)).into_response();
    }
    login_form(
        &state,
        StatusCode::OK,
        None,
        query.deconnecte.map(|_| "Vous êtes déconnecté."),
        &Fields::new(),
    )
}

/// The fields of a declaration kept across a login, under their form names.
fn draft_of(fields: &Fields, prefix: &str) -> Fields {
    fields
        .iter()
        .filter_map(|(name, value)| {
            let name = name.strip_prefix(prefix)?;
            let kept = matches!(name, "commune" | "date" | "reason" | "replaces_version")
                || name.starts_with("n_");
            (kept && value.len() <= 1000).then(|| (name.to_owned(), value.clone()))
        })
        .take(64)
        .collect()
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
    draft: &Fields,
) -> Response {
    // Double-submit token: the same random value in a cookie and in the form.
    let token = hex::encode(auth::random_bytes::<16>());
    let mut context = base_context(state, None, &token);
    let draft: Vec<Value> = draft
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    merge(
        &mut context,
        json!({"error": error, "notice": notice, "draft": draft}),
    );
    let mut response = render(state, status, "app/login.html", context);
    let secure = state.config.secure_cookies;
    let cookie = auth::set_cookie(
        auth::login_cookie_name(secure),
        &token,
        Some(std::time::Duration::from_secs(3600)),
        secure,
    );
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let secure = state.config.secure_cookies;
    // A draft is only ever carried from this app's own pages (see `SignedForm`).
    let draft = if auth::same_origin(&state.config, &headers) {
        draft_of(&fields, "draft_")
    } else {
        Fields::new()
    };
    let expected = auth::cookie(&headers, auth::login_cookie_name(secure));
    let given = field(&fields, "csrf").unwrap_or("");
    if !expected.is_some_and(|e| auth::tokens_match(&e, given)) {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("Le formulaire de connexion a expiré : saisissez à nouveau votre code."),
            None,
            &draft,
        );
    }
    let client = auth::client_key(
        &state,
        &headers,
        peer.map(|Extension(ConnectInfo(addr))| addr.ip()),
    );
    let now = Utc::now();
    let credential = match auth::check_code(
        &state,
        field(&fields, "code").unwrap_or(""),
        &client,
        now,
    )
    .await
    {
        Ok(credential) => credential,
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            return login_form(&state, StatusCode::UNAUTHORIZED, Some("Code d'accès inconnu ou révoqué. Vérifiez la saisie : le code INSEE de la commune puis 28 caractères ; si le problème continue, demandez un nouveau code à la préfecture."), None, &draft);
        }
        Err(error) if error.status == StatusCode::TOO_MANY_REQUESTS => {
            let mut response = login_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&error.body.message),
                None,
                &draft,
            );
            for (name, value) in &error.headers {
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert(*name, value);
                }
            }
            return response;
        }
        Err(error) => return error_page(&state, None, &error),
    };
    let session_id = match auth::open_session(&state, &credential, now).await {
        Ok(id) => id,
        Err(error) => return error_page(&state, None, &error.into()),
    };
    let target = if credential.role == decompte_core::Role::Prefecture {
        "/prefecture"
    } else {
        "/saisie"
    };
    let mut response = match draft.is_empty() {
        true => Redirect::to(target).into_response(),
        false => resume_draft(&state, &credential, &session_id, &draft)
            .await
            .unwrap_or_else(|| Redirect::to(target).into_response()),
    };
    let cookies = [
        auth::set_cookie(
            auth::session_cookie_name(secure),
            &session_id,
            Some(state.config.session_ttl),
            secure,
        ),
        auth::set_cookie(auth::login_cookie_name(secure), "", None, secure),
    ];
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// After a login that carried a declaration typed before the session expired:
/// the form again, filled with what was typed, to check and save.
async fn resume_draft(
    state: &AppState,
    credential: &decompte_store::Credential,
    session_id: &str,
    draft: &Fields,
) -> Option<Response> {
    let session = BrowserSession {
        caller: auth::Caller {
            credential: credential.clone(),
        },
        session_id: session_id.to_owned(),
        csrf: auth::csrf_token(session_id),
    };
    let commune = page_commune(state, &session, field(draft, "commune")).ok()?;
    let date_text = field(draft, "date").unwrap_or("").to_owned();
    let date = parse_date(&date_text);
    let current = match date {
        Some(d) => state.store.current_report(&commune.code, d).await.ok()?,
        None => None,
    };
    let view = FormView {
        commune: &commune,
        date_text: date.map(|d| d.to_string()).unwrap_or(date_text),
        date,
        values: state
            .config
            .rules
            .settings
            .keys()
            .map(|k| (k.to_owned(), field(draft, &format!("n_{k}")).unwrap_or("").to_owned()))
            .collect(),
        reason: field(draft, "reason").unwrap_or("").to_owned(),
        replaces_version: field(draft, "replaces_version").and_then(|v| v.parse().ok()),
        show_current_beside: current.is_some(),
        current,
        errors: Vec::new(),
        conflict: None,
        saved: None,
        notice: Some("Vous êtes de nouveau connecté : les chiffres que vous aviez saisis sont conservés ci-dessous, mais ils ne sont pas encore enregistrés. Vérifiez-les un par un, puis enregistrez.".into()),
    };
    Some(render_form(state, &session, StatusCode::OK, view).await)
}

async fn logout(State(state): State<AppState>, SignedForm { session, .. }: SignedForm) -> Response {
    if let Err(error) = auth::close_session(&state, &session.session_id).await {
        return error_page(&state, Some(&session), &error.into());
    }
    let secure = state.config.secure_cookies;
    let mut response = Redirect::to("/connexion?deconnecte=1").into_response();
    if let Ok(value) = auth::set_cookie(auth::session_cookie_name(secure), "", None, secure).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

// The commune form.

#[derive(Deserialize, Default)]
struct FormQuery {
    commune: Option<String>,
    date: Option<String>,
    enregistre: Option<u32>,
}

/// The commune a page is about: the caller's own, or for the prefecture the one asked for.
fn page_commune(
    state: &AppState,
    session: &BrowserSession,
    asked: Option<&str>,
) -> Result<Commune, ApiError> {
    let scope = &state.config.scope;
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    let code = match (session.caller.credential.commune.clone(), asked) {
        (Some(own), None) => own,
        (own, Some(text)) => {
            let code =
                CommuneCode::parse(text).map_err(|e| ApiError::not_found(format!("{e}.")))?;
            if own.is_some() && !session.caller.may_access(&code) {
                return Err(ApiError::forbidden(format!("Votre code d'accès ne permet de déclarer que pour votre commune, pas pour la commune {code}.")));
            }
            code
        }
        (None, None) => scope
            .communes()
            .next()
            .map(|c| c.code.clone())
            .ok_or_else(|| ApiError::not_found("Aucune commune dans le périmètre."))?,
    };
    scope.get(&code).cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "La commune {code} n'est pas dans le périmètre ({}).",
            scope.label()
        ))
    })
}

/// What the form shows besides the user's own input.
struct FormView<'a> {
    commune: &'a Commune,
    date_text: String,
    date: Option<NaiveDate>,
    values: BTreeMap<String, String>,
    reason: String,
    replaces_version: Option<u32>,
    current: Option<Report>,
    show_current_beside: bool,
    errors: Vec<FieldError>,
    conflict: Option<String>,
    saved: Option<Report>,
    notice: Option<String>,
}

async fn render_form(
    state: &AppState,
    session: &BrowserSession,
    status: StatusCode,
    view: FormView<'_>,
) -> Response {
    let settings = &state.config.rules.settings;
    let now = Utc::now();
    let today = paris_today(now);
    let code = &view.commune.code;
    let (history, recent) = match view.date {
        Some(date) => {
            let history = state.store.history(code, date).await;
            let recent = state
                .store
                .current_reports(&ReportQuery {
                    commune: Some(code.clone()),
                    from: None,
                    to: None,
                })
                .await;
            match (history, recent) {
                (Ok(h), Ok(r)) => (h, r),
                (Err(e), _) | (_, Err(e)) => return error_page(state, Some(session), &e.into()),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let field_errors: BTreeMap<String, String> =
        view.errors.iter().fold(BTreeMap::new(), |mut map, e| {
            map.entry(e.field.clone())
                .and_modify(|m: &mut String| {
                    m.push(' ');
                    m.push_str(&e.message)
                })
                .or_insert_with(|| e.message.clone());
            map
        });
    let fields: Vec<Value> = settings
        .iter()
        .map(|s| {
            json!({
                "key": s.key, "label": s.label,
                "value": view.values.get(&s.key).cloned().unwrap_or_default(),
                "current": if view.show_current_beside { view.current.as_ref().map(|c| c.count(&s.key)) } else { None },
                "error": field_errors.get(&format!("counts.{}", s.key)),
            })
        })
        .collect();
    let anchor = |field: &str| match field.strip_prefix("counts.") {
        Some(key) => format!("n-{key}"),
        None => field.to_owned(),
    };
    let errors: Vec<Value> = view
        .errors
        .iter()
        .map(|e| json!({"anchor": anchor(&e.field), "message": e.message}))
        .collect();
    let history: Vec<Value> = history
        .iter()
        .map(|h| {
            json!({"version": h.version, "recorded_at_fr": fr_datetime(h.recorded_at), "total": h.total(),
                   "counts": settings.keys().map(|k| h.count(k)).collect::<Vec<_>>(),
                   "source": h.source.label(), "reason": h.reason})
        })
        .collect();
    let recent: Vec<Value> = recent
        .iter()
        .rev()
        .take(14)
        .map(|r| json!({"date": r.date.to_string(), "date_fr": fr_date(r.date), "total": r.total(), "version": r.version, "recorded_at_fr": fr_datetime(r.recorded_at)}))
        .collect();
    let saved = view.saved.as_ref().map(|r| {
        json!({"date_fr": fr_date(r.date), "version": r.version, "total": r.total(),
               "items": settings.iter().map(|s| json!({"label": s.label, "count": r.count(&s.key)})).collect::<Vec<_>>()})
    });
    let all_communes: Vec<Value> = if session.caller.is_prefecture() {
        state
            .config
            .scope
            .communes()
            .map(|c| json!({"code": c.code, "name": c.name}))
            .collect()
    } else {
        Vec::new()
    };
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(
        &mut context,
        json!({
            "commune": {"code": code, "name": view.commune.name},
            "prefecture": session.caller.is_prefecture(),
            "all_communes": all_communes,
            "date": view.date_text,
            "date_fr": view.date.map(fr_date).unwrap_or_else(|| view.date_text.clone()),
            "min_date": state.config.rules.crisis_start.to_string(),
            "max_date": today.to_string(),
            "max_per_cell": state.config.rules.max_per_cell,
            "fields": fields,
            "field_errors": field_errors,
            "errors": errors,
            "conflict": view.conflict,
            "reason": view.reason,
            "replaces_version": view.replaces_version,
            "current": view.current.as_ref().map(|c| json!({"version": c.version, "recorded_at_fr": fr_datetime(c.recorded_at)})),
            "history": history,
            "recent": recent,
            "saved": saved,
            "notice": view.notice,
            "settings": settings.iter().map(|s| json!({"key": s.key, "label": s.label})).collect::<Vec<_>>(),
        }),
    );
    render(state, status, "app/saisie.html", context)
}

async fn form_page(
    State(state): State<AppState>,
    LoggedIn(session): LoggedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query: FormQuery = lenient_query(query);
    let commune = match page_commune(&state, &session, query.commune.as_deref()) {
        Ok(commune) => commune,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let today = paris_today(Utc::now());
    let date = match asked_day(&state, query.date.as_deref(), today) {
        Ok(date) => date,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let current = match state.store.current_report(&commune.code, date).await {
        Ok(current) => current,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let saved = match query.enregistre {
        Some(version) => match state.store.history(&commune.code, date).await {
            Ok(history) => history.into_iter().find(|r| r.version == version),
            Err(error) => return error_page(&state, Some(&session), &error.into()),
        },
        None => None,
    };
    let values = current
        .as_ref()
        .map(|c| {
            state
                .config
                .rules
                .settings
                .keys()
                .map(|k| (k.to_owned(), c.count(k).to_string()))
                .collect()
        })
        .unwrap_or_default();
    let view = FormView {
        commune: &commune,
        date_text: date.to_string(),
        date: Some(date),
        values,
        reason: String::new(),
        replaces_version: current.as_ref().map(|c| c.version),
        current,
        show_current_beside: false,
        errors: Vec::new(),
        conflict: None,
        saved,
        notice: None,
    };
    render_form(&state, &session, StatusCode::OK, view).await
}

async fn form_submit(
    State(state): State<AppState>,
    SignedForm { session, fields }: SignedForm,
) -> Response {
    let commune = match page_commune(&state, &session, field(&fields, "commune")) {
        Ok(commune) => commune,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let settings = &state.config.rules.settings;
    let values: BTreeMap<String, String> = settings
        .keys()
        .map(|k| {
            (
                k.to_owned(),
                field(&fields, &format!("n_{k}"))
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
            )
        })
        .collect();
    let date_text = field(&fields, "date").unwrap_or("").trim().to_owned();
    let replaces_version =
        field(&fields, "replaces_version").and_then(|v| v.trim().parse::<u32>().ok());
    let reason = field(&fields, "reason").unwrap_or("").to_owned();
    let draft = Draft {
        commune: Some(commune.code.to_string()),
        date: Some(date_text.clone()),
        counts: values
            .iter()
            .map(|(k, v)| (k.clone(), CountValue::Text(v.clone())))
            .collect(),
        replaces_version,
        reason: Some(reason.clone()),
    };
    let source = if session.caller.is_prefecture() {
        Source::Prefecture
    } else {
        Source::Form
    };
    let date = parse_date(&date_text);
    let view = |errors: Vec<FieldError>,
                conflict: Option<String>,
                current: Option<Report>,
                replaces_version: Option<u32>| FormView {
        commune: &commune,
        date_text: date
            .map(|d| d.to_string())
            .unwrap_or_else(|| date_text.clone()),
        date,
        values: values.clone(),
        reason: reason.clone(),
        replaces_version,
        show_current_beside: conflict.is_some(),
        current,
        errors,
        conflict,
        saved: None,
        notice: None,
    };
    match submit(&state, &session.caller, &draft, source, None, Utc::now()).await {
        Ok(report) => {
            let mut target = format!("/saisie?date={}&enregistre={}", report.date, report.version);
            if session.caller.is_prefecture() {
                target.push_str(&format!("&commune={}", report.commune));
            }
            Redirect::to(&target).into_response()
        }
        Err(SubmitError::Invalid(errors)) => {
            let current = match date {
                Some(d) => state
                    .store
                    .current_report(&commune.code, d)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            let view = view(errors, None, current, replaces_version);
            render_form(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, view).await
        }
        Err(SubmitError::Conflict { current, message }) => {
            // Keep the user's numbers, show the current ones beside them, and
            // let the next save knowingly replace the current version.
            let current = current.map(|c| *c);
            let next = current.as_ref().map(|c| c.version);
            let view = view(Vec::new(), Some(message), current, next);
            render_form(&state, &session, StatusCode::CONFLICT, view).await
        }
        Err(error) => error_page(&state, Some(&session), &ApiError::from(error)),
    }
}

// The prefecture page.

#[derive(Deserialize, Default)]
struct PrefectureQuery {
    date: Option<String>,
    publication: Option<String>,
}

async fn prefecture_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let query: PrefectureQuery = lenient_query(query);
    let today = paris_today(Utc::now());
    let date = match asked_day(&state, query.date.as_deref(), today) {
        Ok(date) => date,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let loaded = async {
        let reported = state.store.reported_communes(date).await?;
        let reports = state
            .store
            .current_reports(&ReportQuery {
                commune: None,
                from: Some(date),
                to: Some(date),
            })
            .await?;
        let publications = state.store.publications(10).await?;
        Ok::<_, decompte_store::StoreError>((reported, reports, publications))
    }
    .await;
    let (reported, reports, publications) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let scope = &state.config.scope;
    let settings = &state.config.rules.settings;
    let completeness = Completeness::compute(date, scope, &reported);
    let in_scope: Vec<&Report> = reports
        .iter()
        .filter(|r| scope.contains(&r.commune))
        .collect();
    let day_settings: Vec<Value> = settings
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"label": s.label, "total": in_scope.iter().map(|r| u64::from(r.count(&s.key))).sum::<u64>(), "color": decompte_templates::setting_color(i)}))
        .collect();
    let reported_rows: Vec<Value> = in_scope
        .iter()
        .map(|r| {
            json!({"code": r.commune, "name": scope.get(&r.commune).map(|c| c.name.clone()).unwrap_or_default(),
                   "counts": settings.keys().map(|k| r.count(k)).collect::<Vec<_>>(), "total": r.total(), "version": r.version})
        })
        .collect();
    let publications: Vec<Value> = publications
        .iter()
        .map(|p| json!({"requested_at_fr": fr_datetime(p.requested_at), "status": p.status.label(), "requested_by": p.requested_by,
                        "reason": p.reason, "files_changed": p.files_changed, "error": p.error}))
        .collect();
    let notice = query.publication.map(|id| {
        format!("Publication {id} demandée : le site public sera à jour dans quelques instants.")
    });
    let minutes = state.config.publish_every.as_secs().div_ceil(60);
    let mut context = base_context(&state, Some(&session), &session.csrf);
    merge(
        &mut context,
        json!({
            "date": date.to_string(),
            "date_fr": fr_date(date),
            "max_date": today.to_string(),
            "completeness": completeness,
            "percent": completeness.percent(),
            "day_total": in_scope.iter().map(|r| r.total()).sum::<u64>(),
            "day_settings": day_settings,
            "reported_rows": reported_rows,
            "settings": settings.iter().map(|s| json!({"key": s.key, "label": s.label})).collect::<Vec<_>>(),
            "publications": publications,
            "notice": notice,
            "publish_every": if minutes <= 1 { "minutes".to_owned() } else { format!("{minutes} minutes") },
            "yesterday": (date - Duration::days(1)).to_string(),
        }),
    );
    render(&state, StatusCode::OK, "app/prefecture.html", context)
}

async fn prefecture_publish(
    State(state): State<AppState>,
    PrefectureForm(SignedForm { session, fields }): PrefectureForm,
) -> Response {
    let reason = field(&fields, "reason")
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect::<String>();
    let reason = if reason.is_empty() {
        "Demande depuis la page préfecture".to_owned()
    } else {
        reason
    };
    match state.publisher.trigger(session.caller.id(), &reason).await {
        Ok(publication) => {
            Redirect::to(&format!("/prefecture?publication={}", publication.id)).into_response()
        }
        Err(error) => error_page(&state, Some(&session), &error.into()),
    }
}
