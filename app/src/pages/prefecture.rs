//! The prefecture page: completeness of a day, its figures, republication.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct PrefectureQuery {
    date: Option<String>,
    publication: Option<String>,
}

pub(super) async fn prefecture_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let query: PrefectureQuery = lenient_query(query);
    // Only the caller's départements, in their time zone.
    let scope = session.caller.scope(&state.config.scope);
    let now = Utc::now();
    let today = scope.latest_today(now);
    let date = match asked_day(&state, query.date.as_deref(), scope.today(now), today) {
        Ok(date) => date,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let loaded = async {
        let reported = state.store.reported_communes(date).await?;
        let reports = state
            .store
            .current_reports(&ReportQuery {
                commune: None,
                departements: session.caller.query_departements(&state.config.scope),
                from: Some(date),
                to: Some(date),
            })
            .await?;
        let publications = state.store.publications(10).await?;
        Ok::<_, decompte_store::StoreError>((reported, reports, publications))
    }
    .await;
    let (reported, reports, publications) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let settings = &state.config.rules.settings;
    let completeness = Completeness::compute(date, &scope, &reported);
    // Several départements: how far each has reported.
    let by_departement: Vec<Value> = if scope.departement_codes().nth(1).is_some() {
        scope
            .departements()
            .map(|(code, name)| {
                let expected = scope.communes().filter(|c| c.departement == code).count();
                let reported = completeness
                    .reported
                    .iter()
                    .filter(|c| c.departement == code)
                    .count();
                json!({"code": code, "name": name, "expected": expected, "reported": reported,
                       "percent": (reported * 100).checked_div(expected).unwrap_or(0)})
            })
            .collect()
    } else {
        Vec::new()
    };
    let in_scope: Vec<&Report> = reports
        .iter()
        .filter(|r| scope.contains(&r.commune))
        .collect();
    let day_settings: Vec<Value> = settings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "label": s.label,
                "total": in_scope.iter().map(|r| u64::from(r.count(&s.key))).sum::<u64>(),
                "color": decompte_templates::setting_color(i),
            })
        })
        .collect();
    let reported_rows: Vec<Value> = in_scope
        .iter()
        .map(|r| {
            json!({"code": r.commune, "name": scope.get(&r.commune)
                        .map(|c| c.name.clone())
                        .unwrap_or_default(),
                   "counts": settings.keys().map(|k| r.count(k)).collect::<Vec<_>>(),
                        "total": r.total(),
                       "version": r.version})
        })
        .collect();
    // How fresh the public site is: its last publication that succeeded.
    let freshness = publications
        .iter()
        .filter(|p| p.status == decompte_store::PublicationStatus::Succeeded)
        .filter_map(|p| p.finished_at)
        .max()
        .map(|at| {
            let minutes = (now - at).num_minutes().max(0);
            json!({
                "at_fr": fr_datetime(at),
                "ago": match minutes {
                    0 => "il y a moins d’une minute".to_owned(),
                    1 => "il y a une minute".to_owned(),
                    m if m < 120 => format!("il y a {m} minutes"),
                    m => format!("il y a {} heures", m / 60),
                },
            })
        });
    let names = crate::service::labels(
        &state,
        publications
            .iter()
            .map(|p| p.requested_by.clone())
            .collect(),
    )
    .await;
    let publications: Vec<Value> = publications
        .iter()
        .map(|p| {
            json!({
                "requested_at_fr": fr_datetime(p.requested_at),
                "status": p.status.label(),
                "requested_by": names.get(&p.requested_by).unwrap_or(&p.requested_by),
                "reason": p.reason,
                "files_changed": p.files_changed,
                "error": p.error,
            })
        })
        .collect();
    let notice = query.publication.map(|id| {
        format!("Publication {id} demandée : le site public sera à jour dans quelques instants.")
    });
    // How to reach the mairies that have not declared.
    let contacts: BTreeMap<String, Value> = decompte_config::mairie_contacts(
        &completeness
            .missing
            .iter()
            .map(|c| c.code.as_str())
            .collect(),
    )
    .into_iter()
    .map(|(code, contact)| {
        let dial = contact.dial();
        (
            code,
            json!({"telephone": contact.telephone, "dial": dial, "email": contact.email}),
        )
    })
    .collect();
    // Who was already reached about the day (a prefecture's départements;
    // the national level reaches no mairie).
    let mut reminded: BTreeMap<String, Value> = BTreeMap::new();
    if session.caller.is_prefecture() {
        let mut all = Vec::new();
        for code in scope.departement_codes() {
            match state.store.reminders(date, code).await {
                Ok(found) => all.extend(found),
                Err(error) => return error_page(&state, Some(&session), &error.into()),
            }
        }
        let names =
            crate::service::labels(&state, all.iter().map(|r| r.by.clone()).collect()).await;
        for reminder in all {
            let by = names
                .get(&reminder.by)
                .cloned()
                .unwrap_or(reminder.by.clone());
            reminded.insert(
                reminder.commune.to_string(),
                json!({"at_fr": reminder.at
                           .with_timezone(&decompte_core::time::zone(reminder.commune.departement()))
                           .format("%H h %M").to_string(),
                       "by": by}),
            );
        }
    }
    // Past the cut-off hour (a day before today, or today after it), the
    // communes that have not declared are late.
    let local_now = now.with_timezone(&scope.zone());
    let cutoff = state.config.cutoff_hour;
    let late = date < scope.today(now)
        || (date == scope.today(now) && chrono::Timelike::hour(&local_now) >= cutoff);
    let minutes = state.config.publish_every.as_secs().div_ceil(60);
    let mut context = base_context(&state, Some(&session), &session.csrf);
    merge(
        &mut context,
        json!({
            "date": date.to_string(),
            "date_fr": fr_date(date),
            "max_date": today.to_string(),
            "completeness": completeness,
            "contacts": contacts,
            "reminded": reminded,
            "late": late,
            "cutoff_hour": cutoff,
            "by_departement": by_departement,
            "scope_label": scope.label(),
            "may_correct": session.caller.is_prefecture(),
            "percent": completeness.percent(),
            "day_total": in_scope.iter().map(|r| r.total()).sum::<u64>(),
            "day_settings": day_settings,
            "reported_rows": reported_rows,
            "settings": settings.iter()
                .map(|s| json!({"key": s.key, "label": s.label})).collect::<Vec<_>>(),
            "publications": publications,
            "freshness": freshness,
            "notice": notice,
            "publish_every": if minutes <= 1 { "minutes".to_owned() } else { format!("{minutes} \
                minutes") },
            "yesterday": (date - Duration::days(1)).to_string(),
        }),
    );
    render(&state, StatusCode::OK, "app/prefecture.html", context)
}

