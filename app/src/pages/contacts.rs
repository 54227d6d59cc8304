//! The mairies' contacts a prefecture sets over the public directory's
//! (`/prefecture/contacts`): download the département's list as CSV, change
//! what the directory has wrong or lacks (a secretariat's direct line, the
//! address the mairie reads), upload it again. An upload replaces the
//! département's changes whole; a refused file changes nothing.

use axum::extract::Multipart;
use decompte_config::MairieContact;
use decompte_core::spreadsheet;
use decompte_store::ContactOverrides;

use super::spf::{read_upload, Upload};
use super::*;

/// The most refusals a page lists before « … ».
const SHOWN_PROBLEMS: usize = 10;

pub(super) async fn contacts_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let query: DayQuery = lenient_query(query);
    view(&state, &session, query.departement.as_deref(), None, None).await
}

/// `GET /prefecture/contacts.csv`: the département's communes with their
/// contacts as the app uses them, and where each comes from.
pub(super) async fn contacts_csv(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let query: DayQuery = lenient_query(query);
    let (_, departement, communes) =
        match departement_and_day(&state, &session, None, query.departement.as_deref()) {
            Ok(found) => found,
            Err(error) => return error_page(&state, Some(&session), &error),
        };
    let (directory, set) = match effective(&state, &departement, &communes).await {
        Ok(found) => found,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut rows = vec![vec![
        "code_commune".to_owned(),
        "nom_commune".to_owned(),
        "telephone".to_owned(),
        "email".to_owned(),
        "source".to_owned(),
    ]];
    for commune in &communes {
        let code = commune.code.as_str();
        let (contact, source) = match set.as_ref().and_then(|s| s.contacts.get(code)) {
            Some((telephone, email)) => (
                MairieContact {
                    telephone: telephone.clone(),
                    email: email.clone(),
                },
                "prefecture",
            ),
            None => (directory.get(code).cloned().unwrap_or_default(), "annuaire"),
        };
        rows.push(
            [
                code,
                &commune.name,
                &contact.telephone,
                &contact.email,
                source,
            ]
            .iter()
            .map(|cell| spreadsheet::write_cell(cell).into_owned())
            .collect(),
        );
    }
    for row in rows {
        if out.write_record(&row).is_err() {
            return error_page(&state, Some(&session), &ApiError::internal());
        }
    }
    let bytes = out.into_inner().unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"contacts-mairies-{departement}.csv\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// `POST` (multipart): `csrf`, `departement`, `fichier`.
pub(super) async fn contacts_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let Upload {
        session,
        departement,
        communes,
        text,
    } = match read_upload(&state, &headers, multipart).await {
        Ok(upload) => upload,
        Err(response) => return response,
    };
    let directory =
        decompte_config::mairie_contacts(&communes.iter().map(|c| c.code.as_str()).collect());
    let contacts = match parse_contacts(&text, &communes, &directory) {
        Ok(contacts) => contacts,
        Err(problems) => {
            return view(&state, &session, Some(&departement), Some(problems), None).await
        }
    };
    let set = ContactOverrides {
        departement: departement.clone(),
        contacts,
        imported_at: Utc::now(),
        imported_by: session.caller.id().to_owned(),
    };
    if let Err(error) = state.store.put_contacts(&set).await {
        return error_page(&state, Some(&session), &error.into());
    }
    tracing::info!(event = "contacts_imported", %departement, changed = set.contacts.len(), "mairie contacts");
    let done = match set.contacts.len() {
        0 => "Fichier importé : aucun contact ne diffère de l'annuaire ; l'annuaire s'applique \
              à toutes les communes."
            .to_owned(),
        1 => "Fichier importé : 1 mairie a des contacts propres à la préfecture.".to_owned(),
        n => format!("Fichier importé : {n} mairies ont des contacts propres à la préfecture."),
    };
    view(&state, &session, Some(&departement), None, Some(done)).await
}

/// The directory's contacts of `communes`, and the prefecture's changes.
async fn effective(
    state: &AppState,
    departement: &str,
    communes: &[Commune],
) -> Result<(BTreeMap<String, MairieContact>, Option<ContactOverrides>), decompte_store::StoreError>
{
    let directory =
        decompte_config::mairie_contacts(&communes.iter().map(|c| c.code.as_str()).collect());
    Ok((directory, state.store.contacts(departement).await?))
}

/// The rows of an uploaded file that differ from the directory: a
/// header with `code_commune`, `telephone` and `email` (others ignored,
/// so the downloaded file goes back as it is); one row per commune of the
/// département. Every problem, with its line, in French.
fn parse_contacts(
    text: &str,
    communes: &[Commune],
    directory: &BTreeMap<String, MairieContact>,
) -> Result<BTreeMap<String, (String, String)>, Vec<String>> {
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|h| h.trim().to_lowercase()).collect(),
        Err(_) => return Err(vec!["Le fichier n'est pas un CSV lisible.".into()]),
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(code_at), Some(telephone_at), Some(email_at)) =
        (column("code_commune"), column("telephone"), column("email"))
    else {
        return Err(vec![
            "La première ligne doit nommer les colonnes code_commune, telephone et email \
             (celles du fichier téléchargé sur cette page)."
                .into(),
        ]);
    };
    let known: BTreeMap<&str, &Commune> = communes.iter().map(|c| (c.code.as_str(), c)).collect();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut changed = BTreeMap::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let Ok(record) = record else {
            problems.push(format!("Ligne {line} : illisible."));
            continue;
        };
        let cell = |at: usize| record.get(at).unwrap_or_default().trim().to_owned();
        let code = cell(code_at);
        if code.is_empty() && record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let Some(commune) = known.get(code.as_str()) else {
            problems.push(format!(
                "Ligne {line} : « {code} » n'est pas le code INSEE d'une commune du département."
            ));
            continue;
        };
        if !seen.insert(code.clone()) {
            problems.push(format!(
                "Ligne {line} : {} ({code}) figure déjà plus haut.",
                commune.name
            ));
            continue;
        }
        // The downloaded file protects its cells from spreadsheets with a
        // leading apostrophe; it goes back as it is.
        let (telephone, email) = (
            spreadsheet::read_cell(&cell(telephone_at)).to_owned(),
            spreadsheet::read_cell(&cell(email_at)).to_owned(),
        );
        if !telephone.is_empty() && crate::contact::dial(&telephone).is_none() {
            problems.push(format!(
                "Ligne {line} : « {telephone} » n'est pas un numéro de téléphone ({}) : \
                 écrivez des chiffres, avec des espaces, des points ou un « + » au début \
                 si vous le souhaitez.",
                commune.name
            ));
            continue;
        }
        if !email.is_empty() && crate::contact::mailbox(&email).is_none() {
            problems.push(format!(
                "Ligne {line} : « {email} » n'est pas une adresse électronique ({}) : \
                 écrivez une seule adresse, sous la forme mairie@exemple.fr.",
                commune.name
            ));
            continue;
        }
        let listed = directory.get(&code).cloned().unwrap_or_default();
        if listed.telephone != telephone || listed.email != email {
            changed.insert(code, (telephone, email));
        }
    }
    if problems.is_empty() {
        Ok(changed)
    } else {
        if problems.len() > SHOWN_PROBLEMS {
            let more = problems.len() - SHOWN_PROBLEMS;
            problems.truncate(SHOWN_PROBLEMS);
            problems.push(format!("… et {more} autre(s)."));
        }
        Err(problems)
    }
}

