//! Validation of a submitted report: every rejection says, in French, what was
//! wrong and what to do.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::commune::{CommuneCode, Scope};
use crate::report::Counts;
use crate::setting::Settings;
use crate::time::{fr_date, local_today, parse_date};

/// One field's problem, as the API's `fields` and the form's inline messages show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A count as it arrived: text from a form, or a JSON value from the API.
#[derive(Debug, Clone, PartialEq)]
pub enum CountValue {
    Text(String),
    Json(serde_json::Value),
}

/// A report as submitted, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub commune: Option<String>,
    pub date: Option<String>,
    pub counts: BTreeMap<String, CountValue>,
    pub replaces_version: Option<u32>,
    pub reason: Option<String>,
    /// The author saw the warnings and saves anyway.
    pub confirm: bool,
    /// The warnings confirmed, to keep with the version (set by whoever
    /// checked the draft against the commune's figures).
    pub warnings: Vec<String>,
}

/// The deployment's rules for what a plausible report is.
#[derive(Debug, Clone)]
pub struct Rules {
    pub settings: Settings,
    pub crisis_start: NaiveDate,
    pub max_per_cell: u32,
}

pub const MAX_REASON_CHARS: usize = 500;

impl Default for Rules {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            crisis_start: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
            max_per_cell: 1000,
        }
    }
}

/// A draft that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidDraft {
    pub commune: CommuneCode,
    pub date: NaiveDate,
    pub counts: Counts,
    pub replaces_version: Option<u32>,
    pub reason: Option<String>,
    /// The warnings the author confirmed (known codes only).
    pub warnings: Vec<String>,
}

