//! Sign-in with ProConnect (`crate::oidc`): `/connexion/proconnect` sends
//! the browser to the provider with a fresh `state`, `nonce` and PKCE
//! verifier, kept in a short-lived cookie; `/connexion/proconnect/retour`
//! (throttled per client like a login) checks the `state`, trades the code,
//! and opens the session of the agent's credential: named by the issuer and
//! `sub`, made at its first sign-in, refused once revoked, its reach set
//! again from the rules at every sign-in (what it issued beyond that reach
//! is revoked), and through decompte's own second factor when the provider
//! shows none. At logout the provider's session ends too.

use decompte_core::Role;
use decompte_store::Credential;

use crate::oidc::ReturnRefusal;

use super::*;

/// How long a sign-in may take at the provider.
const FLOW_SECONDS: i64 = 600;

/// The cookie that keeps the agent's ID token, for the provider's logout.
pub(super) fn logout_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-decompte_proconnect_logout"
    } else {
        "decompte_proconnect_logout"
    }
}

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
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(oidc) = state.config.oidc.clone() else {
        return not_offered(&state);
    };
    let secure = state.config.secure_cookies;
    let forget = flow_cookie("", 0, secure);
    let answer = |response: Response| with_cookies(response, std::slice::from_ref(&forget));
    let now = state.now();
    let client = auth::client_key(
        &state,
        &headers,
        peer.map(|Extension(ConnectInfo(addr))| addr.ip()),
    );
    // Each return costs a request to the provider: throttled like a login.
    if let Err(error) = auth::client_open(&state, &client, now).await {
        tracing::warn!(
            event = "proconnect_throttled",
            client,
            "too many failed ProConnect returns"
        );
        return answer(error_page(&state, None, &error));
    }
    let failed = |status: StatusCode, message: String| {
        let (state, client) = (state.clone(), client.clone());
        async move {
            if let Err(error) = auth::client_failed(&state, &client, now).await {
                return error_page(&state, None, &error);
            }
            refused(&state, status, &message)
        }
    };
    let kept = auth::cookie(&headers, flow_cookie_name(secure)).unwrap_or_default();
    let back = match crate::oidc::read_return(query.as_deref().unwrap_or(""), &kept) {
        Ok(back) => back,
        Err(refusal) => {
            let (status, message) = return_refusal(refusal);
            return answer(failed(status, message.to_owned()).await);
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
            let status = match error {
                crate::oidc::OidcError::Unverified => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_GATEWAY,
            };
            return answer(failed(status, error.to_string()).await);
        }
    };
    let reach = oidc.reach_of(&agent.email);
    // What the agent issued cannot outlive its reach.
    if let Err(error) =
        retire_beyond_reach(&state, &agent.credential_id, reach.as_deref(), now).await
    {
        return answer(error_page(&state, None, &error.into()));
    }
    let Some(departements) = reach else {
        tracing::info!(
            event = "access_refused",
            via = "proconnect",
            credential = %agent.credential_id,
            "an agent no rule lets in"
        );
        return answer(
            failed(
                StatusCode::FORBIDDEN,
                format!(
                    "L'adresse {} n'a pas accès au suivi de cette préfecture. Demandez à la cellule \
                     de crise de l'ajouter, ou utilisez un code d'accès.",
                    agent.email
                ),
            )
            .await,
        );
    };
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
    let keep_token = auth::set_cookie(
        logout_cookie_name(secure),
        &agent.id_token,
        Some(state.config.session_ttl),
        secure,
    );
    if !agent.second_factor {
        // The provider asked a password only: decompte's own second factor,
        // enrolled at the first sign-in as a code's holder does.
        tracing::info!(event = "proconnect_second_factor", credential = %credential.id, "no second factor shown by the provider");
        let page = super::second_factor::ask(&state, &credential, &Fields::new(), now).await;
        return with_cookies(page, &[forget.clone(), keep_token]);
    }
    signed_in(&state, &agent, &credential, [forget, keep_token], now).await
}

