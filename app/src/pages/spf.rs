//! The cross-check with Santé publique France: the prefecture imports SpF's
//! daily hospital deaths of its département, and sees, per day and
//! cumulatively, the hospital deaths its communes declared beside them.

use axum::extract::Multipart;
use decompte_core::reference::parse_spf;
use decompte_store::ReferenceSeries;

use crate::report::HOSPITAL;
use decompte_core::aggregate::signed;

use super::*;

/// The largest file taken: Santé publique France's national file is about 5 MB.
pub(super) const MAX_FILE: usize = 16 * 1024 * 1024;
/// Days of the comparison table, ending on the chosen day.
const SHOWN_DAYS: i64 = 14;

pub(super) async fn spf_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let query: DayQuery = lenient_query(query);
    view(
        &state,
        &session,
        query.date.as_deref(),
        query.departement.as_deref(),
        None,
        None,
    )
    .await
}

/// `POST` (multipart): `csrf`, `departement`, `fichier`. A refused file
/// changes nothing; an accepted one replaces the département's series.
pub(super) async fn spf_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let Upload {
        session,
        departement,
        text,
        ..
    } = match read_upload(&state, &headers, multipart).await {
        Ok(upload) => upload,
        Err(response) => return response,
    };
    let days = match parse_spf(&text, &departement) {
        Ok(days) => days,
        Err(error) => {
            return view(
                &state,
                &session,
                None,
                Some(&departement),
                Some(error.to_string()),
                None,
            )
            .await
        }
    };
    let series = ReferenceSeries {
        departement: departement.clone(),
        days,
        imported_at: state.now(),
        imported_by: session.caller.id().to_owned(),
    };
    if let Err(error) = state.store.put_reference(&series).await {
        return error_page(&state, Some(&session), &error.into());
    }
    tracing::info!(
        event = "reference_imported",
        departement = %departement,
        days = series.days.len(),
        "Santé publique France series imported"
    );
    let done =
        format!(
        "Fichier importé : {} jours de décès à l'hôpital selon Santé publique France, du {} au {}.",
        series.days.len(),
        series.days.keys().next().map(|d| fr_date(*d)).unwrap_or_default(),
        series.days.keys().next_back().map(|d| fr_date(*d)).unwrap_or_default(),
    );
    view(&state, &session, None, Some(&departement), None, Some(done)).await
}

/// A prefecture's upload for one of its départements.
pub(super) struct Upload {
    pub session: BrowserSession,
    pub departement: String,
    /// The communes of the département in the caller's reach.
    pub communes: Vec<Commune>,
    /// The file's text.
    pub text: String,
}

/// A prefecture's upload (multipart: `csrf`, `departement` and one
/// `fichier`), its CSRF token and its département checked. Anything else
/// is answered here: a page that says why, nothing imported.
pub(super) async fn read_upload(
    state: &AppState,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Upload, Response> {
    let session = require_session(state, headers).await?;
    let too_large = |session: &BrowserSession| {
        error_page(
            state,
            Some(session),
            &ApiError::bad_request(
                "Le fichier n'a pas pu être lu en entier (16 Mo au plus). Réessayez : rien n'a \
                 été importé.",
            ),
        )
    };
    let mut fields: Fields = Vec::new();
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(part)) => {
                let name = part.name().unwrap_or_default().to_owned();
                match part.bytes().await {
                    Ok(bytes) if name == "fichier" => file = Some(bytes),
                    Ok(bytes) => fields.push((name, String::from_utf8_lossy(&bytes).into_owned())),
                    Err(_) => return Err(too_large(&session)),
                }
            }
            Ok(None) => break,
            Err(_) => return Err(too_large(&session)),
        }
    }
    check_csrf(state, &session, &fields)?;
    if !session.caller.is_prefecture() {
        return Err(error_page(
            state,
            Some(&session),
            &ApiError::forbidden(
                "Le niveau national consulte ; l'import est fait par les préfectures.",
            ),
        ));
    }
    let (_, departement, communes) =
        departement_and_day(state, &session, None, field(&fields, "departement"))
            .map_err(|error| error_page(state, Some(&session), &error))?;
    let text = file
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned();
    Ok(Upload {
        session,
        departement,
        communes,
        text,
    })
}

async fn view(
    state: &AppState,
    session: &BrowserSession,
    date: Option<&str>,
    departement: Option<&str>,
    problem: Option<String>,
    done: Option<String>,
) -> Response {
    let scope = session.caller.scope(&state.config.scope);
    let (asked, departement, _) = match departement_and_day(state, session, date, departement) {
        Ok(found) => found,
        Err(error) => return error_page(state, Some(session), &error),
    };
    let loaded = async {
        let series = state.store.reference(&departement).await?;
        let declared = match (&series, state.config.rules.settings.position(HOSPITAL)) {
            (Some(_), Some(_)) => {
                let tallies = state
                    .store
                    .current_tallies(&departement, &[HOSPITAL.to_owned()], "")
                    .await?;
                let mut by_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
                for tally in tallies.iter().filter(|t| scope.contains(&t.commune)) {
                    *by_day.entry(tally.date).or_default() +=
                        u64::from(tally.counts.first().copied().unwrap_or(0));
                }
                by_day
            }
            _ => BTreeMap::new(),
        };
        Ok::<_, decompte_store::StoreError>((series, declared))
    }
    .await;
    let (series, declared) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(state, Some(session), &error.into()),
    };
    let comparison = series.as_ref().map(|series| {
        let first = series.days.keys().next().copied().unwrap_or(asked);
        let last = series.days.keys().next_back().copied().unwrap_or(asked);
        // The chosen day, or the series' last one if none was asked.
        let end = if date.is_some() { asked } else { last };
        let spf = |d: NaiveDate| u64::from(series.days.get(&d).copied().unwrap_or(0));
        let ours = |d: NaiveDate| declared.get(&d).copied().unwrap_or(0);
        let (mut spf_total, mut ours_total) = (0u64, 0u64);
        let mut rows = Vec::new();
        let mut day = first;
        while day <= end {
            spf_total += spf(day);
            ours_total += ours(day);
            if day > end - Duration::days(SHOWN_DAYS) {
                rows.push(json!({
                    "date_fr": fr_date(day),
                    "ours": ours(day),
                    "spf": series.days.get(&day),
                    "gap": signed(ours(day) as i64 - spf(day) as i64),
                    "ours_total": ours_total,
                    "spf_total": spf_total,
                    "gap_total": signed(ours_total as i64 - spf_total as i64),
                }));
            }
            day += Duration::days(1);
        }
        rows.reverse();
        json!({
            "first_fr": fr_date(first),
            "last_fr": fr_date(last),
            "end_fr": fr_date(end),
            "end": end.to_string(),
            "days": series.days.len(),
            "imported_at_fr": fr_datetime(series.imported_at),
            "rows": rows,
            "ours_total": ours_total,
            "spf_total": spf_total,
            "gap_total": signed(ours_total as i64 - spf_total as i64),
        })
    });
    // A refused file is answered 422, with the page that says why.
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(&mut context, departement_picker(&scope, &departement));
    merge(
        &mut context,
        json!({
            "date": asked.to_string(),
            "comparison": comparison,
            "has_hospital": state.config.rules.settings.position(HOSPITAL).is_some(),
            "hospital_label": state.config.rules.settings.get(HOSPITAL).map(|s| s.label.clone()),
            "may_import": session.caller.is_prefecture(),
            "problem": problem,
            "done": done,
        }),
    );
    render(state, status, "app/spf.html", context)
}
