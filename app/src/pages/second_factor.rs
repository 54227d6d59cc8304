//! The second step of a prefecture or national login: the six digits of the
//! phone's authenticator app (or a recovery code), after the access code.
//! At the first login, the enrolment: a QR code to scan, a first code to
//! type, and ten recovery codes shown once.
//!
//! Between the two steps the browser holds a pending session: its own
//! cookie, stored hashed like a session, ten minutes long, and opening
//! nothing but this page.

use decompte_core::auth::hash_secret;
use decompte_store::{Credential, Session};

use super::*;
use crate::second_factor;

/// How long a browser has to give its second factor after the access code.
const PENDING_MINUTES: i64 = 10;

fn pending_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-decompte_verification"
    } else {
        "decompte_verification"
    }
}

/// After a right access code of a supervisor: a pending session, and the
/// page that asks for the second factor (beginning the enrolment if there
/// is none yet).
pub(super) async fn ask(
    state: &AppState,
    credential: &Credential,
    draft: &Fields,
    now: chrono::DateTime<Utc>,
) -> Response {
    let mut credential = credential.clone();
    if !credential.has_second_factor() {
        let secret = second_factor::new_secret();
        match state
            .store
            .begin_second_factor(&credential.id, &secret)
            .await
        {
            Ok(true) => {
                credential.second_factor = Some(decompte_store::SecondFactor::pending(secret))
            }
            // Confirmed in between by another browser: ask for a code.
            Ok(false) => match state.store.credential(&credential.id).await {
                Ok(Some(fresh)) => credential = fresh,
                Ok(None) => return error_page(state, None, &ApiError::unauthorized()),
                Err(error) => return error_page(state, None, &error.into()),
            },
            Err(error) => return error_page(state, None, &error.into()),
        }
    }
    let pending_id = hex::encode(auth::random_bytes::<32>());
    let session = Session {
        id_hash: hash_secret("pending", &pending_id),
        credential_id: credential.id.clone(),
        created_at: now,
        expires_at: now + Duration::minutes(PENDING_MINUTES),
        last_seen_at: now,
        pending: true,
    };
    if let Err(error) = state.store.insert_session(&session).await {
        return error_page(state, None, &error.into());
    }
    tracing::info!(
        event = "second_factor_asked",
        credential = %credential.id,
        enrolment = !credential.has_second_factor(),
        "access code accepted, second factor asked"
    );
    let csrf = auth::csrf_token(&pending_id);
    let response = page(state, StatusCode::OK, &credential, &csrf, None, draft, now);
    let secure = state.config.secure_cookies;
    let cookies = [
        auth::set_cookie(
            pending_cookie_name(secure),
            &pending_id,
            Some(std::time::Duration::from_secs(60 * PENDING_MINUTES as u64)),
            secure,
        ),
        auth::set_cookie(auth::login_cookie_name(secure), "", None, secure),
    ];
    with_cookies(response, &cookies)
}

/// The page asking for the second factor: the enrolment's QR code and key
/// when there is no confirmed factor yet, else the code field alone.
fn page(
    state: &AppState,
    status: StatusCode,
    credential: &Credential,
    csrf: &str,
    error: Option<&str>,
    draft: &Fields,
    now: chrono::DateTime<Utc>,
) -> Response {
    let mut context = base_context(state, None, csrf);
    let draft: Vec<Value> = draft
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let enrolment = credential
        .second_factor
        .as_ref()
        .filter(|f| f.confirmed_at.is_none())
        .map(|f| {
            let uri = second_factor::provisioning_uri(
                &f.secret,
                &state.config.publisher,
                &credential.label,
            );
            json!({
                "key": second_factor::grouped(&f.secret),
                "qr": uri.as_deref().and_then(second_factor::qr_svg).map(|svg| inline_svg(&svg)),
            })
        });
    // The demonstration shows the code a phone would show, so that a
    // newcomer without an authenticator app can go through the login.
    let demo_code = credential
        .second_factor
        .as_ref()
        .filter(|_| state.config.demo)
        .and_then(|f| second_factor::code_at(&f.secret, now));
    merge(
        &mut context,
        json!({
            "error": error,
            "draft": draft,
            "enrolment": enrolment,
            "demo_code": demo_code,
            "label": credential.label,
        }),
    );
    render(state, status, "app/second_factor.html", context)
}

/// The QR code's SVG, ready to sit in a page: without its XML prologue, and
/// named for screen readers.
fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"Code QR à scanner avec l'application d'authentification\"",
        1,
    )
}

/// The pending login of this browser: its id, and its still active credential.
async fn pending(
    state: &AppState,
    headers: &HeaderMap,
    now: chrono::DateTime<Utc>,
) -> Result<Option<(String, Credential)>, ApiError> {
    let secure = state.config.secure_cookies;
    let Some(pending_id) = auth::cookie(headers, pending_cookie_name(secure)) else {
        return Ok(None);
    };
    let Some(session) = state
        .store
        .session(&hash_secret("pending", &pending_id), now)
        .await?
        .filter(|s| s.pending)
    else {
        return Ok(None);
    };
    let credential = state
        .store
        .credential(&session.credential_id)
        .await?
        .filter(|c| c.is_active(now) && c.role.is_supervisor());
    Ok(credential.map(|c| (pending_id, c)))
}

fn back_to_login() -> Response {
    Redirect::to("/connexion").into_response()
}

/// `GET /connexion/verification`: the page again (a reload), or the login
/// page when no login is pending.
pub(super) async fn verification_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let now = state.now();
    match pending(&state, &headers, now).await {
        Ok(Some((pending_id, credential))) => page(
            &state,
            StatusCode::OK,
            &credential,
            &auth::csrf_token(&pending_id),
            None,
            &Fields::new(),
            now,
        ),
        Ok(None) => back_to_login(),
        Err(error) => error_page(&state, None, &error),
    }
}

