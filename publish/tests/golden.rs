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
    let code = CommuneCode::parse(code).expect("code");
    Commune {
        departement: code.departement().to_owned(),
        code,
        name: name.into(),
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
        warnings: Vec::new(),
    }
}

fn site() -> std::collections::BTreeMap<String, Vec<u8>> {
    site_with(None)
}

fn site_with(small_counts: Option<u32>) -> std::collections::BTreeMap<String, Vec<u8>> {
    let config = SiteConfig {
        publisher: "Préfecture du Morbihan".into(),
        crisis: "Covid-19".into(),
        state_brand: true,
        scope: Scope::from_communes([
            commune("56260", "Vannes", 53_000),
            commune("56121", "Lorient", 57_000),
        ]),
        settings: Settings::default(),
        small_counts,
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

/// Three communes in two départements: the site has a level per département.
fn site_of_two_departements() -> std::collections::BTreeMap<String, Vec<u8>> {
    let referential = decompte_core::Referential::parse(
        "code,nom,departement,population\n56260,Vannes,56,53000\n56121,Lorient,56,57000\n\
         29019,Brest,29,140000\n",
        "code,nom\n29,Finistère\n56,Morbihan\n",
    )
    .expect("referential");
    let config = SiteConfig {
        publisher: "Préfecture de la région Bretagne".into(),
        crisis: "Covid-19".into(),
        state_brand: true,
        scope: referential
            .scope(&["29".into(), "56".into()])
            .expect("scope"),
        settings: Settings::default(),
        small_counts: None,
    };
    let reports = vec![
        report("56260", 1, [2, 1, 0, 0, 0], 1),
        report("29019", 1, [4, 0, 0, 1, 0], 1),
        report("56121", 2, [0, 0, 0, 0, 0], 1),
        report("29019", 2, [1, 2, 0, 0, 0], 1),
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

#[test]
fn the_levels_of_a_site_of_several_departements() {
    let files = site_of_two_departements();
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    insta::assert_debug_snapshot!("levels__files", paths);
    for path in [
        "index.html",
        "departements/29.html",
        "communes/29019.html",
        "lieux/hopital.html",
        "donnees/departements/29/deces.csv",
        "donnees/departements/29/deces.json",
        "donnees/datapackage.json",
    ] {
        insta::assert_snapshot!(
            format!("levels__{}", path.replace('/', "__")),
            text(&files, path)
        );
    }
}

/// The whole-scope CSV is the départements' concatenated, and every `.gz`
/// is its CSV: the whole-scope one made of the départements' members.
#[test]
fn the_compressed_files_are_their_csv() {
    use std::io::Read;
    let files = site_of_two_departements();
    let gunzip = |path: &str| {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&files[path][..])
            .read_to_string(&mut text)
            .expect("gzip");
        text
    };
    for csv in [
        "donnees/deces.csv",
        "donnees/departements/29/deces.csv",
        "donnees/departements/56/deces.csv",
    ] {
        assert_eq!(gunzip(&format!("{csv}.gz")), text(&files, csv), "{csv}");
    }
    let whole = text(&files, "donnees/deces.csv");
    let brest = text(&files, "donnees/departements/29/deces.csv");
    let morbihan = text(&files, "donnees/departements/56/deces.csv");
    let header_len = whole.find('\n').expect("header") + 1;
    assert_eq!(whole, format!("{brest}{}", &morbihan[header_len..]));
    // No page of the site above 300 KB (the national figure; a small site is far below).
    assert!(files
        .iter()
        .filter(|(path, _)| path.ends_with(".html"))
        .all(|(_, bytes)| bytes.len() < 300_000));
}

/// Under the rule of small counts: the 2nd and 3rd of April only Vannes
/// declared (withheld), the 1st both communes did.
#[test]
fn the_site_under_the_rule_of_small_counts() {
    let files = site_with(Some(5));
    for path in [
        "index.html",
        "communes/56260.html",
        "donnees/deces.csv",
        "donnees/deces.json",
        "donnees/schema.json",
    ] {
        insta::assert_snapshot!(
            format!("small_counts__{}", path.replace('/', "__")),
            text(&files, path)
        );
    }
}
