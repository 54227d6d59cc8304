//! A file given to `decompte import`, checked as the import's first pass
//! checks it (Morbihan's scope): any bytes, any header, any rows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (scope, rules) = decompte_fuzz::world();
    let now = decompte_fuzz::now();
    let _ = decompte::transfer::check(bytes, scope, rules, now);
});
