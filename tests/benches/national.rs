//! National scale on the embedded default (SQLite, a local folder), with
//! the store filled as users fill it: a year of declarations from every
//! commune of France (34,969 × 365, about 12.8 million), written by
//! `scripts/bench/national_csv.py` in date order and loaded by `decompte
//! import` (every report recorded now, as declarations arriving), then:
//!
//! - the import, in reports per second and peak memory, in both forms it
//!   reads: a column per setting (what decompte publishes) and a row per
//!   setting (what it published before);
//! - a full publication into an empty folder seconds after the import, in a
//!   process of its own: its time and peak memory, and its time over that
//!   of `cp -r` of its own output (the floor of writing those bytes),
//!   measured right after it; three such pairs, and the median of their
//!   ratios;
//! - one correction imported as a user would (a one-line file), then an
//!   incremental publication in a new process that resumes from the state
//!   the full one left, and another in the same process: time, peak memory,
//!   files written, départements rendered.
//!
//! A second line does the same on the older fixture, written commune by
//! commune with instants in the past (generated once, kept under `target/`).
//!
//! `cargo bench -p decompte-tests --bench national` (all départements, 365
//! days); `-- --departements 56` for Morbihan alone, `-- --days 30` for a
//! shorter run. The CSV files are generated on the first run only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use decompte_config::Options;
use decompte_publish::{FolderSink, Publisher, SiteConfig};
use decompte_store::prelude::*;
use decompte_store::SqliteStore;
use decompte_tests::national::national_csv;

const ALL: &str = "all";

struct Args {
    departements: String,
    days: i64,
    /// A child's part: `full` or `incremental`, with the database and the site.
    part: Option<(String, PathBuf, PathBuf)>,
}

fn args() -> Args {
    let mut args = Args {
        departements: ALL.into(),
        days: 365,
        part: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--departements" => args.departements = given.next().unwrap_or_else(|| ALL.into()),
            "--days" => args.days = given.next().and_then(|d| d.parse().ok()).unwrap_or(365),
            "--part" => {
                let (Some(part), Some(db), Some(site)) = (given.next(), given.next(), given.next())
                else {
                    panic!("--part PART DATABASE SITE");
                };
                args.part = Some((part, db.into(), site.into()));
            }
            // cargo bench passes --bench.
            _ => {}
        }
    }
    args
}

fn options(departements: &str) -> Options {
    let mut options = Options::for_data_dir(std::env::temp_dir());
    options.departements = if departements == ALL {
        decompte_tests::national::every_departement()
    } else {
        departements.split(',').map(str::to_owned).collect()
    };
    options
}

/// Peak resident memory of this process, from the kernel.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn folder_size(path: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                files += 1;
            }
        }
    }
    (bytes, files)
}

