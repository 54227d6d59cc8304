//! The rule of small counts (`--small-counts k`): no published figure lets
//! a reader know, or deduce, the count of one commune, one setting and one
//! day between 1 and k − 1.
//!
//! Two proofs, each of which fails if a commune's count reaches what the
//! renderer reads or a day gives one away:
//! - for random data, each protected cell has a twin dataset where that
//!   cell differs and **every published file is the same byte for byte**
//!   (so no sum, difference or running total of them can tell the two
//!   apart);
//! - for every dataset of a small shape, the view the renderer reads is
//!   grouped with all the others that give the same view, and no
//!   protected cell has one value across its group (this tries every
//!   deduction, not only subtractions).

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeZone, Utc};
use decompte_core::{CommuneCode, Referential, Report, Settings, Source};
use decompte_publish::model::DepartementReports;
use decompte_publish::{render, SiteConfig};
use proptest::prelude::*;

const KEYS: [&str; 5] = ["hopital", "ehpad", "esms", "domicile", "autre"];

/// Three communes in Morbihan, one in Finistère (a département of one
/// commune: its figures are always that commune's).
fn config(k: u32) -> SiteConfig {
    let referential = Referential::parse(
        "code,nom,departement,population\n56001,Allaire,56,3900\n56002,Arradon,56,5400\n\
         56003,Arzal,56,1700\n29001,Argol,29,800\n",
        "code,nom\n29,Finistère\n56,Morbihan\n",
    )
    .expect("referential");
    SiteConfig {
        publisher: "Préfecture".into(),
        crisis: "Covid-19".into(),
        state_brand: true,
        scope: referential
            .scope(&["29".into(), "56".into()])
            .expect("scope"),
        settings: Settings::default(),
        small_counts: Some(k),
    }
}

const COMMUNES: [&str; 4] = ["56001", "56002", "56003", "29001"];

/// A dataset: for each commune and day, its counts if it declared.
type Data = BTreeMap<(usize, u32), [u32; 5]>;

fn reports(data: &Data) -> Vec<Report> {
    data.iter()
        .map(|((commune, day), counts)| Report {
            commune: CommuneCode::parse(COMMUNES[*commune]).expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, *day).expect("date"),
            counts: KEYS
                .iter()
                .zip(counts)
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect(),
            version: 1,
            // The same instant for every report: when a mairie declares is
            // published, and is no count.
            recorded_at: Utc
                .with_ymd_and_hms(2020, 4, 10, 17, 30, 0)
                .single()
                .expect("instant"),
            recorded_by: "commune-test".into(),
            source: Source::Form,
            reason: None,
            warnings: Vec::new(),
        })
        .collect()
}

fn site(data: &Data, k: u32) -> BTreeMap<String, Vec<u8>> {
    let today = NaiveDate::from_ymd_opt(2020, 4, 10).expect("today");
    render::render(&reports(data), &config(k), today)
        .expect("render")
        .files
}

/// The twin of `data` in which the cell (commune, day, setting) differs
/// and nothing published should: one death moved to another commune of
/// the département that declared the day, or, if none did (the day is
/// withheld), one death more or less while the day still has one.
fn twin(data: &Data, commune: usize, day: u32, setting: usize) -> Data {
    let mut twin = data.clone();
    let departement = &COMMUNES[commune][..2];
    let other = data
        .keys()
        .find(|(c, d)| *d == day && *c != commune && COMMUNES[*c].starts_with(departement))
        .map(|(c, _)| *c);
    match other {
        Some(other) => {
            if let Some(counts) = twin.get_mut(&(commune, day)) {
                counts[setting] -= 1;
            }
            if let Some(counts) = twin.get_mut(&(other, day)) {
                counts[setting] += 1;
            }
        }
        None => {
            if let Some(counts) = twin.get_mut(&(commune, day)) {
                let total: u32 = counts.iter().sum();
                if total > 1 {
                    counts[setting] -= 1;
                } else {
                    counts[setting] += 1;
                }
            }
        }
    }
    twin
}

