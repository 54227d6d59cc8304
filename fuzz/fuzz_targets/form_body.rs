//! The body of `POST /saisie`, decoded as the form extractor decodes it,
//! turned into a draft as the form does and validated as the ledger
//! validates it (a commune of Morbihan).
#![no_main]

use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use decompte_core::{CommuneCode, Rules, Scope};
use libfuzzer_sys::fuzz_target;

static WORLD: LazyLock<(Scope, Rules)> = LazyLock::new(|| {
    let options = decompte_config::Options::for_data_dir(std::env::temp_dir());
    (
        options.scope().expect("the default scope"),
        options.rules().expect("the default rules"),
    )
});

fuzz_target!(|body: &[u8]| {
    let (scope, rules) = &*WORLD;
    let now = Utc
        .with_ymd_and_hms(2020, 6, 1, 12, 0, 0)
        .single()
        .expect("now");
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return;
    };
    let commune = CommuneCode::parse("56260").expect("Vannes");
    let draft = decompte_app::parse::form(&fields, &commune, &rules.settings);
    let _ = rules.validate(&draft, scope, now);
});
