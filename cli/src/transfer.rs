//! CSV import and export, in the format of the published `donnees/deces.csv`.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use decompte_core::spreadsheet::read_cell;
use decompte_core::{CountValue, Draft, Rules, Scope, Source};
use decompte_publish::model::DepartementReports;
use decompte_publish::opendata;
use decompte_store::{Actor, Ledger, RecordError, ReportQuery, Store, StoreError};

/// Writes every current report in scope as `deces.csv`: the header, then
/// each département's rows. Returns how many rows were written.
pub async fn export(
    store: &dyn Store,
    scope: &Scope,
    rules: &Rules,
    out: impl Write,
) -> anyhow::Result<usize> {
    let mut out = out;
    out.write_all(opendata::header(&rules.settings).as_bytes())?;
    let mut rows = 0;
    for code in scope.departement_codes() {
        let reports = store
            .current_reports(&ReportQuery {
                departements: vec![code.to_owned()],
                ..ReportQuery::default()
            })
            .await?;
        let departement = DepartementReports::build(code, scope, &rules.settings, &reports);
        rows += departement.report_count();
        out.write_all(&opendata::csv_body(&departement, &departement.day_order()))?;
    }
    Ok(rows)
}

/// The two shapes of `deces.csv` an import reads: a column per setting (what
/// decompte publishes), or a row per setting (`lieu,deces`, what it
/// published before).
enum Shape {
    /// The setting of each column from the fourth; `total` is not read.
    Wide(Vec<Option<String>>),
    Long,
}

