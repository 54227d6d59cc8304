//! The rows both SQL backends store, and their conversion to the model:
//! instants as fixed-width RFC 3339 text (text order is time order, and
//! both stores compare and copy them alike), counts as a JSON object, lists
//! as comma-separated text.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use decompte_core::{CommuneCode, Counts, Report, Role};

use crate::model::{
    ContactOverrides, Credential, Publication, PublicationStatus, ReferenceSeries, ReportQuery,
    SecondFactor,
};
use crate::{Result, StoreError};

/// Instants are stored as fixed-width RFC 3339 text so that text order is time order.
pub(crate) fn ts(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    if let Some(instant) = parse_stored_ts(text) {
        return Ok(instant);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("instant `{text}`: {e}")))
}

/// An instant as [`ts`] writes it (`2020-04-02T18:00:00.000000Z`), read
/// without chrono's parser: a publication reads one per report. Any other
/// form is left to chrono.
fn parse_stored_ts(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() != 27 || bytes[10] != b'T' || bytes[19] != b'.' || bytes[26] != b'Z' {
        return None;
    }
    let day = parse_day(text.get(..10)?)?;
    let number = |range: std::ops::Range<usize>| digits(&bytes[range]);
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let time = chrono::NaiveTime::from_hms_micro_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..26)?,
    )?;
    Some(day.and_time(time).and_utc())
}

/// The number `bytes` writes in ASCII digits, none but digits; the caller
/// bounds their count (nine at most fit a u32).
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// A stored day, `YYYY-MM-DD`, read without chrono's format parser: a
/// publication reads one per report (12.8 million for a national year).
pub(crate) fn parse_day(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits(&bytes[range]);
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

pub(crate) fn parse_opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

/// The span of many keys (an import's batch), as text: the first
/// (commune, day) and the last. A SQL store's `current_of` looks for that
/// range first, with one descent of its primary key, and probes no key when
/// it holds none. `None` under 32 keys, where probing them is cheap.
pub(crate) fn key_span(keys: &[(CommuneCode, NaiveDate)]) -> Option<[String; 4]> {
    if keys.len() < 32 {
        return None;
    }
    let (low, high) = (keys.iter().min()?, keys.iter().max()?);
    Some([
        low.0.to_string(),
        low.1.to_string(),
        high.0.to_string(),
        high.1.to_string(),
    ])
}

pub(crate) const REPORT_COLUMNS: &str =
    "v.commune, v.date, v.version, v.counts, v.recorded_at, v.recorded_by, v.source, v.reason, \
    v.warnings";

/// Raw columns of a report row, converted outside rusqlite's closure so that
/// corrupt data becomes a [`StoreError::Corrupt`].
pub(crate) type RawReport = (
    String,
    String,
    u32,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
);

pub(crate) fn to_report(raw: RawReport) -> Result<Report> {
    let (commune, date, version, counts, recorded_at, recorded_by, source, reason, warnings) = raw;
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    Ok(Report {
        commune: CommuneCode::parse(&commune).map_err(|e| corrupt("commune", &e))?,
        date: parse_day(&date).ok_or_else(|| StoreError::Corrupt(format!("date `{date}`")))?,
        counts: serde_json::from_str::<Counts>(&counts).map_err(|e| corrupt("counts", &e))?,
        version,
        recorded_at: parse_ts(&recorded_at)?,
        recorded_by,
        source: source
            .parse()
            .map_err(|e: decompte_core::report::UnknownSource| corrupt("source", &e))?,
        reason,
        warnings: warnings
            .split(',')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A credential's row as SQLite gives it, before its text is checked.
pub(crate) struct RawCredential {
    pub(crate) id: String,
    pub(crate) role: String,
    pub(crate) commune: Option<String>,
    pub(crate) departements: String,
    pub(crate) label: String,
    pub(crate) code_hash: String,
    pub(crate) created_at: String,
    pub(crate) last_used_at: Option<String>,
    pub(crate) revoked_at: Option<String>,
    pub(crate) issued_by: Option<String>,
    pub(crate) expires_at: Option<String>,
    pub(crate) totp_secret: Option<String>,
    pub(crate) totp_confirmed_at: Option<String>,
    pub(crate) totp_last_step: i64,
    pub(crate) recovery_hashes: String,
}

pub(crate) const CREDENTIAL_COLUMNS: &str =
    "id, role, commune, departements, label, code_hash, created_at, \
    last_used_at, revoked_at, issued_by, expires_at, totp_secret, totp_confirmed_at, \
    totp_last_step, recovery_hashes";

pub(crate) fn to_credential(raw: RawCredential) -> Result<Credential> {
    let second_factor = match raw.totp_secret {
        Some(secret) => Some(SecondFactor {
            secret,
            confirmed_at: parse_opt_ts(raw.totp_confirmed_at)?,
            last_step: u64::try_from(raw.totp_last_step)
                .map_err(|e| StoreError::Corrupt(format!("totp_last_step: {e}")))?,
            recovery_hashes: raw
                .recovery_hashes
                .split(',')
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
        }),
        None => None,
    };
    Ok(Credential {
        id: raw.id,
        role: raw
            .role
            .parse::<Role>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        commune: raw
            .commune
            .map(|c| CommuneCode::parse(&c))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        departements: Credential::parse_departements(&raw.departements),
        label: raw.label,
        code_hash: raw.code_hash,
        created_at: parse_ts(&raw.created_at)?,
        last_used_at: parse_opt_ts(raw.last_used_at)?,
        revoked_at: parse_opt_ts(raw.revoked_at)?,
        issued_by: raw.issued_by,
        expires_at: parse_opt_ts(raw.expires_at)?,
        second_factor,
    })
}

pub(crate) type RawPublication = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<String>,
);

pub(crate) const PUBLICATION_COLUMNS: &str =
    "id, status, requested_by, reason, requested_at, started_at, finished_at, files_changed, error";

pub(crate) fn to_publication(raw: RawPublication) -> Result<Publication> {
    let (
        id,
        status,
        requested_by,
        reason,
        requested_at,
        started_at,
        finished_at,
        files_changed,
        error,
    ) = raw;
    Ok(Publication {
        id,
        status: PublicationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("publication status `{status}`")))?,
        requested_by,
        reason,
        requested_at: parse_ts(&requested_at)?,
        started_at: parse_opt_ts(started_at)?,
        finished_at: parse_opt_ts(finished_at)?,
        files_changed,
        error,
    })
}

/// The counts of `keys`, in order, from the stored JSON object (`{"autre":0,
/// "ehpad":2,…}`), without building a map: a key the object lacks counts 0.
/// Anything but an object of non-negative integers is refused.
pub(crate) fn counts_in_order(json: &str, keys: &[String]) -> Option<Vec<u32>> {
    let mut counts = vec![0u32; keys.len()];
    let body = json.trim().strip_prefix('{')?.strip_suffix('}')?;
    if body.trim().is_empty() {
        return Some(counts);
    }
    for pair in body.split(',') {
        let (key, value) = pair.split_once(':')?;
        let key = key.trim().strip_prefix('"')?.strip_suffix('"')?;
        if key.contains('\\') {
            // An escaped key: let serde read the whole object.
            let map: std::collections::BTreeMap<String, u32> = serde_json::from_str(json).ok()?;
            return Some(
                keys.iter()
                    .map(|k| map.get(k).copied().unwrap_or(0))
                    .collect(),
            );
        }
        let value: u32 = value.trim().parse().ok()?;
        if let Some(index) = keys.iter().position(|k| k == key) {
            counts[index] = value;
        }
    }
    Some(counts)
}

/// Reads stored counts objects in the order of `keys`, as
/// [`counts_in_order`] does, a publication's worth of them (one per
/// report): an object written compactly (`{"autre":0,"ehpad":2}`) is read
/// byte by byte, each key first compared with the one found at its place
/// in the last object, since a store writes them all alike. Anything else
/// goes to [`counts_in_order`].
pub(crate) struct CountsReader<'k> {
    keys: &'k [String],
    /// For each place in the last object, the index of its key in `keys`.
    places: Vec<Option<usize>>,
}

