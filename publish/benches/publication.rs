//! Full and incremental publication of Morbihan with a year of daily reports
//! from every commune (249 × 365 = 90,885 reports), rendered and written to memory.
//!
//! Run with `cargo bench -p decompte-publish --bench publication`.

use std::hint::black_box;

use chrono::{Duration, NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use decompte_core::{Commune, CommuneCode, Referential, Report, Settings, Source};
use decompte_publish::{render, write_site, MemorySink, SiteConfig};

fn morbihan() -> SiteConfig {
    let referential = Referential::parse(
        include_str!("../../data/communes.csv"),
        include_str!("../../data/departements.csv"),
    )
    .expect("referential");
    SiteConfig {
        publisher: "Préfecture du Morbihan".into(),
        crisis: "Covid-19".into(),
        state_brand: true,
        scope: referential.scope(&["56".into()]).expect("scope"),
        settings: Settings::default(),
        small_counts: None,
    }
}

fn year_of_reports(communes: &[&Commune]) -> Vec<Report> {
    let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    let mut seed: u64 = 0x2545_F491;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 7) as u32 / 5
    };
    let keys: Vec<String> = Settings::default().keys().map(str::to_owned).collect();
    let mut reports = Vec::with_capacity(communes.len() * 365);
    for day in 0..365 {
        for commune in communes {
            reports.push(Report {
                commune: commune.code.clone(),
                date: start + Duration::days(day),
                counts: keys.iter().map(|k| (k.clone(), next())).collect(),
                version: 1,
                recorded_at: Utc::now(),
                recorded_by: "bench".into(),
                source: Source::Api,
                reason: None,
                warnings: Vec::new(),
            });
        }
    }
    reports
}

fn publication(c: &mut Criterion) {
    let config = morbihan();
    let communes: Vec<&Commune> = config.scope.communes().collect();
    let reports = year_of_reports(&communes);
    let today = NaiveDate::from_ymd_opt(2021, 3, 1).expect("date");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("morbihan_249x365");
    group.sample_size(10);
    group.bench_function("render", |b| {
        b.iter(|| black_box(render::render(&reports, &config, today).expect("render")))
    });
    group.bench_function("full_publication", |b| {
        b.iter(|| {
            let sink = MemorySink::default();
            let site = render::render(&reports, &config, today).expect("render");
            runtime
                .block_on(write_site(&site, &sink, Utc::now()))
                .expect("write")
        })
    });
    // One correction after a full publication: render again, write only what changed.
    let sink = MemorySink::default();
    let site = render::render(&reports, &config, today).expect("render");
    runtime
        .block_on(write_site(&site, &sink, Utc::now()))
        .expect("write");
    let mut corrected = reports.clone();
    let vannes = CommuneCode::parse("56260").expect("code");
    if let Some(report) = corrected.iter_mut().find(|r| r.commune == vannes) {
        report.counts.insert("hopital".into(), 9);
        report.version = 2;
    }
    group.bench_function("incremental_publication_after_one_correction", |b| {
        b.iter(|| {
            let site = render::render(&corrected, &config, today).expect("render");
            runtime
                .block_on(write_site(&site, &sink, Utc::now()))
                .expect("write")
        })
    });
    group.finish();
    let site = render::render(&reports, &config, today).expect("render");
    let bytes: usize = site.files.values().map(Vec::len).sum();
    eprintln!(
        "site: {} files, {:.1} MB",
        site.files.len(),
        bytes as f64 / 1e6
    );
}

criterion_group!(benches, publication);
criterion_main!(benches);
