//! The prefecture page: completeness of a day, its figures, republication.

use super::*;
use chrono::{DateTime, Utc};
use decompte_core::Scope;
use decompte_store::Publication;

#[derive(Deserialize, Default)]
pub(super) struct PrefectureQuery {
    date: Option<String>,
    publication: Option<String>,
    /// After reminder e-mails: sent-failed-without address-already reached.
    courriels: Option<String>,
}

pub(super) async fn prefecture_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let query: PrefectureQuery = lenient_query(query);
    // Only the caller's départements, in their time zone.
    let scope = session.caller.scope(&state.config.scope);
    let now = state.now();
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
    let by_departement = departement_rows(&scope, &completeness);
    let in_scope: Vec<&Report> = reports
        .iter()
        .filter(|r| scope.contains(&r.commune))
        .collect();
    let (day, day_settings, reported_rows) = day_figures(&scope, settings, &in_scope, date);
    let freshness = freshness(&publications, now);
    let publications = publication_rows(&state, &session.caller, &publications).await;
    let notice = query
        .publication
        .map(|id| {
            format!(
                "Publication {id} demandée : le site public sera à jour dans quelques instants."
            )
        })
        .or_else(|| query.courriels.as_deref().and_then(emails_notice));
    let contacts = match contact_rows(&state, &completeness).await {
        Ok(contacts) => contacts,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let reminded = if session.caller.is_prefecture() {
        match reminded_rows(&state, &scope, date).await {
            Ok(reminded) => reminded,
            Err(error) => return error_page(&state, Some(&session), &error.into()),
        }
    } else {
        BTreeMap::new()
    };
    let cutoff = state.config.cutoff_hour;
    let late = completeness.is_late(&scope, now, cutoff);
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
            // E-mail reminders are for the days still being declared.
            "mail": state.config.mailer.is_some() && date >= earliest_reminder_day(&state, &scope, now),
            "late": late,
            "cutoff_hour": cutoff,
            "by_departement": by_departement,
            "scope_label": scope.label(),
            "may_correct": session.caller.is_prefecture(),
            "percent": completeness.percent(),
            "day_total": day.day_total(),
            "day_settings": day_settings,
            "reported_rows": reported_rows,
            "settings": settings.iter()
                .map(|s| json!({"key": s.key, "label": s.label})).collect::<Vec<_>>(),
            "publications": publications,
            "freshness": freshness,
            "notice": notice,
            "hourly_release": state.config.hourly_release,
            "publish_every": if minutes <= 1 { "minutes".to_owned() } else { format!("{minutes} \
                minutes") },
            "yesterday": (date - Duration::days(1)).to_string(),
        }),
    );
    render(&state, StatusCode::OK, "app/prefecture.html", context)
}

/// Several départements: how far each has reported.
fn departement_rows(scope: &Scope, completeness: &Completeness) -> Vec<Value> {
    if scope.departement_codes().nth(1).is_none() {
        return Vec::new();
    }
    completeness
        .by_departement(scope)
        .into_iter()
        .map(|d| {
            let percent = d.percent();
            json!({"code": d.code, "name": d.name, "expected": d.expected,
                   "reported": d.reported, "percent": percent})
        })
        .collect()
}

/// The day's figures: its sums, by setting, and the reports received.
fn day_figures(
    scope: &Scope,
    settings: &decompte_core::Settings,
    in_scope: &[&Report],
    date: NaiveDate,
) -> (decompte_core::aggregate::Windows, Vec<Value>, Vec<Value>) {
    let day = decompte_core::aggregate::Windows::of(in_scope.iter().copied(), settings, date);
    let day_settings: Vec<Value> = settings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "label": s.label,
                "total": day.day[i],
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
    (day, day_settings, reported_rows)
}

/// How fresh the public site is: its last publication that succeeded.
fn freshness(publications: &[Publication], now: DateTime<Utc>) -> Option<Value> {
    publications
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
        })
}

