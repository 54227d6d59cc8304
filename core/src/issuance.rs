//! Who may issue which access code, for what, named how and valid how long:
//! the one rule the command line and the prefecture page both follow.
//!
//! The operator's command line may issue any code inside the deployment. A
//! code's holder issues inside its own reach: a prefecture the codes of its
//! mairies and of its own crisis cell, the ministry the prefectures' and its
//! own. A supervisor's code (prefecture, national) expires — after the
//! deployment's `supervisor_days` unless the command line says otherwise — a
//! mairie's lasts until it is revoked unless the command line gives it an
//! end; a code lasts at least a day.

use chrono::{DateTime, Duration, Utc};

use crate::auth::Role;
use crate::commune::{CommuneCode, Scope};
use crate::reach::Reach;

/// The longest label a code is given (what lists and e-mails show).
pub const LABEL_CHARS: usize = 100;

/// Who asks for a code.
#[derive(Debug, Clone, Copy)]
pub enum Issuer<'a> {
    /// The operator, on the command line: anything in the deployment.
    Operator,
    /// A code's holder, signed in.
    Holder { role: Role, reach: &'a Reach },
}

/// A code asked for, as typed.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub role: Option<Role>,
    /// The commune's INSEE code, for a mairie's code.
    pub commune: Option<String>,
    /// A prefecture code's départements; none, the issuer's own.
    pub departements: Vec<String>,
    /// Who holds it; none, a label made from what it opens.
    pub label: Option<String>,
    /// Days it stays valid (the command line's `--expires-in-days`); none,
    /// the role's default.
    pub valid_days: Option<u64>,
}

/// A code to issue: every field decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub role: Role,
    pub commune: Option<CommuneCode>,
    /// A prefecture's départements, in code order; empty, the deployment.
    pub departements: Vec<String>,
    pub label: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Issue {
    /// A code for `role` (and `commune`) over the whole deployment, that
    /// never expires: what tests and fixtures issue without a request.
    pub fn new(role: Role, commune: Option<CommuneCode>, label: &str) -> Self {
        Self {
            role,
            commune,
            departements: Vec::new(),
            label: label.to_owned(),
            expires_at: None,
        }
    }
}

/// Why a code is not issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("un code de mairie demande le code INSEE de la commune (par exemple 56260)")]
    NoCommune,
    #[error("la commune {0} n'est pas dans le périmètre ({1})")]
    CommuneOutOfReach(String, String),
    #[error("le département {0} n'est pas servi par ce déploiement ({1})")]
    DepartementOutOfReach(String, String),
    #[error(
        "un code `{0}` ne prend pas de commune : il vaut pour toutes les communes de son périmètre"
    )]
    CommuneForSupervisor(Role),
    #[error("les départements ne valent que pour un code de préfecture")]
    DepartementsNotForRole,
    #[error("un code `{issuer}` ne peut pas créer de code `{role}`")]
    NotPermitted { issuer: Role, role: Role },
    #[error("une validité de {0} jours est trop longue")]
    TooLong(u64),
    #[error("un code valable 0 jour serait expiré dès sa création : donnez au moins 1 jour")]
    NoDays,
}

