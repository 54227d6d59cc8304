//! Demonstration data for Morbihan, clearly labelled as such on every page.
//!
//! Hospital deaths follow the real daily series of Santé publique France for
//! Morbihan (`data/demo/spf-hospital-daily-dep56.csv`, Licence Ouverte / Etalab
//! 2.0); the other settings and the split between communes are invented, with a
//! fixed seed so that every run gives the same figures.

use anyhow::Context;
use chrono::NaiveDate;
use decompte_core::report::DEMONSTRATION;
use decompte_core::{CountValue, Draft, Rules, Scope, Source};
use decompte_store::{Actor, Ledger, ReportQuery, Store};

const SPF_SERIES: &str = include_str!("../../data/demo/spf-hospital-daily-dep56.csv");

/// First and last day of the demonstration period.
pub fn period() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(2020, 3, 19).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2020, 7, 31).unwrap_or_default(),
    )
}

/// Expected deaths in each setting for one hospital death (demonstration only).
fn ratio(setting: &str) -> f64 {
    match setting {
        "hopital" => 1.0,
        "ehpad" => 0.55,
        "esms" => 0.06,
        "domicile" => 0.2,
        _ => 0.05,
    }
}

/// A small deterministic generator (xorshift64*), enough for invented figures.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The real SpF daily hospital deaths for Morbihan, by day.
pub fn hospital_series() -> anyhow::Result<Vec<(NaiveDate, u32)>> {
    SPF_SERIES
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(';').collect();
            let date = fields
                .get(1)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let deaths = fields.get(4).and_then(|n| n.trim().parse().ok());
            date.zip(deaths)
                .with_context(|| format!("ligne erronée dans la série de SpF : {line}"))
        })
        .collect()
}

/// Whether the store holds any report not written by the demonstration: then
/// `--demo` must not run there (it would publish invented figures beside
/// real ones, and print access codes).
pub async fn holds_real_reports(store: &dyn Store) -> anyhow::Result<bool> {
    let reports = store.current_reports(&ReportQuery::default()).await?;
    Ok(reports.iter().any(|r| !r.is_demonstration()))
}

/// Seeds demonstration reports if the store has none for the period. Returns how many were written.
pub async fn seed(
    store: &dyn Store,
    scope: &Scope,
    rules: &Rules,
    now: chrono::DateTime<chrono::Utc>,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<usize> {
    let settings = &rules.settings;
    let ledger = Ledger::new(store, rules, scope);
    let actor = Actor::tool(DEMONSTRATION, Source::Import);
    let (first, last) = period();
    let existing = store
        .current_reports(&ReportQuery {
            commune: None,
            from: Some(first),
            to: Some(first),
            ..ReportQuery::default()
        })
        .await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    let communes: Vec<_> = scope.communes().collect();
    let mut random = Random(0x5EED_0056);
    let mut written = 0;
    let series: Vec<_> = hospital_series()?
        .into_iter()
        .filter(|(d, _)| *d >= first && *d <= last)
        .collect();
    let days = series.len();
    for (day_index, (date, hospital)) in series.into_iter().enumerate() {
        // In the last three days some communes have not reported yet, as in real life.
        let late = (last - date).num_days() < 3;
        let reporting: Vec<_> = communes
            .iter()
            .filter(|_| !late || random.unit() > 0.15)
            .collect();
        let total_population: u64 = reporting.iter().map(|c| c.population.max(1)).sum();
        let mut counts: Vec<std::collections::BTreeMap<String, u32>> = reporting
            .iter()
            .map(|_| settings.keys().map(|k| (k.to_owned(), 0)).collect())
            .collect();
        for key in settings.keys() {
            let expected = f64::from(hospital) * ratio(key);
            let mut deaths = expected.floor() as u64;
            if random.unit() < expected.fract() {
                deaths += 1;
            }
            for _ in 0..deaths {
                // Pick a commune with a probability proportional to its population.
                let mut target = (random.unit() * total_population as f64) as u64;
                let index = reporting
                    .iter()
                    .position(|c| {
                        let weight = c.population.max(1);
                        if target < weight {
                            true
                        } else {
                            target -= weight;
                            false
                        }
                    })
                    .unwrap_or(0);
                if let Some(n) = counts.get_mut(index).and_then(|c| c.get_mut(key)) {
                    *n += 1;
                }
            }
        }
        for (commune, counts) in reporting.into_iter().zip(counts) {
            let draft = Draft {
                commune: Some(commune.code.to_string()),
                date: Some(date.to_string()),
                counts: counts
                    .into_iter()
                    .map(|(key, n)| (key, CountValue::Json(n.into())))
                    .collect(),
                replaces_version: None,
                reason: Some("Données de démonstration".into()),
                ..Draft::default()
            };
            ledger.record(&actor, &draft, None, now).await?;
            written += 1;
        }
        progress(day_index + 1, days);
    }
    Ok(written)
}