/// The last publications, another prefecture's without who asked nor why.
async fn publication_rows(
    state: &AppState,
    caller: &crate::auth::Caller,
    publications: &[Publication],
) -> Vec<Value> {
    let requesters = crate::service::requesters(
        state,
        caller,
        publications
            .iter()
            .map(|p| p.requested_by.clone())
            .collect::<Vec<_>>(),
    )
    .await;
    publications
        .iter()
        .map(|p| {
            // Another prefecture's request: that it happened, not who asked nor why.
            let requester = requesters.get(&p.requested_by);
            let known = requester.is_some_and(crate::service::Requester::is_known);
            json!({
                "requested_at_fr": fr_datetime(p.requested_at),
                "status": p.status.label(),
                "requested_by": requester.map_or("—", crate::service::Requester::label),
                "reason": if known { p.reason.as_str() } else { "—" },
                "files_changed": p.files_changed,
                "error": if known {
                    p.error.clone()
                } else {
                    p.error.as_ref().map(|_| "La publication a échoué.".to_owned())
                },
            })
        })
        .collect()
}

/// How to reach the mairies that have not declared.
async fn contact_rows(
    state: &AppState,
    completeness: &Completeness,
) -> Result<BTreeMap<String, Value>, decompte_store::StoreError> {
    let found = crate::service::mairie_contacts(
        state,
        &completeness
            .missing
            .iter()
            .map(|c| c.code.as_str())
            .collect(),
    )
    .await?;
    Ok(found
        .into_iter()
        .map(|(code, contact)| {
            // Links are built from parsed values only: a number that is not
            // one is shown without `tel:`, an address that is not one
            // without `mailto:`.
            let dial = crate::contact::dial(&contact.telephone);
            let email = crate::contact::mailbox(&contact.email).map(|a| a.to_string());
            (
                code,
                json!({
                    "telephone": contact.telephone,
                    "dial": dial,
                    "email": contact.email,
                    "mailto": email,
                }),
            )
        })
        .collect())
}

/// Who was already reached about the day (a prefecture's départements;
/// the national level reaches no mairie).
async fn reminded_rows(
    state: &AppState,
    scope: &Scope,
    date: NaiveDate,
) -> Result<BTreeMap<String, Value>, decompte_store::StoreError> {
    let mut reminded: BTreeMap<String, Value> = BTreeMap::new();
    let mut all = Vec::new();
    for code in scope.departement_codes() {
        all.extend(state.store.reminders(date, code).await?);
    }
    let names = crate::service::labels(state, all.iter().map(|r| r.by.clone()).collect()).await;
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
                   "by": by,
                   "email": reminder.channel == "email"}),
        );
    }
    Ok(reminded)
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
    let now = state.now();
    let date = match asked_day(
        &state,
        field(&fields, "date"),
        scope.today(now),
        scope.latest_today(now),
    ) {
        Ok(date) => date,
        Err(error) => return error_page(&state, Some(&session), &error),
    };
    if field(&fields, "channel") == Some("email") {
        return email_reminders(&state, &session, &scope, date).await;
    }
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

/// The notice after reminder e-mails, from `sent-failed-without-already-over`.
fn emails_notice(counts: &str) -> Option<String> {
    let counts: Vec<usize> = counts
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [sent, failed, without, already, over_cap] = counts[..] else {
        return None;
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n > 1 { many } else { one });
    let mut parts = vec![plural(
        sent,
        "courriel de relance envoyé",
        "courriels de relance envoyés",
    )];
    if failed > 0 {
        parts.push(format!(
            "{} : à appeler, ou réessayez plus tard",
            plural(failed, "envoi a échoué", "envois ont échoué")
        ));
    }
    if without > 0 {
        parts.push(format!(
            "{} sans adresse électronique connue : à appeler",
            plural(without, "mairie", "mairies")
        ));
    }
    if already > 0 {
        parts.push(format!(
            "{} déjà relancée{} ce jour, pas une seconde fois",
            plural(already, "mairie", "mairies"),
            if already > 1 { "s" } else { "" }
        ));
    }
    if over_cap > 0 {
        parts.push(format!(
            "{} : le nombre de courriels de relance d'une journée est atteint, appelez-les",
            plural(over_cap, "mairie non relancée", "mairies non relancées")
        ));
    }
    Some(format!("{}.", parts.join(" ; ")))
}

