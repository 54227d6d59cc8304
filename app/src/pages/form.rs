//! The commune form: declare or correct a day, see its history.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct FormQuery {
    commune: Option<String>,
    date: Option<String>,
    enregistre: Option<u32>,
}

/// The commune a page is about: the caller's own, or for the prefecture the one asked for.
pub(super) fn page_commune(
    state: &AppState,
    session: &BrowserSession,
    asked: Option<&str>,
) -> Result<Commune, ApiError> {
    let scope = &state.config.scope;
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    let code = match (session.caller.credential.commune.clone(), asked) {
        (Some(own), None) => own,
        (_, Some(text)) => {
            let code =
                CommuneCode::parse(text).map_err(|e| ApiError::not_found(format!("{e}.")))?;
            if scope.contains(&code) && !session.caller.may_access(&code) {
                return Err(crate::api::out_of_reach(&session.caller, &code));
            }
            code
        }
        (None, None) => scope
            .communes()
            .find(|c| session.caller.may_access(&c.code))
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
pub(super) struct FormView<'a> {
    pub(super) commune: &'a Commune,
    pub(super) date_text: String,
    pub(super) date: Option<NaiveDate>,
    pub(super) values: BTreeMap<String, String>,
    pub(super) reason: String,
    pub(super) replaces_version: Option<u32>,
    pub(super) current: Option<Report>,
    pub(super) show_current_beside: bool,
    pub(super) errors: Vec<FieldError>,
    pub(super) conflict: Option<String>,
    pub(super) saved: Option<Report>,
    pub(super) notice: Option<String>,
    /// Figures to look at again before saving (nothing saved yet).
    pub(super) warnings: Vec<decompte_core::plausibility::Warning>,
}

pub(super) async fn render_form(
    state: &AppState,
    session: &BrowserSession,
    status: StatusCode,
    view: FormView<'_>,
) -> Response {
    let settings = &state.config.rules.settings;
    let now = state.now();
    let today = local_today(&view.commune.departement, now);
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
                    ..ReportQuery::default()
                })
                .await;
            match (history, recent) {
                (Ok(h), Ok(r)) => (h, r),
                (Err(e), _) | (_, Err(e)) => return error_page(state, Some(session), &e.into()),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let (field_errors, errors) = error_context(&view.errors);
    let fields = field_rows(settings, &view, &field_errors);
    let history = history_rows(state, &history, &view.commune.departement).await;
    let recent = recent_rows(&recent, &view.commune.departement);
    let saved = view.saved.as_ref().map(|r| {
        json!({"date_fr": fr_date(r.date), "version": r.version, "total": r.total(),
               "items": settings.iter().map(|s| json!({
                   "label": s.label,
                   "count": r.count(&s.key),
               })).collect::<Vec<_>>()})
    });
    // A prefecture's agent may go to any commune of its départements.
    let all_communes: Vec<Value> = session
        .caller
        .is_prefecture()
        .then(|| session.caller.scope(&state.config.scope))
        .iter()
        .flat_map(|scope| scope.communes())
        .map(|c| json!({"code": c.code, "name": c.name}))
        .collect();
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(
        &mut context,
        json!({
            // Chosen for this rendering: the write's idempotency key, so
            // that the same form sent twice is saved once.
            "submission": hex::encode(auth::random_bytes::<16>()),
            "commune": {"code": code, "name": view.commune.name},
            "prefecture": session.caller.is_supervisor(),
            "read_only": session.caller.role() == decompte_core::Role::National,
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
            "current": view.current.as_ref().map(|c| json!({
                "version": c.version,
                "recorded_at_fr": fr_datetime_in(c.recorded_at, &view.commune.departement),
            })),
            "history": history,
            "recent": recent,
            "saved": saved,
            "hourly_release": state.config.hourly_release,
            "notice": view.notice,
            "warnings": view.warnings,
            "settings": settings.iter()
                .map(|s| json!({"key": s.key, "label": s.label})).collect::<Vec<_>>(),
        }),
    );
    render(state, status, "app/saisie.html", context)
}

