//! Days are counted in each département's own time zone (Paris time in
//! mainland France and Corsica); instants are stored in UTC.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Europe::Paris;
pub use chrono_tz::Tz;

/// The calendar day in Paris at the instant `now`.
pub fn paris_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Paris).date_naive()
}

/// The time zone in which a département counts its days: the overseas
/// départements and collectivités are not on Paris time. French Polynesia
/// spans three zones; its days are those of Tahiti, where nearly all of
/// its people live.
pub fn zone(departement: &str) -> Tz {
    use chrono_tz::{America, Indian, Pacific};
    match departement {
        "971" => America::Guadeloupe,
        "972" => America::Martinique,
        "973" => America::Cayenne,
        "974" => Indian::Reunion,
        "975" => America::Miquelon,
        "976" => Indian::Mayotte,
        "977" => America::St_Barthelemy,
        "978" => America::Marigot,
        "984" => Indian::Kerguelen,
        "986" => Pacific::Wallis,
        "987" => Pacific::Tahiti,
        "988" => Pacific::Noumea,
        "989" => Pacific::Pitcairn, // Clipperton: UTC-8 all year, as Pitcairn.
        _ => Paris,
    }
}

/// `01/04/2020 à 14:05` in a département's time zone.
pub fn fr_datetime_in(instant: DateTime<Utc>, departement: &str) -> String {
    instant
        .with_timezone(&zone(departement))
        .format("%d/%m/%Y à %H:%M")
        .to_string()
}

/// How a page says which clock its times are on: `heure de Paris`, or
/// `heure locale` overseas.
pub fn zone_label(departement: &str) -> &'static str {
    if zone(departement) == Paris {
        "heure de Paris"
    } else {
        "heure locale"
    }
}

/// The calendar day in a département at the instant `now`.
pub fn local_today(departement: &str, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&zone(departement)).date_naive()
}

/// An instant as the stores keep it: to the microsecond, so that what an answer
/// says was recorded is exactly what a later read returns.
pub fn to_stored_precision(instant: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    instant.trunc_subsecs(6)
}

/// `01/04/2020`, the way dates are written for French readers.
pub fn fr_date(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

/// `01/04/2020 à 14:05`, Paris time.
pub fn fr_datetime(instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&Paris)
        .format("%d/%m/%Y à %H:%M")
        .to_string()
}

/// `12345` as « 12 345 »: a narrow no-break space between thousands, as
/// French typography wants.
pub fn fr_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// Parses `2020-04-01` (ISO, what `<input type="date">` sends) or `01/04/2020`
/// (what people type where the browser has no date picker).
///
/// Only years of four digits are read: chrono alone would accept a sign and
/// six digits (`-262143-01-01`), a day so far from any other that the first
/// subtraction overflows. Callers still bound the day to the crisis window.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let plain = text.len() <= 10
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '/');
    if !plain {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y"))
        .ok()
        .filter(|date| (1000..=9999).contains(&date.year()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn paris_day_boundary() {
        // 23:30 UTC on 31 March 2020 is already 1 April in Paris (summer time, UTC+2).
        let now = Utc
            .with_ymd_and_hms(2020, 3, 31, 23, 30, 0)
            .single()
            .expect("instant");
        assert_eq!(
            paris_today(now),
            NaiveDate::from_ymd_opt(2020, 4, 1).expect("date")
        );
        assert_eq!(
            parse_date("01/04/2020"),
            NaiveDate::from_ymd_opt(2020, 4, 1)
        );
        assert_eq!(parse_date("2020-02-30"), None);
    }

    #[test]
    fn overseas_days_are_their_own() {
        // 01:00 in Paris on 15 January 2026 (UTC+1): already 04:00 in
        // Réunion, still the evening before in Guadeloupe.
        let now = Utc
            .with_ymd_and_hms(2026, 1, 15, 0, 0, 0)
            .single()
            .expect("instant");
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).expect("date");
        assert_eq!(local_today("56", now), day(15));
        assert_eq!(local_today("974", now), day(15));
        assert_eq!(local_today("971", now), day(14));
        assert_eq!(local_today("988", now), day(15));
        // 02:30 in Réunion on the 15th is still 23:30 on the 14th in Paris.
        let night = Utc
            .with_ymd_and_hms(2026, 1, 14, 22, 30, 0)
            .single()
            .expect("instant");
        assert_eq!(local_today("974", night), day(15));
        assert_eq!(paris_today(night), day(14));
    }

    #[test]
    fn far_away_years_are_not_dates() {
        for text in [
            "-262143-01-01",
            "+262142-12-31",
            "262142-12-31",
            "0999-01-01",
            "01/01/-2020",
            "2020-04-01T00:00",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
        assert_eq!(
            parse_date(" 2020-04-01 "),
            NaiveDate::from_ymd_opt(2020, 4, 1)
        );
    }
}
