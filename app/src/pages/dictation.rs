//! Declarations dictated over the phone: the crisis cell enters, for one
//! day, the figures of several mairies in one screen — one row per commune
//! that has not declared yet, the same validation, warnings and history as
//! the form (`source = prefecture`, the agent recorded), without JavaScript.

use super::*;

/// What one row of the screen holds, and what became of it.
struct Row {
    commune: Commune,
    values: Vec<String>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Only a prefecture enters declarations; the national level reads.
fn may_write(session: &BrowserSession) -> Result<(), ApiError> {
    if session.caller.is_prefecture() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Le niveau national consulte ; les déclarations sont saisies par les préfectures.",
        ))
    }
}

pub(super) async fn dictation_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(error) = may_write(&session) {
        return error_page(&state, Some(&session), &error);
    }
    let (date, departement, communes) = match page_day(&state, &session, query, None) {
        Ok(found) => found,
        Err(page) => return page,
    };
    let reported = match state.store.reported_communes(date).await {
        Ok(reported) => reported,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let settings = state.config.rules.settings.len();
    let rows = communes
        .into_iter()
        .filter(|c| !reported.contains(&c.code))
        .map(|commune| Row {
            commune,
            values: vec![String::new(); settings],
            errors: Vec::new(),
            warnings: Vec::new(),
        })
        .collect::<Vec<_>>();
    let screen = Screen {
        date,
        departement: &departement,
        rows: &rows,
        saved: Vec::new(),
        problem: None,
    };
    view(&state, &session, StatusCode::OK, screen)
}

/// What a rendering of the screen shows.
struct Screen<'a> {
    date: NaiveDate,
    departement: &'a str,
    rows: &'a [Row],
    /// The declarations just saved.
    saved: Vec<Value>,
    problem: Option<&'a str>,
}

fn view(
    state: &AppState,
    session: &BrowserSession,
    status: StatusCode,
    screen: Screen<'_>,
) -> Response {
    let Screen {
        date,
        departement,
        rows,
        saved,
        problem,
    } = screen;
    let settings = &state.config.rules.settings;
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "code": row.commune.code,
                "name": row.commune.name,
                "fields": settings.keys().zip(&row.values)
                    .map(|(key, value)| json!({"key": key, "value": value}))
                    .collect::<Vec<_>>(),
                "errors": row.errors,
                "warnings": row.warnings,
            })
        })
        .collect();
    let any_warning = rows
        .iter()
        .any(|r| r["warnings"].as_array().is_some_and(|w| !w.is_empty()));
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(
        &mut context,
        json!({
            "date": date.to_string(),
            "date_fr": fr_date(date),
            "departement": departement,
            "several_departements": session.caller.scope(&state.config.scope)
                .departement_codes().nth(1).is_some(),
            "departements": session.caller.scope(&state.config.scope).departements()
                .map(|(code, name)| json!({"code": code, "name": name})).collect::<Vec<_>>(),
            "settings": settings.iter().map(|s| json!({"key": s.key, "label": s.label}))
                .collect::<Vec<_>>(),
            "rows": rows,
            "saved": saved,
            "problem": problem,
            "any_warning": any_warning,
            "submission": hex::encode(auth::random_bytes::<16>()),
            "max_per_cell": state.config.rules.max_per_cell,
        }),
    );
    render(state, status, "app/dictation.html", context)
}

/// `POST`: every row with a figure typed is one declaration through the
/// same write path as the form; a row left empty is skipped. Rows refused
/// (an error, a warning not confirmed yet) come back with what was typed.
pub(super) async fn dictation_submit(
    State(state): State<AppState>,
    PrefectureForm(SignedForm { session, fields }): PrefectureForm,
) -> Response {
    let (date, departement, communes) = match may_write(&session).and_then(|()| {
        departement_and_day(
            &state,
            &session,
            field(&fields, "date"),
            field(&fields, "departement"),
        )
    }) {
        Ok(found) => found,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let settings = &state.config.rules.settings;
    let confirm = field(&fields, "confirmer").is_some();
    let submission = field(&fields, "submission")
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let now = state.now();
    let mut saved = Vec::new();
    let mut again = Vec::new();
    for commune in communes {
        let values: Vec<String> = settings
            .keys()
            .map(|k| {
                field(&fields, &format!("n_{}_{k}", commune.code))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .collect();
        if values.iter().all(String::is_empty) {
            continue;
        }
        let draft = Draft {
            commune: Some(commune.code.to_string()),
            date: Some(date.to_string()),
            counts: settings
                .keys()
                .zip(&values)
                .map(|(k, v)| (k.to_owned(), CountValue::Text(v.clone())))
                .collect(),
            confirm,
            ..Draft::default()
        };
        // The row's idempotency key: the screen's rendering and the commune,
        // so that sending the screen twice saves each row once.
        let idempotency = submission.as_ref().map(|token| {
            (
                format!("{}:dictation:{token}:{}", session.caller.id(), commune.code),
                decompte_core::auth::hash_secret("dictation", &values.join(",")),
            )
        });
        let mut row = Row {
            commune,
            values,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        if let Some((key, hash)) = &idempotency {
            if let Ok(Some(record)) = state.store.idempotency_record(key, now).await {
                if &record.request_hash == hash {
                    saved.push(json!({"name": row.commune.name, "code": row.commune.code}));
                    continue;
                }
            }
        }
        match submit(
            &state,
            &session.caller,
            &draft,
            Source::Prefecture,
            idempotency,
            now,
        )
        .await
        {
            Ok(report) => saved.push(json!({
                "name": row.commune.name, "code": row.commune.code, "total": report.total(),
            })),
            Err(SubmitError::Invalid(errors)) => {
                row.errors = errors.into_iter().map(|e| e.message).collect();
                again.push(row);
            }
            Err(SubmitError::Warnings(warnings)) => {
                row.warnings = warnings.into_iter().map(|w| w.message).collect();
                again.push(row);
            }
            Err(SubmitError::Conflict { message, .. }) => {
                row.errors = vec![message];
                again.push(row);
            }
            Err(error) => return error_page(&state, Some(&session), &ApiError::from(error)),
        }
    }
    tracing::info!(
        event = "dictation",
        credential = %session.caller.id(),
        date = %date,
        saved = saved.len(),
        refused = again.len(),
        "declarations dictated"
    );
    let status = if again.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let problem = (!again.is_empty()).then_some(
        "Les lignes ci-dessous ne sont pas enregistrées : corrigez-les (ou confirmez les chiffres \
        inhabituels), puis enregistrez à nouveau.",
    );
    let screen = Screen {
        date,
        departement: &departement,
        rows: &again,
        saved,
        problem,
    };
    view(&state, &session, status, screen)
}
