//! Communes, the referential of all current French communes, and a deployment's scope.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An INSEE commune code: five characters, digits except `2A`/`2B` for Corsica.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommuneCode(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("« {0} » n'est pas un code commune INSEE (5 caractères, par exemple 56260)")]
pub struct InvalidCommuneCode(pub String);

impl CommuneCode {
    pub fn parse(text: &str) -> Result<Self, InvalidCommuneCode> {
        let code = text.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        let valid = bytes.len() == 5
            && (bytes.iter().all(u8::is_ascii_digit)
                || (bytes[0] == b'2'
                    && (bytes[1] == b'A' || bytes[1] == b'B')
                    && bytes[2..].iter().all(u8::is_ascii_digit)));
        if valid {
            Ok(Self(code))
        } else {
            Err(InvalidCommuneCode(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The département code this commune belongs to (`56`, `2A`, `971`,
    /// `988` …): three characters overseas (`97x`, `98x`), two elsewhere.
    pub fn departement(&self) -> &str {
        if self.0.starts_with("97") || self.0.starts_with("98") {
            &self.0[..3]
        } else {
            &self.0[..2]
        }
    }
}

impl TryFrom<String> for CommuneCode {
    type Error = InvalidCommuneCode;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommuneCode> for String {
    fn from(code: CommuneCode) -> Self {
        code.0
    }
}

impl fmt::Display for CommuneCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commune {
    pub code: CommuneCode,
    pub name: String,
    pub departement: String,
    pub population: u64,
}

impl Commune {
    /// « de » and the name, as French writes it: « de Vannes », « d'Allaire »,
    /// « d'Hennebont », « du Faouët », « des Fougerêts », « de La Trinité-sur-Mer ».
    pub fn of_name(&self) -> String {
        of_name(&self.name)
    }
}

/// See [`Commune::of_name`].
pub fn of_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("Le ") {
        return format!("du {rest}");
    }
    if let Some(rest) = name.strip_prefix("Les ") {
        return format!("des {rest}");
    }
    let elides = name
        .chars()
        .next()
        .is_some_and(|c| "AEIOUYHÂÀÉÈÊËÎÏÔÖÛÜaeiouyhéèê".contains(c));
    if elides {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

#[derive(Debug, Error)]
pub enum ReferentialError {
    #[error("referential line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("referential header must be `code,nom,departement,population`")]
    Header,
    #[error("unknown département `{0}`")]
    UnknownDepartement(String),
}

/// All current French communes, keyed by code, with the names of the départements.
#[derive(Debug, Clone, Default)]
pub struct Referential {
    communes: BTreeMap<CommuneCode, Commune>,
    departements: BTreeMap<String, String>,
}

impl Referential {
    /// Parses `data/communes.csv` and `data/departements.csv` (plain CSV, no quoted fields).
    pub fn parse(communes_csv: &str, departements_csv: &str) -> Result<Self, ReferentialError> {
        Self::parse_where(communes_csv, departements_csv, |_| true)
    }

    /// The same, keeping only the communes of the départements `keep` accepts:
    /// a process that serves one département does not build 34,969 communes
    /// at start (a Lambda function's cold start).
    pub fn parse_where(
        communes_csv: &str,
        departements_csv: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, ReferentialError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(communes_csv.as_bytes());
        let header_ok = reader.headers().is_ok_and(|h| {
            h.iter().collect::<Vec<_>>() == ["code", "nom", "departement", "population"]
        });
        if !header_ok {
            return Err(ReferentialError::Header);
        }
        let mut communes = BTreeMap::new();
        for record in reader.records() {
            let fields = record.map_err(|e| ReferentialError::Line {
                line: e
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0)),
                message: e.to_string(),
            })?;
            if fields.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let error = |message: String| ReferentialError::Line {
                line: fields
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0)),
                message,
            };
            let (Some(code), Some(name), Some(departement), Some(population), None) = (
                fields.get(0),
                fields.get(1),
                fields.get(2),
                fields.get(3),
                fields.get(4),
            ) else {
                return Err(error(format!("expected 4 fields, found {}", fields.len())));
            };
            if !keep(departement) {
                continue;
            }
            let code = CommuneCode::parse(code).map_err(|e| error(e.to_string()))?;
            let population = population
                .parse()
                .map_err(|_| error(format!("bad population `{population}`")))?;
            communes.insert(
                code.clone(),
                Commune {
                    code,
                    name: name.to_owned(),
                    departement: departement.to_owned(),
                    population,
                },
            );
        }
        let departements = csv::Reader::from_reader(departements_csv.as_bytes())
            .records()
            .filter_map(Result::ok)
            .filter_map(|r| Some((r.get(0)?.to_owned(), r.get(1)?.to_owned())))
            .collect();
        Ok(Self {
            communes,
            departements,
        })
    }

    pub fn len(&self) -> usize {
        self.communes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.communes.is_empty()
    }

    pub fn get(&self, code: &CommuneCode) -> Option<&Commune> {
        self.communes.get(code)
    }

    pub fn departement_name(&self, code: &str) -> Option<&str> {
        self.departements.get(code).map(String::as_str)
    }

    /// Every département's code, in code order.
    pub fn departement_codes(&self) -> impl Iterator<Item = &str> {
        self.departements.keys().map(String::as_str)
    }

    /// The communes of the given départements. Unknown départements are an error.
    pub fn scope(&self, departements: &[String]) -> Result<Scope, ReferentialError> {
        let wanted: BTreeSet<&str> = departements.iter().map(String::as_str).collect();
        for code in &wanted {
            if !self.departements.contains_key(*code) {
                return Err(ReferentialError::UnknownDepartement((*code).to_owned()));
            }
        }
        let communes = self
            .communes
            .values()
            .filter(|c| wanted.contains(c.departement.as_str()))
            .map(|c| (c.code.clone(), c.clone()))
            .collect();
        let departements = wanted
            .iter()
            .map(|code| {
                let name = self.departements.get(*code).cloned().unwrap_or_default();
                ((*code).to_owned(), name)
            })
            .collect();
        Ok(Scope {
            communes,
            departements,
        })
    }
}

/// The communes a deployment serves: those of a set of départements.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    communes: BTreeMap<CommuneCode, Commune>,
    departements: BTreeMap<String, String>,
}

impl Scope {
    /// A scope built directly from communes, for tests and benchmarks.
    pub fn from_communes(communes: impl IntoIterator<Item = Commune>) -> Self {
        let communes: BTreeMap<_, _> = communes.into_iter().map(|c| (c.code.clone(), c)).collect();
        let departements = communes
            .values()
            .map(|c| (c.departement.clone(), c.departement.clone()))
            .collect();
        Self {
            communes,
            departements,
        }
    }

    pub fn get(&self, code: &CommuneCode) -> Option<&Commune> {
        self.communes.get(code)
    }

    pub fn contains(&self, code: &CommuneCode) -> bool {
        self.communes.contains_key(code)
    }

    pub fn communes(&self) -> impl Iterator<Item = &Commune> {
        self.communes.values()
    }

    /// The communes of one département, in code order: a range of the
    /// scope (their codes start with the département's), not a pass over
    /// every commune.
    pub fn communes_of<'s>(&'s self, departement: &'s str) -> impl Iterator<Item = &'s Commune> {
        let first = CommuneCode(format!("{departement:0<5}"));
        self.communes
            .range(first..)
            .map(|(_, commune)| commune)
            .take_while(move |c| c.code.as_str().starts_with(departement))
            .filter(move |c| c.departement == departement)
    }

    pub fn len(&self) -> usize {
        self.communes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.communes.is_empty()
    }

    pub fn population(&self) -> u64 {
        self.communes.values().map(|c| c.population).sum()
    }

    /// Département codes in scope.
    pub fn departement_codes(&self) -> impl Iterator<Item = &str> {
        self.departements.keys().map(String::as_str)
    }

    /// Départements in scope, code and name, in code order.
    pub fn departements(&self) -> impl Iterator<Item = (&str, &str)> {
        self.departements
            .iter()
            .map(|(code, name)| (code.as_str(), name.as_str()))
    }

    pub fn has_departement(&self, code: &str) -> bool {
        self.departements.contains_key(code)
    }

    pub fn departement_name(&self, code: &str) -> Option<&str> {
        self.departements.get(code).map(String::as_str)
    }

    /// The part of this scope in the given départements (those out of it are ignored).
    pub fn restrict<'a>(&self, departements: impl IntoIterator<Item = &'a str>) -> Scope {
        let wanted: BTreeSet<&str> = departements
            .into_iter()
            .filter(|d| self.departements.contains_key(*d))
            .collect();
        if wanted.len() == self.departements.len() {
            return self.clone();
        }
        Scope {
            communes: self
                .communes
                .iter()
                .filter(|(_, c)| wanted.contains(c.departement.as_str()))
                .map(|(code, c)| (code.clone(), c.clone()))
                .collect(),
            departements: self
                .departements
                .iter()
                .filter(|(code, _)| wanted.contains(code.as_str()))
                .map(|(code, name)| (code.clone(), name.clone()))
                .collect(),
        }
    }

    /// The time zone of the scope's days: its départements' if they share
    /// one, Paris time otherwise (a national or multi-zone scope).
    pub fn zone(&self) -> chrono_tz::Tz {
        let mut zones = self.departement_codes().map(crate::time::zone);
        match zones.next() {
            Some(first) if zones.all(|z| z == first) => first,
            _ => chrono_tz::Europe::Paris,
        }
    }

    /// Today in the scope's time zone ([`Scope::zone`]): the day a page
    /// shows when none is asked for.
    pub fn today(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        now.with_timezone(&self.zone()).date_naive()
    }

    /// The latest day any of the scope's communes has reached: the bound of
    /// a day asked for (New Caledonia is a day ahead of Guadeloupe for 13 hours).
    pub fn latest_today(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        self.departement_codes()
            .map(|d| crate::time::local_today(d, now))
            .max()
            .unwrap_or_else(|| crate::time::paris_today(now))
    }

    /// A human label: "Morbihan (56)", "Morbihan (56), Finistère (29)", and
    /// past three départements their number ("101 départements"): a label
    /// is written in pages and messages, never a list of a hundred names.
    pub fn label(&self) -> String {
        if self.departements.len() > 3 {
            return format!("{} départements", self.departements.len());
        }
        self.departements
            .iter()
            .map(|(code, name)| format!("{name} ({code})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commune_codes() {
        assert!(CommuneCode::parse("56260").is_ok());
        assert_eq!(CommuneCode::parse("2a004").map(|c| c.0), Ok("2A004".into()));
        assert_eq!(
            CommuneCode::parse("97411").map(|c| c.departement().to_owned()),
            Ok("974".into())
        );
        assert_eq!(
            CommuneCode::parse("98818").map(|c| c.departement().to_owned()),
            Ok("988".into())
        );
        for bad in ["5626", "562600", "2C004", "ab123", "", "56 26"] {
            assert!(CommuneCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_of_a_departement() {
        let referential = Referential::parse(
            "code,nom,departement,population\n56001,Allaire,56,4000\n29001,Argol,29,800\n",
            "code,nom\n29,Finistère\n56,Morbihan\n",
        )
        .expect("parse");
        let scope = referential.scope(&["56".into()]).expect("scope");
        assert_eq!(scope.len(), 1);
        assert_eq!(scope.label(), "Morbihan (56)");
        assert!(referential.scope(&["99".into()]).is_err());
    }

    #[test]
    fn the_communes_of_a_departement_are_those_a_pass_over_all_finds() {
        let referential = Referential::parse(
            "code,nom,departement,population\n01001,A,01,1\n2A004,B,2A,1\n2B002,C,2B,1\n\
             2A001,D,2A,1\n97101,E,971,1\n97411,F,974,1\n97102,G,971,1\n56001,H,56,1\n",
            "code,nom\n01,Ain\n2A,Corse-du-Sud\n2B,Haute-Corse\n971,Guadeloupe\n974,La Réunion\n56,Morbihan\n",
        )
        .expect("parse");
        let codes: Vec<String> = ["01", "2A", "2B", "971", "974", "56"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let scope = referential.scope(&codes).expect("scope");
        for departement in codes.iter().map(String::as_str).chain(["97", "29"]) {
            let by_range: Vec<&str> = scope
                .communes_of(departement)
                .map(|c| c.code.as_str())
                .collect();
            let by_pass: Vec<&str> = scope
                .communes()
                .filter(|c| c.departement == departement)
                .map(|c| c.code.as_str())
                .collect();
            assert_eq!(by_range, by_pass, "{departement}");
        }
        assert_eq!(
            scope
                .communes_of("2A")
                .map(|c| c.code.as_str())
                .collect::<Vec<_>>(),
            ["2A001", "2A004"]
        );
    }
}

#[cfg(test)]
mod french {
    use super::of_name;

    #[test]
    fn de_elides_and_contracts() {
        assert_eq!(of_name("Vannes"), "de Vannes");
        assert_eq!(of_name("Allaire"), "d'Allaire");
        assert_eq!(of_name("Évriguet"), "d'Évriguet");
        assert_eq!(of_name("Hennebont"), "d'Hennebont");
        assert_eq!(of_name("Le Faouët"), "du Faouët");
        assert_eq!(of_name("Les Fougerêts"), "des Fougerêts");
        assert_eq!(of_name("La Trinité-sur-Mer"), "de La Trinité-sur-Mer");
    }
}
