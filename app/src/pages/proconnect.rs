//! Sign-in with ProConnect (`crate::oidc`): `/connexion/proconnect` sends
//! the browser to the provider with a fresh `state`, `nonce` and PKCE
//! verifier, kept in a short-lived cookie; `/connexion/proconnect/retour`
//! checks the `state`, trades the code, and opens the session of the
//! agent's credential (made at its first sign-in, refused once revoked).

use decompte_core::Role;
use decompte_store::Credential;

use crate::oidc::ReturnRefusal;

use super::*;

/// How long a sign-in may take at the provider.
const FLOW_SECONDS: i64 = 600;

fn flow_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-decompte_proconnect"
    } else {
        "decompte_proconnect"
    }
}

/// The flow cookie: HttpOnly, Secure, and SameSite=Lax, since the
/// provider's redirect back is a navigation from another site.
fn flow_cookie(value: &str, seconds: i64, secure: bool) -> String {
    cookie::Cookie::build((flow_cookie_name(secure), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(seconds))
        .build()
        .to_string()
}

/// Where the provider sends the browser back: the app's own address.
fn redirect_uri(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let origin = auth::own_origin(&state.config, headers)?;
    Some(format!("{origin}/connexion/proconnect/retour"))
}

fn not_offered(state: &AppState) -> Response {
    refused(
        state,
        StatusCode::NOT_FOUND,
        "La connexion avec ProConnect n'est pas proposée ici : utilisez votre code d'accès.",
    )
}

fn refused(state: &AppState, status: StatusCode, message: &str) -> Response {
    login_form(state, status, Some(message), None, &Fields::new())
}

/// `GET /connexion/proconnect`.
pub(super) async fn proconnect_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let Some(oidc) = state.config.oidc.clone() else {
        return not_offered(&state);
    };
    let Some(redirect) = redirect_uri(&state, &headers) else {
        return refused(
            &state,
            StatusCode::BAD_REQUEST,
            "Adresse de retour inconnue.",
        );
    };
    let random = || hex::encode(auth::random_bytes::<32>());
    let (flow_state, nonce, verifier) = (random(), random(), random());
    match oidc
        .authorize_url(&redirect, &flow_state, &nonce, &verifier)
        .await
    {
        Ok(url) => {
            let secure = state.config.secure_cookies;
            let cookie = flow_cookie(
                &format!("{flow_state}.{nonce}.{verifier}"),
                FLOW_SECONDS,
                secure,
            );
            with_cookies(Redirect::to(&url).into_response(), &[cookie])
        }
        Err(error) => {
            tracing::warn!(%error, "ProConnect sign-in could not start");
            refused(&state, StatusCode::BAD_GATEWAY, &error.to_string())
        }
    }
}