fn dataset() -> impl Strategy<Value = Data> {
    // Each commune and day of five: not declared, or declared with small counts.
    proptest::collection::vec(
        proptest::option::weighted(0.7, proptest::array::uniform5(0u32..4)),
        COMMUNES.len() * 5,
    )
    .prop_map(|cells| {
        cells
            .into_iter()
            .enumerate()
            .filter_map(|(i, counts)| counts.map(|c| ((i / 5, 1 + (i % 5) as u32), c)))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_protected_cell_has_a_twin_the_site_cannot_tell_apart(data in dataset(), k in 2u32..6) {
        let published = site(&data, k);
        let mut protected = 0;
        for ((commune, day), counts) in &data {
            for (setting, count) in counts.iter().enumerate() {
                if !(1..k).contains(count) {
                    continue;
                }
                protected += 1;
                let twin = twin(&data, *commune, *day, setting);
                prop_assert_ne!(twin[&(*commune, *day)][setting], *count);
                let other = site(&twin, k);
                for (path, bytes) in &published {
                    prop_assert!(
                        other.get(path) == Some(bytes),
                        "{path} tells commune {} day {day} setting {setting} apart",
                        COMMUNES[*commune]
                    );
                }
                prop_assert_eq!(other.len(), published.len());
            }
        }
        // Not a vacuous run: most datasets have protected cells.
        prop_assume!(protected > 0);
    }
}

/// Without the rule, the same twins are told apart: the test above can fail.
#[test]
fn without_the_rule_the_twins_differ() {
    let data: Data = [((0, 1), [1, 0, 0, 0, 0]), ((1, 1), [0, 0, 0, 0, 0])]
        .into_iter()
        .collect();
    let today = NaiveDate::from_ymd_opt(2020, 4, 10).expect("today");
    let plain = SiteConfig {
        small_counts: None,
        ..config(5)
    };
    let a = render::render(&reports(&data), &plain, today).expect("render");
    let b = render::render(&reports(&twin(&data, 0, 1, 0)), &plain, today).expect("render");
    assert_ne!(a.files, b.files);
    assert_eq!(site(&data, 5), site(&twin(&data, 0, 1, 0), 5));
}

/// What the renderer reads of a dataset under the rule: the masked reports
/// and summary of each département, as text.
fn view(data: &Data, config: &SiteConfig) -> String {
    let reports = reports(data);
    DepartementReports::all(&config.scope, &config.settings, &reports)
        .iter()
        .map(|departement| {
            let view = config.publishable(departement);
            assert!(view.is_masked(), "masked under the rule");
            let summary = view.summary();
            let communes: Vec<_> = view
                .reports()
                .communes
                .iter()
                .map(|(c, days)| (c.code.to_string(), days))
                .collect();
            format!("{communes:?}{summary:?}")
        })
        .collect()
}

/// Every dataset of two communes of a département over two days (and its
/// one-commune neighbour over one) and two settings, each declaring a day or not,
/// counts 0 to 2: grouped by the view they give at k = 2, no cell of 1
/// (the protected value) is the same in every dataset of its group.
/// Datasets with a 2 are there as the others' twins (a death moved onto a 1).
#[test]
fn no_view_of_a_small_shape_pins_a_protected_cell() {
    let config = config(2);
    // Cells: (commune, day, setting) for communes 0, 1 (Morbihan) and 3 (Finistère).
    let slots: Vec<(usize, u32)> = vec![(0, 1), (0, 2), (1, 1), (1, 2), (3, 1)];
    let mut groups: HashMap<String, Vec<Data>> = HashMap::new();
    let mut datasets = 0usize;
    // Each slot: not declared (None) or two counts in 0..=2.
    let choices: Vec<Option<[u32; 2]>> = std::iter::once(None)
        .chain((0..9).map(|i| Some([i / 3, i % 3])))
        .collect();
    let mut index = vec![0usize; slots.len()];
    loop {
        let data: Data = slots
            .iter()
            .zip(&index)
            .filter_map(|(slot, i)| choices[*i].map(|[a, b]| (*slot, [a, b, 0, 0, 0])))
            .collect();
        groups.entry(view(&data, &config)).or_default().push(data);
        datasets += 1;
        // The next combination.
        let mut at = 0;
        loop {
            if at == index.len() {
                break;
            }
            index[at] += 1;
            if index[at] < choices.len() {
                break;
            }
            index[at] = 0;
            at += 1;
        }
        if at == index.len() {
            break;
        }
    }
    assert_eq!(datasets, 10usize.pow(5));
    let mut checked = 0usize;
    for group in groups.values() {
        for data in group
            .iter()
            .filter(|d| d.values().flatten().all(|n| *n <= 1))
        {
            for ((commune, day), counts) in data {
                for (setting, count) in counts.iter().enumerate().take(2) {
                    if *count != 1 {
                        continue;
                    }
                    checked += 1;
                    let values: std::collections::BTreeSet<u32> = group
                        .iter()
                        .map(|d| d.get(&(*commune, *day)).map_or(0, |c| c[setting]))
                        .collect();
                    assert!(
                        values.len() > 1,
                        "commune {} day {day} setting {setting} is 1 in every dataset \
                         giving its view: {data:?}",
                        COMMUNES[*commune]
                    );
                }
            }
        }
    }
    assert!(checked > 1_000, "only {checked} protected cells checked");
}

// Sequences: what a reader sees by comparing publications.

/// One declaration or correction: a commune's counts for a day.
type Event = (usize, u32, [u32; 5]);

/// The instant of the `index`-th write of publication `step`: within the
/// hour before it (the publisher releases once an hour under the rule).
fn write_instant(step: usize, index: usize) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 4, 10, 6, 0, 0)
        .single()
        .expect("instant")
        + chrono::Duration::hours(step as i64)
        + chrono::Duration::seconds(index as i64 * 7)
}

