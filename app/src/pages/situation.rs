//! The morning situation report's page (`/prefecture/point`) and its PDF
//! (`/prefecture/point.pdf`): `crate::report` makes it, for the day and
//! the département asked, yesterday by default.

use crate::report::{situation, Situation};
use decompte_core::Scope;

use super::*;

/// The report the query asks for, or the page that says why not.
async fn asked(
    state: &AppState,
    session: &BrowserSession,
    query: Option<String>,
) -> Result<(Situation, Scope), Response> {
    let scope = session.caller.scope(&state.config.scope);
    // Yesterday by default: the morning's report is about the day before.
    let yesterday = scope.today(state.now()) - Duration::days(1);
    let (date, departement, _) = page_day(state, session, query, Some(yesterday))?;
    let made = situation(
        state.store.as_ref(),
        &scope,
        &state.config.rules.settings,
        date,
        &departement,
        state.now(),
    )
    .await
    .map_err(|error| error_page(state, Some(session), &error.into()))?;
    Ok((made, scope))
}

pub(super) async fn situation_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let (report, scope) = match asked(&state, &session, query).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let mut context = base_context(&state, Some(&session), &session.csrf);
    merge(
        &mut context,
        departement_picker(&scope, &report.departement),
    );
    merge(&mut context, json!(report));
    merge(&mut context, json!({"date": report.date.to_string()}));
    render(&state, StatusCode::OK, "app/situation.html", context)
}

/// `GET /prefecture/point.pdf`: the same report, to print or send on.
pub(super) async fn situation_pdf(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let (report, _) = match asked(&state, &session, query).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let config = &state.config;
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}\"", report.file_name()),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        report.pdf(&config.publisher, &config.crisis),
    )
        .into_response()
}
