//! A file a prefecture uploads on `/prefecture/contacts` (Morbihan's
//! communes, the directory's contacts): any bytes. Whatever it holds, the
//! upload either names only communes of the département, each with a
//! parsed number and address, or says what is wrong in a bounded list.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static COMMUNES: LazyLock<(
    Vec<decompte_core::Commune>,
    std::collections::BTreeMap<String, decompte_config::MairieContact>,
)> = LazyLock::new(|| {
    let (scope, _) = decompte_fuzz::world();
    let communes: Vec<decompte_core::Commune> = scope.communes().cloned().collect();
    let directory =
        decompte_config::mairie_contacts(&communes.iter().map(|c| c.code.as_str()).collect());
    (communes, directory)
});

fuzz_target!(|bytes: &[u8]| {
    let (communes, directory) = &*COMMUNES;
    let text = String::from_utf8_lossy(bytes);
    match decompte_app::contact::read_upload(&text, communes, directory) {
        Ok(changed) => {
            for (code, (telephone, email)) in &changed {
                assert!(communes.iter().any(|c| c.code.as_str() == code), "{code}");
                assert!(telephone.is_empty() || decompte_app::contact::dial(telephone).is_some());
                assert!(email.is_empty() || decompte_app::contact::mailbox(email).is_some());
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            assert!(problems.len() <= decompte_app::contact::SHOWN_PROBLEMS + 1);
        }
    }
});