/// Writes `steps` (each the events of one hour, in order) and publishes
/// after each, as the timer does: the public files of every publication.
fn publications(steps: &[Vec<Event>], k: u32) -> Vec<BTreeMap<String, Vec<u8>>> {
    block_on(async {
        let folder = tempfile::tempdir().expect("folder");
        let (store, publisher) = publisher(folder.path(), k);
        let mut sites = Vec::new();
        for (step, events) in steps.iter().enumerate() {
            for (index, (commune, day, counts)) in events.iter().enumerate() {
                let code = CommuneCode::parse(COMMUNES[*commune]).expect("code");
                let date = NaiveDate::from_ymd_opt(2020, 4, *day).expect("date");
                let current = store.current_report(&code, date).await.expect("read");
                let report = Report {
                    commune: code,
                    date,
                    counts: KEYS
                        .iter()
                        .zip(counts)
                        .map(|(k, n)| ((*k).to_owned(), *n))
                        .collect(),
                    version: current.map_or(1, |r| r.version + 1),
                    recorded_at: write_instant(step, index),
                    recorded_by: format!("commune-{}", COMMUNES[*commune]),
                    source: Source::Form,
                    reason: None,
                    warnings: Vec::new(),
                };
                store
                    .write_report(decompte_store::Ledgered::for_fixtures(), &report, None)
                    .await
                    .expect("write");
            }
            let now = write_instant(step, 0) + chrono::Duration::minutes(59);
            publisher.publish_if_changed(now).await.expect("publish");
            sites.push(walk(&folder.path().join("site")));
        }
        sites
    })
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// A store in memory and a publisher to a site in `folder`.
fn publisher(
    folder: &std::path::Path,
    k: u32,
) -> (
    std::sync::Arc<dyn decompte_store::Store>,
    decompte_publish::Publisher,
) {
    let store: std::sync::Arc<dyn decompte_store::Store> =
        std::sync::Arc::new(decompte_store::SqliteStore::in_memory().expect("store"));
    let sink = std::sync::Arc::new(decompte_publish::FolderSink::new(
        folder.join("site"),
        folder.join("private"),
    ));
    let publisher = decompte_publish::Publisher::new(store.clone(), sink, config(k));
    (store, publisher)
}

/// Every file under `root`, by path.
fn walk(root: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                let bytes = std::fs::read(&path).expect("file");
                files.insert(relative.to_string_lossy().into_owned(), bytes);
            }
        }
    }
    files
}

/// Each commune's counts by day after each step.
fn snapshots(steps: &[Vec<Event>]) -> Vec<Data> {
    let mut data = Data::new();
    steps
        .iter()
        .map(|events| {
            for (commune, day, counts) in events {
                data.insert((*commune, *day), *counts);
            }
            data.clone()
        })
        .collect()
}