/// The form's fields, one per setting: what was typed, the current count
/// beside it when asked, and the field's error.
fn field_rows(
    settings: &Settings,
    view: &FormView<'_>,
    field_errors: &BTreeMap<String, String>,
) -> Vec<Value> {
    settings
        .iter()
        .map(|s| {
            json!({
                "key": s.key, "label": s.label,
                "value": view.values.get(&s.key).cloned().unwrap_or_default(),
                "current": if view.show_current_beside { view.current.as_ref()
                        .map(|c| c.count(&s.key)) } else { None },
                "error": field_errors.get(&format!("counts.{}", s.key)),
            })
        })
        .collect()
}

/// The form's errors by field (a field's messages joined) and in order,
/// each with the anchor of its field.
fn error_context(errors: &[FieldError]) -> (BTreeMap<String, String>, Vec<Value>) {
    let by_field = errors.iter().fold(BTreeMap::new(), |mut map, e| {
        map.entry(e.field.clone())
            .and_modify(|m: &mut String| {
                m.push(' ');
                m.push_str(&e.message)
            })
            .or_insert_with(|| e.message.clone());
        map
    });
    let anchor = |field: &str| match field.strip_prefix("counts.") {
        Some(key) => format!("n-{key}"),
        None => field.to_owned(),
    };
    let listed = errors
        .iter()
        .map(|e| json!({"anchor": anchor(&e.field), "message": e.message}))
        .collect();
    (by_field, listed)
}

/// The versions of the day, each with who wrote it (by name) and why.
async fn history_rows(state: &AppState, history: &[Report], departement: &str) -> Vec<Value> {
    let settings = &state.config.rules.settings;
    let names = crate::service::labels(
        state,
        history.iter().map(|h| h.recorded_by.clone()).collect(),
    )
    .await;
    history
        .iter()
        .map(|h| {
            json!({
                "version": h.version,
                "recorded_at_fr": fr_datetime_in(h.recorded_at, departement),
                "total": h.total(),
                "counts": settings.keys().map(|k| h.count(k)).collect::<Vec<_>>(),
                "source": h.source.label(),
                "by": names.get(&h.recorded_by).unwrap_or(&h.recorded_by),
                "warnings": h.warnings.iter()
                    .map(|w| decompte_core::plausibility::label(w))
                    .collect::<Vec<_>>(),
                "reason": h.reason,
            })
        })
        .collect()
}

/// The commune's last fourteen declared days, latest first.
fn recent_rows(recent: &[Report], departement: &str) -> Vec<Value> {
    recent
        .iter()
        .rev()
        .take(14)
        .map(|r| {
            json!({
                "date": r.date.to_string(),
                "date_fr": fr_date(r.date),
                "total": r.total(),
                "version": r.version,
                "recorded_at_fr": fr_datetime_in(r.recorded_at, departement),
            })
        })
        .collect()
}

