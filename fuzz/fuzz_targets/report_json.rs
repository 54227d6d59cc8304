//! The JSON body of `POST /api/v1/reports`, read as the API reads it and,
//! when it reads, validated as the ledger validates it (Morbihan's scope).
#![no_main]

use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use decompte_core::{Rules, Scope};
use libfuzzer_sys::fuzz_target;

static WORLD: LazyLock<(Scope, Rules)> = LazyLock::new(|| {
    let options = decompte_config::Options::for_data_dir(std::env::temp_dir());
    (
        options.scope().expect("the default scope"),
        options.rules().expect("the default rules"),
    )
});

fuzz_target!(|bytes: &[u8]| {
    let (scope, rules) = &*WORLD;
    let now = Utc
        .with_ymd_and_hms(2020, 6, 1, 12, 0, 0)
        .single()
        .expect("now");
    if let Ok(draft) = decompte_app::parse::report_json(bytes) {
        let _ = rules.validate(&draft, scope, now);
    }
});
