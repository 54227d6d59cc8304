//! The RGAA 4.1 self-audit (`docs/rgaa/`): the grid, one line per
//! criterion and page of the sample, and what follows from it, the
//! compliance rate and the mention every page's footer carries.
//!
//! A criterion is conforming when it is conforming on every page of the
//! sample where it applies, not conforming when it fails on one page at
//! least, not applicable when it applies to no page; the rate is the share
//! of conforming criteria among those that apply (the RGAA's method).

use std::collections::BTreeMap;

const CRITERIA: &str = include_str!("../../docs/rgaa/criteres.csv");
const GRID: &str = include_str!("../../docs/rgaa/grille.csv");

/// When the audit was made, as the statement says it.
pub const AUDIT_DATE: &str = "6 décembre 2026";

/// The pages of the sample, as the grid names them, and as a reader does.
const PAGES: [(&str, &str); 11] = [
    ("vue-d-ensemble", "vue d'ensemble"),
    ("departement", "page d'un département"),
    ("commune", "page d'une commune"),
    ("lieu", "page d'un lieu de décès"),
    ("methodologie", "méthodologie"),
    ("connexion", "connexion"),
    ("second-facteur", "second facteur"),
    ("formulaire", "formulaire de déclaration"),
    ("prefecture", "suivi de la préfecture"),
    ("point", "point de situation"),
    ("codes", "codes d'accès"),
];

fn page_name(page: &str) -> String {
    PAGES
        .iter()
        .find(|(code, _)| *code == page)
        .map_or(page, |(_, name)| name)
        .to_owned()
}

/// A criterion that fails, with the pages it fails on and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub criterion: String,
    pub title: String,
    pub pages: Vec<String>,
    pub findings: Vec<String>,
}

/// What the grid says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Audit {
    /// Conforming criteria over applicable ones, in per cent (one decimal).
    pub rate: f64,
    /// « totalement conforme », « partiellement conforme » or « non conforme ».
    pub mention: &'static str,
    pub conforming: usize,
    pub non_conforming: usize,
    pub not_applicable: usize,
    /// The pages of the sample.
    pub pages: Vec<String>,
    pub failures: Vec<Failure>,
    pub date: &'static str,
}

/// The mention the law asks for, from the rate.
pub fn mention(rate: f64) -> &'static str {
    if rate >= 100.0 {
        "totalement conforme"
    } else if rate >= 50.0 {
        "partiellement conforme"
    } else {
        "non conforme"
    }
}

fn records(text: &str) -> impl Iterator<Item = csv::StringRecord> + '_ {
    csv::Reader::from_reader(text.as_bytes())
        .into_records()
        .filter_map(Result::ok)
}

/// The audit of the committed grid, read once. The grid is checked by this
/// crate's tests (every criterion on every page, each status C, NC or NA),
/// so a line it cannot read does not count.
pub fn audit() -> &'static Audit {
    static AUDIT: std::sync::LazyLock<Audit> = std::sync::LazyLock::new(read);
    &AUDIT
}

fn read() -> Audit {
    let titles: BTreeMap<String, String> = records(CRITERIA)
        .filter_map(|r| Some((r.get(0)?.to_owned(), r.get(3)?.to_owned())))
        .collect();
    // In the criteria's order: 1.1, 1.2, …, 13.12.
    let order: Vec<String> = records(CRITERIA)
        .filter_map(|r| r.get(0).map(str::to_owned))
        .collect();
    let mut statuses: BTreeMap<&str, Vec<(String, String, String)>> = BTreeMap::new();
    let mut pages = Vec::new();
    let lines: Vec<csv::StringRecord> = records(GRID).collect();
    for line in &lines {
        let (Some(criterion), Some(page), Some(status), Some(finding)) =
            (line.get(0), line.get(1), line.get(2), line.get(4))
        else {
            continue;
        };
        if !pages.iter().any(|p| p == page) {
            pages.push(page.to_owned());
        }
        statuses.entry(criterion).or_default().push((
            page.to_owned(),
            status.to_owned(),
            finding.to_owned(),
        ));
    }
    let (mut conforming, mut non_conforming, mut not_applicable) = (0, 0, 0);
    let mut failures = Vec::new();
    for criterion in &order {
        let Some(lines) = statuses.get(criterion.as_str()) else {
            continue;
        };
        let failed: Vec<&(String, String, String)> =
            lines.iter().filter(|(_, s, _)| s == "NC").collect();
        if !failed.is_empty() {
            non_conforming += 1;
            let mut findings: Vec<String> = Vec::new();
            for (_, _, finding) in &failed {
                if !findings.contains(finding) {
                    findings.push(finding.clone());
                }
            }
            failures.push(Failure {
                criterion: criterion.clone(),
                title: titles.get(criterion).cloned().unwrap_or_default(),
                pages: failed.iter().map(|(p, _, _)| page_name(p)).collect(),
                findings,
            });
        } else if lines.iter().any(|(_, s, _)| s == "C") {
            conforming += 1;
        } else {
            not_applicable += 1;
        }
    }
    let applicable = conforming + non_conforming;
    let rate = if applicable == 0 {
        0.0
    } else {
        (1000.0 * conforming as f64 / applicable as f64).round() / 10.0
    };
    Audit {
        rate,
        mention: mention(rate),
        conforming,
        non_conforming,
        not_applicable,
        pages,
        failures,
        date: AUDIT_DATE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every criterion of the RGAA 4.1 on every page of the sample, once,
    /// with a status, a method and a finding.
    #[test]
    fn the_grid_covers_every_criterion_on_every_page() {
        let criteria: Vec<String> = records(CRITERIA)
            .filter_map(|r| r.get(0).map(str::to_owned))
            .collect();
        assert_eq!(criteria.len(), 106);
        let lines: Vec<csv::StringRecord> = csv::Reader::from_reader(GRID.as_bytes())
            .into_records()
            .map(|r| r.expect("a readable line of the grid"))
            .collect();
        let audit = audit();
        assert_eq!(audit.pages.len(), 11, "{:?}", audit.pages);
        for page in &audit.pages {
            assert!(
                PAGES.iter().any(|(code, _)| code == page),
                "{page} has no name"
            );
        }
        assert_eq!(lines.len(), criteria.len() * audit.pages.len());
        let mut seen = std::collections::BTreeSet::new();
        for line in &lines {
            assert_eq!(line.len(), 5, "{line:?}");
            assert!(criteria.iter().any(|c| c == &line[0]), "{line:?}");
            assert!(["C", "NC", "NA"].contains(&&line[2]), "{line:?}");
            assert!(!line[3].is_empty() && !line[4].is_empty(), "{line:?}");
            assert!(
                seen.insert((line[0].to_owned(), line[1].to_owned())),
                "twice: {line:?}"
            );
        }
        assert_eq!(
            audit.conforming + audit.non_conforming + audit.not_applicable,
            106
        );
        assert_eq!(audit.non_conforming, audit.failures.len());
    }

    #[test]
    fn the_mention_follows_the_rate() {
        assert_eq!(mention(100.0), "totalement conforme");
        assert_eq!(mention(97.0), "partiellement conforme");
        assert_eq!(mention(49.9), "non conforme");
        let audit = audit();
        assert_eq!(audit.mention, mention(audit.rate));
    }
}
