//! An access code as typed at the login or sent as a bearer token: parsed,
//! hashed, its commune read; a code that parses prints back as one that
//! parses to the same code.
#![no_main]

use decompte_core::AccessCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|typed: &str| {
    if let Some(code) = AccessCode::parse(typed) {
        let _ = code.hash();
        let _ = code.commune();
        let again = AccessCode::parse(&code.display_grouped()).expect("a parsed code parses again");
        assert_eq!(again.hash(), code.hash());
    }
});