impl<'k> CountsReader<'k> {
    pub(crate) fn new(keys: &'k [String]) -> Self {
        Self {
            keys,
            places: Vec::new(),
        }
    }

    pub(crate) fn read(&mut self, json: &str) -> Option<Vec<u32>> {
        self.compact(json)
            .or_else(|| counts_in_order(json, self.keys))
    }

    fn compact(&mut self, json: &str) -> Option<Vec<u32>> {
        let body = json.as_bytes().strip_prefix(b"{")?.strip_suffix(b"}")?;
        let mut counts = vec![0u32; self.keys.len()];
        if body.is_empty() {
            return Some(counts);
        }
        for (place, pair) in body.split(|b| *b == b',').enumerate() {
            let pair = pair.strip_prefix(b"\"")?;
            let colon = pair.iter().position(|b| *b == b':')?;
            let key = pair[..colon].strip_suffix(b"\"")?;
            let text = &pair[colon + 1..];
            // Nine digits at most: never more than a u32 holds.
            if key.contains(&b'\\') || text.is_empty() || text.len() > 9 {
                return None;
            }
            let value = digits(text)?;
            let known = self.places.get(place).copied().flatten();
            let index = match known {
                Some(i) if self.keys[i].as_bytes() == key => Some(i),
                _ => {
                    let found = self.keys.iter().position(|k| k.as_bytes() == key);
                    if self.places.len() <= place {
                        self.places.resize(place + 1, None);
                    }
                    self.places[place] = found;
                    found
                }
            };
            if let Some(i) = index {
                counts[i] = value;
            }
        }
        Some(counts)
    }
}