impl Refusal {
    /// The refusal in French, for the prefecture page: what was wrong and
    /// what to do.
    pub fn fr(&self, reach: &Reach, deployment: &Scope) -> String {
        let scope = reach_label(reach, deployment);
        match self {
            Refusal::NoCommune | Refusal::CommuneOutOfReach(..) => {
                let typed = match self {
                    Refusal::CommuneOutOfReach(code, _) => code.as_str(),
                    _ => "",
                };
                format!(
                    "« {typed} » n'est pas le code INSEE d'une commune de votre périmètre \
                    ({scope}) : choisissez-la dans la liste."
                )
            }
            Refusal::DepartementOutOfReach(code, _) => format!(
                "« {code} » n'est pas un département de votre périmètre ({scope}) : écrivez les \
                codes séparés par des virgules, par exemple {}.",
                reach
                    .departements(deployment)
                    .into_iter()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::CommuneForSupervisor(_) | Refusal::DepartementsNotForRole => {
                "Un code de préfecture vaut pour les départements, un code de mairie pour une \
                commune : choisissez l'un ou l'autre."
                    .to_owned()
            }
            Refusal::NotPermitted {
                issuer: Role::National,
                ..
            } => "Le niveau national crée les codes des préfectures ; les codes des mairies sont \
                créés par leur préfecture."
                .to_owned(),
            Refusal::NotPermitted { .. } => "Une préfecture crée les codes de ses mairies et de \
                sa cellule de crise ; les codes du niveau national sont créés par le niveau \
                national."
                .to_owned(),
            Refusal::NoDays => "Un code doit valoir au moins un jour.".to_owned(),
            Refusal::TooLong(days) => format!(
                "Une validité de {days} jours est trop longue : donnez un nombre de jours plus \
                petit."
            ),
        }
    }
}

/// The communes a reach covers, named as the pages name them.
fn reach_label(reach: &Reach, deployment: &Scope) -> String {
    reach.scope(deployment).label()
}

/// Decides the code `request` asks `issuer` for, in `deployment`, at `now`;
/// `supervisor_days`, how long a supervisor's code lasts by default.
pub fn decide(
    issuer: Issuer<'_>,
    request: Request,
    deployment: &Scope,
    supervisor_days: u64,
    now: DateTime<Utc>,
) -> Result<Issue, Refusal> {
    let all = Reach::All;
    let reach = match issuer {
        Issuer::Operator => &all,
        Issuer::Holder { reach, .. } => reach,
    };
    let role = request.role.unwrap_or(Role::Commune);
    if let Issuer::Holder { role: issuer, .. } = issuer {
        let permitted = match issuer {
            Role::Prefecture => role != Role::National,
            Role::National => role != Role::Commune,
            Role::Commune => false,
        };
        if !permitted {
            return Err(Refusal::NotPermitted { issuer, role });
        }
    }
    let typed: Vec<String> = request
        .departements
        .iter()
        .map(|d| d.trim().to_ascii_uppercase())
        .filter(|d| !d.is_empty())
        .collect();
    if !typed.is_empty() && role != Role::Prefecture {
        return Err(Refusal::DepartementsNotForRole);
    }
    let commune = request
        .commune
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let (commune, departements) = match role {
        Role::Commune => {
            let typed = commune.ok_or(Refusal::NoCommune)?;
            let code = CommuneCode::parse(typed)
                .ok()
                .filter(|c| deployment.contains(c) && reach.contains(c))
                .ok_or_else(|| {
                    Refusal::CommuneOutOfReach(typed.to_owned(), reach_label(reach, deployment))
                })?;
            (Some(code), Vec::new())
        }
        Role::Prefecture | Role::National if commune.is_some() => {
            return Err(Refusal::CommuneForSupervisor(role))
        }
        Role::National => (None, Vec::new()),
        Role::Prefecture if typed.is_empty() => (None, reach.departement_filter(deployment)),
        Role::Prefecture => {
            let mut departements = Vec::new();
            for code in typed {
                if !deployment.has_departement(&code) || !reach.covers_departement(&code) {
                    return Err(Refusal::DepartementOutOfReach(
                        code,
                        reach_label(reach, deployment),
                    ));
                }
                departements.push(code);
            }
            departements.sort();
            departements.dedup();
            (None, departements)
        }
    };
    let label: String = request
        .label
        .as_deref()
        .map(str::trim)
        .unwrap_or("")
        .chars()
        .take(LABEL_CHARS)
        .collect();
    let label = if label.is_empty() {
        default_label(role, commune.as_ref(), &departements, deployment)
    } else {
        label
    };
    if request.valid_days == Some(0) {
        return Err(Refusal::NoDays);
    }
    // The deployment's default is at least a day, whatever it was set to.
    let days = request
        .valid_days
        .or_else(|| role.is_supervisor().then_some(supervisor_days.max(1)));
    let expires_at = days
        .map(|days| {
            i64::try_from(days)
                .ok()
                .and_then(Duration::try_days)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or(Refusal::TooLong(days))
        })
        .transpose()?;
    Ok(Issue {
        role,
        commune,
        departements,
        label,
        expires_at,
    })
}

/// What a code is called when its issuer names nobody: « Mairie de … » as
/// French writes it, « Préfecture (56, 29) », « Niveau national ».
pub fn default_label(
    role: Role,
    commune: Option<&CommuneCode>,
    departements: &[String],
    deployment: &Scope,
) -> String {
    match (commune, role) {
        (Some(code), _) => format!(
            "Mairie {}",
            deployment
                .get(code)
                .map_or_else(|| "?".to_owned(), |c| c.of_name())
        ),
        (None, Role::National) => "Niveau national".to_owned(),
        (None, _) if departements.is_empty() => "Préfecture".to_owned(),
        (None, _) => format!("Préfecture ({})", departements.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commune::Referential;
    use chrono::TimeZone;
    use std::collections::BTreeSet;

    fn deployment() -> Scope {
        Referential::parse(
            "code,nom,departement,population\n56260,Vannes,56,53000\n29019,Brest,29,140000\n\
             35238,Rennes,35,220000\n",
            "code,nom\n29,Finistère\n35,Ille-et-Vilaine\n56,Morbihan\n",
        )
        .expect("referential")
        .scope(&["56".to_owned(), "29".to_owned()])
        .expect("scope")
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 4, 1, 9, 0, 0)
            .single()
            .expect("an instant")
    }

    fn ask(role: Role) -> Request {
        Request {
            role: Some(role),
            ..Request::default()
        }
    }

    #[test]
    fn the_operator_issues_anything_in_the_deployment() {
        let mairie = decide(
            Issuer::Operator,
            Request {
                commune: Some(" 56260 ".into()),
                ..ask(Role::Commune)
            },
            &deployment(),
            90,
            now(),
        )
        .expect("a mairie's code");
        assert_eq!(mairie.label, "Mairie de Vannes");
        assert_eq!(mairie.expires_at, None, "a mairie's code lasts");
        let prefecture = decide(
            Issuer::Operator,
            Request {
                departements: vec!["29".into(), " 56".into(), "29".into()],
                ..ask(Role::Prefecture)
            },
            &deployment(),
            90,
            now(),
        )
        .expect("a prefecture's code");
        assert_eq!(prefecture.departements, ["29", "56"]);
        assert_eq!(prefecture.label, "Préfecture (29, 56)");
        assert_eq!(prefecture.expires_at, Some(now() + Duration::days(90)));
        let outside = decide(
            Issuer::Operator,
            Request {
                commune: Some("35238".into()),
                ..ask(Role::Commune)
            },
            &deployment(),
            90,
            now(),
        );
        assert!(matches!(outside, Err(Refusal::CommuneOutOfReach(..))));
    }

    #[test]
    fn a_code_lasts_at_least_a_day_and_its_label_is_bounded() {
        let issue = decide(
            Issuer::Operator,
            Request {
                label: Some("x".repeat(300)),
                ..ask(Role::National)
            },
            &deployment(),
            0,
            now(),
        )
        .expect("a national code");
        assert_eq!(issue.expires_at, Some(now() + Duration::days(1)));
        assert_eq!(issue.label.chars().count(), LABEL_CHARS);
        let none = Request {
            valid_days: Some(0),
            ..ask(Role::Prefecture)
        };
        assert_eq!(
            decide(Issuer::Operator, none, &deployment(), 90, now()),
            Err(Refusal::NoDays)
        );
        assert_eq!(
            decide(
                Issuer::Operator,
                Request {
                    valid_days: Some(u64::MAX),
                    ..ask(Role::National)
                },
                &deployment(),
                90,
                now(),
            ),
            Err(Refusal::TooLong(u64::MAX))
        );
    }

    #[test]
    fn a_holder_issues_inside_its_reach_only() {
        let finistere = Reach::Departements(BTreeSet::from(["29".to_owned()]));
        let prefecture = Issuer::Holder {
            role: Role::Prefecture,
            reach: &finistere,
        };
        let own = decide(prefecture, ask(Role::Prefecture), &deployment(), 90, now())
            .expect("its own crisis cell's code");
        assert_eq!(own.departements, ["29"], "its own départements by default");
        for refused in [
            Request {
                commune: Some("56260".into()),
                ..ask(Role::Commune)
            },
            Request {
                departements: vec!["56".into()],
                ..ask(Role::Prefecture)
            },
            ask(Role::National),
        ] {
            assert!(decide(prefecture, refused, &deployment(), 90, now()).is_err());
        }
        let all = Reach::All;
        let ministry = Issuer::Holder {
            role: Role::National,
            reach: &all,
        };
        assert_eq!(
            decide(
                ministry,
                Request {
                    commune: Some("56260".into()),
                    ..ask(Role::Commune)
                },
                &deployment(),
                90,
                now()
            ),
            Err(Refusal::NotPermitted {
                issuer: Role::National,
                role: Role::Commune
            }),
            "a mairie's code comes from its prefecture"
        );
    }
}
