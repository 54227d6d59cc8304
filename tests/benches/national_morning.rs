//! A national morning, as users make it: `decompte serve` on the embedded
//! default with every département, its store filled with a year of
//! declarations by `decompte import` (the CSV of
//! `scripts/bench/national_csv.py`), then one declaration from each of
//! 35,000 communes streamed through the API at 60 a second (a compressed
//! morning: the communes of France declaring between 8 and 14 h), each
//! mairie with its own code, while `serve` publishes as declarations wake
//! it. Prints:
//!
//! - each publication of the morning: its time and the départements it
//!   rendered (from `serve`'s log), p50, p95 and the longest;
//! - the delay from a declaration's 201 to its commune's public page
//!   showing it, for one declaration in ten, p50, p95 and the longest;
//! - how many départements' data files wait for their pages, and how late
//!   the oldest are (the publisher writes them within a time budget, from
//!   `serve`'s log);
//! - the server's resident memory through the morning (first, last and
//!   largest sample, one a second, and the range of the second half) and
//!   its peak;
//! - the answers' p50 and p99, and any answer other than 201.
//!
//! Build the release binary first, then run the bench:
//! `cargo build --release -p decompte && cargo bench -p decompte-tests --bench national_morning`
//! (`-- --count 35000 --rate 60 --days 365`, the defaults).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use decompte_core::time::fr_date;
use decompte_tests::national::{every_departement, national_csv};
use decompte_tests::process::{free_port, Guarded};
use decompte_tests::report_body;

struct Args {
    count: usize,
    rate: f64,
    days: i64,
}