/// `POST /connexion/verification`: checks the code typed; at the
/// enrolment, confirms it and shows the recovery codes; else opens the
/// session.
pub(super) async fn verify(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let now = state.now();
    let (pending_id, credential) = match pending(&state, &headers, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return back_to_login(),
        Err(error) => return error_page(&state, None, &error),
    };
    let csrf = auth::csrf_token(&pending_id);
    let draft = if auth::same_origin(&state.config, &headers) {
        login::draft_of(&fields, "draft_")
    } else {
        Fields::new()
    };
    if !field(&fields, "csrf").is_some_and(|given| auth::tokens_match(&csrf, given)) {
        return page(
            &state,
            StatusCode::FORBIDDEN,
            &credential,
            &csrf,
            Some("Le formulaire a expiré : saisissez à nouveau le code."),
            &draft,
            now,
        );
    }
    let Some(factor) = credential.second_factor.clone() else {
        return back_to_login();
    };
    // Past the limit of wrong codes, no code is checked until the window ends.
    if let Err(error) = auth::second_factor_open(&state, &credential, now).await {
        return error_page(&state, None, &error);
    }
    let typed = field(&fields, "code").unwrap_or("").trim().to_owned();
    let enrolling = factor.confirmed_at.is_none();
    let accepted = match accept(&state, &credential.id, &factor, &typed, now).await {
        Ok(accepted) => accepted,
        Err(error) => return error_page(&state, None, &error.into()),
    };
    if let Accepted::No = accepted {
        if let Err(error) = auth::second_factor_failed(&state, &credential, now).await {
            return error_page(&state, None, &error);
        }
        let message = if enrolling {
            "Ce code ne correspond pas : vérifiez que l'application a bien lu le code QR (ou la \
            clé) et que l'heure de votre téléphone est juste, puis saisissez le code qu'elle \
            affiche maintenant."
        } else {
            "Code incorrect ou déjà utilisé : saisissez le code à six chiffres que votre \
            application affiche maintenant (il change toutes les 30 secondes), ou l'un de vos \
            codes de secours."
        };
        return page(
            &state,
            StatusCode::UNAUTHORIZED,
            &credential,
            &csrf,
            Some(message),
            &draft,
            now,
        );
    }
    // The pending login is over, whatever comes next.
    if let Err(error) = state
        .store
        .delete_session(&hash_secret("pending", &pending_id))
        .await
    {
        return error_page(&state, None, &error.into());
    }
    let client = auth::client_key(
        &state,
        &headers,
        peer.map(|Extension(ConnectInfo(addr))| addr.ip()),
    );
    let secure = state.config.secure_cookies;
    let mut response = match accepted {
        Accepted::Enrolled(codes) => {
            tracing::info!(event = "second_factor_enrolled", credential = %credential.id, "second factor enrolled");
            let response =
                login::finish_login(&state, &credential, &client, &Fields::new(), now).await;
            recovery_codes_page(&state, response, &codes)
        }
        Accepted::Recovery => {
            let left = credential
                .second_factor
                .as_ref()
                .map_or(0, |f| f.recovery_left().saturating_sub(1));
            tracing::warn!(event = "recovery_code_used", credential = %credential.id, left, "recovery code used");
            login::finish_login(&state, &credential, &client, &draft, now).await
        }
        _ => login::finish_login(&state, &credential, &client, &draft, now).await,
    };
    if let Ok(value) = auth::set_cookie(pending_cookie_name(secure), "", None, secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// What the code `typed` opens: at the enrolment, a code of the new
/// secret confirms it (and makes the recovery codes); after it, a code of a
/// time step not used yet, or a recovery code not used yet.
async fn accept(
    state: &AppState,
    credential: &str,
    factor: &decompte_store::SecondFactor,
    typed: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Accepted, decompte_store::StoreError> {
    let enrolling = factor.confirmed_at.is_none();
    Ok(match second_factor::check(&factor.secret, typed, now) {
        Some(step) if enrolling => {
            let codes = second_factor::new_recovery_codes();
            let hashes: Vec<String> = codes
                .iter()
                .filter_map(|c| second_factor::recovery_hash(c))
                .collect();
            let confirmed = state
                .store
                .confirm_second_factor(credential, &factor.secret, step, &hashes, now)
                .await?;
            if confirmed {
                Accepted::Enrolled(codes)
            } else {
                Accepted::No
            }
        }
        Some(step) => match state.store.use_second_factor_step(credential, step).await? {
            true => Accepted::Code,
            false => Accepted::No,
        },
        None if enrolling => Accepted::No,
        None => match second_factor::recovery_hash(typed) {
            Some(hash) if state.store.use_recovery_code(credential, &hash).await? => {
                Accepted::Recovery
            }
            _ => Accepted::No,
        },
    })
}

enum Accepted {
    No,
    Code,
    Recovery,
    Enrolled(Vec<String>),
}

/// The recovery codes, shown once, in place of the redirection `finish`
/// answered (its cookies kept).
fn recovery_codes_page(state: &AppState, finish: Response, codes: &[String]) -> Response {
    if !finish.status().is_redirection() {
        return finish;
    }
    let mut context = base_context(state, None, "");
    merge(&mut context, json!({"codes": codes}));
    let mut response = render(state, StatusCode::OK, "app/recovery_codes.html", context);
    for value in finish.headers().get_all(header::SET_COOKIE) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, value.clone());
    }
    response
}
