//! The mairies' contacts a prefecture sets over the public directory's
//! (`/prefecture/contacts`): download the département's list as CSV, change
//! what the directory has wrong or lacks (a secretariat's direct line, the
//! address the mairie reads), upload it again. An upload replaces the
//! département's changes whole; a refused file changes nothing.

use axum::extract::Multipart;
use decompte_config::MairieContact;
use decompte_store::ContactOverrides;

use super::spf::{read_upload, Upload};
use super::*;

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
            .map(|cell| decompte_core::spreadsheet::write_cell(cell).into_owned())
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
    let contacts = match crate::contact::read_upload(&text, &communes, &directory) {
        Ok(contacts) => contacts,
        Err(problems) => {
            return view(&state, &session, Some(&departement), Some(problems), None).await
        }
    };
    let set = ContactOverrides {
        departement: departement.clone(),
        contacts,
        imported_at: state.now(),
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