pub(super) async fn form_page(
    State(state): State<AppState>,
    LoggedIn(session): LoggedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query: FormQuery = lenient_query(query);
    let commune = match page_commune(&state, &session, query.commune.as_deref()) {
        Ok(commune) => commune,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    // The commune's own day: Réunion and Guadeloupe are not on Paris time.
    let today = local_today(&commune.departement, state.now());
    let date = match asked_day(&state, query.date.as_deref(), today, today) {
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
        warnings: Vec::new(),
    };
    render_form(&state, &session, StatusCode::OK, view).await
}

pub(super) async fn form_submit(
    State(state): State<AppState>,
    SignedForm { session, fields }: SignedForm,
) -> Response {
    let commune = match page_commune(&state, &session, field(&fields, "commune")) {
        Ok(commune) => commune,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let draft = form_draft(&fields, &commune.code, &state.config.rules.settings);
    let values: BTreeMap<String, String> = draft
        .counts
        .iter()
        .map(|(k, v)| match v {
            CountValue::Text(text) => (k.clone(), text.clone()),
            CountValue::Json(value) => (k.clone(), value.to_string()),
        })
        .collect();
    let date_text = draft.date.clone().unwrap_or_default();
    let replaces_version = draft.replaces_version;
    let reason = draft.reason.clone().unwrap_or_default();
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
        warnings: Vec::new(),
    };
    // A form sent again (a double tap, a retry after a lost answer) carries
    // the token of its rendering: the same confirmation, nothing written.
    let now = state.now();
    let idempotency = field(&fields, "submission")
        .filter(|token| token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|token| {
            (
                format!("{}:form:{token}", session.caller.id()),
                submission_hash(&fields),
            )
        });
    // The confirmation of this very form if it was saved already (by an
    // earlier send, or by its twin sent at the same moment).
    let saved_before = || async {
        let (key, request_hash) = idempotency.as_ref()?;
        match state.store.idempotency_record(key, now).await {
            Ok(Some(record)) if &record.request_hash == request_hash => {
                Some(confirmation_of(&session, &record.body))
            }
            Ok(_) => None,
            Err(error) => Some(error_page(&state, Some(&session), &error.into())),
        }
    };
    if let Some(answer) = saved_before().await {
        return answer;
    }
    match submit(
        &state,
        &session.caller,
        &draft,
        source,
        idempotency.clone(),
        now,
    )
    .await
    {
        Ok(report) => confirmation(&session, &report.commune, report.date, report.version),
        // The same form, sent at the same moment, was saved by the other send.
        Err(SubmitError::IdempotencyKeyTaken) => match saved_before().await {
            Some(answer) => answer,
            None => error_page(
                &state,
                Some(&session),
                &SubmitError::IdempotencyKeyTaken.into(),
            ),
        },
        // Nothing saved: the same numbers again, each error or warning next
        // to its field (a warning with a second, explicit button to save anyway).
        Err(refused @ (SubmitError::Invalid(_) | SubmitError::Warnings(_))) => {
            let current = match date {
                Some(d) => state
                    .store
                    .current_report(&commune.code, d)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            let mut view = view(Vec::new(), None, current, replaces_version);
            match refused {
                SubmitError::Invalid(errors) => view.errors = errors,
                SubmitError::Warnings(warnings) => view.warnings = warnings,
                _ => {}
            }
            render_form(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, view).await
        }
        Err(SubmitError::Conflict { current, message }) => {
            // The same form sent at the same moment may have won the race:
            // then this send is its repetition, not a conflict.
            if let Some(answer) = saved_before().await {
                return answer;
            }
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

/// Where a saved declaration leads: the form, with its confirmation.
fn confirmation(
    session: &BrowserSession,
    commune: &CommuneCode,
    date: NaiveDate,
    version: u32,
) -> Response {
    let mut target = format!("/saisie?date={date}&enregistre={version}");
    if session.caller.is_prefecture() {
        target.push_str(&format!("&commune={commune}"));
    }
    Redirect::to(&target).into_response()
}

/// The confirmation of a form saved before, from the answer kept with its
/// idempotency record (the report as the API shows it).
fn confirmation_of(session: &BrowserSession, answer: &str) -> Response {
    let report: Value = serde_json::from_str(answer).unwrap_or(Value::Null);
    let commune = report["commune"]
        .as_str()
        .and_then(|c| CommuneCode::parse(c).ok());
    let date = report["date"].as_str().and_then(parse_date);
    let version = report["version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok());
    match (commune, date, version) {
        (Some(commune), Some(date), Some(version)) => {
            confirmation(session, &commune, date, version)
        }
        _ => Redirect::to("/saisie").into_response(),
    }
}

/// What identifies a form's content for its idempotency record: every field
/// but the CSRF token, in order.
fn submission_hash(fields: &[(String, String)]) -> String {
    let mut content: Vec<String> = fields
        .iter()
        .filter(|(name, _)| name != "csrf")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    content.sort();
    decompte_core::auth::hash_secret("form", &content.join("\n"))
}

/// What the declaration form's fields say, as a draft for `commune`: a
/// count per setting (`n_<setting>`, trimmed), the day, the version it
/// replaces and the reason. Unknown fields are ignored.
pub(crate) fn form_draft(
    fields: &[(String, String)],
    commune: &CommuneCode,
    settings: &Settings,
) -> Draft {
    // « Aucun décès ce jour »: zero in every setting, whatever was typed.
    let none = field(fields, "aucun").is_some();
    Draft {
        commune: Some(commune.to_string()),
        date: Some(field(fields, "date").unwrap_or("").trim().to_owned()),
        counts: settings
            .keys()
            .map(|k| {
                let text = match none {
                    true => "0",
                    false => field(fields, &format!("n_{k}")).unwrap_or("").trim(),
                };
                (k.to_owned(), CountValue::Text(text.to_owned()))
            })
            .collect(),
        replaces_version: field(fields, "replaces_version")
            .and_then(|v| v.trim().parse::<u32>().ok()),
        reason: Some(field(fields, "reason").unwrap_or("").to_owned()),
        confirm: field(fields, "confirmer").is_some(),
        warnings: Vec::new(),
    }
}
