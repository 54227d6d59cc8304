//! Signals for decisions: the communes whose deaths of the last seven days,
//! in one setting, are out of the ordinary for their population.
//!
//! The rule, stated on the signals page: for a commune and a setting, `n` is
//! the deaths of the seven days ending on the chosen day, and `λ` the larger
//! of two expectations — what the commune would have had at the rate of the
//! rest of its département over the same days (the département's deaths in
//! that setting less the commune's, over its population less the commune's,
//! times the commune's population), and its own mean week over the three
//! weeks before. The commune is flagged when `n ≥ 3` and a Poisson count of
//! mean `λ` reaches `n` less than once in ten thousand weeks
//! (`P(X ≥ n) < 10⁻⁴`): out of the ordinary for its population *and* for its
//! own recent past, which is what a new cluster is. Hundreds of communes
//! times five settings are tested each day, hence a threshold this strict.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::{CommuneCode, Report, Scope, Settings};

/// Days a signal counts, ending on the chosen day.
pub const WINDOW_DAYS: i64 = 7;
/// Weeks before the window shown as the commune's own past.
pub const HISTORY_WEEKS: i64 = 3;
/// Fewest deaths a signal needs.
pub const MIN_DEATHS: u64 = 3;
/// `P(X ≥ n)` below which a count is flagged.
pub const THRESHOLD: f64 = 1e-4;

/// The first day a signal of `day` reads: its window and the weeks before.
pub fn first_day_read(day: NaiveDate) -> NaiveDate {
    day - Duration::days(WINDOW_DAYS * (HISTORY_WEEKS + 1) - 1)
}

/// One commune and setting, ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub commune: CommuneCode,
    /// Index of the setting in the deployment's settings.
    pub setting: usize,
    /// Deaths in the seven days.
    pub deaths: u64,
    /// What the rest of the département's rate gives the commune.
    pub expected: f64,
    /// Its own mean of a week over the three weeks before.
    pub previous_weekly: f64,
    /// `P(X ≥ deaths)` for `X ~ Poisson(max(expected, previous_weekly))`.
    pub p_value: f64,
    pub flagged: bool,
}

/// `P(X ≥ n)` for `X ~ Poisson(λ)`, summed from `n` up (accurate far in the tail).
pub fn upper_tail(n: u64, lambda: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    // log of e^−λ λ^n / n!
    let ln_factorial: f64 = (1..=n).map(|k| (k as f64).ln()).sum();
    let mut term = (-lambda + n as f64 * lambda.ln() - ln_factorial).exp();
    let mut sum = 0.0;
    let mut k = n;
    while term > sum * 1e-12 && k < n + 10_000 {
        sum += term;
        k += 1;
        term *= lambda / k as f64;
    }
    sum.min(1.0)
}

