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

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub corrected: usize,
    pub unchanged: usize,
}

/// Reports read, checked against the store and written per batch.
const BATCH: usize = 50_000;

/// Checks every row of a `deces.csv` read from `input`, as an import's first
/// pass does, and writes nothing: the count of (commune, day)s it holds, or
/// the problems (up to twenty listed), each with its line.
pub fn check(
    input: impl Read,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut problems: Vec<String> = Vec::new();
    let mut problem_count = 0usize;
    let mut note = |problem: String| {
        problem_count += 1;
        if problems.len() < 20 {
            problems.push(problem);
        }
    };
    let mut total = 0;
    for item in Groups::new(input, rules)? {
        match item? {
            Item::Problem(problem) => note(problem),
            Item::Group(line, draft) => match rules.validate(&draft, scope, now) {
                Err(errors) => {
                    for error in errors {
                        note(format!(
                            "line {line} ({}, {}): {} — {}",
                            draft.commune.as_deref().unwrap_or(""),
                            draft.date.as_deref().unwrap_or(""),
                            error.field,
                            error.message
                        ));
                    }
                }
                Ok(valid) => {
                    if !seen.insert(key(valid.commune.as_str(), valid.date)) {
                        note(format!(
                            "line {line}: {} on {} appears twice in the file",
                            valid.commune, valid.date
                        ));
                    }
                    total += 1;
                }
            },
        }
    }
    if problem_count > 0 {
        bail!(
            "{problem_count} problem(s), nothing imported:\n{}{}",
            problems.join("\n"),
            if problem_count > problems.len() {
                "\n…"
            } else {
                ""
            }
        );
    }
    Ok(total)
}

/// Imports `deces.csv` rows as prefecture corrections with history, in two
/// passes over the file: the first checks every row (one problem, and
/// nothing is written: all of them are listed, up to twenty), the second
/// writes batches of [`BATCH`] — on SQLite all of them in one transaction
/// (a failure, and nothing is written; other processes' writes wait up to
/// their busy timeout, then are refused), on
/// DynamoDB in ordered atomic batches (a failure says how many were written,
/// and a rerun finds them unchanged).
/// Memory holds one batch and the set of (commune, day)s seen, whatever the
/// size of the file.
pub async fn import(
    store: &dyn Store,
    scope: &Scope,
    rules: &Rules,
    path: &std::path::Path,
    author: &str,
    now: DateTime<Utc>,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<ImportSummary> {
    let open =
        || std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()));
    // First pass: every row checked, nothing written.
    let total = check(open()?, scope, rules, now)?;

    // Second pass: a thread reads the file again into batches while the
    // previous batch is being written.
    let mut summary = ImportSummary::default();
    progress(0, total);
    let ledger = Ledger::new(store, rules, scope);
    let actor = Actor::tool(author, Source::Import);
    let reason = format!("Import CSV par {author}");
    let (batches, mut received) = tokio::sync::mpsc::channel(1);
    let groups = Groups::new(open()?, rules)?;
    let reader = tokio::task::spawn_blocking(move || read_batches(groups, &batches));
    // On SQLite the whole import is one transaction: a failure after the
    // first batch still leaves nothing written.
    let atomic = ledger.begin_bulk().await?;
    let written: anyhow::Result<()> = async {
        let mut done = 0;
        while let Some(batch) = received.recv().await {
            let (drafts, lines) = batch?;
            match ledger.import_batch(&actor, &drafts, &reason, now).await {
                Ok((reports, unchanged)) => {
                    summary.unchanged += unchanged;
                    for report in reports {
                        if report.version == 1 {
                            summary.created += 1;
                        } else {
                            summary.corrected += 1;
                        }
                    }
                }
                Err((_, RecordError::Store(StoreError::Partial { error, .. }))) if atomic => {
                    bail!("{error}: nothing imported")
                }
                Err((written, RecordError::Store(StoreError::Partial { error, .. }))) => bail!(
                    "{} declaration(s) written (the first ones of the file, in order), then: \
                        {error}. Run the same import again: what is already written is recognised \
                        as unchanged",
                    done + written
                ),
                Err((index, error)) => {
                    let line = lines.get(index).copied().unwrap_or(0);
                    let changed = matches!(error, RecordError::Conflict { .. });
                    let what = if changed {
                        "the declaration changed during the import".to_owned()
                    } else {
                        error.to_string()
                    };
                    if atomic {
                        bail!(
                            "line {line}: {what}; nothing imported{}",
                            if changed { ", run it again" } else { "" }
                        )
                    }
                    bail!(
                        "line {line}: {what}; the lines before line {} are imported{}",
                        lines.first().copied().unwrap_or(0),
                        if changed { ", run it again" } else { "" }
                    )
                }
            }
            done += drafts.len();
            progress(done, total);
        }
        Ok(())
    }
    .await;
    let ended = ledger.end_bulk(written.is_ok()).await;
    written?;
    ended?;
    reader.await.context("the file reader stopped")?;
    Ok(summary)
}

/// A (commune, day) as one number, for the set of those an import has seen.
fn key(commune: &str, date: chrono::NaiveDate) -> u64 {
    use chrono::Datelike;
    let code = commune
        .bytes()
        .fold(0u64, |code, b| code * 64 + u64::from(b & 0x3f));
    (code << 32) | u64::from(date.num_days_from_ce().unsigned_abs())
}

/// What reading a file gives: a (commune, day) with its first line, or a
/// problem with a line.
enum Item {
    Group(usize, Draft),
    Problem(String),
}

