//! Aggregation of current reports: per day, per commune, per setting, cumulative,
//! and per 100,000 inhabitants.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::commune::{Commune, CommuneCode, Scope};
use crate::report::Report;
use crate::setting::Settings;

/// One day's deaths, by setting (in the order of [`Settings`]), for the whole scope
/// or for one commune.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    pub date: NaiveDate,
    pub by_setting: Vec<u64>,
    pub total: u64,
    pub cumulative: u64,
    /// How many communes reported this day (for one commune: 0 or 1).
    pub reporting: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommuneRow {
    pub commune: Commune,
    pub by_setting: Vec<u64>,
    pub total: u64,
    pub per_100k: Option<f64>,
    pub days_reported: usize,
    pub last_date: Option<NaiveDate>,
}

/// Everything the published site shows, computed once from the current reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregates {
    pub by_setting: Vec<u64>,
    pub total: u64,
    pub per_100k: Option<f64>,
    pub days: Vec<DayRow>,
    pub communes: Vec<CommuneRow>,
    pub commune_days: BTreeMap<CommuneCode, Vec<DayRow>>,
}

pub fn per_100k(deaths: u64, population: u64) -> Option<f64> {
    (population > 0).then(|| deaths as f64 * 100_000.0 / population as f64)
}

impl Aggregates {
    /// Reports out of scope or for unknown settings are ignored: the scope and the
    /// settings of the deployment decide what is published.
    pub fn compute(reports: &[Report], scope: &Scope, settings: &Settings) -> Self {
        let width = settings.len();
        let mut by_day: BTreeMap<NaiveDate, (Vec<u64>, usize)> = BTreeMap::new();
        let mut by_commune: BTreeMap<&CommuneCode, BTreeMap<NaiveDate, Vec<u64>>> = BTreeMap::new();
        for report in reports.iter().filter(|r| scope.contains(&r.commune)) {
            let counts: Vec<u64> = settings
                .keys()
                .map(|k| u64::from(report.count(k)))
                .collect();
            let day = by_day
                .entry(report.date)
                .or_insert_with(|| (vec![0; width], 0));
            add(&mut day.0, &counts);
            day.1 += 1;
            by_commune
                .entry(&report.commune)
                .or_default()
                .insert(report.date, counts);
        }

        let days = rows(
            by_day
                .iter()
                .map(|(date, (counts, reporting))| (*date, counts.clone(), *reporting)),
            true,
        );
        let mut by_setting = vec![0; width];
        for day in &days {
            add(&mut by_setting, &day.by_setting);
        }
        let total = by_setting.iter().sum();

        let mut commune_days = BTreeMap::new();
        let communes = scope
            .communes()
            .map(|commune| {
                let series = by_commune.get(&commune.code);
                let commune_rows = rows(
                    series
                        .into_iter()
                        .flatten()
                        .map(|(date, counts)| (*date, counts.clone(), 1)),
                    false,
                );
                let mut sums = vec![0; width];
                for day in &commune_rows {
                    add(&mut sums, &day.by_setting);
                }
                let total = sums.iter().sum();
                let row = CommuneRow {
                    commune: commune.clone(),
                    by_setting: sums,
                    total,
                    per_100k: per_100k(total, commune.population),
                    days_reported: commune_rows.len(),
                    last_date: commune_rows.last().map(|d| d.date),
                };
                commune_days.insert(commune.code.clone(), commune_rows);
                row
            })
            .collect();

        Self {
            by_setting,
            total,
            per_100k: per_100k(total, scope.population()),
            days,
            communes,
            commune_days,
        }
    }
}

fn add(into: &mut [u64], counts: &[u64]) {
    for (sum, n) in into.iter_mut().zip(counts) {
        *sum += n;
    }
}

/// Day rows with running totals. With `fill`, days without any report between the
/// first and the last are included as zeros so that charts keep a true time axis.
fn rows(days: impl Iterator<Item = (NaiveDate, Vec<u64>, usize)>, fill: bool) -> Vec<DayRow> {
    let mut out: Vec<DayRow> = Vec::new();
    let mut cumulative = 0;
    for (date, by_setting, reporting) in days {
        if fill {
            if let Some(last) = out.last().map(|r| r.date) {
                let width = by_setting.len();
                let mut gap = last.succ_opt();
                while let Some(day) = gap.filter(|d| *d < date) {
                    out.push(DayRow {
                        date: day,
                        by_setting: vec![0; width],
                        total: 0,
                        cumulative,
                        reporting: 0,
                    });
                    gap = day.succ_opt();
                }
            }
        }
        let total: u64 = by_setting.iter().sum();
        cumulative += total;
        out.push(DayRow {
            date,
            by_setting,
            total,
            cumulative,
            reporting,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Source;
    use chrono::Utc;

    fn commune(code: &str, population: u64) -> Commune {
        Commune {
            code: CommuneCode::parse(code).expect("code"),
            name: code.into(),
            departement: "56".into(),
            population,
        }
    }

    fn report(code: &str, day: u32, hopital: u32, domicile: u32) -> Report {
        Report {
            commune: CommuneCode::parse(code).expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, day).expect("date"),
            counts: [
                ("hopital".to_owned(), hopital),
                ("domicile".to_owned(), domicile),
            ]
            .into_iter()
            .collect(),
            version: 1,
            recorded_at: Utc::now(),
            recorded_by: "t".into(),
            source: Source::Api,
            reason: None,
        }
    }

    #[test]
    fn totals_cumulative_and_rates() {
        let scope = Scope::from_communes([commune("56001", 4000), commune("56002", 0)]);
        let settings = Settings::parse("hopital=Hôpital,domicile=Domicile").expect("settings");
        let reports = [
            report("56001", 1, 2, 1),
            report("56002", 1, 0, 0),
            report("56001", 3, 1, 0),
            report("29001", 3, 9, 9),
        ];
        let agg = Aggregates::compute(&reports, &scope, &settings);
        assert_eq!(agg.by_setting, [3, 1]);
        assert_eq!(agg.total, 4);
        assert_eq!(
            agg.days
                .iter()
                .map(|d| (d.total, d.cumulative, d.reporting))
                .collect::<Vec<_>>(),
            [(3, 3, 2), (0, 3, 0), (1, 4, 1)]
        );
        assert_eq!(agg.communes[0].per_100k, Some(100.0));
        assert_eq!(agg.communes[1].per_100k, None);
        assert_eq!(agg.communes[1].days_reported, 1);
        assert_eq!(agg.commune_days[&agg.communes[0].commune.code].len(), 2);
    }
}
