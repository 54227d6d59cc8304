//! The prefecture's pages for access codes (list, issue, revoke) and the export
//! of every version of every report.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use decompte_core::spreadsheet::write_cell;
use decompte_core::time::fr_datetime;
use decompte_core::{CommuneCode, Role};
use decompte_store::ReportQuery;
use serde_json::{json, Value};

use super::{
    base_context, error_page, field, merge, render, PrefectureForm, PrefectureUser, SignedForm,
};
use crate::auth::{issue_credential, BrowserSession};
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
    let scope = &state.config.scope;
    let rows: Vec<Value> = credentials
        .iter()
        .rev()
        .map(|c| {
            json!({
                "id": c.id,
                    "role": if c.role == Role::Prefecture { "préfecture" } else { "commune" },
                "commune": c.commune, "commune_name": c.commune.as_ref()
                    .and_then(|code| scope.get(code))
                    .map(|m| m.name.clone()),
                "label": c.label, "created_fr": fr_datetime(c.created_at),
                "last_used_fr": c.last_used_at.map(fr_datetime),
                    "revoked_fr": c.revoked_at.map(fr_datetime),
                "is_self": c.id == session.caller.id(),
            })
        })
        .collect();
    let mut context = base_context(state, Some(session), &session.csrf);
    merge(
        &mut context,
        json!({
            "credentials": rows,
            "all_communes": scope.communes()
                .map(|c| json!({"code": c.code, "name": c.name})).collect::<Vec<_>>(),
        }),
    );
    merge(&mut context, extra);
    render(state, status, "app/codes.html", context)
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
    let label = field(&fields, "label")
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect::<String>();
    let scope = &state.config.scope;
    let (role, commune) = match role {
        "prefecture" => (Role::Prefecture, None),
        _ => match CommuneCode::parse(&commune_text)
            .ok()
            .filter(|c| scope.contains(c))
        {
            Some(code) => (Role::Commune, Some(code)),
            None => {
                let error = format!(
                    "« {commune_text} » n'est pas le code INSEE d'une commune du \
                    périmètre ({}) : choisissez-la dans la liste.",
                    scope.label()
                );
                return codes_view(
                    &state,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"error": error, "form_commune": commune_text, "form_label": label}),
                )
                .await;
            }
        },
    };
    let label = if label.is_empty() {
        match &commune {
            Some(code) => format!(
                "Mairie de {}",
                scope.get(code).map(|c| c.name.as_str()).unwrap_or("?")
            ),
            None => "Préfecture".to_owned(),
        }
    } else {
        label
    };
    match issue_credential(state.store.as_ref(), role, commune, &label, Utc::now()).await {
        Ok((credential, code)) => {
            tracing::info!(
                event = "code_issued",
                id = %credential.id,
                by = %session.caller.id(),
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
    PrefectureForm(SignedForm { session, .. }): PrefectureForm,
) -> Response {
    match state.store.revoke_credential(&id, Utc::now()).await {
        Ok(true) => {
            tracing::info!(
                event = "code_revoked",
                %id,
                by = %session.caller.id(),
                "access code revoked from the prefecture page"
            );
            Redirect::to("/prefecture/codes").into_response()
        }
        Ok(false) => error_page(
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
    let versions = match state.store.versions(&ReportQuery::default()).await {
        Ok(versions) => versions,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let settings = &state.config.rules.settings;
    let scope = &state.config.scope;
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
            write_cell(&report.recorded_by).into_owned(),
            report.source.to_string(),
            write_cell(report.reason.as_deref().unwrap_or_default()).into_owned(),
        ];
        row.extend(settings.keys().map(|k| report.count(k).to_string()));
        row.push(report.total().to_string());
        result = result.and_then(|()| writer.write_record(&row));
    }
    match result.and_then(|()| writer.into_inner().map_err(|e| e.into_error().into())) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"declarations-toutes-versions.csv\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "export failed");
            error_page(&state, Some(&session), &ApiError::internal())
        }
    }
}