/// The signals of `day` for the communes of `departement` in `scope`, from
/// the current reports of its communes over [`first_day_read`]`(day)` ..= `day`
/// (others are left out): every commune and setting with a death in the
/// window, the most unusual first.
pub fn signals(
    day: NaiveDate,
    departement: &str,
    scope: &Scope,
    settings: &Settings,
    reports: &[Report],
) -> Vec<Signal> {
    let width = settings.len();
    let window_start = day - Duration::days(WINDOW_DAYS - 1);
    let history_start = first_day_read(day);
    // Per commune: deaths by setting in the window, and in the weeks before.
    let mut window: BTreeMap<&CommuneCode, Vec<u64>> = BTreeMap::new();
    let mut before: BTreeMap<&CommuneCode, Vec<u64>> = BTreeMap::new();
    for report in reports {
        if report.commune.departement() != departement
            || !scope.contains(&report.commune)
            || report.date > day
            || report.date < history_start
        {
            continue;
        }
        let into = if report.date >= window_start {
            &mut window
        } else {
            &mut before
        };
        let counts = into
            .entry(&report.commune)
            .or_insert_with(|| vec![0; width]);
        for (count, key) in counts.iter_mut().zip(settings.keys()) {
            *count += u64::from(report.count(key));
        }
    }
    let population: u64 = scope
        .communes()
        .filter(|c| c.departement == departement)
        .map(|c| c.population)
        .sum();
    let mut totals = vec![0u64; width];
    for counts in window.values() {
        for (total, n) in totals.iter_mut().zip(counts) {
            *total += n;
        }
    }
    let mut found = Vec::new();
    for (code, counts) in &window {
        let Some(commune) = scope.get(code) else {
            continue;
        };
        let rest_population = population.saturating_sub(commune.population);
        for (setting, &deaths) in counts.iter().enumerate() {
            if deaths == 0 {
                continue;
            }
            let rest_deaths = totals[setting] - deaths;
            let expected = if rest_population == 0 {
                0.0
            } else {
                commune.population as f64 * rest_deaths as f64 / rest_population as f64
            };
            let previous = before.get(code).map_or(0, |b| b[setting]);
            let previous_weekly = previous as f64 / HISTORY_WEEKS as f64;
            let p_value = upper_tail(deaths, expected.max(previous_weekly));
            found.push(Signal {
                commune: (*code).clone(),
                setting,
                deaths,
                expected,
                previous_weekly,
                p_value,
                flagged: deaths >= MIN_DEATHS && p_value < THRESHOLD,
            });
        }
    }
    found.sort_by(|a, b| {
        b.flagged
            .cmp(&a.flagged)
            .then(a.p_value.total_cmp(&b.p_value))
            .then(b.deaths.cmp(&a.deaths))
            .then(a.commune.cmp(&b.commune))
            .then(a.setting.cmp(&b.setting))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commune, Source};
    use chrono::Utc;

    fn commune(code: &str, population: u64) -> Commune {
        Commune {
            code: CommuneCode::parse(code).expect("code"),
            name: code.into(),
            departement: "56".into(),
            population,
        }
    }

    fn report(code: &str, date: NaiveDate, hopital: u32, ehpad: u32) -> Report {
        Report {
            commune: CommuneCode::parse(code).expect("code"),
            date,
            counts: [("hopital".to_owned(), hopital), ("ehpad".to_owned(), ehpad)]
                .into_iter()
                .collect(),
            version: 1,
            recorded_at: Utc::now(),
            recorded_by: "test".into(),
            source: Source::Api,
            reason: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_poisson_tail() {
        assert_eq!(upper_tail(0, 2.0), 1.0);
        assert_eq!(upper_tail(3, 0.0), 0.0);
        // P(X ≥ 1) = 1 − e^−λ
        assert!((upper_tail(1, 0.5) - (1.0 - (-0.5f64).exp())).abs() < 1e-12);
        // P(X ≥ 3) for λ = 2: 1 − e^−2 (1 + 2 + 2) = 0.3233
        assert!((upper_tail(3, 2.0) - 0.323_323_583_8).abs() < 1e-9);
        // Far in the tail, no cancellation: 0.04^5 / 5! ≈ 8.5e−10.
        let tail = upper_tail(5, 0.04);
        assert!(tail > 8.0e-10 && tail < 8.6e-10, "{tail}");
    }

    #[test]
    fn a_cluster_in_a_small_commune_is_flagged_not_a_town_with_its_share() {
        let scope = Scope::from_communes([
            commune("56001", 1_500),
            commune("56260", 55_000),
            commune("56121", 700_000),
        ]);
        let settings = Settings::parse("hopital=Hôpital,ehpad=EHPAD").expect("settings");
        let day = NaiveDate::from_ymd_opt(2020, 4, 10).expect("date");
        let mut reports = Vec::new();
        // The département: 20 deaths in EHPAD and 30 at hospital a week, mostly in the big one.
        for back in 0..7 {
            let date = day - Duration::days(back);
            reports.push(report("56121", date, 4, 3));
            reports.push(report("56260", date, 1, 0));
        }
        // Five EHPAD deaths in a village of 1,500 in three days.
        for (back, ehpad) in [(0, 2), (1, 1), (2, 2)] {
            reports.push(report("56001", day - Duration::days(back), 0, ehpad));
        }
        // Outside the window or the département: left out.
        reports.push(report("56001", day + Duration::days(1), 0, 50));
        reports.push(report("56001", day - Duration::days(40), 0, 50));
        let found = signals(day, "56", &scope, &settings, &reports);
        let first = &found[0];
        assert_eq!(
            (first.commune.as_str(), first.setting, first.deaths),
            ("56001", 1, 5)
        );
        assert!(first.flagged, "{first:?}");
        assert!(first.expected < 0.05, "{first:?}");
        // Vannes's hospital deaths are its share: not flagged.
        let vannes = found
            .iter()
            .find(|s| s.commune.as_str() == "56260")
            .expect("Vannes");
        assert!(!vannes.flagged, "{vannes:?}");
        assert_eq!(found.iter().filter(|s| s.flagged).count(), 1, "{found:?}");
        // The same five deaths a week for the three weeks before: a lasting
        // cluster, its own ordinary now, ranked but not flagged.
        let mut lasting = reports.clone();
        for week in 1..=3 {
            for back in [0, 2] {
                let ehpad = if back == 0 { 3 } else { 2 };
                lasting.push(report(
                    "56001",
                    day - Duration::days(7 * week + back),
                    0,
                    ehpad,
                ));
            }
        }
        let again = signals(day, "56", &scope, &settings, &lasting);
        let village = again
            .iter()
            .find(|s| s.commune.as_str() == "56001" && s.setting == 1)
            .expect("the village");
        assert!((village.previous_weekly - 5.0).abs() < 1e-9, "{village:?}");
        assert!(!village.flagged, "{village:?}");
        // Two deaths are never a signal, however small the commune.
        let two = signals(day - Duration::days(2), "56", &scope, &settings, &reports);
        assert!(two
            .iter()
            .any(|s| s.commune.as_str() == "56001" && s.deaths == 2));
        assert!(two.iter().all(|s| !s.flagged), "{two:?}");
    }
}