/// A prefecture's import as stored: its département, its JSON, when and by whom.
pub(crate) type RawImport = (String, String, String, String);

fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn to_reference(raw: RawImport) -> Result<ReferenceSeries> {
    let (departement, days, imported_at, imported_by) = raw;
    Ok(ReferenceSeries {
        departement,
        days: from_json(&days)?,
        imported_at: parse_ts(&imported_at)?,
        imported_by,
    })
}

pub(crate) fn to_contacts(raw: RawImport) -> Result<ContactOverrides> {
    let (departement, contacts, imported_at, imported_by) = raw;
    Ok(ContactOverrides {
        departement,
        contacts: from_json(&contacts)?,
        imported_at: parse_ts(&imported_at)?,
        imported_by,
    })
}

/// The `WHERE` clause (empty if none) and its values that select the rows of
/// `table` a [`ReportQuery`] asks for in one `departement` (all if `None`):
/// a range of the primary key (a commune, or a département, whose communes'
/// codes start with its own) or of the date index, each condition written
/// only when given. `placeholder` writes the n-th parameter (`?1`, `$1`).
pub(crate) fn report_filter(
    query: &ReportQuery,
    departement: Option<&str>,
    table: &str,
    placeholder: fn(usize) -> String,
) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut add = |condition: &str, value: String| {
        values.push(value);
        conditions.push(format!("{table}.{condition} {}", placeholder(values.len())));
    };
    if let Some(commune) = &query.commune {
        add("commune =", commune.to_string());
    }
    if let Some(departement) = departement {
        add("commune >", departement.to_owned());
        add("commune <", format!("{departement}~"));
    }
    if let Some(from) = query.from {
        add("date >=", from.to_string());
    }
    if let Some(to) = query.to {
        add("date <=", to.to_string());
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (clause, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_as_chrono_reads_them() {
        for text in ["2020-03-01", "2024-02-29", "1999-12-31"] {
            assert_eq!(
                parse_day(text),
                NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
                "{text}"
            );
        }
        for text in [
            "2023-02-29",
            "2020-13-01",
            "2020-3-01",
            "2020/03/01",
            "",
            "2020-03-0a",
            "+020-03-01",
        ] {
            assert_eq!(parse_day(text), None, "{text}");
        }
    }

    #[test]
    fn counts_are_read_in_the_order_of_the_settings() {
        let keys: Vec<String> = ["hopital", "ehpad", "domicile"].map(String::from).to_vec();
        let mut reader = CountsReader::new(&keys);
        for (json, expected) in [
            (
                r#"{"domicile":3,"ehpad":0,"hopital":12,"autre":1}"#,
                Some(vec![12, 0, 3]),
            ),
            // The same keys in the same places, then in others.
            (
                r#"{"domicile":4,"ehpad":1,"hopital":2,"autre":9}"#,
                Some(vec![2, 1, 4]),
            ),
            (
                r#"{"hopital":5,"autre":9,"domicile":6}"#,
                Some(vec![5, 0, 6]),
            ),
            (r#"{ "hopital" : 7 , "ehpad": 1 }"#, Some(vec![7, 1, 0])),
            ("{}", Some(vec![0, 0, 0])),
            (r#"{"ho\u0070ital":2}"#, Some(vec![2, 0, 0])),
            (r#"{"hopital":4294967295}"#, Some(vec![u32::MAX, 0, 0])),
            (r#"{"hopital":4294967296}"#, None),
            (r#"{"hopital":-1}"#, None),
            (r#"{"hopital":"2"}"#, None),
            (r#"{"hopital":}"#, None),
            ("[1,2]", None),
            (r#"{"hopital"}"#, None),
        ] {
            assert_eq!(counts_in_order(json, &keys), expected, "{json}");
            assert_eq!(reader.read(json), expected, "{json}");
        }
    }

    #[test]
    fn instants_are_read_as_chrono_reads_them() {
        for instant in [
            "2020-04-02T18:00:00.000000Z",
            "2026-12-07T09:27:00.034877Z",
            "2024-02-29T23:59:59.999999Z",
        ] {
            let expected = DateTime::parse_from_rfc3339(instant).map(|t| t.with_timezone(&Utc));
            assert_eq!(parse_stored_ts(instant), expected.ok(), "{instant}");
            assert_eq!(parse_ts(instant).ok(), expected.ok(), "{instant}");
        }
        // Other forms are chrono's to read, or to refuse.
        for instant in [
            "2020-04-02T18:00:00Z",
            "2020-04-02T20:00:00.000000+02:00",
            "2020-04-02T24:00:00.000000Z",
            "2020-02-30T18:00:00.000000Z",
        ] {
            assert_eq!(parse_stored_ts(instant), None, "{instant}");
            assert_eq!(
                parse_ts(instant).ok(),
                DateTime::parse_from_rfc3339(instant)
                    .map(|t| t.with_timezone(&Utc))
                    .ok(),
                "{instant}"
            );
        }
    }
}
