//! Tenancy: what a credential reaches inside a deployment. One instance
//! serves every prefecture; each sees and manages only its own départements.

use std::collections::BTreeSet;

use crate::auth::Role;
use crate::commune::{CommuneCode, Scope};

/// The communes a credential may see, inside the deployment's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A mairie: its commune.
    Commune(CommuneCode),
    /// A prefecture scoped to some départements.
    Departements(BTreeSet<String>),
    /// The whole deployment: the ministry, a prefecture code issued without a
    /// scope (every single-département deployment's), the operator's tools.
    All,
}

impl Reach {
    /// The reach of a credential: a commune's is its commune; a prefecture's
    /// its départements (all of the deployment's if none is named); the
    /// ministry's, everything.
    pub fn of(role: Role, commune: Option<&CommuneCode>, departements: &[String]) -> Self {
        match (role, commune) {
            (Role::Commune, Some(code)) => Reach::Commune(code.clone()),
            // A commune credential without a commune reaches nothing.
            (Role::Commune, None) => Reach::Departements(BTreeSet::new()),
            (Role::Prefecture, _) if !departements.is_empty() => {
                Reach::Departements(departements.iter().cloned().collect())
            }
            (Role::Prefecture | Role::National, _) => Reach::All,
        }
    }

    pub fn contains(&self, commune: &CommuneCode) -> bool {
        match self {
            Reach::Commune(own) => own == commune,
            Reach::Departements(set) => set.contains(commune.departement()),
            Reach::All => true,
        }
    }

    /// Whether every commune of `departement` is reached.
    pub fn covers_departement(&self, departement: &str) -> bool {
        match self {
            Reach::Commune(_) => false,
            Reach::Departements(set) => set.contains(departement),
            Reach::All => true,
        }
    }

    /// Whether everything `other` reaches, `self` reaches too: who may
    /// issue or revoke a credential.
    pub fn includes(&self, other: &Reach) -> bool {
        match (self, other) {
            (Reach::All, _) => true,
            (_, Reach::All) => false,
            (_, Reach::Commune(code)) => self.contains(code),
            (Reach::Departements(mine), Reach::Departements(theirs)) => theirs.is_subset(mine),
            (Reach::Commune(_), Reach::Departements(_)) => false,
        }
    }

    /// The deployment's départements this reach covers, in code order.
    pub fn departements<'a>(&self, deployment: &'a Scope) -> Vec<&'a str> {
        match self {
            Reach::Commune(code) => deployment
                .departement_codes()
                .filter(|d| *d == code.departement())
                .collect(),
            _ => deployment
                .departement_codes()
                .filter(|d| self.covers_departement(d))
                .collect(),
        }
    }

    /// Whether the two reaches share a département of the deployment: two
    /// credentials of one prefecture.
    pub fn shares_departement_with(&self, other: &Reach, deployment: &Scope) -> bool {
        let theirs = other.departements(deployment);
        self.departements(deployment)
            .iter()
            .any(|d| theirs.contains(d))
    }

    /// The départements to ask a store for: none, meaning all, when it
    /// reaches the whole deployment.
    pub fn departement_filter(&self, deployment: &Scope) -> Vec<String> {
        match self {
            Reach::All => Vec::new(),
            reach => reach
                .departements(deployment)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Why `commune` is out of this reach, in French, for a refusal: what
    /// the code covers and where the commune is.
    pub fn out_of_reach(&self, commune: &CommuneCode) -> String {
        match self {
            Reach::Commune(own) => format!(
                "Votre code d'accès ne vaut que pour votre commune : vous ne pouvez déclarer et \
                consulter que pour la commune {own}, pas pour la commune {commune}."
            ),
            Reach::Departements(set) => format!(
                "Votre code d'accès ne couvre que {} {} : la commune {commune} est dans le \
                département {}.",
                if set.len() == 1 {
                    "le département"
                } else {
                    "les départements"
                },
                set.iter().cloned().collect::<Vec<_>>().join(", "),
                commune.departement()
            ),
            Reach::All => format!("La commune {commune} est hors de votre périmètre."),
        }
    }

    /// The part of the deployment's scope this reach sees (a commune's: its
    /// département, whose communes it can name).
    pub fn scope(&self, deployment: &Scope) -> Scope {
        deployment.restrict(self.departements(deployment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Referential;

    fn deployment() -> Scope {
        Referential::parse(
            "code,nom,departement,population\n56001,Allaire,56,4000\n29001,Argol,29,800\n\
             35001,Acigné,35,7000\n97411,Saint-Denis,974,150000\n",
            "code,nom\n29,Finistère\n35,Ille-et-Vilaine\n56,Morbihan\n974,La Réunion\n",
        )
        .and_then(|r| r.scope(&["29".into(), "35".into(), "56".into(), "974".into()]))
        .expect("scope")
    }

    fn code(text: &str) -> CommuneCode {
        CommuneCode::parse(text).expect("code")
    }

    #[test]
    fn a_prefecture_reaches_its_departements_only() {
        let scope = deployment();
        let brittany = Reach::of(Role::Prefecture, None, &["56".into(), "29".into()]);
        assert!(brittany.contains(&code("56001")));
        assert!(brittany.contains(&code("29001")));
        assert!(!brittany.contains(&code("35001")));
        assert_eq!(brittany.departements(&scope), ["29", "56"]);
        assert_eq!(brittany.scope(&scope).len(), 2);
        assert!(brittany.includes(&Reach::Commune(code("56001"))));
        assert!(!brittany.includes(&Reach::Commune(code("35001"))));
        assert!(brittany.includes(&Reach::of(Role::Prefecture, None, &["56".into()])));
        assert!(!brittany.includes(&Reach::All));
        assert!(!brittany.includes(&Reach::of(Role::Prefecture, None, &["35".into()])));
    }

    #[test]
    fn the_ministry_and_unscoped_prefectures_reach_everything() {
        let scope = deployment();
        for reach in [
            Reach::of(Role::National, None, &[]),
            Reach::of(Role::Prefecture, None, &[]),
        ] {
            assert_eq!(reach, Reach::All);
            assert_eq!(reach.departements(&scope).len(), 4);
            assert!(reach.includes(&Reach::of(Role::Prefecture, None, &["35".into()])));
        }
        let mairie = Reach::of(Role::Commune, Some(&code("97411")), &[]);
        assert_eq!(mairie.departements(&scope), ["974"]);
        assert!(!mairie.contains(&code("56001")));
        assert!(mairie.includes(&Reach::Commune(code("97411"))));
        assert!(!mairie.includes(&Reach::All));
    }
}