/// The agent is in: its session opens, and a page goes on to the
/// prefecture page with the flow's cookie forgotten and the provider's
/// token kept for the logout.
async fn signed_in(
    state: &AppState,
    agent: &crate::oidc::Agent,
    credential: &decompte_store::Credential,
    cookies: [String; 2],
    now: chrono::DateTime<Utc>,
) -> Response {
    let [forget, keep_token] = cookies;
    let secure = state.config.secure_cookies;
    let session_id = match auth::open_session(state, credential, now).await {
        Ok(id) => id,
        Err(error) => return with_cookies(error_page(state, None, &error.into()), &[forget]),
    };
    tracing::info!(event = "login", credential = %credential.id, role = %credential.role, via = "proconnect", "logged in");
    // A page that goes on to the prefecture page from here: a redirect would
    // still be the provider's navigation, which a SameSite=Strict session
    // cookie does not follow.
    let mut context = base_context(state, None, "");
    merge(
        &mut context,
        json!({"name": agent.name, "email": agent.email}),
    );
    let page = render(state, StatusCode::OK, "app/proconnect.html", context);
    let cookies = [
        forget,
        keep_token,
        auth::set_cookie(
            auth::session_cookie_name(secure),
            &session_id,
            Some(state.config.session_ttl),
            secure,
        ),
    ];
    with_cookies(page, &cookies)
}

/// What the browser is told when the redirect back cannot be used.
fn return_refusal(refusal: ReturnRefusal) -> (StatusCode, &'static str) {
    match refusal {
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
    }
}

/// Revokes, with what they issued in turn, the active codes the agent
/// `id` issued that reach beyond `reach` (`None`: no rule lets the agent
/// in any more, so all of them; an empty list: every département served).
async fn retire_beyond_reach(
    state: &AppState,
    id: &str,
    reach: Option<&[String]>,
    now: chrono::DateTime<Utc>,
) -> Result<(), decompte_store::StoreError> {
    let issued: Vec<Credential> = state
        .store
        .credentials()
        .await?
        .into_iter()
        .filter(|c| c.issued_by.as_deref() == Some(id) && c.is_active(now))
        .collect();
    for code in issued {
        let within = match reach {
            None => false,
            Some([]) => true,
            Some(reach) => match (&code.commune, code.departements.is_empty()) {
                (Some(commune), _) => reach.iter().any(|d| d == commune.departement()),
                (None, true) => false,
                (None, false) => code.departements.iter().all(|d| reach.contains(d)),
            },
        };
        if !within {
            let revoked =
                auth::revoke_credential(state.store.as_ref(), &code.id, true, now).await?;
            tracing::info!(event = "code_revoked", id = %code.id, cascade_from = %id, count = revoked.len(), "beyond its issuing agent's reach");
        }
    }
    Ok(())
}

/// The credential of an agent: the one made at its first sign-in, its
/// départements set again from the rules, or a new one (a prefecture of
/// `departements`, named by the agent, with no access code anyone knows);
/// `None` if the prefecture revoked it.
async fn agent_credential(
    state: &AppState,
    agent: &crate::oidc::Agent,
    departements: Vec<String>,
    now: chrono::DateTime<Utc>,
) -> Result<Option<Credential>, decompte_store::StoreError> {
    let email = agent.email.trim().to_lowercase();
    // Earlier versions named an agent by its address: a revoked one keeps
    // the agent out, an active one is superseded by the credential named by
    // the provider's subject.
    let by_address = format!(
        "proconnect-{}",
        &decompte_core::auth::hash_secret("proconnect", &email)[..16]
    );
    if let Some(old) = state.store.credential(&by_address).await? {
        if old.revoked_at.is_some() {
            return Ok(None);
        }
        state.store.revoke_credential(&old.id, now).await?;
        tracing::info!(event = "code_revoked", id = %old.id, "an agent's credential named by its address, superseded");
    }
    if let Some(mut known) = state.store.credential(&agent.credential_id).await? {
        if !known.is_active(now) {
            return Ok(None);
        }
        if known.departements != departements {
            state
                .store
                .set_departements(&known.id, &departements)
                .await?;
            tracing::info!(event = "reach_changed", credential = %known.id, from = ?known.departements, to = ?departements, "an agent's reach follows the rules");
            known.departements = departements;
        }
        return Ok(Some(known));
    }
    let label = match &agent.name {
        Some(name) => format!("{name} ({email}, ProConnect)"),
        None => format!("{email} (ProConnect)"),
    };
    let credential = Credential {
        id: agent.credential_id.clone(),
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
