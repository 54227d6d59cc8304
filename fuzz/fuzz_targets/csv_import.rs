//! A file given to `decompte import`, checked as the import's first pass
//! checks it (Morbihan's scope): any bytes, any header, any rows.
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
    let _ = decompte::transfer::check(bytes, scope, rules, now);
});
