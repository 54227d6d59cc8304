//! The body of `POST /saisie`, decoded as the form extractor decodes it,
//! turned into a draft as the form does and validated as the ledger
//! validates it (a commune of Morbihan).
#![no_main]

use decompte_core::CommuneCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let (scope, rules) = decompte_fuzz::world();
    let now = decompte_fuzz::now();
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return;
    };
    let commune = CommuneCode::parse("56260").expect("Vannes");
    let draft = decompte_app::parse::form(&fields, &commune, &rules.settings);
    let _ = rules.validate(&draft, scope, now);
});
