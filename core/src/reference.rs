//! Reference series the crisis cell compares the declarations with: Santé
//! publique France's daily hospital deaths of a département (`incid_dc` of
//! its file « données hospitalières relatives à l'épidémie de COVID-19 —
//! nouveaux », one row per département and day, `;`-separated).

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Why a file is refused, in French for the prefecture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(
        "Le fichier n'a pas les colonnes « dep », « jour » et « incid_dc » du fichier de Santé \
         publique France (données hospitalières, nouveaux cas par jour et par département) : \
         vérifiez que c'est bien ce fichier, au format CSV."
    )]
    Columns,
    #[error("Ligne {line} : {problem}. Corrigez le fichier ou téléchargez-le à nouveau.")]
    Row { line: usize, problem: String },
    #[error(
        "Le fichier n'a aucune ligne pour le département {0} : vérifiez qu'il s'agit du fichier \
         national ou de celui de votre département."
    )]
    Empty(String),
}

/// The daily hospital deaths of `departement` in Santé publique France's file.
pub fn parse_spf(
    text: &str,
    departement: &str,
) -> Result<BTreeMap<NaiveDate, u32>, ReferenceError> {
    let text = text.trim_start_matches('\u{feff}');
    let header = text.lines().next().unwrap_or("");
    let separator = if header.contains(';') { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .map_err(|_| ReferenceError::Columns)?
        .iter()
        .map(str::to_owned)
        .collect();
    let position = |name: &str| columns.iter().position(|c| c == name);
    let (Some(dep), Some(day), Some(deaths)) =
        (position("dep"), position("jour"), position("incid_dc"))
    else {
        return Err(ReferenceError::Columns);
    };
    let mut series = BTreeMap::new();
    for record in reader.records() {
        let line = |record: &csv::StringRecord| {
            record
                .position()
                .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0))
        };
        let fields = match record {
            Ok(fields) => fields,
            Err(error) => {
                return Err(ReferenceError::Row {
                    line: error
                        .position()
                        .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0)),
                    problem: "ligne illisible (guillemets ou séparateurs)".into(),
                })
            }
        };
        if fields.iter().all(str::is_empty) {
            continue;
        }
        let row = |problem: String| ReferenceError::Row {
            line: line(&fields),
            problem,
        };
        let field = |at: usize| fields.get(at).unwrap_or("");
        if field(dep) != departement {
            continue;
        }
        let date = NaiveDate::parse_from_str(field(day), "%Y-%m-%d").map_err(|_| {
            row(format!(
                "le jour « {} » n'est pas une date AAAA-MM-JJ",
                field(day)
            ))
        })?;
        let count: u32 = field(deaths).parse().map_err(|_| {
            row(format!(
                "« {} » n'est pas un nombre de décès",
                field(deaths)
            ))
        })?;
        if series.insert(date, count).is_some() {
            return Err(row(format!("le {date} figure deux fois")));
        }
    }
    if series.is_empty() {
        return Err(ReferenceError::Empty(departement.to_owned()));
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spf_file_is_read_for_one_departement() {
        let text = "\u{feff}\"dep\";\"jour\";\"incid_hosp\";\"incid_rea\";\"incid_dc\";\"incid_rad\"\n\
                    \"56\";2020-03-19;12;1;3;2\n\"29\";2020-03-19;5;0;9;0\n\"56\";2020-03-20;6;0;0;2\n";
        let series = parse_spf(text, "56").expect("parsed");
        let days: Vec<(String, u32)> = series.iter().map(|(d, n)| (d.to_string(), *n)).collect();
        assert_eq!(
            days,
            [("2020-03-19".to_owned(), 3), ("2020-03-20".to_owned(), 0)]
        );
        assert_eq!(parse_spf("a;b\n1;2\n", "56"), Err(ReferenceError::Columns));
        assert_eq!(
            parse_spf(text, "22"),
            Err(ReferenceError::Empty("22".into()))
        );
        let bad = parse_spf("dep;jour;incid_dc\n56;2020-03-19;trois\n", "56").expect_err("bad");
        assert!(
            bad.to_string()
                .starts_with("Ligne 2 : « trois » n'est pas un nombre"),
            "{bad}"
        );
        let twice = parse_spf(
            "dep,jour,incid_dc\n56,2020-03-19,1\n56,2020-03-19,2\n",
            "56",
        );
        assert!(matches!(twice, Err(ReferenceError::Row { line: 3, .. })));
        // A quoted field may hold the separator (a CSV reader, not a split).
        let quoted = parse_spf(
            "\"dep\";\"lib\";\"jour\";\"incid_dc\"\n\"56\";\"Morbihan; Bretagne\";2020-03-19;4\n",
            "56",
        )
        .expect("parsed");
        assert_eq!(quoted.values().copied().collect::<Vec<_>>(), [4]);
    }
}