impl Rules {
    /// Checks a draft against the scope and the instant `now`: its day may
    /// not be after today in its commune's time zone. Returns every problem
    /// at once so that a form can show them all.
    pub fn validate(
        &self,
        draft: &Draft,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> Result<ValidDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let commune = self.check_commune(draft.commune.as_deref(), scope, &mut errors);
        let today = match &commune {
            Some(code) => local_today(code.departement(), now),
            None => scope.latest_today(now),
        };
        let date = self.check_date(draft.date.as_deref(), today, &mut errors);
        let counts = self.check_counts(&draft.counts, &mut errors);
        let reason = draft
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            errors.push(FieldError::new(
                "reason",
                format!("Le motif est trop long : {MAX_REASON_CHARS} caractères au plus."),
            ));
        }
        match (commune, date, errors.is_empty()) {
            (Some(commune), Some(date), true) => Ok(ValidDraft {
                commune,
                date,
                counts,
                replaces_version: draft.replaces_version,
                reason,
                warnings: draft
                    .warnings
                    .iter()
                    .filter(|w| crate::plausibility::CODES.contains(&w.as_str()))
                    .cloned()
                    .collect(),
            }),
            _ => Err(errors),
        }
    }

    fn check_commune(
        &self,
        text: Option<&str>,
        scope: &Scope,
        errors: &mut Vec<FieldError>,
    ) -> Option<CommuneCode> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            errors.push(FieldError::new(
                "commune",
                "Indiquez le code INSEE de la commune (5 caractères, par exemple 56260).",
            ));
            return None;
        };
        match CommuneCode::parse(text) {
            Err(e) => {
                errors.push(FieldError::new("commune", format!("{e}.")));
                None
            }
            Ok(code) if !scope.contains(&code) => {
                errors.push(FieldError::new(
                    "commune",
                    format!(
                        "La commune {code} n'existe pas ou n'est pas dans le périmètre de cette \
                            préfecture ({}).",
                        scope.label()
                    ),
                ));
                None
            }
            Ok(code) => Some(code),
        }
    }

    fn check_date(
        &self,
        text: Option<&str>,
        today: NaiveDate,
        errors: &mut Vec<FieldError>,
    ) -> Option<NaiveDate> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            errors.push(FieldError::new(
                "date",
                "Indiquez le jour des décès, par exemple 2020-04-01 ou 01/04/2020.",
            ));
            return None;
        };
        self.check_day(text, today)
            .map_err(|message| errors.push(FieldError::new("date", message)))
            .ok()
    }

    /// Reads a day typed in a form or a query, and keeps it only inside the
    /// crisis window (from its first day to `today`): every day computed from
    /// it afterwards stays a plain calendar day. The error says what to type.
    pub fn check_day(&self, text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
        let text = text.trim();
        let Some(date) = parse_date(text) else {
            let shown: String = text.chars().take(40).collect();
            return Err(format!(
                "« {shown} » n'est pas une date valide : écrivez-la AAAA-MM-JJ \
                (2020-04-01) ou JJ/MM/AAAA (01/04/2020)."
            ));
        };
        if date > today {
            return Err(format!(
                "Le {} est dans le futur (aujourd'hui, nous sommes le {}) : on ne déclare que \
                    des décès déjà survenus.",
                fr_date(date),
                fr_date(today)
            ));
        }
        if date < self.crisis_start {
            return Err(format!(
                "Le {} est antérieur au début de la période suivie ({}) : vérifiez l'année.",
                fr_date(date),
                fr_date(self.crisis_start)
            ));
        }
        Ok(date)
    }

    fn check_counts(
        &self,
        given: &BTreeMap<String, CountValue>,
        errors: &mut Vec<FieldError>,
    ) -> Counts {
        let mut counts = Counts::new();
        for key in given.keys() {
            if self.settings.get(key).is_none() {
                errors.push(FieldError::new(
                    format!("counts.{key}"),
                    format!(
                        "Le lieu « {key} » n'existe pas. Lieux possibles : {}.",
                        self.settings.keys().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        for setting in self.settings.iter() {
            let field = format!("counts.{}", setting.key);
            let label = &setting.label;
            let parsed = match given.get(&setting.key) {
                None => Err(format!(
                    "Indiquez un nombre pour « {label} » (0 s'il n'y a eu aucun décès)."
                )),
                Some(value) => parse_count(value, label),
            };
            match parsed {
                Ok(n) if n > u64::from(self.max_per_cell) => errors.push(FieldError::new(
                    field,
                    format!(
                        "{n} décès pour « {label} » dépasse le maximum de {} par jour et par lieu \
                            : vérifiez la saisie, et si ce chiffre est exact, contactez la \
                            préfecture.",
                        self.max_per_cell
                    ),
                )),
                Ok(n) => {
                    counts.insert(setting.key.clone(), u32::try_from(n).unwrap_or(u32::MAX));
                }
                Err(message) => errors.push(FieldError::new(field, message)),
            }
        }
        counts
    }
}

fn parse_count(value: &CountValue, label: &str) -> Result<u64, String> {
    let not_integer =
        || format!("Le nombre pour « {label} » doit être un nombre entier, sans virgule.");
    let negative = || format!("Le nombre pour « {label} » ne peut pas être négatif.");
    match value {
        CountValue::Text(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Err(format!(
                    "Indiquez un nombre pour « {label} » (0 s'il n'y a eu aucun décès)."
                ));
            }
            if let Ok(n) = text.parse::<u64>() {
                Ok(n)
            } else if text.parse::<i64>().is_ok() {
                Err(negative())
            } else {
                Err(not_integer())
            }
        }
        CountValue::Json(serde_json::Value::Number(number)) => {
            if let Some(n) = number.as_u64() {
                Ok(n)
            } else if number.as_i64().is_some() || number.as_f64().is_some_and(|f| f < 0.0) {
                Err(negative())
            } else {
                Err(not_integer())
            }
        }
        CountValue::Json(serde_json::Value::Null) => Err(format!(
            "Indiquez un nombre pour « {label} » (0 s'il n'y a eu aucun décès)."
        )),
        CountValue::Json(_) => Err(format!(
            "Le nombre pour « {label} » doit être un nombre entier écrit sans guillemets, par \
                exemple 2."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commune::Commune;

    fn scope() -> Scope {
        Scope::from_communes([Commune {
            code: CommuneCode::parse("56001").expect("code"),
            name: "Allaire".into(),
            departement: "56".into(),
            population: 4000,
        }])
    }

    fn draft(counts: &[(&str, CountValue)]) -> Draft {
        Draft {
            commune: Some("56001".into()),
            date: Some("2020-04-01".into()),
            counts: counts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..Draft::default()
        }
    }

    fn all(value: CountValue) -> Vec<(&'static str, CountValue)> {
        Settings::default()
            .keys()
            .map(|k| {
                let key: &'static str = match k {
                    "hopital" => "hopital",
                    "ehpad" => "ehpad",
                    "esms" => "esms",
                    "domicile" => "domicile",
                    _ => "autre",
                };
                (key, value.clone())
            })
            .collect()
    }

    /// 1 May 2020 at 14:00 in Paris.
    fn today() -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2020, 5, 1, 12, 0, 0)
            .single()
            .expect("instant")
    }

    fn fields(result: Result<ValidDraft, Vec<FieldError>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn accepts_a_full_report() {
        let rules = Rules::default();
        let ok = rules
            .validate(
                &draft(&all(CountValue::Text("2".into()))),
                &scope(),
                today(),
            )
            .expect("valid");
        assert_eq!(ok.counts.values().sum::<u32>(), 10);
        let ok = rules.validate(
            &draft(&all(CountValue::Json(serde_json::json!(0)))),
            &scope(),
            today(),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn rejects_bad_counts() {
        let rules = Rules::default();
        for bad in [
            CountValue::Text("-1".into()),
            CountValue::Text("1.5".into()),
            CountValue::Text("deux".into()),
            CountValue::Text("".into()),
            CountValue::Text("1001".into()),
            CountValue::Json(serde_json::json!(-1)),
            CountValue::Json(serde_json::json!(1.5)),
            CountValue::Json(serde_json::json!("2")),
            CountValue::Json(serde_json::json!(null)),
            CountValue::Json(serde_json::json!(5000)),
        ] {
            let mut counts = all(CountValue::Text("0".into()));
            counts[1].1 = bad.clone();
            assert_eq!(
                fields(rules.validate(&draft(&counts), &scope(), today())),
                ["counts.ehpad"],
                "{bad:?}"
            );
        }
        let mut counts = all(CountValue::Text("0".into()));
        counts.pop();
        counts.push(("cimetiere", CountValue::Text("1".into())));
        assert_eq!(
            fields(rules.validate(&draft(&counts), &scope(), today())),
            ["counts.cimetiere", "counts.autre"]
        );
    }

    #[test]
    fn rejects_bad_commune_and_date() {
        let rules = Rules::default();
        for (commune, date, field) in [
            ("29001", "2020-04-01", "commune"),
            ("abc", "2020-04-01", "commune"),
            ("56001", "2020-13-01", "date"),
            ("56001", "2020-05-02", "date"),
            ("56001", "2019-12-31", "date"),
        ] {
            let mut d = draft(&all(CountValue::Text("0".into())));
            d.commune = Some(commune.into());
            d.date = Some(date.into());
            assert_eq!(
                fields(rules.validate(&d, &scope(), today())),
                [field],
                "{commune} {date}"
            );
        }
    }

    #[test]
    fn a_day_is_in_the_future_in_its_communes_time_zone() {
        use chrono::TimeZone;
        let scope = crate::Referential::parse(
            "code,nom,departement,population\n97411,Saint-Denis,974,150000\n\
             97105,Basse-Terre,971,10000\n",
            "code,nom\n971,Guadeloupe\n974,La Réunion\n",
        )
        .and_then(|r| r.scope(&["971".into(), "974".into()]))
        .expect("scope");
        let rules = Rules::default();
        // 02:30 on 15 January 2026 in Réunion; 23:30 on the 14th in Paris;
        // 18:30 on the 14th in Guadeloupe.
        let now = Utc
            .with_ymd_and_hms(2026, 1, 14, 22, 30, 0)
            .single()
            .expect("instant");
        let mut d = draft(&all(CountValue::Text("0".into())));
        d.date = Some("2026-01-15".into());
        d.commune = Some("97411".into());
        assert!(rules.validate(&d, &scope, now).is_ok(), "Réunion's today");
        d.commune = Some("97105".into());
        assert_eq!(fields(rules.validate(&d, &scope, now)), ["date"]);
        d.date = Some("2026-01-14".into());
        assert!(
            rules.validate(&d, &scope, now).is_ok(),
            "Guadeloupe's today"
        );
    }
}
