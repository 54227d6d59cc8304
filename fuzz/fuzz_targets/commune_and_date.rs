//! A commune code and a day as they come in a query string, a form or a
//! CSV cell: parsed, the département read, the day bounded; a commune code
//! that parses prints back as itself.
#![no_main]

use decompte_core::time::parse_date;
use decompte_core::CommuneCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(code) = CommuneCode::parse(text) {
        let _ = code.departement();
        assert_eq!(
            CommuneCode::parse(code.as_str()).expect("parses again"),
            code
        );
    }
    if let Some(date) = parse_date(text) {
        // What every caller does next: distances to other days.
        let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("a day");
        let _ = (date - start).num_days();
        let _ = date.succ_opt();
    }
});