/// One timed part, in this process: prints `seconds files_written peak_mib`.
async fn child(part: &str, departements: &str, database: &Path, site: &Path) {
    // Where the time goes, on stderr.
    tracing_subscriber::fmt()
        .with_env_filter("decompte_publish=info")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let options = options(departements);
    let config = SiteConfig::from_options(&options).expect("config");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(database).expect("database"));
    let rules = options.rules().expect("rules");
    let scope = config.scope.clone();
    let publisher = Publisher::new(
        store.clone(),
        Arc::new(FolderSink::new(site, site.with_extension("publisher"))),
        config,
    );
    let now = Utc::now();
    let started = Instant::now();
    // As `decompte publish` does: nothing kept for a next publication.
    publisher.set_keeping(part != "full");
    let written = match part {
        "full" => publisher
            .publish(now)
            .await
            .expect("full publication")
            .written
            .len(),
        "incremental" => {
            // One correction, as a user makes one: a one-line file imported,
            // one more death at home on the first commune's first day.
            let correct = |n: u32| {
                let store = store.clone();
                let (scope, rules) = (scope.clone(), rules.clone());
                let file = site.with_extension("correction.csv");
                let first = options.departements[0].clone();
                async move {
                    let reports = store
                        .current_reports(&decompte_store::ReportQuery {
                            departements: vec![first],
                            to: NaiveDate::from_ymd_opt(2020, 3, 1),
                            ..Default::default()
                        })
                        .await
                        .expect("read");
                    let report = reports.into_iter().next().expect("a report");
                    let mut csv = String::from("date,code_commune,nom_commune");
                    let mut row = format!("\n{},{},", report.date, report.commune);
                    for setting in rules.settings.keys() {
                        let count = report.counts.get(setting).copied().unwrap_or(0);
                        let count = if setting == "domicile" {
                            count + n
                        } else {
                            count
                        };
                        csv.push_str(&format!(",{setting}"));
                        row.push_str(&format!(",{count}"));
                    }
                    csv.push_str(&row);
                    csv.push('\n');
                    std::fs::write(&file, csv).expect("correction file");
                    decompte::transfer::import(
                        store.as_ref(),
                        &scope,
                        &rules,
                        &file,
                        "bench",
                        Utc::now(),
                        |_, _| {},
                    )
                    .await
                    .expect("correction imported");
                }
            };
            correct(1).await;
            let started = Instant::now();
            let outcome = publisher
                .publish_if_changed(Utc::now())
                .await
                .expect("incremental publication")
                .expect("the correction is new");
            let cold = started.elapsed().as_secs_f64();
            // The same process again, as `decompte serve`'s loop: another
            // correction, published by the publisher that published the first.
            correct(2).await;
            let started = Instant::now();
            let warm = publisher
                .publish_if_changed(Utc::now())
                .await
                .expect("incremental publication")
                .expect("the correction is new");
            println!(
                "{cold:.3} {} {:.0} {:.3} {}",
                outcome.written.len(),
                peak_rss_mib(),
                started.elapsed().as_secs_f64(),
                warm.written.len()
            );
            return;
        }
        "import" => {
            // `site` is the CSV here, `database` an empty one.
            let summary = decompte::transfer::import(
                store.as_ref(),
                &scope,
                &rules,
                site,
                "bench",
                now,
                |_, _| {},
            )
            .await
            .expect("import");
            summary.created
        }
        other => panic!("unknown part {other}"),
    };
    println!(
        "{:.3} {} {:.0}",
        started.elapsed().as_secs_f64(),
        written,
        peak_rss_mib()
    );
}

