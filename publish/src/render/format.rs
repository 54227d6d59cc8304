//! What the pages share: French dates and numbers written fast, the days'
//! tables and lines, the charts in their two layouts, the DSFR's folder.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use decompte_core::completeness::percent;
use decompte_core::time::fr_date;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::charts::{self, Caption};
use crate::model::DaySummary;
use crate::paths;
use decompte_templates::format_int;

use super::RenderError;

/// Where the DSFR's files are published: a folder per version and per
/// content of its stylesheet (the vendoring may change it), so they are
/// cached for good like every asset.
pub(super) fn dsfr_folder() -> &'static str {
    static FOLDER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let stylesheet = decompte_templates::dsfr_file("dsfr.min.css").unwrap_or_default();
        paths::dsfr(
            decompte_templates::DSFR_VERSION,
            &hex::encode(Sha256::digest(stylesheet))[..8],
        )
    });
    &FOLDER
}

pub(super) fn pretty(value: &Value) -> Result<Vec<u8>, RenderError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| RenderError::Data(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(super) fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

pub(super) fn sum_settings<'v>(rows: impl Iterator<Item = &'v Vec<u64>>, width: usize) -> Vec<u64> {
    let mut sums = vec![0; width];
    for row in rows {
        for (sum, n) in sums.iter_mut().zip(row) {
            *sum += n;
        }
    }
    sums
}

/// Day lines for a table: the date, the counts, the total, the running
/// total, and how many of the `expected` communes reported (their share in
/// whole percents).
pub(super) fn day_lines(days: &[DaySummary], expected: usize) -> Vec<Value> {
    let mut cumulative = 0;
    days.iter()
        .map(|d| {
            let total: u64 = d.by_setting.iter().sum();
            cumulative += total;
            let mut line = json!({"date_fr": fr_date(d.date), "by_setting": d.by_setting,
                                  "total": total, "cumulative": cumulative,
                                  "withheld": d.withheld});
            merge(
                &mut line,
                json!({"reporting": d.reporting,
                       "percent": percent(d.reporting as usize, expected)}),
            );
            line
        })
        .collect()
}

/// How many days a commune page lists one by one, before grouping by month.
pub(super) const RECENT_DAYS: i64 = 28;

pub(super) const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A commune's days from its first declaration to its last, newest first,
/// each day declared or not (a day without a declaration is no zero): the
/// last four weeks as table rows, the days before grouped by month.
///
/// Without `counts` (the rule of small counts), a declared day says so,
/// without its counts.
pub(super) fn commune_days(days: &[DaySummary], width: usize, counts: bool) -> Value {
    use chrono::Datelike;
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Value::Null;
    };
    let (first, last) = (first.date, last.date);
    // The running total of each declared day, oldest first.
    let mut cumulative = 0u64;
    let declared: BTreeMap<NaiveDate, (&DaySummary, u64, u64)> = days
        .iter()
        .map(|d| {
            let total: u64 = d.by_setting.iter().sum();
            cumulative += total;
            (d.date, (d, total, cumulative))
        })
        .collect();
    let recent_start = (last - Duration::days(RECENT_DAYS - 1)).max(first);
    let mut number = String::with_capacity(16);
    let mut rows = |from: NaiveDate, to: NaiveDate| {
        let mut html = String::new();
        let (mut total, mut count, mut span) = (0u64, 0u32, 0u32);
        let mut date = to;
        while date >= from {
            span += 1;
            html.push_str("<tr><th scope=\"row\">");
            push_fr_date(&mut html, date);
            html.push_str("</th>");
            match declared.get(&date) {
                Some(_) if !counts => {
                    count += 1;
                    html.push_str("<td>déclaré</td>");
                }
                Some((day, day_total, running)) => {
                    total += day_total;
                    count += 1;
                    for n in day.by_setting.iter().chain([day_total, running]) {
                        html.push_str("<td>");
                        push_fr_int(&mut html, &mut number, *n);
                        html.push_str("</td>");
                    }
                }
                None if !counts => html.push_str("<td class=\"missing\">non déclaré</td>"),
                None => {
                    html.push_str("<td class=\"missing\" colspan=\"");
                    html.push_str(itoa::Buffer::new().format(width + 2));
                    html.push_str("\">non déclaré</td>");
                }
            }
            html.push_str("</tr>\n");
            date -= Duration::days(1);
        }
        (html, total, count, span)
    };
    let (recent_rows, _, recent_declared, recent_span) = rows(recent_start, last);
    let mut months = Vec::new();
    let mut month_end = recent_start - Duration::days(1);
    while month_end >= first {
        let month_start = month_end.with_day(1).unwrap_or(month_end).max(first);
        let (html, total, count, span) = rows(month_start, month_end);
        let month = MONTHS[month_end.month0() as usize];
        months.push(json!({
            "label": format!("{month} {}", month_end.year()),
            "total": total,
            "declared": count,
            "span": span,
            "rows": html,
        }));
        month_end = month_start - Duration::days(1);
    }
    json!({
        "recent_from_fr": fr_date(recent_start),
        "recent_rows": recent_rows,
        "recent_declared": recent_declared,
        "recent_span": recent_span,
        "months": months,
    })
}