/// `POST /prefecture/relances`: an agent says it has called a mairie about
/// a day; the first call of a day stands, so two agents do not call twice.
pub(super) async fn prefecture_reminder(
    State(state): State<AppState>,
    PrefectureForm(SignedForm { session, fields }): PrefectureForm,
) -> Response {
    if !session.caller.is_prefecture() {
        return error_page(
            &state,
            Some(&session),
            &ApiError::forbidden(
                "Le niveau national consulte ; les mairies sont relancées par les préfectures.",
            ),
        );
    }
    let scope = session.caller.scope(&state.config.scope);
    let now = Utc::now();
    let date = match asked_day(
        &state,
        field(&fields, "date"),
        scope.today(now),
        scope.latest_today(now),
    ) {
        Ok(date) => date,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    let commune = match field(&fields, "commune").map(CommuneCode::parse) {
        Some(Ok(code)) if scope.contains(&code) => code,
        _ => {
            return error_page(
                &state,
                Some(&session),
                &ApiError::bad_request(
                    "Cette commune n'est pas dans votre périmètre : rien n'a été noté.",
                ),
            )
        }
    };
    let reminder = decompte_store::Reminder {
        date,
        commune: commune.clone(),
        channel: "telephone".into(),
        at: now,
        by: session.caller.id().to_owned(),
    };
    match state.store.record_reminder(&reminder).await {
        Ok(recorded) => {
            tracing::info!(event = "mairie_reminded", commune = %commune, %date, recorded, "reminder");
            Redirect::to(&format!("/prefecture?date={date}#relances")).into_response()
        }
        Err(error) => error_page(&state, Some(&session), &error.into()),
    }
}

pub(super) async fn prefecture_publish(
    State(state): State<AppState>,
    PrefectureForm(SignedForm { session, fields }): PrefectureForm,
) -> Response {
    let reason = field(&fields, "reason")
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect::<String>();
    let reason = if reason.is_empty() {
        "Demande depuis la page préfecture".to_owned()
    } else {
        reason
    };
    match crate::service::republish(&state, &session.caller, &reason).await {
        Ok(publication) => {
            Redirect::to(&format!("/prefecture?publication={}", publication.id)).into_response()
        }
        Err(error) => error_page(&state, Some(&session), &error.into()),
    }
}