/// `GET /connexion/proconnect/retour`.
pub(super) async fn proconnect_return(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(oidc) = state.config.oidc.clone() else {
        return not_offered(&state);
    };
    let secure = state.config.secure_cookies;
    let forget = flow_cookie("", 0, secure);
    let answer = |response: Response| with_cookies(response, std::slice::from_ref(&forget));
    let kept = auth::cookie(&headers, flow_cookie_name(secure)).unwrap_or_default();
    let back = match crate::oidc::read_return(query.as_deref().unwrap_or(""), &kept) {
        Ok(back) => back,
        Err(refusal) => {
            let (status, message) = match refusal {
                ReturnRefusal::Interrupted(error) => {
                    tracing::info!(event = "proconnect_refused", %error, "the provider ended the sign-in");
                    (
                        StatusCode::UNAUTHORIZED,
                        "La connexion avec ProConnect a été interrompue : recommencez, ou \
                         utilisez votre code d'accès.",
                    )
                }
                ReturnRefusal::NoFlow => (
                    StatusCode::BAD_REQUEST,
                    "Cette connexion a expiré ou a été ouverte dans un autre navigateur : \
                     recommencez.",
                ),
                ReturnRefusal::Incomplete => (
                    StatusCode::BAD_REQUEST,
                    "Réponse de ProConnect incomplète : recommencez.",
                ),
                ReturnRefusal::StateMismatch => {
                    tracing::warn!(event = "proconnect_state_mismatch", "the state differs");
                    (
                        StatusCode::BAD_REQUEST,
                        "Cette connexion ne vient pas de ce navigateur : recommencez.",
                    )
                }
            };
            return answer(refused(&state, status, message));
        }
    };
    let Some(redirect) = redirect_uri(&state, &headers) else {
        return answer(refused(
            &state,
            StatusCode::BAD_REQUEST,
            "Adresse de retour inconnue.",
        ));
    };
    let agent = match oidc
        .sign_in(&back.code, &back.verifier, &back.nonce, &redirect)
        .await
    {
        Ok(agent) => agent,
        Err(error) => {
            tracing::warn!(
                event = "proconnect_failed",
                ?error,
                "ProConnect sign-in failed"
            );
            return answer(refused(&state, StatusCode::BAD_GATEWAY, &error.to_string()));
        }
    };
    let Some(departements) = oidc.reach_of(&agent.email) else {
        tracing::info!(
            event = "access_refused",
            via = "proconnect",
            "an agent no rule lets in"
        );
        return answer(refused(
            &state,
            StatusCode::FORBIDDEN,
            &format!(
                "L'adresse {} n'a pas accès au suivi de cette préfecture. Demandez à la cellule de \
                 crise de l'ajouter, ou utilisez un code d'accès.",
                agent.email
            ),
        ));
    };
    let now = Utc::now();
    let credential =
        match agent_credential(&state, &agent, departements, now).await {
            Ok(Some(credential)) => credential,
            Ok(None) => return answer(refused(
                &state,
                StatusCode::FORBIDDEN,
                "Votre accès a été retiré par la préfecture : adressez-vous à la cellule de crise.",
            )),
            Err(error) => return answer(error_page(&state, None, &error.into())),
        };
    let session_id = match auth::open_session(&state, &credential, now).await {
        Ok(id) => id,
        Err(error) => return answer(error_page(&state, None, &error.into())),
    };
    tracing::info!(event = "login", credential = %credential.id, role = %credential.role, via = "proconnect", "logged in");
    // A page that goes on to the prefecture page from here: a redirect would
    // still be the provider's navigation, which a SameSite=Strict session
    // cookie does not follow.
    let mut context = base_context(&state, None, "");
    merge(
        &mut context,
        json!({"name": agent.name, "email": agent.email}),
    );
    let page = render(&state, StatusCode::OK, "app/proconnect.html", context);
    let cookies = [
        forget.clone(),
        auth::set_cookie(
            auth::session_cookie_name(secure),
            &session_id,
            Some(state.config.session_ttl),
            secure,
        ),
    ];
    with_cookies(page, &cookies)
}

/// The credential of an agent: the one made at its first sign-in, or a new
/// one (a prefecture of `departements`, named by the agent, with no access
/// code anyone knows); `None` if the prefecture revoked it.
async fn agent_credential(
    state: &AppState,
    agent: &crate::oidc::Agent,
    departements: Vec<String>,
    now: chrono::DateTime<Utc>,
) -> Result<Option<Credential>, decompte_store::StoreError> {
    let email = agent.email.trim().to_lowercase();
    let id = format!(
        "proconnect-{}",
        &decompte_core::auth::hash_secret("proconnect", &email)[..16]
    );
    if let Some(known) = state.store.credential(&id).await? {
        return Ok(known.is_active(now).then_some(known));
    }
    let label = match &agent.name {
        Some(name) => format!("{name} ({email}, ProConnect)"),
        None => format!("{email} (ProConnect)"),
    };
    let credential = Credential {
        id,
        role: Role::Prefecture,
        commune: None,
        departements,
        label,
        // No code opens it: the hash of a secret nobody keeps.
        code_hash: decompte_core::auth::hash_secret(
            "code",
            &hex::encode(auth::random_bytes::<32>()),
        ),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        issued_by: Some("ProConnect".into()),
        expires_at: None,
        second_factor: None,
    };
    state.store.insert_credential(&credential).await?;
    tracing::info!(event = "code_issued", id = %credential.id, by = "ProConnect", "an agent's first sign-in");
    Ok(Some(credential))
}