/// `01/04/2020`, without the formatting machinery (a year of rows for
/// every commune of the country is 12.8 million dates).
pub(super) fn push_fr_date(out: &mut String, date: NaiveDate) {
    use chrono::Datelike;
    let (day, month, year) = (date.day(), date.month(), date.year());
    for c in [
        b'0' + (day / 10) as u8,
        b'0' + (day % 10) as u8,
        b'/',
        b'0' + (month / 10) as u8,
        b'0' + (month % 10) as u8,
        b'/',
        b'0' + ((year / 1000) % 10) as u8,
        b'0' + ((year / 100) % 10) as u8,
        b'0' + ((year / 10) % 10) as u8,
        b'0' + (year % 10) as u8,
    ] {
        out.push(char::from(c));
    }
}

/// A count the French way (as `fr_int`): below a thousand, its digits.
pub(super) fn push_fr_int(out: &mut String, scratch: &mut String, n: u64) {
    if n < 1000 {
        out.push_str(itoa::Buffer::new().format(n));
    } else {
        scratch.clear();
        scratch.push_str(&format_int(n));
        out.push_str(scratch);
    }
}

/// The days from the first to the last, those without a report as zeros,
/// so that charts keep a true time axis.
pub(super) fn filled(days: &[DaySummary], width: usize) -> Vec<DaySummary> {
    let mut out: Vec<DaySummary> = Vec::with_capacity(days.len());
    for day in days {
        if let Some(last) = out.last() {
            let mut next = last.date + Duration::days(1);
            while next < day.date {
                out.push(DaySummary::new(next, width));
                next += Duration::days(1);
            }
        }
        out.push(day.clone());
    }
    out
}

pub(super) fn describe_days(days: &[DaySummary], value: impl Fn(&DaySummary) -> u64) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return "Aucune donnée.".into();
    };
    let total: u64 = days.iter().map(&value).sum();
    let peak = days
        .iter()
        .max_by_key(|d| (value(d), std::cmp::Reverse(d.date)));
    let peak = peak.map_or(String::new(), |d| {
        format!(" Maximum : {} décès le {}.", value(d), fr_date(d.date))
    });
    format!(
        "Du {} au {}, {} jours, {} décès au total.{}",
        fr_date(first.date),
        fr_date(last.date),
        days.len(),
        total,
        peak
    )
}

pub(super) fn stacked_chart(
    days: &[DaySummary],
    colors: &[&str],
    id: &str,
    title: &str,
) -> Result<Value, RenderError> {
    let Some(first) = days.first() else {
        return Ok(Value::Null);
    };
    let width = first.by_setting.len();
    let series: Vec<Vec<u64>> = (0..width)
        .map(|i| days.iter().map(|d| d.by_setting[i]).collect())
        .collect();
    let description = describe_days(days, |d| d.by_setting.iter().sum());
    both_layouts(id, |id, layout| {
        charts::stacked_bars(
            first.date,
            &series,
            colors,
            &Caption {
                id,
                title,
                description: &description,
            },
            layout,
        )
    })
}

/// A chart drawn wide and narrow (`{"wide": svg, "narrow": svg}`): the page
/// shows the one that fits the screen.
pub(super) fn both_layouts(
    id: &str,
    draw: impl Fn(&str, charts::Layout) -> Result<String, charts::ChartError>,
) -> Result<Value, RenderError> {
    Ok(json!({
        "wide": draw(id, charts::WIDE)?,
        "narrow": draw(&format!("{id}-n"), charts::NARROW)?,
    }))
}

pub(super) fn cumulative_chart(
    days: &[DaySummary],
    id: &str,
    title: &str,
) -> Result<Value, RenderError> {
    let Some(first) = days.first() else {
        return Ok(Value::Null);
    };
    let mut running = 0;
    let values: Vec<u64> = days
        .iter()
        .map(|d| {
            running += d.by_setting.iter().sum::<u64>();
            running
        })
        .collect();
    let first_total: u64 = first.by_setting.iter().sum();
    let description = format!(
        "Du {} au {}, le cumul passe de {} à {} décès.",
        fr_date(first.date),
        days.last().map_or(String::new(), |d| fr_date(d.date)),
        first_total,
        values.last().copied().unwrap_or(0)
    );
    both_layouts(id, |id, layout| {
        charts::line(
            first.date,
            &values,
            "#1b1b1b",
            &Caption {
                id,
                title,
                description: &description,
            },
            layout,
        )
    })
}
