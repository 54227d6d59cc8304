//! Corrections: writing a (commune, day) that already has a report must name the
//! version it replaces, and lowering a count needs a reason.

use crate::report::Report;
use crate::setting::Settings;
use crate::validation::{FieldError, ValidDraft};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrectionError {
    /// The version named is not the current one (or none was named and one exists,
    /// or one was named and none exists). Carries the current report, if any.
    Conflict { current: Option<Box<Report>> },
    /// A count goes down and no reason was given.
    LowerWithoutReason(Vec<FieldError>),
}

impl CorrectionError {
    /// The French explanation of a conflict, for the API and the form.
    pub fn conflict_message(current: Option<&Report>, named: Option<u32>) -> String {
        match (current, named) {
            (None, _) => "Aucune déclaration n'existe encore pour cette commune et ce jour : \
                envoyez-la comme une première déclaration, sans « replaces_version »."
                .into(),
            (Some(current), None) => format!(
                "Une déclaration existe déjà pour ce jour (version {}, enregistrée par {}). \
                    Vérifiez les chiffres actuels ; pour les corriger, indiquez la version que \
                    vous remplacez.",
                current.version, current.recorded_by
            ),
            (Some(current), Some(_)) => format!(
                "La déclaration a été modifiée entre-temps : la version actuelle est la {}. \
                    Vérifiez les chiffres actuels avant de corriger à nouveau.",
                current.version
            ),
        }
    }
}

/// Decides whether `draft` may be written over `current`; returns the version it will create.
pub fn check_correction(
    current: Option<&Report>,
    draft: &ValidDraft,
    settings: &Settings,
) -> Result<u32, CorrectionError> {
    let Some(current) = current else {
        return match draft.replaces_version {
            None => Ok(1),
            Some(_) => Err(CorrectionError::Conflict { current: None }),
        };
    };
    if draft.replaces_version != Some(current.version) {
        return Err(CorrectionError::Conflict {
            current: Some(Box::new(current.clone())),
        });
    }
    if draft.reason.is_none() {
        let lowered: Vec<FieldError> = settings
            .iter()
            .filter(|s| draft.counts.get(&s.key).copied().unwrap_or(0) < current.count(&s.key))
            .map(|s| {
                FieldError::new(
                    "reason",
                    format!(
                        "Vous baissez le nombre pour « {} » ({} → {}) : indiquez le motif de la \
                            correction.",
                        s.label,
                        current.count(&s.key),
                        draft.counts.get(&s.key).copied().unwrap_or(0)
                    ),
                )
            })
            .collect();
        if !lowered.is_empty() {
            return Err(CorrectionError::LowerWithoutReason(lowered));
        }
    }
    Ok(current.version + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commune::CommuneCode;
    use crate::report::{Counts, Source};
    use chrono::{NaiveDate, Utc};

    fn counts(ehpad: u32) -> Counts {
        Settings::default()
            .keys()
            .map(|k| (k.to_owned(), if k == "ehpad" { ehpad } else { 0 }))
            .collect()
    }

    fn current() -> Report {
        Report {
            commune: CommuneCode::parse("56001").expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, 1).expect("date"),
            counts: counts(3),
            version: 2,
            recorded_at: Utc::now(),
            recorded_by: "c1".into(),
            source: Source::Form,
            reason: None,
            warnings: Vec::new(),
        }
    }

    fn draft(ehpad: u32, replaces: Option<u32>, reason: Option<&str>) -> ValidDraft {
        ValidDraft {
            commune: CommuneCode::parse("56001").expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, 1).expect("date"),
            counts: counts(ehpad),
            replaces_version: replaces,
            reason: reason.map(str::to_owned),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn rules_of_corrections() {
        let settings = Settings::default();
        let current = current();
        assert_eq!(
            check_correction(None, &draft(1, None, None), &settings),
            Ok(1)
        );
        assert!(matches!(
            check_correction(None, &draft(1, Some(1), None), &settings),
            Err(CorrectionError::Conflict { current: None })
        ));
        assert!(matches!(
            check_correction(Some(&current), &draft(4, None, None), &settings),
            Err(CorrectionError::Conflict { .. })
        ));
        assert!(matches!(
            check_correction(Some(&current), &draft(4, Some(1), None), &settings),
            Err(CorrectionError::Conflict { .. })
        ));
        assert_eq!(
            check_correction(Some(&current), &draft(4, Some(2), None), &settings),
            Ok(3)
        );
        assert!(matches!(
            check_correction(Some(&current), &draft(2, Some(2), None), &settings),
            Err(CorrectionError::LowerWithoutReason(_))
        ));
        assert_eq!(
            check_correction(
                Some(&current),
                &draft(2, Some(2), Some("doublon")),
                &settings
            ),
            Ok(3)
        );
    }
}