/// Drafts of [`BATCH`] (commune, day)s and the line of each.
type Batch = anyhow::Result<(Vec<Draft>, Vec<usize>)>;

/// Sends the groups of an already checked file in batches, until the file
/// ends, a problem appears (the file changed since it was checked) or the
/// writer stops listening.
fn read_batches<R: Read>(groups: Groups<R>, batches: &tokio::sync::mpsc::Sender<Batch>) {
    let mut drafts = Vec::with_capacity(BATCH);
    let mut lines = Vec::with_capacity(BATCH);
    for item in groups {
        match item {
            Ok(Item::Group(line, draft)) => {
                drafts.push(draft);
                lines.push(line);
                if drafts.len() == BATCH {
                    let batch = (
                        std::mem::replace(&mut drafts, Vec::with_capacity(BATCH)),
                        std::mem::replace(&mut lines, Vec::with_capacity(BATCH)),
                    );
                    if batches.blocking_send(Ok(batch)).is_err() {
                        return;
                    }
                }
            }
            Ok(Item::Problem(problem)) => {
                let _ = batches.blocking_send(Err(anyhow::anyhow!(
                    "the file changed during the import ({problem}); the lines before are \
                     imported, run it again"
                )));
                return;
            }
            Err(error) => {
                let _ = batches.blocking_send(Err(error));
                return;
            }
        }
    }
    if !drafts.is_empty() {
        let _ = batches.blocking_send(Ok((drafts, lines)));
    }
}

/// The (commune, day)s of a `deces.csv`, one after the other: a row each in
/// the published shape, consecutive rows in the earlier one.
struct Groups<R: Read> {
    reader: csv::Reader<R>,
    shape: Shape,
    width: usize,
    record: csv::StringRecord,
    line: usize,
    /// The first row of the next group (or a problem), read ahead.
    ahead: Option<Result<Row, String>>,
    done: bool,
}

/// A row: its line, day, commune and (setting, count) cells.
type Row = (usize, String, String, Vec<(String, String)>);

impl<R: Read> Groups<R> {
    fn new(input: R, rules: &Rules) -> anyhow::Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = reader
            .headers()
            .context("cannot read the CSV header")?
            .clone();
        Ok(Self {
            shape: shape(&headers, rules)?,
            width: headers.len(),
            reader,
            record: csv::StringRecord::new(),
            line: 1,
            ahead: None,
            done: false,
        })
    }

    /// The next row, or a problem, or the end.
    fn row(&mut self) -> anyhow::Result<Option<Result<Row, String>>> {
        self.line += 1;
        let line = self.line;
        if !self
            .reader
            .read_record(&mut self.record)
            .with_context(|| format!("line {line}: unreadable CSV"))?
        {
            return Ok(None);
        }
        let record = &self.record;
        let (Some(date), Some(commune)) = (record.get(0), record.get(1)) else {
            return Ok(Some(Err(format!(
                "line {line}: {} fields expected",
                self.width
            ))));
        };
        // Text cells were made safe for spreadsheets on export: read them back as typed.
        let cells = match &self.shape {
            Shape::Long => match (record.get(3), record.get(4)) {
                (Some(setting), Some(count)) => {
                    vec![(read_cell(setting).to_owned(), count.to_owned())]
                }
                _ => return Ok(Some(Err(format!("line {line}: 5 fields expected")))),
            },
            Shape::Wide(columns) => {
                if record.len() != self.width {
                    return Ok(Some(Err(format!(
                        "line {line}: {} fields expected, {} found",
                        self.width,
                        record.len()
                    ))));
                }
                columns
                    .iter()
                    .zip(record.iter().skip(3))
                    .filter_map(|(setting, count)| setting.clone().map(|s| (s, count.to_owned())))
                    .collect()
            }
        };
        Ok(Some(Ok((line, date.to_owned(), commune.to_owned(), cells))))
    }
}

impl<R: Read> Iterator for Groups<R> {
    type Item = anyhow::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut group: Option<(usize, String, String, BTreeMap<String, CountValue>)> = None;
        loop {
            let row = match self.ahead.take() {
                Some(row) => row,
                None => match self.row() {
                    Err(error) => {
                        self.done = true;
                        return Some(Err(error));
                    }
                    Ok(None) => {
                        self.done = true;
                        break;
                    }
                    Ok(Some(row)) => row,
                },
            };
            let (line, date, commune, cells) = match row {
                Ok(row) => row,
                Err(problem) if group.is_none() => return Some(Ok(Item::Problem(problem))),
                Err(problem) => {
                    // The group first; the problem comes next.
                    self.ahead = Some(Err(problem));
                    break;
                }
            };
            match &mut group {
                Some((_, d, c, counts)) if *d == date && *c == commune => {
                    for (setting, count) in cells {
                        if counts
                            .insert(setting.clone(), CountValue::Text(count))
                            .is_some()
                        {
                            return Some(Ok(Item::Problem(format!(
                                "line {line}: setting `{setting}` appears twice for {commune} on \
                                {date}"
                            ))));
                        }
                    }
                }
                Some(_) => {
                    self.ahead = Some(Ok((line, date, commune, cells)));
                    break;
                }
                None => {
                    let counts = cells
                        .into_iter()
                        .map(|(s, n)| (s, CountValue::Text(n)))
                        .collect();
                    group = Some((line, date, commune, counts));
                }
            }
        }
        group.map(|(line, date, commune, counts)| {
            Ok(Item::Group(
                line,
                Draft {
                    commune: Some(commune),
                    date: Some(date),
                    counts,
                    replaces_version: None,
                    reason: None,
                    ..Draft::default()
                },
            ))
        })
    }
}
