//! The JSON body of `POST /api/v1/reports`, read as the API reads it and,
//! when it reads, validated as the ledger validates it (Morbihan's scope).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (scope, rules) = decompte_fuzz::world();
    let now = decompte_fuzz::now();
    if let Ok(draft) = decompte_app::parse::report_json(bytes) {
        let _ = rules.validate(&draft, scope, now);
    }
});
