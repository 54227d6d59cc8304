//! The prefecture's pages for access codes (list, issue, revoke) and the export
//! of every version of every report.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use decompte_core::issuance;
use decompte_core::spreadsheet::write_cell;
use decompte_core::time::fr_datetime;
use decompte_core::{Reach, Role, Scope};
use decompte_store::ReportQuery;
use serde_json::{json, Value};

use super::{
    base_context, error_page, field, merge, render, PrefectureForm, PrefectureUser, SignedForm,
};
use crate::auth::{issue_credential, revoke_credential, BrowserSession};
use crate::error::ApiError;
use crate::AppState;

async fn codes_view(
    state: &AppState,
    session: &BrowserSession,
    status: StatusCode,
    extra: Value,
) -> Response {
    let credentials = match state.store.credentials().await {
        Ok(list) => list,
        Err(error) => return error_page(state, Some(session), &error.into()),
    };
    let deployment = &state.config.scope;
    let caller = &session.caller;
    let scope = caller.scope(deployment);
    // A prefecture sees the codes of its own communes and of the
    // prefecture codes inside its départements; the ministry, every code.
    let now = state.now();
    let label_of = |id: &str| {
        credentials
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_owned(), |c| c.label.clone())
    };
    let rows: Vec<Value> = credentials
        .iter()
        .rev()
        .filter(|c| caller.reach().includes(&c.reach()))
        .map(|c| {
            json!({
                "issued_by": c.issued_by.as_deref().map(label_of),
                "issued_count": credentials.iter()
                    .filter(|i| i.issued_by.as_deref() == Some(c.id.as_str()) && i.revoked_at.is_none())
                    .count(),
                // An agent's codes go with it unless the revoker unticks the box.
                "agent": c.issued_by.as_deref() == Some("ProConnect"),
                "expires_fr": c.expires_at.map(fr_datetime),
                "expired": c.revoked_at.is_none() && !c.is_active(now),
                "second_factor": c.role.is_supervisor().then(|| c.has_second_factor()),
                "id": c.id,
                "role": c.role.label(),
                "commune": c.commune, "commune_name": c.commune.as_ref()
                    .and_then(|code| deployment.get(code))
                    .map(|m| m.name.clone()),
                "departements": reach_label(&c.reach(), deployment),
                "label": c.label, "created_fr": fr_datetime(c.created_at),
                "last_used_fr": c.last_used_at.map(fr_datetime),
                "revoked_fr": c.revoked_at.map(fr_datetime),
                "is_self": c.id == caller.id(),
            })
        })
        .collect();
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(
        &mut context,
        json!({
            "credentials": rows,
            // The ministry issues prefecture codes; a prefecture, its mairies' and its own.
            "issues_communes": caller.is_prefecture(),
            "issues_national": caller.role() == Role::National,
            "several_departements": deployment.departement_codes().nth(1).is_some(),
            "departements": scope.departements()
                .map(|(code, name)| json!({"code": code, "name": name})).collect::<Vec<_>>(),
            "all_communes": if caller.is_prefecture() {
                scope.communes()
                    .map(|c| json!({"code": c.code, "name": c.name})).collect::<Vec<_>>()
            } else {
                Vec::new()
            },
        }),
    );
    merge(&mut context, extra);
    render(state, status, "app/codes.html", context)
}

/// What a credential reaches, for the list: "—" for a mairie, the
/// départements of a prefecture, "tous" for the whole deployment.
fn reach_label(reach: &Reach, deployment: &Scope) -> String {
    match reach {
        Reach::Commune(_) => "—".to_owned(),
        Reach::All => "tous".to_owned(),
        Reach::Departements(_) => reach.departements(deployment).join(", "),
    }
}

pub(super) async fn codes_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
) -> Response {
    codes_view(&state, &session, StatusCode::OK, json!({})).await
}

pub(super) async fn issue_code(
    State(state): State<AppState>,
    PrefectureForm(SignedForm { session, fields }): PrefectureForm,
) -> Response {
    let role = field(&fields, "role").unwrap_or("commune");
    let commune_text = field(&fields, "commune").unwrap_or("").trim().to_owned();
    let departements_text = field(&fields, "departements")
        .unwrap_or("")
        .trim()
        .to_owned();
    let label = field(&fields, "label").unwrap_or("").trim().to_owned();
    let deployment = &state.config.scope;
    let caller = &session.caller;
    // The form shows both fields: only the one of the chosen role is read.
    let role: Option<Role> = role.parse().ok();
    let request = issuance::Request {
        role,
        commune: matches!(role, None | Some(Role::Commune)).then(|| commune_text.clone()),
        departements: match role {
            Some(Role::Prefecture) => departements_text
                .split([',', ' ', ';'])
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        },
        label: Some(label.clone()),
        valid_days: None,
    };
    let now = state.now();
    let issuer = issuance::Issuer::Holder {
        role: caller.role(),
        reach: caller.reach(),
    };
    let days = state.config.supervisor_code_days;
    let issue = match issuance::decide(issuer, request, deployment, days, now) {
        Ok(issue) => issue,
        Err(refusal) => {
            let error = refusal.fr(caller.reach(), deployment);
            return codes_view(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": error, "form_commune": commune_text, "form_label": label,
                       "form_departements": departements_text}),
            )
            .await;
        }
    };
    match issue_credential(state.store.as_ref(), issue, Some(caller.id()), now).await {
        Ok((credential, code)) => {
            tracing::info!(
                event = "code_issued",
                id = %credential.id,
                role = %credential.role,
                departements = %credential.departements_text(),
                by = %caller.id(),
                "access code issued from the prefecture page"
            );
            // The code is shown in this answer only: it is not stored and the page is not cached.
            codes_view(
                &state,
                &session,
                StatusCode::CREATED,
                json!({"issued": {
                    "id": credential.id,
                    "label": credential.label,
                    "code": code.display_grouped(),
                    "expires_fr": credential.expires_at.map(fr_datetime),
                    "supervisor": credential.role.is_supervisor(),
                }}),
            )
            .await
        }
        Err(error) => error_page(&state, Some(&session), &error.into()),
    }
}

