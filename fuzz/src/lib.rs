//! What the fuzz targets share: the deployment they validate against
//! (the default one, Morbihan) and the instant they validate at.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use decompte_core::{Rules, Scope};

static WORLD: LazyLock<(Scope, Rules)> = LazyLock::new(|| {
    let options = decompte_config::Options::for_data_dir(std::env::temp_dir());
    (
        options.scope().expect("the default scope"),
        options.rules().expect("the default rules"),
    )
});

/// The default deployment's scope and rules, built once.
pub fn world() -> &'static (Scope, Rules) {
    &WORLD
}

/// A day inside the default crisis window, so that recent days are valid.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 6, 1, 12, 0, 0)
        .single()
        .expect("a valid instant")
}
