//! Text cells of the CSV files decompte writes, made safe for spreadsheets.
//!
//! Excel and LibreOffice run a cell that begins with `=`, `+`, `-` or `@` as a
//! formula (and some versions after a tab or a carriage return), so a reason
//! typed by a commune such as `=HYPERLINK("https://…"&A2,"Détails")` would run
//! on the crisis cell's computer. Every text cell that begins with one of those
//! characters is written with a leading apostrophe, which spreadsheets show as
//! text and never evaluate (the OWASP recommendation). [`read_cell`] undoes it,
//! so `decompte import` reads back exactly what `decompte export` wrote.

use std::borrow::Cow;

/// The characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell as it is written to CSV: with a leading `'` if it could be read
/// as a formula. Numbers and dates are not text cells and never pass here.
pub fn write_cell(text: &str) -> Cow<'_, str> {
    if armed(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A text cell as it was typed, from its CSV form: the leading `'` that
/// [`write_cell`] adds is removed, and only that one. (A text that itself
/// begins with apostrophes before a formula character got one more.)
pub fn read_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if armed(cell) => rest,
        _ => cell,
    }
}

/// Whether a cell would be a formula once its leading apostrophes are gone:
/// such a cell gets one more apostrophe, so that reading removes exactly one.
fn armed(text: &str) -> bool {
    text.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_are_written_as_text() {
        assert_eq!(
            write_cell("=HYPERLINK(\"https://example.org/\"&A2,\"Détails\")"),
            "'=HYPERLINK(\"https://example.org/\"&A2,\"Détails\")"
        );
        for dangerous in ["+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(write_cell(dangerous).starts_with('\''), "{dangerous:?}");
        }
        assert_eq!(write_cell("Doublon avec le 02/04"), "Doublon avec le 02/04");
        assert_eq!(write_cell(""), "");
        // An apostrophe the user typed at the start stays theirs.
        assert_eq!(write_cell("'entre guillemets'"), "'entre guillemets'");
        assert_eq!(read_cell("'entre guillemets'"), "'entre guillemets'");
        assert_eq!(write_cell("'=1"), "''=1");
        assert_eq!(read_cell("''=1"), "'=1");
    }

    proptest! {
        #[test]
        fn cells_round_trip(text in "[=+@'\\-\\t\\r a-zA-Zé0-9]{0,12}") {
            let written = write_cell(&text);
            prop_assert!(!written.starts_with(FORMULA_STARTS));
            prop_assert_eq!(written.as_ref() == text.as_str(), !armed(&text));
            prop_assert_eq!(read_cell(&written), text.as_str());
        }
    }
}
