//! CSV import and export, in the format of the published `donnees/deces.csv`.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use decompte_core::spreadsheet::read_cell;
use decompte_core::{CommuneCode, CountValue, Draft, Rules, Scope, Source};
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
            "l'en-tête doit être `{expected_wide}` (trouvé : `{}`)",
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
                "colonne inconnue `{name}` : l'en-tête doit être `{expected_wide}` (lieux : {})",
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

/// Reports checked against the store and written per batch.
const BATCH: usize = 50_000;

/// How many problems a refused file lists.
const SHOWN_PROBLEMS: usize = 20;

/// One checked (commune, day) of a file: its key, its line, and its rank
/// among the file's (commune, day)s (where its counts are).
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    line: u32,
    rank: u32,
}

/// The (commune, day)s of a checked file, kept compactly (16 bytes and two
/// per setting each, 26 bytes a row with five settings: 330 MB for a
/// national year's 12.8 million) and sorted as the stores' primary key
/// sorts them: by commune, then day. Written in that order, every B-tree of
/// the store grows at its end instead of in every commune's range at once.
pub struct Checked {
    entries: Vec<Entry>,
    /// The counts of each (commune, day), in the rules' setting order, by
    /// rank; [`u16::MAX`] says the count is in `large`.
    counts: Vec<u16>,
    /// Counts of [`u16::MAX`] or more (a deployment may allow them), by
    /// their place in `counts`.
    large: std::collections::HashMap<usize, u32>,
    settings: Vec<String>,
}

impl Checked {
    /// How many (commune, day)s the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The draft an entry stands for, as the file gave it.
    fn draft(&self, entry: &Entry) -> Draft {
        let (commune, date) = unkey(entry.key);
        let width = self.settings.len();
        let start = entry.rank as usize * width;
        let counts = self
            .settings
            .iter()
            .zip(start..start + width)
            .map(|(setting, at)| {
                let n = match self.counts[at] {
                    u16::MAX => self.large.get(&at).copied().unwrap_or(u32::from(u16::MAX)),
                    n => u32::from(n),
                };
                (setting.clone(), CountValue::Text(n.to_string()))
            })
            .collect();
        Draft {
            commune: Some(commune),
            date: Some(date.to_string()),
            counts,
            ..Draft::default()
        }
    }
}

/// The problems of a file: how many, and the first by line.
#[derive(Default)]
struct Problems {
    count: usize,
    shown: Vec<(usize, String)>,
}

impl Problems {
    fn note(&mut self, line: usize, problem: String) {
        self.count += 1;
        if self.shown.len() < SHOWN_PROBLEMS {
            self.shown.push((line, problem));
        } else if let Some(last) = self.shown.iter().map(|(l, _)| *l).max() {
            // Duplicates are found after the file is read, out of line order.
            if line < last {
                if let Some(at) = self.shown.iter().position(|(l, _)| *l == last) {
                    self.shown[at] = (line, problem);
                }
            }
        }
    }

    fn refusal(mut self) -> anyhow::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.shown.sort_by_key(|(line, _)| *line);
        let listed: Vec<String> = self.shown.into_iter().map(|(_, p)| p).collect();
        bail!(
            "{} problème(s), rien n'est importé :\n{}{}",
            self.count,
            listed.join("\n"),
            if self.count > listed.len() {
                "\n…"
            } else {
                ""
            }
        )
    }
}