/// The first day a reminder e-mail may be about: a reminder is about a day
/// still being declared (today and the days before it, `reminder_days` in
/// all), never the whole crisis.
fn earliest_reminder_day(
    state: &AppState,
    scope: &decompte_core::Scope,
    now: chrono::DateTime<Utc>,
) -> NaiveDate {
    scope.today(now) - Duration::days(i64::from(state.config.reminder_days.max(1)) - 1)
}

/// How many e-mails are on their way at once: a département's 250 mairies
/// go in a few seconds, within any request's time.
const EMAILS_IN_FLIGHT: usize = 8;

/// The reminder e-mails of a day: one to each mairie of the caller's
/// départements that has not declared, has an e-mail address and was not
/// reached yet (by telephone or e-mail); each one sent is recorded, so the
/// next click, or another agent's, sends no second one.
async fn email_reminders(
    state: &AppState,
    session: &BrowserSession,
    scope: &decompte_core::Scope,
    date: NaiveDate,
) -> Response {
    let Some(mailer) = state.config.mailer.clone() else {
        return error_page(
            state,
            Some(session),
            &ApiError::bad_request(
                "Aucun serveur d'envoi de courriels n'est configuré (DECOMPTE_SMTP_HOST) : \
                 appelez les mairies, ou demandez à l'administrateur de le configurer.",
            ),
        );
    };
    let now = state.now();
    let earliest = earliest_reminder_day(state, scope, now);
    if date < earliest {
        return error_page(
            state,
            Some(session),
            &ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reminder_day_too_old",
                format!(
                    "Les relances par courriel portent sur les jours depuis le {} : pour le {}, \
                     appelez les mairies.",
                    fr_date(earliest),
                    fr_date(date)
                ),
            ),
        );
    }
    let reminded = reminders_so_far(state, scope, date, earliest, now).await;
    let (
        reported,
        Reminded {
            reached,
            mut budget,
        },
    ) = match (state.store.reported_communes(date).await, reminded) {
        (Ok(reported), Ok(reminded)) => (reported, reminded),
        (Err(error), _) | (_, Err(error)) => {
            return error_page(state, Some(session), &error.into())
        }
    };
    let missing = Completeness::compute(date, scope, &reported).missing;
    let contacts = match crate::service::mairie_contacts(
        state,
        &missing.iter().map(|c| c.code.as_str()).collect(),
    )
    .await
    {
        Ok(contacts) => contacts,
        Err(error) => return error_page(state, Some(session), &error.into()),
    };
    let agent = signature(&crate::service::label(state, session.caller.id()).await);
    let (mut without_address, mut already, mut over_cap) = (0usize, 0usize, 0usize);
    let mut tasks = tokio::task::JoinSet::new();
    let (mut sent, mut failed) = (0usize, 0usize);
    for commune in &missing {
        if reached.contains(&commune.code) {
            already += 1;
            continue;
        }
        let Some(email) = contacts
            .get(commune.code.as_str())
            .and_then(|c| crate::contact::mailbox(&c.email))
        else {
            without_address += 1;
            continue;
        };
        let email = email.to_string();
        match budget.get_mut(commune.code.departement()) {
            Some(left) if *left > 0 => *left -= 1,
            _ => {
                over_cap += 1;
                continue;
            }
        }
        let (subject, body) = reminder_text(state, commune, date, &agent);
        let mailer = mailer.clone();
        let code = commune.code.clone();
        while tasks.len() >= EMAILS_IN_FLIGHT {
            if let Some(done) = tasks.join_next().await {
                tally(state, session, date, done, &mut sent, &mut failed).await;
            }
        }
        tasks.spawn(async move { (code, mailer.send(&email, &subject, body).await) });
    }
    while let Some(done) = tasks.join_next().await {
        tally(state, session, date, done, &mut sent, &mut failed).await;
    }
    tracing::info!(event = "mairies_emailed", %date, sent, failed, without_address, already, over_cap, "reminders");
    Redirect::to(&format!(
        "/prefecture?date={date}&courriels={sent}-{failed}-{without_address}-{already}-{over_cap}#relances"
    ))
    .into_response()
}

/// Who was reminded of a day already, and how many reminder e-mails each
/// département's mairies may still get today.
struct Reminded {
    reached: std::collections::BTreeSet<CommuneCode>,
    budget: BTreeMap<String, usize>,
}