fn run_child(part: &str, args: &Args, database: &Path, site: &Path) -> Vec<f64> {
    let output = Command::new(std::env::current_exe().expect("this bench"))
        .args(["--departements", &args.departements, "--part", part])
        .arg(database)
        .arg(site)
        .output()
        .expect("run a part");
    assert!(
        output.status.success(),
        "{part}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains("publication written"))
    {
        println!("  {part}: {}", line.split("INFO ").nth(1).unwrap_or(line));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect()
}

#[tokio::main]
async fn main() {
    let args = args();
    if let Some((part, database, site)) = &args.part {
        child(part, &args.departements, database, site).await;
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-national");
    std::fs::create_dir_all(&root).expect("bench folder");
    let name = format!("{}-{}", args.departements.replace(',', "_"), args.days);
    let options = options(&args.departements);
    let config = SiteConfig::from_options(&options).expect("config");
    println!(
        "scope: {} communes in {} départements, {} days",
        config.scope.len(),
        config.scope.departement_codes().count(),
        args.days
    );

    // As users fill it: `decompte import` of a file in date order.
    let wide = national_csv(&root, &args.departements, args.days, false);
    let long = national_csv(&root, &args.departements, args.days, true);
    let imported = root.join(format!("{name}.imported.sqlite"));
    import(&args, &imported, &wide, "a column per setting");
    println!("store filled by decompte import (every report recorded now):");
    publications(&args, &root, &format!("{name}.imported"), &imported);
    let long_db = root.join(format!("{name}.long.sqlite"));
    import(&args, &long_db, &long, "a row per setting");
    remove_database(&long_db);
    remove_database(&imported);

    // The second line: the fixture, commune by commune, instants in the past.
    let database = root.join(format!("{name}.sqlite"));
    if !database.exists() {
        fixture(&config, &args, &root, &name, &database).await;
    }
    println!("store filled by the fixture (commune by commune, recorded in the past):");
    publications(&args, &root, &name, &database);
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// `decompte import` of `csv` into an empty `database`, in a process of its own.
fn import(args: &Args, database: &Path, csv: &Path, form: &str) {
    remove_database(database);
    let _ = Command::new("sync").status();
    let figures = run_child("import", args, database, csv);
    println!(
        "decompte import, {form} ({:.0} MB), into an empty database: {} reports in {:.1} s, \
         {:.0} reports/s, peak RSS {:.0} MiB",
        std::fs::metadata(csv).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
        figures[1],
        figures[0],
        figures[1] / figures[0],
        figures[2]
    );
}

/// How many times a full publication and the `cp -r` of its output are
/// measured, in turns: the machine's speed at writing 4 GB of small files
/// drifts by half within an hour, so one pair says little.
const ROUNDS: usize = 3;

/// Full publications into an empty folder, each followed by `cp -r` of its
/// output (the floor of writing those bytes, in the same conditions), then
/// incremental ones after a correction.
fn publications(args: &Args, root: &Path, name: &str, database: &Path) {
    let site = root.join(format!("{name}.site"));
    let copy = root.join(format!("{name}.copy"));
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        for folder in [&site, &site.with_extension("publisher"), &copy] {
            let _ = std::fs::remove_dir_all(folder);
        }
        // Start from a quiet disk: what was deleted is not written back
        // during the measures.
        let _ = Command::new("sync").status();
        let figures = run_child("full", args, database, &site);
        let (full, written, full_rss) = (figures[0], figures[1], figures[2]);
        let (bytes, files) = folder_size(&site);
        let _ = Command::new("sync").status();
        let started = Instant::now();
        let status = Command::new("cp")
            .arg("-r")
            .arg(&site)
            .arg(&copy)
            .status()
            .expect("cp");
        assert!(status.success());
        let cp = started.elapsed().as_secs_f64();
        println!(
            "  full publication {round}/{ROUNDS}: {full:.2} s, {written} files written ({files} \
             files, {:.0} MB), peak RSS {full_rss:.0} MiB; cp -r of the same tree {cp:.2} s: \
             ratio {:.1}",
            bytes as f64 / 1e6,
            full / cp
        );
        rounds.push((full, cp, full_rss));
    }
    let _ = std::fs::remove_dir_all(&copy);
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "  full publication, median of {ROUNDS}: {:.2} s, peak RSS {:.0} MiB; cp -r {:.2} s; \
         ratio of each pair, median {:.1} (from {:.1} to {:.1})",
        median(rounds.iter().map(|r| r.0).collect()),
        median(rounds.iter().map(|r| r.2).collect()),
        median(rounds.iter().map(|r| r.1).collect()),
        median(rounds.iter().map(|r| r.0 / r.1).collect()),
        rounds
            .iter()
            .map(|r| r.0 / r.1)
            .fold(f64::INFINITY, f64::min),
        rounds.iter().map(|r| r.0 / r.1).fold(0.0, f64::max),
    );

    let figures = run_child("incremental", args, database, &site);
    println!(
        "  incremental publication after one correction: in a new process (resumed from the \
         state) {:.0} ms, {} files written, peak RSS {:.0} MiB; in the same process (the \
         departement kept in memory) {:.0} ms, {} files written",
        figures[0] * 1000.0,
        figures[1],
        figures[2],
        figures[3] * 1000.0,
        figures[4]
    );
}

/// The older fixture: reports written commune by commune, recorded at 18:00
/// of their own day.
async fn fixture(config: &SiteConfig, args: &Args, root: &Path, name: &str, database: &Path) {
    let partial = root.join(format!("{name}.partial.sqlite"));
    remove_database(&partial);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&partial).expect("database"));
    let started = Instant::now();
    let mut last_print = Instant::now();
    let written = decompte_tests::national::generate(
        store,
        &config.scope,
        &config.settings,
        NaiveDate::from_ymd_opt(2020, 3, 1).expect("date"),
        args.days,
        |n| {
            if last_print.elapsed().as_secs() >= 10 {
                eprintln!("  {n} reports written");
                last_print = Instant::now();
            }
        },
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "fixture bulk load (SQLite, batches of {}): {written} reports in {seconds:.1} s, {:.0} \
         reports/s",
        decompte_tests::national::BATCH,
        written as f64 / seconds
    );
    std::fs::rename(&partial, database).expect("keep the database");
}