fn args() -> Args {
    let mut args = Args {
        count: 35_000,
        rate: 60.0,
        days: 365,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let value = given.next().unwrap_or_default();
        match arg.as_str() {
            "--count" => args.count = value.parse().unwrap_or(args.count),
            "--rate" => args.rate = value.parse().unwrap_or(args.rate),
            "--days" => args.days = value.parse().unwrap_or(args.days),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    args
}

/// `decompte --data-dir DATA --departements ALL ARGS…`, which must succeed.
fn decompte(binary: &PathBuf, data: &PathBuf, departements: &str, args: &[&str]) -> String {
    let output = Command::new(binary)
        .arg("--data-dir")
        .arg(data)
        .args(["--departements", departements])
        .args(args)
        .output()
        .expect("run decompte");
    assert!(
        output.status.success(),
        "decompte {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of `key=` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn resident_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, values: &mut [f64], unit: &str) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{name}: p50 {:.0} {unit}, p95 {:.0} {unit}, max {:.0} {unit} ({} values)",
        quantile(values, 0.5),
        quantile(values, 0.95),
        values.last().copied().unwrap_or(0.0),
        values.len()
    )
}

#[tokio::main]
async fn main() {
    let args = args();
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = repository.join("target/release/decompte");
    assert!(
        binary.exists(),
        "build the release binary first: cargo build --release -p decompte"
    );
    let root = repository.join("target/bench-national");
    std::fs::create_dir_all(&root).expect("bench folder");
    let data = root.join("morning");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("data folder");
    let departements = every_departement().join(",");

    // The store as a crisis has filled it, by the documented tool.
    let csv = national_csv(&root, "all", args.days, false);
    let started = Instant::now();
    decompte(
        &binary,
        &data,
        &departements,
        &["import", csv.to_str().expect("path")],
    );
    println!(
        "store filled by decompte import: {} days of every commune in {:.0} s",
        args.days,
        started.elapsed().as_secs_f64()
    );
    // Each mairie declares with its own code.
    let codes: Vec<(String, String)> = decompte(
        &binary,
        &data,
        &departements,
        &[
            "credentials",
            "issue",
            "--role",
            "commune",
            "--every-commune",
            "--json",
        ],
    )
    .lines()
    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
    .filter_map(|c| {
        Some((
            c["commune"].as_str()?.to_owned(),
            c["access_code"].as_str()?.to_owned(),
        ))
    })
    .collect();
    assert!(
        codes.len() >= args.count.min(30_000),
        "{} codes",
        codes.len()
    );

    let port = free_port();
    let starting = Instant::now();
    let listen = format!("127.0.0.1:{port}");
    let data_arg = data.to_str().expect("path").to_owned();
    let server = Guarded::start(
        "decompte serve",
        binary.to_str().expect("path"),
        &[
            "--data-dir",
            &data_arg,
            "--departements",
            &departements,
            "serve",
            "--listen",
            &listen,
        ],
        &[("RUST_LOG", "info".into()), ("NO_COLOR", "1".into())],
        &root.join("morning.log"),
        "see target/bench-national/morning.log",
    );
    // serve listens once its first publication (the whole country) is done.
    server.wait_for_port(port, Duration::from_secs(600), "see its log");
    server.wait_for_log("publication written", Duration::from_secs(60));
    println!(
        "serve ready in {:.0} s, its first publication (the whole country) done",
        starting.elapsed().as_secs_f64()
    );
    let log_before = server.log_text().len();
    let peak_before = server.peak_memory_kib().unwrap_or(0);

    // The morning: one declaration per commune, in a shuffled order, on the
    // day after the imported year.
    let date =
        NaiveDate::from_ymd_opt(2020, 3, 1).expect("date") + chrono::Days::new(args.days as u64);
    let shown = fr_date(date);
    let mut order: Vec<usize> = (0..codes.len()).collect();
    let mut seed: u64 = 56;
    for i in (1..order.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (seed >> 33) as usize % (i + 1));
    }
    let client = reqwest::Client::new();
    let base = format!("http://{listen}");
    let answers: Arc<Mutex<Vec<f64>>> = Arc::default();
    let delays: Arc<Mutex<Vec<f64>>> = Arc::default();
    let refused: Arc<Mutex<HashMap<u16, usize>>> = Arc::default();
    let memory: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sampler = {
        let (memory, pid) = (Arc::clone(&memory), server.pid);
        tokio::spawn(async move {
            loop {
                if let Some(kib) = resident_kib(pid) {
                    memory.lock().expect("samples").push(kib);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let mut tasks = Vec::new();
    let morning = Instant::now();
    for (n, &at) in order.iter().take(args.count).enumerate() {
        tick.tick().await;
        let (commune, code) = codes[at].clone();
        let (client, base, shown) = (client.clone(), base.clone(), shown.clone());
        let (answers, delays, refused) = (
            Arc::clone(&answers),
            Arc::clone(&delays),
            Arc::clone(&refused),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = client
                .post(format!("{base}/api/v1/reports"))
                .bearer_auth(&code)
                .json(&report_body(&commune, &date.to_string(), [1, 0, 0, 0, 0]))
                .send()
                .await;
            let status = answer.map_or(0, |a| a.status().as_u16());
            answers
                .lock()
                .expect("answers")
                .push(sent.elapsed().as_secs_f64() * 1000.0);
            if status != 201 {
                *refused.lock().expect("refused").entry(status).or_default() += 1;
                return;
            }
            if n % 10 != 0 {
                return;
            }
            let accepted = Instant::now();
            let page = format!("{base}/communes/{commune}.html");
            while accepted.elapsed() < Duration::from_secs(120) {
                let text = match client.get(&page).send().await {
                    Ok(answer) => answer.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if text.contains(&shown) {
                    delays
                        .lock()
                        .expect("delays")
                        .push(accepted.elapsed().as_secs_f64() * 1000.0);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            *refused.lock().expect("refused").entry(999).or_default() += 1;
        }));
    }
    let streamed = morning.elapsed().as_secs_f64();
    for task in tasks {
        let _ = task.await;
    }
    sampler.abort();

    let log = server.log_text();
    let mut times = Vec::new();
    let mut rendered = Vec::new();
    let (mut waiting, mut late) = (Vec::new(), Vec::new());
    for line in log[log_before.min(log.len())..]
        .lines()
        .filter(|l| l.contains("publication written"))
    {
        if let (Some(ms), Some(n)) = (field(line, "elapsed_ms"), field(line, "departements")) {
            times.push(ms as f64);
            rendered.push(n as f64);
        }
        if let (Some(n), Some(s)) = (
            field(line, "data_files_waiting"),
            field(line, "data_files_late_s"),
        ) {
            waiting.push(n as f64);
            late.push(s as f64);
        }
    }
    let samples = memory.lock().expect("samples").clone();
    println!(
        "morning: {} declarations in {streamed:.0} s ({:.0} a second)",
        args.count.min(codes.len()),
        args.count.min(codes.len()) as f64 / streamed
    );
    println!(
        "{}",
        summary("publications during the morning", &mut times, "ms")
    );
    println!(
        "{}",
        summary("départements rendered per publication", &mut rendered, "")
    );
    println!(
        "{}",
        summary(
            "201 to the public page (one in ten)",
            &mut delays.lock().expect("delays"),
            "ms"
        )
    );
    println!(
        "{}",
        summary(
            "départements whose data files wait for their pages",
            &mut waiting,
            ""
        )
    );
    println!(
        "{}",
        summary("how late the oldest waiting data files are", &mut late, "s")
    );
    let mut answered = answers.lock().expect("answers").clone();
    answered.sort_by(f64::total_cmp);
    println!(
        "answers: p50 {:.1} ms, p99 {:.1} ms; other than 201: {:?} (999: never on its page)",
        quantile(&answered, 0.5),
        quantile(&answered, 0.99),
        refused.lock().expect("refused")
    );
    println!(
        "serve's resident memory: {} MiB at the start of the morning, {} MiB at its end, {} MiB at \
         most (samples each second); peak {} MiB before the morning (its first publication), {} \
         MiB after",
        samples.first().copied().unwrap_or(0) / 1024,
        samples.last().copied().unwrap_or(0) / 1024,
        samples.iter().max().copied().unwrap_or(0) / 1024,
        peak_before / 1024,
        server.peak_memory_kib().unwrap_or(0) / 1024
    );
    // Flat or not: the second half of the morning beside the first.
    let half = &samples[samples.len() / 2..];
    println!(
        "serve's resident memory over the second half of the morning: {} to {} MiB",
        half.iter().min().copied().unwrap_or(0) / 1024,
        half.iter().max().copied().unwrap_or(0) / 1024,
    );
    // Its course: whether it still climbs at the end, or holds.
    let minutes: Vec<String> = samples
        .chunks(60)
        .map(|minute| format!("{}", minute.iter().max().copied().unwrap_or(0) / 1024))
        .collect();
    println!(
        "serve's resident memory, the most of each minute (MiB): {}",
        minutes.join(", ")
    );
    server.stop();
}