pub(super) async fn revoke_code(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PrefectureForm(SignedForm { session, fields }): PrefectureForm,
) -> Response {
    let cascade = field(&fields, "cascade") == Some("oui");
    // Only a code the caller could have issued: the same 404 for a code out
    // of its reach as for no code, so that ids of other prefectures stay unknown.
    let target = match state.store.credential(&id).await {
        Ok(target) => target.filter(|c| session.caller.reach().includes(&c.reach())),
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    if target.is_none() {
        return error_page(
            &state,
            Some(&session),
            &ApiError::not_found(format!(
                "Aucun code actif « {id} » dans votre périmètre : il a peut-être déjà été \
                révoqué."
            )),
        );
    }
    match revoke_credential(state.store.as_ref(), &id, cascade, state.now()).await {
        Ok(revoked) if !revoked.is_empty() => {
            for revoked_id in &revoked {
                tracing::info!(
                    event = "code_revoked",
                    id = %revoked_id,
                    by = %session.caller.id(),
                    cascade_from = (revoked_id != &id).then_some(id.as_str()),
                    "access code revoked from the prefecture page"
                );
            }
            Redirect::to("/prefecture/codes").into_response()
        }
        Ok(_) => error_page(
            &state,
            Some(&session),
            &ApiError::not_found(format!(
                "Aucun code actif « {id} » : il a peut-être déjà été révoqué."
            )),
        ),
        Err(error) => error_page(&state, Some(&session), &error.into()),
    }
}

/// Every version of every report, one row per version, as CSV.
pub(super) async fn export_versions(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
) -> Response {
    let query = ReportQuery {
        departements: session.caller.query_departements(&state.config.scope),
        ..ReportQuery::default()
    };
    let versions = match state.store.versions(&query).await {
        Ok(versions) => versions,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let settings = &state.config.rules.settings;
    let scope = &state.config.scope;
    // Who recorded each version, by its label (one read of the list of codes).
    let names: std::collections::HashMap<String, String> = match state.store.credentials().await {
        Ok(list) => list.into_iter().map(|c| (c.id, c.label)).collect(),
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "date",
        "code_commune",
        "nom_commune",
        "version",
        "courante",
        "enregistree_le",
        "enregistree_par",
        "source",
        "motif",
    ]
    .map(str::to_owned)
    .to_vec();
    header.extend(settings.keys().map(|key| write_cell(key).into_owned()));
    header.push("total".to_owned());
    let mut result = writer.write_record(&header);
    for (index, report) in versions.iter().enumerate() {
        let current = versions
            .get(index + 1)
            .is_none_or(|next| next.commune != report.commune || next.date != report.date);
        // Every text cell goes through `write_cell`: a reason typed by a
        // commune must never run as a formula on the crisis cell's computer.
        let name = scope.get(&report.commune).map_or("", |c| c.name.as_str());
        let mut row = vec![
            report.date.to_string(),
            report.commune.to_string(),
            write_cell(name).into_owned(),
            report.version.to_string(),
            if current { "oui" } else { "non" }.to_owned(),
            report.recorded_at.to_rfc3339(),
            write_cell(
                names
                    .get(&report.recorded_by)
                    .unwrap_or(&report.recorded_by),
            )
            .into_owned(),
            report.source.to_string(),
            write_cell(report.reason.as_deref().unwrap_or_default()).into_owned(),
        ];
        row.extend(settings.keys().map(|k| report.count(k).to_string()));
        row.push(report.total().to_string());
        result = result.and_then(|()| writer.write_record(&row));
    }
    match result.and_then(|()| writer.into_inner().map_err(|e| e.into_error().into())) {
        Ok(bytes) => {
            tracing::info!(
                event = "versions_exported",
                credential = %session.caller.id(),
                versions = versions.len(),
                "every version exported"
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"declarations-toutes-versions.csv\"",
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "export failed");
            error_page(&state, Some(&session), &ApiError::internal())
        }
    }
}