/// The twin of a sequence in which the cell (commune, day, setting) differs
/// at publication `step` only, and nothing published should: the static
/// twin of that publication's data, reached by corrections written after
/// the step's own declarations and undone before the next step's. A reader
/// sees neither who corrected nor when.
fn sequence_twin(
    steps: &[Vec<Event>],
    step: usize,
    commune: usize,
    day: u32,
    setting: usize,
) -> Vec<Vec<Event>> {
    let at_step = &snapshots(steps)[step];
    let twin = twin(at_step, commune, day, setting);
    let mut twin_steps = steps.to_vec();
    let changed: Vec<(usize, u32)> = twin
        .iter()
        .filter(|(key, counts)| at_step.get(key) != Some(counts))
        .map(|(key, _)| *key)
        .collect();
    for (c, d) in &changed {
        twin_steps[step].push((*c, *d, twin[&(*c, *d)]));
        if let Some(next) = twin_steps.get_mut(step + 1) {
            next.insert(0, (*c, *d, at_step[&(*c, *d)]));
        }
    }
    twin_steps
}

fn sequence() -> impl Strategy<Value = Vec<Vec<Event>>> {
    // Three publications, each after up to four declarations or
    // corrections over three days.
    let event = (
        0..COMMUNES.len(),
        1u32..4,
        proptest::array::uniform5(0u32..4),
    );
    proptest::collection::vec(proptest::collection::vec(event, 0..5), 3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// A publication follows another: their difference must not be one
    /// commune's count. For a protected cell of any publication, a twin
    /// sequence of declarations where it differs (corrections the site
    /// does not show) gives the same sequence of published files, byte for
    /// byte, manifest included.
    #[test]
    fn every_protected_cell_of_a_sequence_has_a_twin_the_site_cannot_tell_apart(
        steps in sequence(),
        k in 2u32..5,
        pick in any::<prop::sample::Index>(),
    ) {
        let published = publications(&steps, k);
        let mut protected = Vec::new();
        for (step, data) in snapshots(&steps).iter().enumerate() {
            for ((commune, day), counts) in data {
                for (setting, count) in counts.iter().enumerate() {
                    if (1..k).contains(count) {
                        protected.push((step, *commune, *day, setting));
                    }
                }
            }
        }
        prop_assume!(!protected.is_empty());
        // Three cells per sequence (each twin is a run of the publisher).
        for offset in 0..3 {
            let (step, commune, day, setting) =
                protected[(pick.index(protected.len()) + offset * 7) % protected.len()];
            let twin = sequence_twin(&steps, step, commune, day, setting);
            prop_assert_ne!(
                snapshots(&twin)[step][&(commune, day)][setting],
                snapshots(&steps)[step][&(commune, day)][setting]
            );
            let other = publications(&twin, k);
            for (index, (a, b)) in published.iter().zip(&other).enumerate() {
                for (path, bytes) in a {
                    prop_assert!(
                        b.get(path) == Some(bytes),
                        "publication {index}: {path} tells commune {} day {day} setting \
                         {setting} at publication {step} apart",
                        COMMUNES[commune]
                    );
                }
                prop_assert_eq!(a.len(), b.len());
            }
        }
    }
}

/// Under the rule, the timer publishes once an hour: a declaration made
/// after this hour's publication waits for the next hour's.
#[test]
fn under_the_rule_the_timer_releases_once_an_hour() {
    block_on(async {
        let folder = tempfile::tempdir().expect("folder");
        let (store, publisher) = publisher(folder.path(), 3);
        let data: Data = [((0, 1), [1, 0, 0, 0, 0]), ((1, 1), [0, 2, 0, 0, 0])]
            .into_iter()
            .collect();
        let mut reports = reports(&data);
        reports[0].recorded_at = write_instant(0, 0);
        store
            .write_report(decompte_store::Ledgered::for_fixtures(), &reports[0], None)
            .await
            .expect("write");
        let first = publisher
            .publish_if_changed(write_instant(0, 0) + chrono::Duration::minutes(5))
            .await
            .expect("publish");
        assert!(first.is_some(), "the first publication of the hour runs");
        reports[1].recorded_at = write_instant(0, 0) + chrono::Duration::minutes(10);
        store
            .write_report(decompte_store::Ledgered::for_fixtures(), &reports[1], None)
            .await
            .expect("write");
        let same_hour = publisher
            .publish_if_changed(write_instant(0, 0) + chrono::Duration::minutes(20))
            .await
            .expect("publish");
        assert!(same_hour.is_none(), "nothing more is released this hour");
        let next_hour = publisher
            .publish_if_changed(write_instant(1, 0))
            .await
            .expect("publish")
            .expect("the next hour's publication");
        assert!(next_hour.written.iter().any(|p| p == "communes/56002.html"));
    });
}
