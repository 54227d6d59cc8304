//! For any set of reports, the published CSV and the overview agree with the store.

use chrono::{Duration, NaiveDate, Utc};
use decompte_core::{CommuneCode, Report, Source};
use decompte_publish::render;
use decompte_store::prelude::*;
use decompte_store::{ReportQuery, SqliteStore};
use proptest::prelude::*;

fn reports() -> impl Strategy<Value = Vec<(usize, i64, [u32; 5])>> {
    proptest::collection::vec(
        (0usize..249, 0i64..60, proptest::array::uniform5(0u32..20)),
        0..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn published_totals_equal_store_totals(drawn in reports()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let settings = decompte::Options::for_data_dir(std::env::temp_dir());
            let config = decompte_publish::SiteConfig::from_options(&settings).expect("config");
            let communes: Vec<CommuneCode> = config.scope.communes()
                .map(|c| c.code.clone())
                .collect();
            let store = SqliteStore::in_memory().expect("store");
            let start = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
            for (commune, day, counts) in drawn {
                let commune = communes[commune].clone();
                let date = start + Duration::days(day);
                let current = store.current_report(&commune, date).await.expect("read");
                let report = Report {
                    commune,
                    date,
                    counts: [
                        "hopital",
                        "ehpad",
                        "esms",
                        "domicile",
                        "autre",
                    ].iter().zip(counts).map(|(k, n)| ((*k).to_owned(), n)).collect(),
                    version: current.map_or(1, |c| c.version + 1),
                    recorded_at: Utc::now(),
                    recorded_by: "prop".into(),
                    source: Source::Api,
                    reason: Some("prop".into()),
                    warnings: Vec::new(),
                };
                store.write_report(decompte_store::Ledgered::for_fixtures(), &report, None).await.expect("write");
            }
            let stored = store.current_reports(&ReportQuery::default()).await.expect("read");
            let store_total: u64 = stored.iter().map(Report::total).sum();
            let site = render::render(
                &stored,
                &config,
                start + Duration::days(90),
            ).expect("render");

            let csv = String::from_utf8(site.files["donnees/deces.csv"].clone()).expect("utf-8");
            let mut lines = csv.lines();
            assert_eq!(
                lines.next(),
                Some("date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total")
            );
            let rows: Vec<&str> = lines.collect();
            assert_eq!(rows.len(), stored.len());
            let csv_total: u64 = rows.iter()
                .map(|l| l.rsplit(',').next().and_then(|n| n.parse::<u64>().ok()).expect("count"))
                .sum();
            assert_eq!(csv_total, store_total);

            let json: serde_json::Value =
                serde_json::from_slice(&site.files["donnees/deces.json"]).expect("json");
            assert_eq!(json["lignes"].as_u64(), Some(stored.len() as u64));
            let json_total: u64 = json["donnees"]["total"].as_array()
                .into_iter()
                .flatten()
                .map(|n| n.as_u64().unwrap_or(0))
                .sum();
            assert_eq!(json_total, store_total);

            let index = String::from_utf8(site.files["index.html"].clone()).expect("utf-8");
            let shown = format!(
                "<span class=\"n\">{}</span> décès au total",
                decompte_core::time::fr_int(store_total),
            );
            assert!(index.contains(&shown), "overview does not show {store_total}");
        });
    }
}
