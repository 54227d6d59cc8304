//! The day and the département a prefecture page is about: asked in its
//! query (`date`, `departement`), inside the caller's reach, the day in the
//! département's time zone.

use super::*;

/// A day and a département, as a page's query asks them.
#[derive(Deserialize, Default)]
pub(super) struct DayQuery {
    pub(super) date: Option<String>,
    pub(super) departement: Option<String>,
}

/// The département asked, if it is in the caller's reach (its first one by
/// default), a day in its time zone, and its communes.
pub(super) fn departement_and_day(
    state: &AppState,
    session: &BrowserSession,
    date: Option<&str>,
    departement: Option<&str>,
) -> Result<(NaiveDate, String, Vec<Commune>), ApiError> {
    let scope = session.caller.scope(&state.config.scope);
    let departement = match departement.map(str::trim).filter(|d| !d.is_empty()) {
        Some(code) if scope.has_departement(code) => code.to_owned(),
        Some(code) => {
            return Err(ApiError::bad_request(format!(
                "Le département « {code} » n'est pas dans votre périmètre ({}).",
                scope.label()
            )))
        }
        None => scope
            .departement_codes()
            .next()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::not_found("Aucun département dans votre périmètre."))?,
    };
    let now = state.now();
    let date = asked_day(state, date, scope.today(now), scope.latest_today(now))?;
    let communes = scope
        .communes()
        .filter(|c| c.departement == departement)
        .cloned()
        .collect();
    Ok((date, departement, communes))
}

/// [`departement_and_day`] of a page's raw query, `default` when it asks no
/// day (today otherwise); or the error page that says why not.
pub(super) fn page_day(
    state: &AppState,
    session: &BrowserSession,
    query: Option<String>,
    default: Option<NaiveDate>,
) -> Result<(NaiveDate, String, Vec<Commune>), Response> {
    let query: DayQuery = lenient_query(query);
    let date = query
        .date
        .filter(|d| !d.trim().is_empty())
        .or_else(|| default.map(|d| d.to_string()));
    departement_and_day(
        state,
        session,
        date.as_deref(),
        query.departement.as_deref(),
    )
    .map_err(|error| error_page(state, Some(session), &error))
}

/// What a page's département picker needs: the département shown, its
/// name, and the caller's départements when there are several.
pub(super) fn departement_picker(scope: &decompte_core::Scope, departement: &str) -> Value {
    json!({
        "departement": departement,
        "departement_name": scope.departement_name(departement).unwrap_or(departement),
        "several_departements": scope.departement_codes().nth(1).is_some(),
        "departements": scope.departements()
            .map(|(code, name)| json!({"code": code, "name": name})).collect::<Vec<_>>(),
    })
}