fn shape(headers: &csv::StringRecord, rules: &Rules) -> anyhow::Result<Shape> {
    let names: Vec<String> = headers.iter().map(|h| read_cell(h).to_owned()).collect();
    let wide = opendata::header(&rules.settings);
    let expected_wide = wide.trim_end();
    if names.len() < 4 || names[..3] != ["date", "code_commune", "nom_commune"] {
        bail!(
            "the header must be `{expected_wide}` (found `{}`)",
            names.join(",")
        );
    }
    if names[3..] == ["lieu", "deces"] {
        return Ok(Shape::Long);
    }
    let mut columns = Vec::new();
    for name in &names[3..] {
        if name == "total" {
            columns.push(None);
        } else if rules.settings.get(name).is_some() {
            columns.push(Some(name.to_owned()));
        } else {
            bail!(
                "unknown column `{name}`: the header must be `{expected_wide}` (settings: {})",
                rules.settings.keys().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(Shape::Wide(columns))
}

/// The rows of one (commune, day) of an imported file: its key, its first
/// line, and its count by setting as written.
type Group = ((String, String), usize, BTreeMap<String, CountValue>);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub corrected: usize,
    pub unchanged: usize,
}

/// Imports `deces.csv` rows as prefecture corrections with history. Everything
/// is checked before anything is written: one bad line and nothing changes.
pub async fn import(
    store: &dyn Store,
    scope: &Scope,
    rules: &Rules,
    input: impl Read,
    author: &str,
    now: DateTime<Utc>,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<ImportSummary> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .context("cannot read the CSV header")?
        .clone();
    let shape = shape(&headers, rules)?;
    // Group the rows by (commune, day). A file in the order of deces.csv has
    // the rows of a (commune, day) together: the last group is checked first,
    // and the index only when the file jumps.
    let mut groups: Vec<Group> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> =
        std::collections::HashMap::new();
    let mut problems = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    loop {
        line += 1;
        let more = reader
            .read_record(&mut record)
            .with_context(|| format!("line {line}: unreadable CSV"))?;
        if !more {
            break;
        }
        let (Some(date), Some(commune)) = (record.get(0), record.get(1)) else {
            problems.push(format!("line {line}: {} fields expected", headers.len()));
            continue;
        };
        // Text cells were made safe for spreadsheets on export: read them back as typed.
        let cells: Vec<(String, &str)> = match &shape {
            Shape::Long => match (record.get(3), record.get(4)) {
                (Some(setting), Some(count)) => vec![(read_cell(setting).to_owned(), count)],
                _ => {
                    problems.push(format!("line {line}: 5 fields expected"));
                    continue;
                }
            },
            Shape::Wide(columns) => {
                if record.len() != headers.len() {
                    problems.push(format!(
                        "line {line}: {} fields expected, {} found",
                        headers.len(),
                        record.len()
                    ));
                    continue;
                }
                columns
                    .iter()
                    .zip(record.iter().skip(3))
                    .filter_map(|(setting, count)| setting.clone().map(|s| (s, count)))
                    .collect()
            }
        };
        let same_as_last = groups
            .last()
            .is_some_and(|((c, d), _, _)| c == commune && d == date);
        let position = if same_as_last {
            groups.len() - 1
        } else {
            let key = (commune.to_owned(), date.to_owned());
            *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, line, BTreeMap::new()));
                groups.len() - 1
            })
        };
        for (setting, count) in cells {
            if groups[position]
                .2
                .insert(setting.clone(), CountValue::Text(count.to_owned()))
                .is_some()
            {
                problems.push(format!(
                    "line {line}: setting `{setting}` appears twice for {commune} on {date}"
                ));
            }
        }
    }
    let mut valid = Vec::with_capacity(groups.len());
    for ((commune, date), line, counts) in groups {
        let draft = Draft {
            commune: Some(commune.clone()),
            date: Some(date.clone()),
            counts,
            replaces_version: None,
            reason: None,
        };
        match rules.validate(&draft, scope, now) {
            Ok(v) => valid.push((line, draft, v)),
            Err(errors) => {
                for error in errors {
                    problems.push(format!(
                        "line {line} ({commune}, {date}): {} — {}",
                        error.field, error.message
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(20).cloned().collect();
        bail!(
            "{} problem(s), nothing imported:\n{}{}",
            problems.len(),
            shown.join("\n"),
            if problems.len() > 20 { "\n…" } else { "" }
        );
    }
    let mut summary = ImportSummary::default();
    let total = valid.len();
    progress(0, total);
    // What is there already, read once for the whole file.
    let (Some(from), Some(to)) = (
        valid.iter().map(|(_, _, v)| v.date).min(),
        valid.iter().map(|(_, _, v)| v.date).max(),
    ) else {
        return Ok(summary);
    };
    let current: std::collections::HashMap<_, _> = store
        .current_reports(&ReportQuery {
            commune: None,
            from: Some(from),
            to: Some(to),
            ..ReportQuery::default()
        })
        .await?
        .into_iter()
        .map(|r| ((r.commune.clone(), r.date), r))
        .collect();
    let mut drafts = Vec::with_capacity(valid.len());
    let mut lines = Vec::with_capacity(valid.len());
    for (line, mut draft, checked) in valid {
        let existing = current.get(&(checked.commune.clone(), checked.date));
        if existing.is_some_and(|c| c.counts == checked.counts) {
            summary.unchanged += 1;
            continue;
        }
        // A correction names the version it replaces and says why.
        draft.replaces_version = existing.map(|c| c.version);
        draft.reason = existing.map(|_| format!("Import CSV par {author}"));
        drafts.push(draft);
        lines.push(line);
    }
    let ledger = Ledger::new(store, rules, scope);
    let actor = Actor::tool(author, Source::Import);
    match ledger.record_batch(&actor, &drafts, now).await {
        Ok(reports) => {
            for report in reports {
                if report.version == 1 {
                    summary.created += 1;
                } else {
                    summary.corrected += 1;
                }
            }
        }
        Err((written, RecordError::Store(StoreError::Partial { error, .. }))) => bail!(
            "{written} of {} declaration(s) written (the first ones of the file, in order), then: \
                {error}. Run the same import again: what is already written is recognised as \
                unchanged",
            drafts.len()
        ),
        Err((index, RecordError::Conflict { .. })) => bail!(
            "line {}: the declaration changed during the import; nothing was imported, run it \
                again",
            lines.get(index).copied().unwrap_or(0)
        ),
        Err((index, error)) => bail!(
            "line {}: {error}; nothing was imported",
            lines.get(index).copied().unwrap_or(0)
        ),
    }
    progress(total, total);
    Ok(summary)
}
