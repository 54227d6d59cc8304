//! The OpenAPI document: generated from the types the server parses, with
//! what only the configuration knows filled in, and the constraints it
//! states (the same the server checks).

use axum::extract::State;
use axum::Json;
use decompte_core::{FieldError, Role, Source};
use serde_json::{json, Value};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::service::ReportBody;
use crate::AppState;

// The handlers by their own names (the paths the derive reads), so that the
// document names no Rust module.
use super::reports::{__path_history, __path_list_reports, __path_post_report};
use super::reports::{HistoryBody, ReportInput, ReportList};
use super::supervision::{
    __path_completeness, __path_get_publication, __path_me, __path_post_publication,
};
use super::supervision::{
    CompletenessBody, DepartementCompleteness, MeBody, MeDepartement, MissingCommune,
    PublicationBody, RepublishBody,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "decompte API", version = "1", description = "Déclaration et suivi des décès par \
        commune et par lieu de décès. Authentification : « Authorization: Bearer <code d'accès> \
            » ; pour un code de préfecture ou du niveau national, en plus, le code à six chiffres \
            de sa double authentification dans « X-TOTP: 123456 »."),
    paths(post_report, list_reports, history, completeness, post_publication, get_publication, me),
    components(schemas(
        ReportInput,
        ReportBody,
        ErrorBody,
        FieldError,
        Source,
        Role,
        ReportList,
        HistoryBody,
        CompletenessBody,
        DepartementCompleteness,
        MissingCommune,
        RepublishBody,
        PublicationBody,
        MeBody,
        MeDepartement,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []), ("bearer" = [], "totp" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Code d'accès remis par la préfecture"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "totp",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-TOTP",
                "Préfecture et niveau national : le code à six chiffres que montre en ce moment \
                l'application d'authentification associée au code d'accès (double \
                authentification, activée à la première connexion sur la page de connexion).",
            ))),
        );
    }
}

pub(super) async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.config))
}

/// The OpenAPI document of this deployment: generated from the types the
/// server parses, with what only the configuration knows filled in — the
/// settings a report must count (each an integer from 0 to the largest
/// count allowed, none other), so that a body the document accepts has the
/// shape the server accepts, and one it refuses is refused.
pub fn document(config: &crate::AppConfig) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    let settings = &config.rules.settings;
    let count = json!({
        "type": "integer",
        "minimum": 0,
        "maximum": config.rules.max_per_cell,
    });
    let properties: serde_json::Map<String, Value> = settings
        .iter()
        .map(|setting| {
            let mut schema = count.clone();
            schema["description"] = json!(setting.label);
            (setting.key.clone(), schema)
        })
        .collect();
    let report = &mut doc["components"]["schemas"]["ReportInput"]["properties"];
    report["counts"] = json!({
        "type": "object",
        "description": "Un nombre entier de décès pour chaque lieu, 0 s'il n'y en a eu aucun.",
        "properties": properties,
        "required": settings.keys().collect::<Vec<_>>(),
        "additionalProperties": false,
    });
    // Read as options so that a missing one gets its French message, but
    // never null: the document says what the server takes.
    report["commune"]["type"] = json!("string");
    report["date"]["type"] = json!("string");
    report["commune"]["pattern"] = json!(COMMUNE_PATTERN);
    let day = day_pattern();
    report["date"]["pattern"] = json!(day);
    report["date"]
        .as_object_mut()
        .map(|date| date.remove("format"));
    report["reason"]["maxLength"] = json!(decompte_core::validation::MAX_REASON_CHARS);
    // The days and communes of queries and paths, read by the same parsers.
    if let Some(paths) = doc["paths"].as_object_mut() {
        let operations = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|operations| operations.values_mut());
        for operation in operations {
            let parameters = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                let pattern = match parameter["name"].as_str() {
                    Some("commune") => COMMUNE_PATTERN,
                    Some("date" | "from" | "to") => day.as_str(),
                    Some("Idempotency-Key") => {
                        parameter["schema"]["pattern"] = json!(IDEMPOTENCY_KEY_PATTERN);
                        parameter["schema"]["maxLength"] = json!(IDEMPOTENCY_KEY_MAX);
                        continue;
                    }
                    _ => continue,
                };
                // An empty query parameter is read as an absent one.
                let pattern = match parameter["in"].as_str() {
                    Some("query") => format!("^\\s*$|{pattern}"),
                    _ => pattern.to_owned(),
                };
                parameter["schema"]["pattern"] = json!(pattern);
            }
        }
    }
    doc
}

