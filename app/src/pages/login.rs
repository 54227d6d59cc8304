//! Login and logout, and a declaration typed before the session expired,
//! carried through the login.

use super::*;

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    deconnecte: Option<String>,
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    if let Ok(Some(session)) = auth::browser_session(&state, &headers, state.now()).await {
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
pub(super) fn draft_of(fields: &Fields, prefix: &str) -> Fields {
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

pub(super) fn login_form(
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
        json!({"error": error, "notice": notice, "draft": draft,
               "proconnect": state.config.oidc.is_some()}),
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

pub(super) async fn login(
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
    let now = state.now();
    let credential =
        match auth::check_code(&state, field(&fields, "code").unwrap_or(""), &client, now).await {
            Ok(credential) => credential,
            Err(error) if error.status == StatusCode::UNAUTHORIZED => {
                return login_form(
                    &state,
                    StatusCode::UNAUTHORIZED,
                    Some(
                        "Code d'accès inconnu ou \
                révoqué. Vérifiez la saisie : le code INSEE de la commune puis 28 caractères ; si \
                le problème continue, demandez un nouveau code à la préfecture.",
                    ),
                    None,
                    &draft,
                );
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
    // The prefecture and the national level have a second factor to give.
    if credential.role.is_supervisor() {
        return super::second_factor::ask(&state, &credential, &draft, now).await;
    }
    finish_login(&state, &credential, &client, &draft, now).await
}

/// Opens the session of a credential whose every factor was given, and
/// sends the browser on: its home page, or the declaration it had typed.
pub(super) async fn finish_login(
    state: &AppState,
    credential: &decompte_store::Credential,
    client: &str,
    draft: &Fields,
    now: chrono::DateTime<Utc>,
) -> Response {
    let secure = state.config.secure_cookies;
    let session_id = match auth::open_session(state, credential, now).await {
        Ok(id) => id,
        Err(error) => return error_page(state, None, &error.into()),
    };
    tracing::info!(
        event = "login",
        credential = %credential.id,
        role = %credential.role,
        commune = credential.commune.as_ref().map(|c| c.as_str()),
        client = %client,
        "logged in"
    );
    let target = if credential.role.is_supervisor() {
        "/prefecture"
    } else {
        "/saisie"
    };
    let response = match draft.is_empty() {
        true => Redirect::to(target).into_response(),
        false => resume_draft(state, credential, &session_id, draft)
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
    with_cookies(response, &cookies)
}

/// After a login that carried a declaration typed before the session expired:
/// the form again, filled with what was typed, to check and save.
pub(super) async fn resume_draft(
    state: &AppState,
    credential: &decompte_store::Credential,
    session_id: &str,
    draft: &Fields,
) -> Option<Response> {
    let session = BrowserSession {
        caller: auth::Caller::new(credential.clone()),
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
            .map(|k| {
                (
                    k.to_owned(),
                    field(draft, &format!("n_{k}")).unwrap_or("").to_owned(),
                )
            })
            .collect(),
        reason: field(draft, "reason").unwrap_or("").to_owned(),
        replaces_version: field(draft, "replaces_version").and_then(|v| v.parse().ok()),
        show_current_beside: current.is_some(),
        current,
        errors: Vec::new(),
        conflict: None,
        saved: None,
        warnings: Vec::new(),
        notice: Some(
            "Vous êtes de nouveau connecté : les chiffres que vous aviez saisis sont \
            conservés ci-dessous, mais ils ne sont pas encore enregistrés. Vérifiez-les un par un, \
            puis enregistrez."
                .into(),
        ),
    };
    Some(render_form(state, &session, StatusCode::OK, view).await)
}

/// `GET /connexion/session`: keeps the browser's session (its idle time
/// starts again) and answers 204, or 401 when it has ended (session.js,
/// when its reader asks to stay signed in or types).
pub(super) async fn keep_session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let status = match auth::browser_session(&state, &headers, state.now()).await {
        Ok(Some(_)) => StatusCode::NO_CONTENT,
        Ok(None) => StatusCode::UNAUTHORIZED,
        Err(error) => {
            tracing::warn!(%error, "session not kept: the store does not answer");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, [(axum::http::header::CACHE_CONTROL, "no-store")]).into_response()
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedForm { session, .. }: SignedForm,
) -> Response {
    if let Err(error) = auth::close_session(&state, &session.session_id).await {
        return error_page(&state, Some(&session), &error.into());
    }
    tracing::info!(event = "logout", credential = %session.caller.id(), "logged out");
    let secure = state.config.secure_cookies;
    let back = "/connexion?deconnecte=1";
    // An agent signed in with ProConnect: its session there ends too, so
    // that a shared computer does not sign the next person back in.
    let token_cookie = super::proconnect::logout_cookie_name(secure);
    let provider_logout = match (
        &state.config.oidc,
        auth::cookie(&headers, token_cookie),
        auth::own_origin(&state.config, &headers),
    ) {
        (Some(oidc), Some(token), Some(origin)) if !token.is_empty() => {
            oidc.logout_url(&token, &format!("{origin}{back}")).await
        }
        _ => None,
    };
    // A page that goes there, not a redirect: the form's `form-action
    // 'self'` would stop a redirect to another site.
    let mut response = match provider_logout {
        Some(url) => {
            let mut context = base_context(&state, None, "");
            merge(&mut context, json!({"provider_logout": url}));
            render(
                &state,
                StatusCode::OK,
                "app/proconnect_logout.html",
                context,
            )
        }
        None => Redirect::to(back).into_response(),
    };
    for name in [auth::session_cookie_name(secure), token_cookie] {
        if let Ok(value) = auth::set_cookie(name, "", None, secure).parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
