//! The extractors of the pages: a logged-in browser, a prefecture user, a
//! form posted with its CSRF token (or, when the session has expired, the
//! login page carrying what was typed, for a same-origin request only).

use super::*;

pub(super) struct LoggedIn(pub(super) BrowserSession);

impl FromRequestParts<AppState> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        require_session(state, &parts.headers).await.map(LoggedIn)
    }
}

/// A logged-in prefecture user; a commune user gets `403`.
pub(super) struct PrefectureUser(pub(super) BrowserSession);

impl FromRequestParts<AppState> for PrefectureUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let LoggedIn(session) = LoggedIn::from_request_parts(parts, state).await?;
        prefecture_only(state, session).map(PrefectureUser)
    }
}

/// A form posted by a logged-in browser, with a valid CSRF token.
pub(super) struct SignedForm {
    pub(super) session: BrowserSession,
    pub(super) fields: Fields,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let session = auth::browser_session(state, &parts.headers, state.now())
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
                    Some(
                        "Votre session a expiré. Saisissez à nouveau votre code d'accès : les \
                        chiffres que vous avez saisis sont conservés.",
                    ),
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
pub(super) struct PrefectureForm(pub(super) SignedForm);

impl FromRequest<AppState> for PrefectureForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let SignedForm { session, fields } = SignedForm::from_request(request, state).await?;
        let session = prefecture_only(state, session)?;
        Ok(Self(SignedForm { session, fields }))
    }
}