/// The reminders recorded from `earliest` on: those of `date` (by telephone
/// or e-mail), and the e-mails sent today to each département's mairies,
/// whatever day they were about, against the daily cap.
async fn reminders_so_far(
    state: &AppState,
    scope: &decompte_core::Scope,
    date: NaiveDate,
    earliest: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Reminded, decompte_store::StoreError> {
    let cap = usize::try_from(state.config.reminder_emails).unwrap_or(usize::MAX);
    let mut reached = std::collections::BTreeSet::new();
    let mut budget = BTreeMap::new();
    for code in scope.departement_codes() {
        let local_today = decompte_core::time::local_today(code, now);
        let zone = decompte_core::time::zone(code);
        let mut sent_today = 0;
        let mut day = earliest;
        while day <= scope.latest_today(now) {
            let reminders = state.store.reminders(day, code).await?;
            sent_today += reminders
                .iter()
                .filter(|r| {
                    r.channel == "email" && r.at.with_timezone(&zone).date_naive() == local_today
                })
                .count();
            if day == date {
                reached.extend(reminders.into_iter().map(|r| r.commune));
            }
            day += Duration::days(1);
        }
        budget.insert(code.to_owned(), cap.saturating_sub(sent_today));
    }
    Ok(Reminded { reached, budget })
}

/// Records a reminder e-mail that went, counts one that did not.
async fn tally(
    state: &AppState,
    session: &BrowserSession,
    date: NaiveDate,
    done: Result<(CommuneCode, Result<(), crate::mail::MailError>), tokio::task::JoinError>,
    sent: &mut usize,
    failed: &mut usize,
) {
    match done {
        Ok((commune, Ok(()))) => {
            *sent += 1;
            let reminder = decompte_store::Reminder {
                date,
                commune: commune.clone(),
                channel: "email".into(),
                at: state.now(),
                by: session.caller.id().to_owned(),
            };
            if let Err(error) = state.store.record_reminder(&reminder).await {
                tracing::warn!(%commune, %error, "an e-mail went but its record did not");
            }
        }
        Ok((commune, Err(error))) => {
            *failed += 1;
            tracing::warn!(%commune, %error, "reminder e-mail not sent");
        }
        Err(error) => {
            *failed += 1;
            tracing::warn!(%error, "reminder e-mail task failed");
        }
    }
}

/// The longest agent's label that signs a reminder e-mail, in characters.
const SIGNATURE_CHARS: usize = 80;

/// An agent's label as it signs an e-mail: one line, at most
/// [`SIGNATURE_CHARS`] characters (a label is whatever its issuer typed).
fn signature(label: &str) -> String {
    let line: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= SIGNATURE_CHARS {
        line
    } else {
        let mut cut: String = line.chars().take(SIGNATURE_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The reminder a mairie receives: its subject and its text, in French.
fn reminder_text(
    state: &AppState,
    commune: &decompte_core::Commune,
    date: NaiveDate,
    agent: &str,
) -> (String, String) {
    let config = &state.config;
    let origin = config.public_origin.clone().unwrap_or_default();
    let day = fr_date(date);
    let subject = format!(
        "Décès {} : déclaration du {day} attendue ({})",
        config.crisis, commune.name
    );
    let body = format!(
        "Madame, Monsieur le Maire,\n\n\
         La {publisher} n'a pas encore reçu la déclaration des décès {crisis} de la commune de \
         {name} pour le {day}.\n\n\
         Merci de la faire dès que possible, même s'il n'y a eu aucun décès (le bouton « Aucun \
         décès ce jour » suffit) :\n\
         {origin}/saisie?commune={code}&date={date}\n\n\
         Votre code d'accès figure dans la lettre que la préfecture vous a adressée. Comment \
         déclarer, corriger, qui appeler : {origin}/aide\n\n\
         Si la commune a déclaré ce jour entre-temps, ne tenez pas compte de ce message.\n\n\
         {publisher}, cellule de crise ({agent})\n",
        publisher = config.publisher,
        crisis = config.crisis,
        name = commune.name,
        code = commune.code,
    );
    (subject, body)
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