async fn view(
    state: &AppState,
    session: &BrowserSession,
    departement: Option<&str>,
    problems: Option<Vec<String>>,
    done: Option<String>,
) -> Response {
    let scope = session.caller.scope(&state.config.scope);
    let (_, departement, communes) = match departement_and_day(state, session, None, departement) {
        Ok(found) => found,
        Err(error) => return error_page(state, Some(session), &error),
    };
    let (directory, set) = match effective(state, &departement, &communes).await {
        Ok(found) => found,
        Err(error) => return error_page(state, Some(session), &error.into()),
    };
    let names = match &set {
        Some(set) => crate::service::labels(state, vec![set.imported_by.clone()]).await,
        None => Default::default(),
    };
    let changed: Vec<Value> = set
        .iter()
        .flat_map(|s| &s.contacts)
        .filter_map(|(code, (telephone, email))| {
            let commune = communes.iter().find(|c| c.code.as_str() == code)?;
            let listed = directory.get(code).cloned().unwrap_or_default();
            Some(
                json!({"code": code, "name": commune.name, "telephone": telephone,
                        "email": email, "listed_telephone": listed.telephone,
                        "listed_email": listed.email}),
            )
        })
        .collect();
    let status = if problems.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let without_email = communes
        .iter()
        .filter(|c| {
            let own = set.as_ref().and_then(|s| s.contacts.get(c.code.as_str()));
            match own {
                Some((_, email)) => email.is_empty(),
                None => directory
                    .get(c.code.as_str())
                    .is_none_or(|d| d.email.is_empty()),
            }
        })
        .count();
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(&mut context, departement_picker(&scope, &departement));
    merge(
        &mut context,
        json!({
            "communes": communes.len(),
            "without_email": without_email,
            "changed": changed,
            "imported_at_fr": set.as_ref().map(|s| fr_datetime(s.imported_at)),
            "imported_by": set.as_ref()
                .map(|s| names.get(&s.imported_by).cloned().unwrap_or(s.imported_by.clone())),
            "may_import": session.caller.is_prefecture(),
            "problems": problems,
            "done": done,
        }),
    );
    render(state, status, "app/contacts.html", context)
}