/// Reads and checks every row of a `deces.csv` from `input`, as an import's
/// first pass does, and writes nothing: its (commune, day)s, sorted, or the
/// problems (up to twenty listed, by line), each with its line.
pub fn check(
    input: impl Read,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<Checked> {
    check_items(Groups::new(input, rules)?, scope, rules, now)
}

/// [`check`] of a file on disk. A large file is read in two halves at once,
/// one per core, when it holds no `"` (then every line is a row, and a
/// half can begin at any line whose (day, commune) differs from the line
/// before). A file with a problem is read again whole, so that its problems
/// come with their lines as [`check`] gives them.
pub fn check_file(
    path: &std::path::Path,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<Checked> {
    let open = || {
        std::fs::File::open(path).with_context(|| format!("impossible d'ouvrir {}", path.display()))
    };
    let size = open()?.metadata().map(|m| m.len()).unwrap_or(0);
    if size >= HALVES_FROM && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        if let Some(checked) = check_halves(&open, size, scope, rules, now)? {
            return Ok(checked);
        }
    }
    check(std::io::BufReader::new(open()?), scope, rules, now)
}

/// The size from which [`check_file`] reads a file in two halves.
const HALVES_FROM: u64 = 16 << 20;

/// The two halves of [`check_file`], or `None` when the file must be read
/// whole: it holds a `"`, it has no place to cut, or a half has a problem.
fn check_halves(
    open: &dyn Fn() -> anyhow::Result<std::fs::File>,
    size: u64,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Checked>> {
    use std::io::{BufRead, Seek, SeekFrom};
    // The header's bytes, given again to the second half.
    let header = {
        let mut line = Vec::new();
        std::io::BufReader::new(open()?).read_until(b'\n', &mut line)?;
        line
    };
    let Some(cut) = cut(std::io::BufReader::new(open()?), size / 2)? else {
        return Ok(None);
    };
    if cut <= header.len() as u64 {
        return Ok(None);
    }
    let mut second = open()?;
    second.seek(SeekFrom::Start(cut))?;
    let (first, second) = std::thread::scope(|threads| {
        let second = threads.spawn(|| {
            read_half(
                std::io::Cursor::new(&header).chain(second),
                scope,
                rules,
                now,
            )
        });
        let first = open().and_then(|file| read_half(file.take(cut), scope, rules, now));
        (first, second.join())
    });
    let (Some(mut first), Some(second)) = (first?, second.unwrap_or(Ok(None))?) else {
        return Ok(None);
    };
    // The second half's lines and ranks follow the first's.
    let (lines, ranks, places) = (
        u32::try_from(first.rows)
            .context("le fichier est trop long pour être importé en une fois : découpez-le")?,
        u32::try_from(first.checked.entries.len())
            .context("le fichier est trop long pour être importé en une fois : découpez-le")?,
        first.checked.counts.len(),
    );
    let Half { checked, .. } = second;
    first.checked.entries.reserve_exact(checked.entries.len());
    for entry in checked.entries {
        first.checked.entries.push(Entry {
            key: entry.key,
            line: entry
                .line
                .checked_add(lines)
                .context("le fichier est trop long pour être importé en une fois : découpez-le")?,
            rank: entry
                .rank
                .checked_add(ranks)
                .context("le fichier est trop long pour être importé en une fois : découpez-le")?,
        });
    }
    first.checked.counts.extend_from_slice(&checked.counts);
    first
        .checked
        .large
        .extend(checked.large.into_iter().map(|(at, n)| (at + places, n)));
    sorted(first.checked, Problems::default()).map(Some)
}

/// Where the second half of a file without `"` begins: the first line after
/// `middle` whose (day, commune) differs from the line before it. `None`
/// if there is none, or a `"` on the way.
fn cut(
    mut file: impl std::io::BufRead + std::io::Seek,
    middle: u64,
) -> anyhow::Result<Option<u64>> {
    file.seek(std::io::SeekFrom::Start(middle))?;
    let mut line = Vec::new();
    // The rest of the line `middle` falls in.
    let mut at = middle + file.read_until(b'\n', &mut line)? as u64;
    let mut before: Option<Vec<u8>> = None;
    loop {
        line.clear();
        let read = file.read_until(b'\n', &mut line)? as u64;
        if read == 0 || line.contains(&b'"') {
            return Ok(None);
        }
        let key = day_and_commune(&line);
        match &before {
            Some(previous) if *previous != key => return Ok(Some(at)),
            Some(_) => {}
            None => before = Some(key),
        }
        at += read;
    }
}

/// A line's first two fields, as the CSV reader trims them.
fn day_and_commune(line: &[u8]) -> Vec<u8> {
    let mut fields = line.splitn(3, |b| *b == b',');
    let mut key = fields.next().unwrap_or_default().trim_ascii().to_vec();
    key.push(b',');
    key.extend_from_slice(fields.next().unwrap_or_default().trim_ascii());
    key
}

/// What one half of a file gives: its (commune, day)s, unsorted, and how
/// many rows it read.
struct Half {
    checked: Checked,
    rows: usize,
}

/// Reads and checks one half of a file; `None` if it holds a `"`, a
/// problem or an unreadable row.
fn read_half(
    input: impl Read,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Half>> {
    let mut input = Quotes {
        inner: input,
        seen: false,
    };
    let mut groups = Groups::new(&mut input, rules)?;
    let Ok((checked, problems)) = read_items(&mut groups, scope, rules, now) else {
        return Ok(None);
    };
    let rows = groups.line.saturating_sub(2);
    drop(groups);
    Ok((problems.count == 0 && !input.seen).then_some(Half { checked, rows }))
}

/// A reader that notes whether a `"` went through it.
struct Quotes<R> {
    inner: R,
    seen: bool,
}

impl<R: Read> Read for Quotes<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.seen |= buf[..read].contains(&b'"');
        Ok(read)
    }
}

/// The checks of [`check`], over the items read.
fn check_items(
    items: impl Iterator<Item = anyhow::Result<Item>>,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<Checked> {
    let (checked, problems) = read_items(items, scope, rules, now)?;
    sorted(checked, problems)
}

/// Each item checked against the rules: the (commune, day)s in file
/// order, and the problems.
fn read_items(
    items: impl Iterator<Item = anyhow::Result<Item>>,
    scope: &Scope,
    rules: &Rules,
    now: DateTime<Utc>,
) -> anyhow::Result<(Checked, Problems)> {
    let settings: Vec<String> = rules.settings.keys().map(str::to_owned).collect();
    let mut checked = Checked {
        entries: Vec::new(),
        counts: Vec::new(),
        large: std::collections::HashMap::new(),
        settings,
    };
    let mut problems = Problems::default();
    for item in items {
        match item? {
            Item::Problem(line, problem) => problems.note(line, problem),
            Item::Group(line, draft) => match rules.validate(&draft, scope, now) {
                Err(errors) => {
                    for error in errors {
                        problems.note(
                            line,
                            format!(
                                "ligne {line} ({}, {}) : {} — {}",
                                draft.commune.as_deref().unwrap_or(""),
                                draft.date.as_deref().unwrap_or(""),
                                error.field,
                                error.message
                            ),
                        );
                    }
                }
                Ok(valid) => {
                    let (Ok(line), Ok(rank)) =
                        (u32::try_from(line), u32::try_from(checked.entries.len()))
                    else {
                        bail!("ligne {line} : le fichier est trop long pour être importé en une fois : découpez-le");
                    };
                    checked.entries.push(Entry {
                        key: key(&valid.commune, valid.date),
                        line,
                        rank,
                    });
                    for setting in &checked.settings {
                        let n = valid.counts.get(setting).copied().unwrap_or(0);
                        match u16::try_from(n) {
                            Ok(small) if small < u16::MAX => checked.counts.push(small),
                            _ => {
                                checked.large.insert(checked.counts.len(), n);
                                checked.counts.push(u16::MAX);
                            }
                        }
                    }
                }
            },
        }
    }
    Ok((checked, problems))
}

/// The (commune, day)s sorted as the stores' keys, or the problems, with a
/// (commune, day) given twice among them.
fn sorted(mut checked: Checked, mut problems: Problems) -> anyhow::Result<Checked> {
    // Sorted by key, then line: a (commune, day) given twice is two neighbours.
    checked.entries.sort_unstable_by_key(|e| (e.key, e.line));
    for pair in checked.entries.windows(2) {
        if pair[0].key == pair[1].key {
            let (commune, date) = unkey(pair[1].key);
            let line = pair[1].line as usize;
            problems.note(
                line,
                format!("ligne {line} : {commune} le {date} figure deux fois dans le fichier"),
            );
        }
    }
    problems.refusal()?;
    Ok(checked)
}

/// Imports `deces.csv` rows as prefecture corrections with history. The
/// file is read once and every row checked (one problem, and nothing is
/// written: all of them are listed, up to twenty); its (commune, day)s are
/// then written in the order of the stores' keys, in batches of [`BATCH`]
/// — on SQLite all of them in one transaction (a failure, and nothing is
/// written; other processes' writes wait up to their busy timeout, then are
/// refused), on DynamoDB in ordered atomic batches (a failure says how many
/// were written, and a rerun finds them unchanged).
/// Memory holds the checked file compactly ([`Checked`]) and one batch.
pub async fn import(
    store: &dyn Store,
    scope: &Scope,
    rules: &Rules,
    path: &std::path::Path,
    author: &str,
    now: DateTime<Utc>,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<ImportSummary> {
    let checked = check_file(path, scope, rules, now)?;
    let total = checked.len();

    let mut summary = ImportSummary::default();
    progress(0, total);
    let ledger = Ledger::new(store, rules, scope);
    let actor = Actor::tool(author, Source::Import);
    let reason = format!("Import CSV par {author}");
    // A thread makes and checks the next batch while this one is written.
    let (batches, mut received) = tokio::sync::mpsc::channel(1);
    let checker = {
        let (rules, scope) = (rules.clone(), scope.clone());
        tokio::task::spawn_blocking(move || {
            for chunk in checked.entries.chunks(BATCH) {
                let drafts: Vec<Draft> = chunk.iter().map(|e| checked.draft(e)).collect();
                let lines: Vec<u32> = chunk.iter().map(|e| e.line).collect();
                let batch = Ledger::check_batch(&rules, &scope, &actor, &drafts, now);
                if batches.blocking_send((batch, lines)).is_err() {
                    return;
                }
            }
        })
    };
    // On SQLite the whole import is one transaction: a failure after the
    // first batch still leaves nothing written.
    let atomic = ledger.begin_bulk(total).await?;
    let written: anyhow::Result<()> = async {
        let mut done = 0;
        while let Some((batch, lines)) = received.recv().await {
            let written = match batch {
                Ok(batch) => ledger.write_checked(batch, &reason).await,
                Err(refused) => Err(refused),
            };
            match written {
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
                    bail!("{error} : rien n'est importé")
                }
                Err((written, RecordError::Store(StoreError::Partial { error, .. }))) => bail!(
                    "{} déclaration(s) écrite(s) (les premières par commune et par jour), puis : \
                        {error}. Relancez le même import : ce qui est déjà écrit sera reconnu comme \
                        inchangé",
                    done + written
                ),
                Err((index, error)) => {
                    let line = lines.get(index).copied().unwrap_or(0);
                    let changed = matches!(error, RecordError::Conflict { .. });
                    let what = if changed {
                        "la déclaration a changé pendant l'import".to_owned()
                    } else {
                        error.to_string()
                    };
                    if atomic {
                        bail!(
                            "ligne {line} : {what} ; rien n'est importé{}",
                            if changed { ", relancez l'import" } else { "" }
                        )
                    }
                    bail!(
                        "ligne {line} : {what} ; les {done} déclaration(s) qui la précèdent (par \
                         commune et par jour) sont importées{}",
                        if changed { ", relancez l'import" } else { "" }
                    )
                }
            }
            done += lines.len();
            progress(done, total);
        }
        Ok(())
    }
    .await;
    drop(received);
    let ended = ledger.end_bulk(written.is_ok()).await;
    written?;
    ended?;
    checker
        .await
        .context("la vérification des lots s'est arrêtée")?;
    Ok(summary)
}

/// A (commune, day) as one number that sorts as the pair does: the
/// commune's five ASCII bytes, then the day's number.
fn key(commune: &CommuneCode, date: NaiveDate) -> u64 {
    let code = commune
        .as_str()
        .bytes()
        .fold(0u64, |code, b| (code << 8) | u64::from(b));
    (code << 24) | u64::from(date.num_days_from_ce().unsigned_abs() & 0x00ff_ffff)
}

/// The (commune, day) of a [`key`].
fn unkey(key: u64) -> (String, NaiveDate) {
    let bytes = (key >> 24).to_be_bytes();
    let commune = String::from_utf8_lossy(&bytes[3..]).into_owned();
    let days = i32::try_from(key & 0x00ff_ffff).unwrap_or_default();
    let date = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or_default();
    (commune, date)
}

/// What reading a file gives: a (commune, day) with its first line, or a
/// problem with a line.
enum Item {
    Group(usize, Draft),
    Problem(usize, String),
}

/// The (commune, day)s of a `deces.csv`, one after the other: a row each in
/// the published shape, consecutive rows in the earlier one.
struct Groups<R: Read> {
    reader: csv::Reader<R>,
    shape: Shape,
    width: usize,
    record: csv::StringRecord,
    /// The (setting, count) cells of the row being read.
    cells: Vec<(String, String)>,
    line: usize,
    /// The first row of the next group (or a problem), read ahead.
    ahead: Option<Result<Group, (usize, String)>>,
    done: bool,
}

impl<R: Read> Groups<R> {
    fn new(input: R, rules: &Rules) -> anyhow::Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            // A row with too few or too many fields is a problem of its
            // line, listed with the others, not the end of the reading.
            .flexible(true)
            .from_reader(input);
        let headers = reader
            .headers()
            .context("impossible de lire l'en-tête du CSV")?
            .clone();
        Ok(Self {
            shape: shape(&headers, rules)?,
            width: headers.len(),
            reader,
            record: csv::StringRecord::new(),
            cells: Vec::new(),
            line: 1,
            ahead: None,
            done: false,
        })
    }

    /// Reads the next row: the end, a row that continues `group` (its
    /// cells added to it, with no copy of its day and commune), a row that
    /// begins another, or a problem.
    fn row(&mut self, group: Option<&mut Group>) -> anyhow::Result<Next> {
        self.line += 1;
        let line = self.line;
        if !self
            .reader
            .read_record(&mut self.record)
            .with_context(|| format!("ligne {line} : CSV illisible"))?
        {
            return Ok(Next::End);
        }
        let record = &self.record;
        // Every row has the header's fields (5 in the row-per-setting form).
        if record.len() != self.width {
            return Ok(Next::Problem(
                line,
                format!(
                    "ligne {line} : {} champs attendus, {} trouvés",
                    self.width,
                    record.len()
                ),
            ));
        }
        let (Some(date), Some(commune)) = (record.get(0), record.get(1)) else {
            return Ok(Next::Problem(
                line,
                format!("ligne {line} : {} champs attendus", self.width),
            ));
        };
        // Text cells were made safe for spreadsheets on export: read them back as typed.
        let cells = &mut self.cells;
        cells.clear();
        match &self.shape {
            Shape::Long => match (record.get(3), record.get(4)) {
                (Some(setting), Some(count)) => {
                    cells.push((read_cell(setting).to_owned(), count.to_owned()));
                }
                _ => {
                    return Ok(Next::Problem(
                        line,
                        format!("ligne {line} : {} champs attendus", self.width),
                    ))
                }
            },
            Shape::Wide(columns) => {
                cells.extend(
                    columns
                        .iter()
                        .zip(record.iter().skip(3))
                        .filter_map(|(setting, count)| {
                            setting.clone().map(|s| (s, count.to_owned()))
                        }),
                );
            }
        }
        match group {
            Some(group) if group.1 == date && group.2 == commune => {
                for (setting, count) in cells.drain(..) {
                    match group.3.entry(setting) {
                        std::collections::btree_map::Entry::Vacant(cell) => {
                            cell.insert(CountValue::Text(count));
                        }
                        std::collections::btree_map::Entry::Occupied(cell) => {
                            return Ok(Next::Problem(
                                line,
                                format!(
                                    "ligne {line} : le lieu `{}` figure deux fois pour {commune} \
                                     le {date}",
                                    cell.key()
                                ),
                            ));
                        }
                    }
                }
                Ok(Next::Continued)
            }
            _ => Ok(Next::Begins((
                line,
                date.to_owned(),
                commune.to_owned(),
                cells
                    .drain(..)
                    .map(|(s, n)| (s, CountValue::Text(n)))
                    .collect(),
            ))),
        }
    }
}

/// A (commune, day) being read: its first line, day, commune and counts.
type Group = (usize, String, String, BTreeMap<String, CountValue>);

/// What [`Groups::row`] read.
enum Next {
    End,
    Continued,
    Begins(Group),
    Problem(usize, String),
}

impl<R: Read> Iterator for Groups<R> {
    type Item = anyhow::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut group: Option<Group> = match self.ahead.take() {
            Some(Ok(group)) => Some(group),
            Some(Err((line, problem))) => return Some(Ok(Item::Problem(line, problem))),
            None => None,
        };
        loop {
            match self.row(group.as_mut()) {
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
                Ok(Next::End) => {
                    self.done = true;
                    break;
                }
                Ok(Next::Continued) => {}
                Ok(Next::Begins(next)) if group.is_none() => group = Some(next),
                Ok(Next::Begins(next)) => {
                    self.ahead = Some(Ok(next));
                    break;
                }
                Ok(Next::Problem(line, problem)) if group.is_none() => {
                    return Some(Ok(Item::Problem(line, problem)))
                }
                Ok(Next::Problem(line, problem)) => {
                    // The group first; the problem comes next.
                    self.ahead = Some(Err((line, problem)));
                    break;
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

#[cfg(test)]
mod tests {
    use super::*;
    use decompte_core::Commune;

    fn scope() -> Scope {
        Scope::from_communes(["56260", "2A004", "20001", "97101"].map(|code| {
            Commune {
                code: CommuneCode::parse(code).expect("code"),
                name: code.to_owned(),
                departement: CommuneCode::parse(code)
                    .expect("code")
                    .departement()
                    .to_owned(),
                population: 1000,
            }
        }))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2020-05-01T12:00:00Z")
            .expect("instant")
            .with_timezone(&Utc)
    }

    const HEADER: &str = "date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total\n";

    /// Keys sort as the (commune, day) pairs do as text, Corsica included,
    /// and give them back.
    #[test]
    fn keys_sort_as_the_stores_primary_key() {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("day");
        let mut pairs = vec![
            ("2A004", day("2020-03-02")),
            ("20001", day("2020-04-01")),
            ("97101", day("2020-03-01")),
            ("2A004", day("2020-03-01")),
            ("01001", day("2021-01-01")),
        ];
        let mut keys: Vec<u64> = pairs
            .iter()
            .map(|(c, d)| key(&CommuneCode::parse(c).expect("code"), *d))
            .collect();
        keys.sort_unstable();
        pairs.sort();
        let back: Vec<(String, NaiveDate)> = keys.into_iter().map(unkey).collect();
        let expected: Vec<(String, NaiveDate)> =
            pairs.into_iter().map(|(c, d)| (c.to_owned(), d)).collect();
        assert_eq!(back, expected);
    }

    /// A file in date order comes out by commune then day, each row's
    /// counts with it, a count too large for two bytes included.
    #[test]
    fn a_checked_file_is_sorted_and_keeps_every_count() {
        let rules = Rules {
            max_per_cell: 100_000,
            ..Rules::default()
        };
        let file = format!(
            "{HEADER}2020-04-01,56260,Vannes,1,2,3,4,5,15\n2020-04-01,2A004,Ajaccio,70000,0,0,0,65535,135535\n\
             2020-04-02,56260,Vannes,0,0,0,0,9,9\n2020-04-01,20001,X,0,0,0,0,0,0\n"
        );
        let checked = check(file.as_bytes(), &scope(), &rules, now()).expect("checked");
        assert_eq!(checked.len(), 4);
        let drafts: Vec<Draft> = checked.entries.iter().map(|e| checked.draft(e)).collect();
        let order: Vec<(&str, &str)> = drafts
            .iter()
            .map(|d| {
                (
                    d.commune.as_deref().unwrap_or(""),
                    d.date.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("20001", "2020-04-01"),
                ("2A004", "2020-04-01"),
                ("56260", "2020-04-01"),
                ("56260", "2020-04-02"),
            ]
        );
        let count = |d: &Draft, s: &str| match d.counts.get(s) {
            Some(CountValue::Text(n)) => n.clone(),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(count(&drafts[1], "hopital"), "70000");
        assert_eq!(count(&drafts[1], "autre"), "65535");
        assert_eq!(count(&drafts[2], "ehpad"), "2");
        assert_eq!(count(&drafts[3], "autre"), "9");
        // The row-per-setting form gives the same drafts.
        let mut long = String::from("date,code_commune,nom_commune,lieu,deces\n");
        for (setting, n) in [
            ("hopital", 1),
            ("ehpad", 2),
            ("esms", 3),
            ("domicile", 4),
            ("autre", 5),
        ] {
            long.push_str(&format!("2020-04-01,56260,Vannes,{setting},{n}\n"));
        }
        let checked = check(long.as_bytes(), &scope(), &rules, now()).expect("long form");
        assert_eq!(checked.draft(&checked.entries[0]), drafts[2]);
    }

    /// Problems are listed by line, duplicates (found after sorting) among
    /// the others, and counted beyond the twenty shown.
    #[test]
    fn problems_are_listed_by_line() {
        let mut file = String::from(HEADER);
        file.push_str("2020-04-01,56260,Vannes,0,0,0,0,0,0\n"); // line 2
        file.push_str("2020-04-02,56260,Vannes,-1,0,0,0,0,0\n"); // line 3
        file.push_str("2020-04-01,56260,Vannes,1,0,0,0,0,1\n"); // line 4, twice
        for day in 1..=25 {
            file.push_str(&format!("2020-03-{day:02},99999,Nulle,0,0,0,0,0,0\n"));
        }
        let refused = check(file.as_bytes(), &scope(), &Rules::default(), now())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            refused.starts_with("27 problème(s), rien n'est importé :\n"),
            "{refused}"
        );
        let lines: Vec<&str> = refused.lines().skip(1).collect();
        assert!(lines[0].starts_with("ligne 3 ("), "{refused}");
        assert_eq!(
            lines[1],
            "ligne 4 : 56260 le 2020-04-01 figure deux fois dans le fichier"
        );
        assert!(lines[2].starts_with("ligne 5 ("), "{refused}");
        assert_eq!(lines.len(), 21, "{refused}");
        assert_eq!(lines[20], "…");
    }

    #[test]
    fn a_row_with_too_few_or_too_many_fields_is_a_problem_of_its_line() {
        let mut file = String::from(HEADER);
        file.push_str("2020-04-01,56260,Vannes,0,0,0,0,0\n"); // line 2, one short
        file.push_str("2020-04-02,56260,Vannes,0,0,0,0,0,0,0\n"); // line 3, one more
        file.push_str("2020-04-03,56260,Vannes,-1,0,0,0,0,0\n"); // line 4
        let refused = check(file.as_bytes(), &scope(), &Rules::default(), now())
            .err()
            .expect("refused")
            .to_string();
        let lines: Vec<&str> = refused.lines().collect();
        assert_eq!(lines[0], "3 problème(s), rien n'est importé :", "{refused}");
        assert_eq!(lines[1], "ligne 2 : 9 champs attendus, 8 trouvés");
        assert_eq!(lines[2], "ligne 3 : 9 champs attendus, 10 trouvés");
        assert!(lines[3].starts_with("ligne 4 ("), "{refused}");
        // The same in the row-per-setting form.
        let long = "date,code_commune,nom_commune,lieu,deces\n\
                    2020-04-01,56260,Vannes,hopital,1,2\n\
                    2020-04-01,56260,Vannes,ehpad\n";
        let refused = check(long.as_bytes(), &scope(), &Rules::default(), now())
            .err()
            .expect("refused")
            .to_string();
        assert_eq!(
            refused,
            "2 problème(s), rien n'est importé :\nligne 2 : 5 champs attendus, 6 trouvés\n\
             ligne 3 : 5 champs attendus, 4 trouvés"
        );
    }

    /// `check_halves` of a text, written to a file.
    fn halves(text: &str) -> anyhow::Result<Option<Checked>> {
        let file = tempfile::NamedTempFile::new().expect("file");
        std::fs::write(file.path(), text).expect("written");
        let open = || Ok(std::fs::File::open(file.path())?);
        check_halves(&open, text.len() as u64, &scope(), &Rules::default(), now())
    }

    /// Each entry's line and draft, in order.
    fn listed(checked: &Checked) -> Vec<String> {
        checked
            .entries
            .iter()
            .map(|e| format!("{} {:?}", e.line, checked.draft(e)))
            .collect()
    }

    /// A file read in two halves gives what it gives read whole, in both
    /// shapes: the same (commune, day)s, lines and counts, and a (commune,
    /// day) given in both halves is refused with the same words. A file
    /// with a `"` or a problem is left to be read whole.
    #[test]
    fn a_file_read_in_halves_is_checked_as_a_whole() {
        let settings = ["hopital", "ehpad", "esms", "domicile", "autre"];
        let (mut wide, mut long) = (
            String::from(HEADER),
            String::from("date,code_commune,nom_commune,lieu,deces\n"),
        );
        for day in 1..=28 {
            for (c, commune) in ["56260", "2A004", "20001", "97101"].iter().enumerate() {
                let n: Vec<usize> = (0..5).map(|i| (day * 7 + i * 3 + c) % 5).collect();
                let total: usize = n.iter().sum();
                wide.push_str(&format!(
                    "2020-03-{day:02},{commune},X,{},{},{},{},{},{total}\n",
                    n[0], n[1], n[2], n[3], n[4]
                ));
                for (setting, n) in settings.iter().zip(&n) {
                    long.push_str(&format!("2020-03-{day:02},{commune},X,{setting},{n}\n"));
                }
            }
        }
        for (file, rows) in [(&wide, 1), (&long, 5)] {
            let whole = check(file.as_bytes(), &scope(), &Rules::default(), now()).expect("whole");
            let split = halves(file).expect("read").expect("in halves");
            assert_eq!(whole.len(), 112);
            assert_eq!(listed(&split), listed(&whole));
            // The first (commune, day) again at the end: found across the halves.
            let first: String = file
                .lines()
                .skip(1)
                .take(rows)
                .map(|l| format!("{l}\n"))
                .collect();
            let twice = format!("{file}{first}");
            let whole = check(twice.as_bytes(), &scope(), &Rules::default(), now())
                .err()
                .expect("refused whole")
                .to_string();
            let split = halves(&twice).err().expect("refused in halves").to_string();
            assert!(whole.contains("figure deux fois"), "{whole}");
            assert_eq!(split, whole);
        }
        let quoted = format!("{wide}2020-03-29,56260,\"Vannes\",0,0,0,0,0,0\n");
        assert!(halves(&quoted).expect("read").is_none());
        let wrong = format!("{wide}2020-03-29,56260,Vannes,-1,0,0,0,0,-1\n");
        assert!(halves(&wrong).expect("read").is_none());
    }
}
