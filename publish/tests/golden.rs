//! Golden files of the renderer: a small site (two communes, three days, one
//! correction) rendered to bytes and compared with the committed snapshots
//! (insta, `tests/snapshots/`). A change of what the public reads shows up in
//! review as a diff of these files; `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test -p decompte-publish --test golden`)
//! accepts an intended one.

use chrono::{NaiveDate, TimeZone, Utc};
use decompte_core::{Commune, CommuneCode, Report, Scope, Settings, Source};
use decompte_publish::{render, SiteConfig};

fn commune(code: &str, name: &str, population: u64) -> Commune {
    Commune {
        code: CommuneCode::parse(code).expect("code"),
        name: name.into(),
        departement: "56".into(),
        population,
    }
}

fn report(code: &str, day: u32, counts: [u32; 5], version: u32) -> Report {
    let keys = ["hopital", "ehpad", "esms", "domicile", "autre"];
    Report {
        commune: CommuneCode::parse(code).expect("code"),
        date: NaiveDate::from_ymd_opt(2020, 4, day).expect("date"),
        counts: keys
            .iter()
            .zip(counts)
            .map(|(k, n)| ((*k).to_owned(), n))
            .collect(),
        version,
        recorded_at: Utc
            .with_ymd_and_hms(2020, 4, day, 17, 30, version)
            .single()
            .expect("instant"),
        recorded_by: "commune-test".into(),
        source: Source::Form,
        reason: (version > 1).then(|| "doublon".to_owned()),
    }
}

fn site() -> std::collections::BTreeMap<String, Vec<u8>> {
    let config = SiteConfig {
        publisher: "Préfecture du Morbihan".into(),
        crisis: "Covid-19".into(),
        scope: Scope::from_communes([
            commune("56260", "Vannes", 53_000),
            commune("56121", "Lorient", 57_000),
        ]),
        settings: Settings::default(),
    };
    let reports = vec![
        report("56260", 1, [2, 1, 0, 0, 0], 1),
        report("56121", 1, [0, 0, 0, 0, 0], 1),
        report("56260", 2, [1, 3, 0, 1, 0], 2),
        report("56260", 3, [0, 0, 1, 0, 1], 1),
    ];
    let today = NaiveDate::from_ymd_opt(2020, 4, 3).expect("today");
    render::render(&reports, &config, today)
        .expect("render")
        .files
}

fn text(files: &std::collections::BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(
        files
            .get(path)
            .unwrap_or_else(|| panic!("no {path}"))
            .clone(),
    )
    .expect("utf-8")
}

#[test]
fn the_pages_the_public_reads() {
    let files = site();
    for path in [
        "index.html",
        "communes/56260.html",
        "communes/56121.html",
        "lieux/ehpad.html",
        "methodologie.html",
    ] {
        insta::assert_snapshot!(path.replace('/', "__"), text(&files, path));
    }
}

#[test]
fn the_open_data() {
    let files = site();
    for path in [
        "donnees/deces.csv",
        "donnees/deces.json",
        "donnees/schema.json",
        "donnees/datapackage.json",
    ] {
        insta::assert_snapshot!(path.replace('/', "__"), text(&files, path));
    }
}

#[test]
fn the_files_of_the_site() {
    let files = site();
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    insta::assert_debug_snapshot!(paths);
}
