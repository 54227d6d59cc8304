//! A national dataset for benchmarks: plausible reports from every commune
//! of a scope for N days straight, written directly into a store in batches
//! (a fixture, not the ledger: it is the load the publisher is measured on).
//!
//! Deaths of a commune on a day follow a Poisson law whose mean is its
//! population times a daily death rate (France: about 1,700 deaths a day for
//! 68 million people, 2.5 per 100,000) times a crisis wave that peaks at
//! three times that on day 30; they are split between the settings as
//! deaths in France are (hospital 55 %, EHPAD 25 %, other medico-social
//! 3 %, home 14 %, elsewhere 3 %). The draws come from a hash of (commune,
//! day): the same call always writes the same reports.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use decompte_core::{Commune, Report, Scope, Settings, Source};
use decompte_store::Store;
use sha2::{Digest, Sha256};

/// Deaths per inhabitant per day, outside the wave.
const DAILY_RATE: f64 = 2.5e-5;
/// How deaths split between the default settings, in their order.
const SHARES: [f64; 5] = [0.55, 0.25, 0.03, 0.14, 0.03];
/// Reports written per batch (one SQLite transaction, or DynamoDB's
/// ordered batches of 50).
pub const BATCH: usize = 20_000;

/// A number in [0, 1) from a hash of the commune, the day and a salt.
fn uniform(commune: &str, day: i64, salt: u32) -> f64 {
    let digest = Sha256::new()
        .chain_update(commune)
        .chain_update(day.to_le_bytes())
        .chain_update(salt.to_le_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// A Poisson draw of mean `mean` (inversion; means here are small).
fn poisson(mean: f64, u: f64) -> u32 {
    let mut k = 0u32;
    let mut p = (-mean).exp();
    let mut cumulative = p;
    while u > cumulative && k < 10_000 {
        k += 1;
        p *= mean / f64::from(k);
        cumulative += p;
    }
    k
}

/// The crisis wave: 1 at the start, 3 at day 30, back to 1.2 by day 120.
fn wave(day: i64) -> f64 {
    let d = day as f64;
    1.0 + 2.0 * (-((d - 30.0) / 18.0).powi(2)).exp() + 0.2 * (d / 120.0).min(1.0)
}

/// The report of `commune` on day `day` (from `start`), recorded that
/// evening at 18:00 UTC.
pub fn report(commune: &Commune, start: NaiveDate, day: i64, settings: &Settings) -> Report {
    let code = commune.code.as_str();
    let deaths = poisson(
        commune.population as f64 * DAILY_RATE * wave(day),
        uniform(code, day, 0),
    );
    let mut counts: Vec<u32> = vec![0; settings.len()];
    for death in 0..deaths {
        let u = uniform(code, day, death + 1);
        let mut cumulative = 0.0;
        let mut index = SHARES.len() - 1;
        for (i, share) in SHARES.iter().enumerate() {
            cumulative += share;
            if u < cumulative {
                index = i;
                break;
            }
        }
        counts[index.min(settings.len() - 1)] += 1;
    }
    let date = start + Duration::days(day);
    Report {
        commune: commune.code.clone(),
        date,
        counts: settings
            .keys()
            .zip(counts)
            .map(|(k, n)| (k.to_owned(), n))
            .collect(),
        version: 1,
        recorded_at: recorded_at(date),
        recorded_by: "bench".into(),
        source: Source::Import,
        reason: None,
        warnings: Vec::new(),
    }
}

fn recorded_at(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(18, 0, 0).unwrap_or_default().and_utc()
}

/// Writes `days` days from `start` for every commune of `scope` into
/// `store`, in batches; `progress` hears how many are written.
/// Returns how many reports were written.
pub async fn generate(
    store: Arc<dyn Store>,
    scope: &Scope,
    settings: &Settings,
    start: NaiveDate,
    days: i64,
    mut progress: impl FnMut(usize),
) -> usize {
    let communes: Vec<&Commune> = scope.communes().collect();
    let mut batch = Vec::with_capacity(BATCH);
    let mut written = 0;
    // Commune by commune: the order of the tables' keys.
    for commune in &communes {
        for day in 0..days {
            batch.push(report(commune, start, day, settings));
            if batch.len() == BATCH {
                store
                    .write_reports(decompte_store::Ledgered::for_fixtures(), &batch)
                    .await
                    .expect("write a batch");
                written += batch.len();
                batch.clear();
                progress(written);
            }
        }
    }
    if !batch.is_empty() {
        store
            .write_reports(decompte_store::Ledgered::for_fixtures(), &batch)
            .await
            .expect("write a batch");
        written += batch.len();
        progress(written);
    }
    written
}

/// Every département of `data/departements.csv`: a national scope.
pub fn every_departement() -> Vec<String> {
    include_str!("../../data/departements.csv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter(|code| !code.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The national CSV a user would import, written by
/// `scripts/bench/national_csv.py` into `root` unless already there: `days`
/// days of every commune of `departements` (`all`, or codes separated by
/// commas), in date order, in the published form (a column per setting) or,
/// with `long`, a row per setting.
pub fn national_csv(
    root: &std::path::Path,
    departements: &str,
    days: i64,
    long: bool,
) -> std::path::PathBuf {
    let name = format!("{}-{days}", departements.replace(',', "_"));
    let path = root.join(format!("{name}{}.csv", if long { ".long" } else { "" }));
    if path.exists() {
        return path;
    }
    let partial = path.with_extension("partial");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench/national_csv.py");
    let mut command = std::process::Command::new("python3");
    command.arg(script).arg(&partial).arg(days.to_string());
    if long {
        command.arg("--long");
    }
    if departements != "all" {
        command.args(["--departements", departements]);
    }
    let status = command.status().expect("python3");
    assert!(status.success(), "national_csv.py failed");
    std::fs::rename(&partial, &path).expect("keep the CSV");
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draws_are_plausible_and_repeatable() {
        let settings = Settings::default();
        let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
        let city = Commune {
            code: decompte_core::CommuneCode::parse("75056").expect("code"),
            name: "Paris".into(),
            departement: "75".into(),
            population: 2_100_000,
        };
        let reports: Vec<Report> = (0..120)
            .map(|d| report(&city, start, d, &settings))
            .collect();
        let total: u64 = reports.iter().map(Report::total).sum();
        // About 52 a day outside the wave, up to three times that at its peak.
        let per_day = total as f64 / 120.0;
        assert!((60.0..130.0).contains(&per_day), "{per_day}");
        assert_eq!(report(&city, start, 7, &settings), reports[7], "repeatable");
        let hospital: u64 = reports.iter().map(|r| u64::from(r.count("hopital"))).sum();
        let share = hospital as f64 / total as f64;
        assert!((0.5..0.6).contains(&share), "{share}");
    }
}