/// What the server reads as a commune code (`CommuneCode::parse`).
pub(super) const COMMUNE_PATTERN: &str = r"^\s*([0-9]{5}|2[ABab][0-9]{3})\s*$";
/// What the server reads as a day (`time::parse_date`: AAAA-MM-JJ or
/// JJ/MM/AAAA, a year from 1000 to 9999), calendar days only: a month of
/// 30 days has no 31st, February its 29th in leap years only.
pub(super) fn day_pattern() -> String {
    let year = "[1-9][0-9]{3}";
    // Years divisible by 4 but not by 100, or by 400.
    let leap = "([1-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[13579][26])00)";
    let (long, short, february) = ("(0?[13578]|1[02])", "(0?[469]|11)", "0?2");
    let (d31, d30, d28) = (
        "(0?[1-9]|[12][0-9]|3[01])",
        "(0?[1-9]|[12][0-9]|30)",
        "(0?[1-9]|1[0-9]|2[0-8])",
    );
    let iso = format!("{year}-({long}-{d31}|{short}-{d30}|{february}-{d28})|{leap}-{february}-29");
    let french =
        format!("({d31}/{long}|{d30}/{short}|{d28}/{february})/{year}|29/{february}/{leap}");
    format!(r"^\s*({iso}|{french})\s*$")
}

/// What the server takes as an `Idempotency-Key`: 1 to 200 printable ASCII
/// characters, without a space at either end.
pub(super) const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,198}[!-~])?$";
pub(super) const IDEMPOTENCY_KEY_MAX: usize = 200;

/// Whether `key` is an `Idempotency-Key` the server takes
/// ([`IDEMPOTENCY_KEY_PATTERN`]).
pub(super) fn is_idempotency_key(key: &str) -> bool {
    let printable = |c: char| (' '..='~').contains(&c);
    (1..=IDEMPOTENCY_KEY_MAX).contains(&key.len())
        && key.chars().all(printable)
        && !key.starts_with(' ')
        && !key.ends_with(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document's day pattern accepts exactly what the server's parser
    /// reads, in both forms, padded or not, across leap years and centuries.
    #[test]
    fn the_day_pattern_is_the_parser() {
        let pattern = regex::Regex::new(&day_pattern()).expect("a valid pattern");
        let mut checked = 0;
        for year in [
            "0000", "0999", "1000", "1900", "2000", "2019", "2020", "2100", "2400", "9999",
        ] {
            for month in 0..=13 {
                for day in 0..=32 {
                    for (m, d) in [
                        (format!("{month}"), format!("{day}")),
                        (format!("{month:02}"), format!("{day:02}")),
                    ] {
                        for text in [format!("{year}-{m}-{d}"), format!("{d}/{m}/{year}")] {
                            assert_eq!(
                                pattern.is_match(&text),
                                decompte_core::time::parse_date(&text).is_some(),
                                "{text}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000);
        for text in [
            "0000-0-0",
            "7/35/8003",
            "2020-02-30",
            "29/02/2100",
            " 2020-04-01 ",
        ] {
            assert_eq!(
                pattern.is_match(text),
                decompte_core::time::parse_date(text).is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn the_idempotency_key_pattern_is_the_check() {
        let pattern = regex::Regex::new(IDEMPOTENCY_KEY_PATTERN).expect("a valid pattern");
        let long = "k".repeat(IDEMPOTENCY_KEY_MAX);
        let too_long = "k".repeat(IDEMPOTENCY_KEY_MAX + 1);
        for key in [
            "a", "abc-123", "a b", " a", "a ", "", "\tx", "é", &long, &too_long, "~!", "a\u{7f}",
        ] {
            let by_pattern = pattern.is_match(key) && key.len() <= IDEMPOTENCY_KEY_MAX;
            assert_eq!(by_pattern, is_idempotency_key(key), "{key:?}");
        }
    }
}
