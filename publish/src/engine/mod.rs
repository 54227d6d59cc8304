//! The publisher: one publication at a time, recorded in the store, that
//! redoes only what changed.
//!
//! A full publication reads the store one département at a time (the next
//! one read while the current one renders on every core), writes each
//! département's files as soon as they are rendered, then the whole-scope
//! data (composed by the sink from the départements' files), the setting
//! pages and the overview, made of the départements' [`Summary`]s, the
//! manifest, and last the [`State`] that lets the next publication start
//! from here. Memory holds one or two départements, never the country.
//!
//! After that, a publication reads only the reports written after the
//! store's [`ChangeMark`] it kept, and re-renders only the départements
//! they fall in: the pages of their communes, their page and data files, and
//! the scope's pages. A store that numbers its writes in commit order
//! (SQLite) gives exactly those, however many were written and whatever
//! instants they carry; one that marks by instant (DynamoDB) gives those
//! recorded since the last watermark less a margin, and the ones already
//! published there are recognised, not re-rendered. A new day re-renders
//! the pages that show recent completeness. A cold process (a new Lambda
//! instance) reads the state the last publication left among the
//! publisher's private files and goes on from its mark.
//!
//! Under the rule of small counts the timer publishes at most once per
//! [`RELEASE_EVERY_MINUTES`], and no instant of a declaration is published
//! (see [`crate::model::Protection`]).
//!
//! Split by concern: `state` (what a publication leaves for the next),
//! `writer` (files against the previous manifest), `departement` (one
//! département rendered), `fingerprint` (what rendered the site),
//! `priority` (rendering threads that yield to requests); the
//! orchestration is here.

mod departement;
mod fingerprint;
mod priority;
mod state;
mod writer;

pub use priority::render_in_background;
pub use state::{State, KEPT_DAYS};

use departement::{render_departement, render_patched, Origin};
use fingerprint::fingerprint;
use state::{recent_key, release_period};
use writer::Writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{CommuneCode, Report};
use decompte_store::{
    ChangeMark, Publication, PublicationRequest, PublicationStatus, Store, StoreError,
};
use rayon::prelude::*;

use crate::model::{DayCounts, Kept, Summary};
use crate::paths;
use crate::render::{DataPart, Renderer, SiteConfig};
use crate::{cdn, Cdn, Manifest, ManifestEntry, Outcome, Progress, PublishError, Sink, MANIFEST};

/// The name of the publisher's [`State`] among its private files
/// ([`Sink::write_private`]), out of the public site: it lists the reports
/// just published with their communes, days, versions and instants.
pub const STATE: &str = "publication-state.json.gz";

/// Who asked for the publications the timer makes, in their records.
pub const AUTOMATIC: &str = "automatique";

/// Under the rule of small counts, how often the timer releases the
/// figures: at most one publication per period of this many minutes (the
/// first tick after each hour), so that a change of a département's day
/// gathers the declarations of the hour, not one commune's. The cost is
/// freshness (an hour at most), written on the methodology page.
pub const RELEASE_EVERY_MINUTES: i64 = 60;

/// How long a publication spends at most writing again the data files of
/// départements whose pages were patched ([`State::stale`]), the oldest
/// first (at least one a publication): during a national morning every
/// département changes between two publications, and its data files (a
/// year of its communes, megabytes) would cost a hundred times its pages.
/// With few départements, or when the declarations stop, they are all
/// written by the same publication as the pages, or the next.
pub const DATA_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

/// How often, at most, the whole-scope data files (the country's, hundreds
/// of megabytes) are composed again from the départements' while some
/// départements' data files still wait: when none waits, at once.
pub const COMPOSE_EVERY_SECONDS: i64 = 60;

/// What a publication renders.
struct Plan {
    /// Départements to read and render; `Some(communes)`: only those pages
    /// among its communes (its own page and data files always).
    read: Vec<(String, Option<BTreeSet<String>>)>,
    /// Départements whose page only is rendered again, from their summary
    /// (a new day moves the completeness they show).
    pages: Vec<String>,
    /// The reports recorded since the last publication, by département.
    changes: BTreeMap<String, Vec<(CommuneCode, DayCounts)>>,
    full: bool,
}

/// The pages of the départements of `summaries`, rendered again on every
/// core from their summaries (a new day moves the week they show).
async fn departement_pages(
    config: Arc<SiteConfig>,
    today: NaiveDate,
    demo: bool,
    summaries: Vec<Summary>,
) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    tokio::task::spawn_blocking(move || {
        let renderer = Renderer::new(&config, today, demo);
        summaries
            .par_iter()
            .map(|s| {
                renderer
                    .departement_page(s)
                    .map(|bytes| (paths::departement(&s.code), bytes))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| PublishError::Task(e.to_string()))?
    .map_err(PublishError::from)
}

/// Where a publication's time went, département after département.
#[derive(Default)]
struct Laps {
    waiting: std::time::Duration,
    rendering: std::time::Duration,
    writing: std::time::Duration,
}

/// The time since `clock`, which starts again.
fn lap(clock: &mut std::time::Instant) -> std::time::Duration {
    let elapsed = clock.elapsed();
    *clock = std::time::Instant::now();
    elapsed
}

/// The scope's pages, from the départements' summaries; the overview last.
async fn write_scope_pages(
    writer: &mut Writer,
    config: &Arc<SiteConfig>,
    state: &State,
    today: NaiveDate,
    demo: bool,
) -> Result<(), PublishError> {
    let summaries: Vec<Summary> = state.summaries.values().cloned().collect();
    let config = Arc::clone(config);
    let pages = tokio::task::spawn_blocking(move || {
        Renderer::new(&config, today, demo).scope_pages(&summaries)
    })
    .await
    .map_err(|e| PublishError::Task(e.to_string()))??;
    writer.put_all(pages).await
}

/// The whole-scope data with several départements: their files composed
/// by the sink.
async fn compose_scope_data(
    writer: &mut Writer,
    renderer: &Renderer<'_>,
    scope: &decompte_core::Scope,
) -> Result<(), PublishError> {
    let (head, head_gz) = renderer.data_heads();
    let (mut csv, mut gz) = (Vec::new(), Vec::new());
    for code in scope.departement_codes() {
        let [part, part_gz, _] = paths::departement_data(code);
        csv.push((part, head.len()));
        gz.push((part_gz, head_gz.len()));
    }
    writer
        .compose([
            (paths::DATA_CSV, head, &csv),
            (paths::DATA_CSV_GZ, head_gz, &gz),
        ])
        .await
}

/// How a run ended: done, or to be done again in full because the
/// demonstration banner appeared or went (every page shows it).
enum Run {
    Done(Outcome, State),
    BannerChanged(State),
}

/// A département rendered: its files, its summary, its part of the
/// whole-scope data (none when its data files wait), what it published
/// (for the watermark) and its days to keep.
struct Rendered {
    code: String,
    files: Vec<(String, Vec<u8>)>,
    summary: Summary,
    data: Option<DataPart>,
    seen: Vec<(CommuneCode, NaiveDate, u32, DateTime<Utc>)>,
    kept: Option<Kept>,
}

/// What the départements of a publication gave: their parts of the
/// whole-scope data with one département, how many wrote their data files.
#[derive(Default)]
struct Written {
    parts: Vec<DataPart>,
    data: usize,
}

/// What a publication takes from `changes` for the watermark, for the
/// département `code`.
fn recorded(
    changes: &mut BTreeMap<String, Vec<(CommuneCode, DayCounts)>>,
    code: &str,
) -> Vec<(CommuneCode, NaiveDate, u32, DateTime<Utc>)> {
    changes
        .remove(code)
        .unwrap_or_default()
        .into_iter()
        .map(|(commune, day)| (commune, day.date, day.version, day.recorded_at))
        .collect()
}

/// How many of the latest publication records a lease holder looks through
/// for queued ones.
const QUEUED_LOOKBACK: usize = 20;

/// Runs publications: one at a time, recorded in the store.
pub struct Publisher {
    store: Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    cdn: Option<Arc<dyn Cdn>>,
    config: Arc<SiteConfig>,
    fingerprint: String,
    /// Where "now" comes from for the records of publications.
    clock: Arc<dyn decompte_core::clock::Clock>,
    /// Held while a publication runs; what the last one published.
    running: tokio::sync::Mutex<Option<State>>,
    /// See [`DATA_BUDGET`].
    data_budget: std::time::Duration,
    /// Keeps the départements it renders for the next publication (not a
    /// process that publishes once).
    keeping: std::sync::atomic::AtomicBool,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, sink: Arc<dyn Sink>, config: SiteConfig) -> Self {
        let fingerprint = fingerprint(&config);
        Self {
            store,
            sink,
            cdn: None,
            config: Arc::new(config),
            fingerprint,
            clock: Arc::new(decompte_core::clock::SystemClock),
            running: tokio::sync::Mutex::new(None),
            data_budget: DATA_BUDGET,
            keeping: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether to keep the départements rendered in memory for the next
    /// publication (see [`Kept`]): not for a process that publishes once
    /// (`decompte publish`), where they would only add to its peak.
    pub fn set_keeping(&self, keeping: bool) {
        self.keeping
            .store(keeping, std::sync::atomic::Ordering::Relaxed);
    }

    /// The same publisher with another [`DATA_BUDGET`] (zero: one
    /// département's data files a publication).
    pub fn with_data_budget(mut self, budget: std::time::Duration) -> Self {
        self.data_budget = budget;
        self
    }

    /// Some data files lag the pages (see [`DATA_BUDGET`]): another
    /// publication is due soon, even with no new report.
    pub async fn pending(&self) -> bool {
        self.running
            .lock()
            .await
            .as_ref()
            .is_some_and(State::pending)
    }

    /// Whether the site holds a publication already (its manifest): a
    /// process that restarts serves it while it publishes again.
    pub async fn has_published(&self) -> bool {
        matches!(self.sink.read(MANIFEST).await, Ok(Some(_)))
    }

    /// The same publisher going by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn decompte_core::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the publisher's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Invalidates what each publication changed in `cdn`, after writing it.
    pub fn with_cdn(mut self, cdn: Option<Arc<dyn Cdn>>) -> Self {
        self.cdn = cdn;
        self
    }

    pub fn config(&self) -> &SiteConfig {
        &self.config
    }

    /// Reads every current report, renders and writes what changed. Never runs
    /// twice at once. This is the prefecture's "republish": it always reads the
    /// whole store.
    pub async fn publish(&self, now: DateTime<Utc>) -> Result<Outcome, PublishError> {
        self.publish_reporting(now, &|_, _| {}).await
    }

    /// [`Publisher::publish`], telling `progress` how many départements are
    /// published, out of how many (for the command line's progress bar).
    pub async fn publish_reporting(
        &self,
        now: DateTime<Utc>,
        progress: Progress<'_>,
    ) -> Result<Outcome, PublishError> {
        let mut last = self.running.lock().await;
        let previous = match last.take() {
            Some(state) => Some(state),
            None => self.stored_state().await,
        };
        let result = self.full(previous, now, progress).await;
        self.settle(&mut last, result)
    }

    /// The timer's call: publishes only what changed since the last
    /// publication (resuming from the state it left, in a new process), and
    /// nothing if no report is new and the day is the same.
    /// [`Publisher::publish_if_changed`] now, then again while data files
    /// wait ([`Publisher::pending`]), for at most `within`: for a run that
    /// does not come back at once (a scheduled function, a run once), so
    /// that they do not wait for the next change or the next tick. What
    /// every publication of the run wrote, or `None` if nothing changed.
    pub async fn publish_settled(
        &self,
        within: std::time::Duration,
    ) -> Result<Option<Outcome>, PublishError> {
        let started = std::time::Instant::now();
        let Some(mut outcome) = self.publish_if_changed(self.now()).await? else {
            return Ok(None);
        };
        while started.elapsed() < within && self.pending().await {
            let Some(more) = self.publish_if_changed(self.now()).await? else {
                break;
            };
            outcome.absorb(more);
        }
        Ok(Some(outcome))
    }

    pub async fn publish_if_changed(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, PublishError> {
        let mut last = self.running.lock().await;
        let state = match last.take() {
            Some(state) => Some(state),
            None => self
                .stored_state()
                .await
                .filter(|s| s.fingerprint == self.fingerprint),
        };
        let released_this_period = state
            .as_ref()
            .and_then(|s| s.published_at)
            .is_some_and(|at| release_period(at) == release_period(now));
        if self.config.small_counts.is_some() && released_this_period {
            *last = state;
            return Ok(None);
        }
        let Some(state) = state else {
            return self.full_recorded(&mut last, None, now).await;
        };
        let current = match self.store.change_mark(now).await {
            Ok(current) => current,
            Err(error) => {
                *last = Some(state);
                return Err(error.into());
            }
        };
        // A state without a mark, or with one of another store — of another
        // kind, or numbered less far than the mark (a store copied into
        // another, `decompte store copy`, numbers its writes afresh): start
        // over.
        let mark = match (state.mark, current) {
            (Some(ChangeMark::Sequence(n)), ChangeMark::Sequence(last)) if last >= n => {
                ChangeMark::Sequence(n)
            }
            // By instant, from the watermark (what was published).
            (Some(ChangeMark::Instant(_)), ChangeMark::Instant(_)) => {
                ChangeMark::Instant(state.watermark.unwrap_or(DateTime::<Utc>::MIN_UTC))
            }
            _ => return self.full_recorded(&mut last, Some(state), now).await,
        };
        let today = self.config.scope.today(now);
        if mark == current && state.today == today && !state.pending() {
            *last = Some(state);
            return Ok(None);
        }
        let read = match self.store.changes_after(mark).await {
            Ok(read) => read,
            Err(error) => {
                *last = Some(state);
                return Err(error.into());
            }
        };
        let new: Vec<&Report> = read
            .reports
            .iter()
            .filter(|r| {
                !state
                    .recent
                    .contains_key(&recent_key(&r.commune, r.date, r.version))
            })
            .filter(|r| self.config.scope.contains(&r.commune))
            .collect();
        if new.is_empty() && state.today == today && !state.pending() {
            let mut state = state;
            state.mark = Some(read.mark);
            *last = Some(state);
            return Ok(None);
        }
        let plan = self.plan_of(&new, state.today != today);
        let mut state = state;
        state.mark = Some(read.mark);
        let started = self.now();
        let result = match self.run(state, plan, today, now, &|_, _| {}).await {
            Ok(Run::Done(outcome, state)) => Ok((outcome, state)),
            Ok(Run::BannerChanged(state)) => self.full(Some(state), now, &|_, _| {}).await,
            Err(error) => Err(error),
        };
        let outcome = self.settle(&mut last, result)?;
        self.record_automatic(started, &outcome).await;
        Ok(Some(outcome))
    }

    /// A full publication the timer makes, recorded.
    async fn full_recorded(
        &self,
        last: &mut Option<State>,
        state: Option<State>,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, PublishError> {
        let started = self.now();
        let result = self.full(state, now, &|_, _| {}).await;
        let outcome = self.settle(last, result)?;
        self.record_automatic(started, &outcome).await;
        Ok(Some(outcome))
    }

    /// What an incremental publication does for `new` reports: read again
    /// the départements they fall in (only their communes change), and on
    /// a new day render the pages of the others too (they show the week).
    fn plan_of(&self, new: &[&Report], new_day: bool) -> Plan {
        let mut dirty: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut changes: BTreeMap<String, Vec<(CommuneCode, DayCounts)>> = BTreeMap::new();
        for report in new {
            let departement = report.commune.departement().to_owned();
            dirty
                .entry(departement.clone())
                .or_default()
                .insert(report.commune.as_str().to_owned());
            changes.entry(departement).or_default().push((
                report.commune.clone(),
                DayCounts::of(report, &self.config.settings),
            ));
        }
        let pages = if new_day {
            self.config
                .scope
                .departement_codes()
                .filter(|d| !dirty.contains_key(*d))
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        Plan {
            read: dirty.into_iter().map(|(d, c)| (d, Some(c))).collect(),
            pages,
            changes,
            full: false,
        }
    }

    /// Records a publication the timer made (new declarations), so that the
    /// prefecture page can say how fresh the public site is. Not recording
    /// it does not fail the publication.
    async fn record_automatic(&self, started: DateTime<Utc>, outcome: &Outcome) {
        self.record("Nouvelles déclarations", started, outcome)
            .await;
    }

    /// Records a publication that ran outside a request (at start, from the
    /// command line, on the timer) for the prefecture page; nothing if it
    /// changed nothing. Not recording it does not fail the publication.
    pub async fn record(&self, reason: &str, started: DateTime<Utc>, outcome: &Outcome) {
        if outcome.files_changed() == 0 {
            return;
        }
        let request = PublicationRequest {
            reason: reason.into(),
            requested_by: AUTOMATIC.into(),
            publication_id: None,
            requested_at: None,
        };
        let mut publication = Publication::queued(&request, Publication::new_id(), started);
        publication.status = PublicationStatus::Succeeded;
        publication.started_at = Some(started);
        publication.finished_at = Some(self.now());
        publication.files_changed =
            Some(u32::try_from(outcome.files_changed()).unwrap_or(u32::MAX));
        if let Err(error) = self.store.insert_publication(&publication).await {
            tracing::warn!(%error, "could not record an automatic publication");
        }
    }

    /// Keeps the state of a publication that succeeded; after a failure,
    /// the next one starts again from the store.
    fn settle(
        &self,
        last: &mut Option<State>,
        result: Result<(Outcome, State), PublishError>,
    ) -> Result<Outcome, PublishError> {
        match result {
            Ok((outcome, state)) => {
                *last = Some(state);
                Ok(outcome)
            }
            Err(error) => {
                *last = None;
                Err(error)
            }
        }
    }

    /// The state the last publication left in the sink, if it is readable.
    async fn stored_state(&self) -> Option<State> {
        let Some(bytes) = self.sink.read_private(STATE).await.ok().flatten() else {
            // Earlier versions kept the state in the public site: a
            // process that finds none where it belongs removes that copy.
            if let Err(error) = self.sink.delete(STATE).await {
                tracing::warn!(%error, "could not remove the state left in the public site");
            }
            return None;
        };
        let mut state = State::from_bytes(&bytes)?;
        let manifest: Manifest =
            serde_json::from_slice(&self.sink.read(MANIFEST).await.ok().flatten()?).ok()?;
        state.manifest = manifest
            .files
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect();
        Some(state)
    }

    /// Every département read and rendered.
    async fn full(
        &self,
        previous: Option<State>,
        now: DateTime<Utc>,
        progress: Progress<'_>,
    ) -> Result<(Outcome, State), PublishError> {
        // Taken before anything is read: whatever commits later is read by
        // the next publication.
        let mark = self.store.change_mark(now).await?;
        let today = self.config.scope.today(now);
        let plan = || Plan {
            read: self
                .config
                .scope
                .departement_codes()
                .map(|d| (d.to_owned(), None))
                .collect(),
            pages: Vec::new(),
            changes: BTreeMap::new(),
            full: true,
        };
        let demo = previous.as_ref().is_some_and(|s| s.demo);
        let manifest = match previous {
            Some(state) => state.manifest,
            None => self.stored_manifest().await,
        };
        let start = |demo: bool, manifest: BTreeMap<String, ManifestEntry>| State {
            fingerprint: self.fingerprint.clone(),
            today,
            watermark: None,
            mark: Some(mark),
            published_at: None,
            recent: BTreeMap::new(),
            demo,
            summaries: BTreeMap::new(),
            stale: BTreeMap::new(),
            compose_pending: false,
            composed_at: None,
            manifest,
            kept: Vec::new(),
        };
        match self
            .run(start(demo, manifest), plan(), today, now, progress)
            .await?
        {
            Run::Done(outcome, state) => Ok((outcome, state)),
            // The banner appeared or went: render everything again with it.
            Run::BannerChanged(state) => {
                match self
                    .run(
                        start(state.demo, state.manifest),
                        plan(),
                        today,
                        now,
                        progress,
                    )
                    .await?
                {
                    Run::Done(outcome, state) => Ok((outcome, state)),
                    Run::BannerChanged(_) => Err(PublishError::Task(
                        "the demonstration flag changed twice during one publication".into(),
                    )),
                }
            }
        }
    }

    async fn stored_manifest(&self) -> BTreeMap<String, ManifestEntry> {
        // An unreadable manifest means "publish everything", never a failure.
        match self.sink.read(MANIFEST).await {
            Ok(Some(bytes)) => serde_json::from_slice::<Manifest>(&bytes)
                .map(|m| m.files.into_iter().map(|f| (f.path.clone(), f)).collect())
                .unwrap_or_default(),
            _ => BTreeMap::new(),
        }
    }

    /// Renders and writes what `plan` says, on top of `state`.
    async fn run(
        &self,
        mut state: State,
        plan: Plan,
        today: NaiveDate,
        now: DateTime<Utc>,
        progress: Progress<'_>,
    ) -> Result<Run, PublishError> {
        let started = std::time::Instant::now();
        let had_manifest = !state.manifest.is_empty();
        let previous = std::mem::take(&mut state.manifest);
        let mut writer = Writer::new(Arc::clone(&self.sink), previous, had_manifest, plan.full);
        let config = Arc::clone(&self.config);
        let demo = state.demo;
        let multi = config.by_departement();
        let renderer = Renderer::new(&config, today, demo);
        // The stylesheet first: every page links to it.
        writer.put_all(renderer.stylesheet()).await?;

        let total = plan.read.len();
        let (mut written, laps) = self
            .departements(
                &mut state,
                &mut writer,
                plan.read,
                plan.changes,
                (today, now),
                progress,
            )
            .await?;
        self.refresh_data(&mut state, &mut writer, today, &mut written)
            .await?;
        let departements_done = std::time::Instant::now();
        let demo_now = state.summaries.values().any(|s| s.demo);
        if demo_now != demo {
            // Rendered with the wrong banner: the caller renders everything again.
            state.demo = demo_now;
            writer.flush().await?;
            state.manifest = writer.next;
            return Ok(Run::BannerChanged(state));
        }

        // A new day: the département pages that were not read show the new week.
        if multi && !plan.pages.is_empty() {
            let summaries: Vec<Summary> = plan
                .pages
                .iter()
                .filter_map(|d| state.summaries.get(d).cloned())
                .collect();
            let files = departement_pages(Arc::clone(&config), today, demo, summaries).await?;
            writer.put_all(files).await?;
        }
        if !multi {
            if !written.parts.is_empty() {
                writer.put_all(renderer.scope_data(&written.parts)).await?;
            }
        } else {
            state.compose_pending |= written.data > 0;
            let due = state.composed_at.is_none_or(|at| {
                now.signed_duration_since(at).num_seconds() >= COMPOSE_EVERY_SECONDS
            });
            if state.compose_pending && (state.stale.is_empty() || due) {
                compose_scope_data(&mut writer, &renderer, &config.scope).await?;
                state.compose_pending = false;
                state.composed_at = Some(now);
            }
        }
        write_scope_pages(&mut writer, &config, &state, today, demo).await?;

        // Under the rule of small counts, the instant of the last
        // declaration is not published (see `Protection`).
        let watermark = state.watermark.filter(|_| config.commune_figures());
        let (mut outcome, manifest) = writer.finish(plan.full, now, watermark).await?;
        tracing::info!(
            departements = total,
            written = outcome.written.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            waiting_for_the_store_ms = laps.waiting.as_millis() as u64,
            rendering_ms = laps.rendering.as_millis() as u64,
            writing_ms = laps.writing.as_millis() as u64,
            scope_ms = departements_done.elapsed().as_millis() as u64,
            data_files_waiting = state.stale.len(),
            data_files_late_s = state
                .stale
                .values()
                .min()
                .map_or(0, |since| now.signed_duration_since(*since).num_seconds()),
            "publication written"
        );
        state.today = today;
        state.published_at = Some(now);
        state.manifest = manifest;
        if outcome.written.iter().any(|p| p == MANIFEST) || !had_manifest {
            self.sink.write_private(STATE, &state.to_bytes()?).await?;
        }
        self.invalidate(&mut outcome, now).await;
        Ok(Run::Done(outcome, state))
    }

    /// Renders and writes the départements of `read`, one after the other:
    /// those kept from the last publication with `changes` applied (only
    /// their pages when `read` names communes and nothing is masked: their
    /// data files wait, [`State::stale`]), the others read (the next one
    /// while this one renders) and rendered whole. Returns the parts of the
    /// whole-scope data when the scope is one département (they are the
    /// whole-scope file), and where the time went.
    async fn departements(
        &self,
        state: &mut State,
        writer: &mut Writer,
        read: Vec<(String, Option<BTreeSet<String>>)>,
        mut changes: BTreeMap<String, Vec<(CommuneCode, DayCounts)>>,
        (today, now): (NaiveDate, DateTime<Utc>),
        progress: Progress<'_>,
    ) -> Result<(Written, Laps), PublishError> {
        let demo = state.demo;
        // The départements kept, the reports recorded since applied; one a
        // report does not fit is read again.
        let mut kept: BTreeMap<String, Kept> = BTreeMap::new();
        for (code, _) in &read {
            let Some(mut days) = state.take_kept(code) else {
                continue;
            };
            let applied = changes
                .get(code)
                .into_iter()
                .flatten()
                .try_for_each(|(commune, day)| days.apply(commune, day));
            if applied.is_ok() {
                kept.insert(code.clone(), days);
            }
        }
        let total = read.len();
        let (mut written, mut laps) = (Written::default(), Laps::default());
        let mut clock = std::time::Instant::now();
        // Those whose pages only are rendered, all at once on every core
        // (each is a few pages: one at a time would leave cores idle).
        let (patch, read): (Vec<_>, Vec<_>) = read.into_iter().partition(|(code, communes)| {
            communes.is_some() && kept.contains_key(code) && self.config.protection().is_none()
        });
        let patch: Vec<(String, BTreeSet<String>, Kept)> = patch
            .into_iter()
            .filter_map(|(code, communes)| {
                let days = kept.remove(&code)?;
                Some((code, communes.unwrap_or_default(), days))
            })
            .collect();
        let patched = patch.len();
        let config = Arc::clone(&self.config);
        let rendered = tokio::task::spawn_blocking(move || {
            patch
                .into_par_iter()
                .map(|(code, communes, days)| {
                    render_patched(&config, today, demo, &code, &communes, days)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| PublishError::Task(e.to_string()))??;
        laps.rendering += lap(&mut clock);
        for rendered in rendered {
            let mut rendered = match rendered {
                Ok(rendered) => rendered,
                // Not patchable after all: never, nothing is masked here.
                Err(_) => {
                    return Err(PublishError::Task(
                        "a département to patch could not be".into(),
                    ))
                }
            };
            rendered.seen = recorded(&mut changes, &rendered.code);
            writer.put_all(std::mem::take(&mut rendered.files)).await?;
            self.took(state, &mut written, rendered, now);
        }
        laps.writing += lap(&mut clock);
        progress(patched, total);

        let to_read: Vec<String> = read
            .iter()
            .map(|(code, _)| code.clone())
            .filter(|code| !kept.contains_key(code))
            .collect();
        let (reader, mut receiver) = self.read_ahead(to_read);
        for (done, (code, communes)) in (patched..).zip(read) {
            let recorded = recorded(&mut changes, &code);
            let config = Arc::clone(&self.config);
            // Rendered whole (under the rule of small counts, or every
            // commune's page): from what is kept, or read.
            let (source, recorded) = match kept.remove(&code) {
                Some(days) => (Origin::Kept(days), recorded),
                None => match receiver.recv().await {
                    Some(tallies) => (Origin::Read(tallies?), Vec::new()),
                    None => return Err(PublishError::Task("the store reader stopped".into())),
                },
            };
            laps.waiting += lap(&mut clock);
            let mut rendered = tokio::task::spawn_blocking(move || {
                render_departement(&config, today, demo, &code, communes.as_ref(), source)
            })
            .await
            .map_err(|e| PublishError::Task(e.to_string()))??;
            if !recorded.is_empty() {
                rendered.seen = recorded;
            }
            laps.rendering += lap(&mut clock);
            writer.put_all(std::mem::take(&mut rendered.files)).await?;
            laps.writing += lap(&mut clock);
            self.took(state, &mut written, rendered, now);
            progress(done + 1, total);
        }
        reader
            .await
            .map_err(|e| PublishError::Task(e.to_string()))?;
        Ok((written, laps))
    }

    /// What a rendered département leaves in `state` and `written`.
    fn took(
        &self,
        state: &mut State,
        written: &mut Written,
        rendered: Rendered,
        now: DateTime<Utc>,
    ) {
        state.saw(&rendered.seen);
        match rendered.data {
            Some(data) => {
                state.stale.remove(&rendered.code);
                written.data += 1;
                if !self.config.by_departement() {
                    written.parts.push(data);
                }
            }
            None => {
                state.stale.entry(rendered.code.clone()).or_insert(now);
            }
        }
        if let Some(days) = rendered
            .kept
            .filter(|_| self.keeping.load(std::sync::atomic::Ordering::Relaxed))
        {
            state.keep(&rendered.code, days);
        }
        state.summaries.insert(rendered.code, rendered.summary);
    }

    /// Writes again the data files of the départements whose pages were
    /// patched, the longest waiting first, for [`DATA_BUDGET`] (at least
    /// one): from their days kept, or read again from the store (then
    /// their pages with them).
    async fn refresh_data(
        &self,
        state: &mut State,
        writer: &mut Writer,
        today: NaiveDate,
        written: &mut Written,
    ) -> Result<(), PublishError> {
        let started = std::time::Instant::now();
        let mut waiting: Vec<(DateTime<Utc>, String)> = state
            .stale
            .iter()
            .map(|(code, since)| (*since, code.clone()))
            .collect();
        waiting.sort();
        let demo = state.demo;
        for (at, (_, code)) in waiting.into_iter().enumerate() {
            if at > 0 && started.elapsed() >= self.data_budget {
                break;
            }
            let config = Arc::clone(&self.config);
            let rendered = match state.take_kept(&code) {
                Some(days) => tokio::task::spawn_blocking(move || {
                    let reports = days.reports(&code, &config.scope);
                    let view = config.publishable(&reports);
                    let data = Renderer::new(&config, today, demo).departement_data(&view)?;
                    let summary = view.into_summary();
                    Ok::<_, PublishError>(Rendered {
                        code,
                        files: data.files,
                        summary,
                        data: Some(data.data),
                        seen: Vec::new(),
                        kept: Some(days),
                    })
                })
                .await
                .map_err(|e| PublishError::Task(e.to_string()))??,
                None => {
                    let keys: Vec<String> = config.settings.keys().map(str::to_owned).collect();
                    let tallies = self
                        .store
                        .current_tallies(&code, &keys, decompte_core::report::DEMONSTRATION)
                        .await?;
                    tokio::task::spawn_blocking(move || {
                        render_departement(
                            &config,
                            today,
                            demo,
                            &code,
                            Some(&BTreeSet::new()),
                            Origin::Read(tallies),
                        )
                    })
                    .await
                    .map_err(|e| PublishError::Task(e.to_string()))??
                }
            };
            let mut rendered = rendered;
            writer.put_all(std::mem::take(&mut rendered.files)).await?;
            self.took(state, written, rendered, DateTime::<Utc>::MIN_UTC);
        }
        Ok(())
    }

    /// Reads the current tallies of `departements` one after the other, each
    /// sent as soon as it is read (the next read while this one renders).
    fn read_ahead(
        &self,
        departements: Vec<String>,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::mpsc::Receiver<Result<Vec<decompte_store::Tally>, StoreError>>,
    ) {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let store = Arc::clone(&self.store);
        let keys: Vec<String> = self.config.settings.keys().map(str::to_owned).collect();
        let reader = tokio::spawn(async move {
            for code in departements {
                let tallies = store
                    .current_tallies(&code, &keys, decompte_core::report::DEMONSTRATION)
                    .await;
                if sender.send(tallies).await.is_err() {
                    break;
                }
            }
        });
        (reader, receiver)
    }

    async fn invalidate(&self, outcome: &mut Outcome, now: DateTime<Utc>) {
        let Some(cdn) = &self.cdn else {
            return;
        };
        let paths = cdn::invalidation_paths(outcome);
        if paths.is_empty() {
            return;
        }
        let reference = format!("decompte-{}", now.timestamp_nanos_opt().unwrap_or(0));
        match cdn.invalidate(&paths, &reference).await {
            Ok(id) => {
                tracing::info!(%id, paths = paths.len(), "CDN invalidation sent");
                outcome.invalidated = paths;
            }
            // The site is whole and pages expire within a minute: not a failed publication.
            Err(error) => tracing::warn!(%error, "CDN invalidation failed"),
        }
    }

    /// Records a queued publication and returns it; run it with [`Publisher::run_recorded`].
    pub async fn request(
        &self,
        requested_by: &str,
        reason: &str,
        id: String,
        now: DateTime<Utc>,
    ) -> Result<Publication, StoreError> {
        let request = PublicationRequest {
            reason: reason.into(),
            requested_by: requested_by.into(),
            publication_id: None,
            requested_at: None,
        };
        let publication = Publication::queued(&request, id, now);
        self.store.insert_publication(&publication).await?;
        Ok(publication)
    }

    /// Forgets what the last publication of this process left in memory:
    /// the next one resumes from the state in the sink, which another
    /// replica may have published since (for a replica taking the
    /// publisher's lease).
    pub async fn forget(&self) {
        *self.running.lock().await = None;
    }

    /// Runs the publications queued in the store (by a replica that does
    /// not hold the publisher's lease), oldest first; returns how many ran
    /// here.
    pub async fn run_queued(&self) -> Result<usize, StoreError> {
        let mut queued: Vec<Publication> = self
            .store
            .publications(QUEUED_LOOKBACK)
            .await?
            .into_iter()
            .filter(|p| p.status == PublicationStatus::Queued)
            .collect();
        queued.reverse();
        let mut ran = 0;
        for publication in queued {
            if self.run_recorded(publication).await.status != PublicationStatus::Queued {
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Runs a recorded publication and records how it ended; does nothing
    /// (and returns it still queued) if another process took it first.
    pub async fn run_recorded(&self, publication: Publication) -> Publication {
        let queued = publication.clone();
        let mut publication = publication;
        publication.status = PublicationStatus::Running;
        publication.started_at = Some(self.now());
        match self.store.claim_publication(&publication).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(id = %publication.id, "publication run by another process");
                return queued;
            }
            Err(error) => {
                tracing::warn!(%error, id = %publication.id, "could not mark publication as \
                    running");
            }
        }
        match self.publish(self.now()).await {
            Ok(outcome) => {
                publication.status = PublicationStatus::Succeeded;
                publication.files_changed =
                    Some(u32::try_from(outcome.files_changed()).unwrap_or(u32::MAX));
                tracing::info!(
                    id = %publication.id,
                    files_changed = outcome.files_changed(),
                    "publication succeeded",
                );
            }
            Err(error) => {
                publication.status = PublicationStatus::Failed;
                publication.error = Some(error.for_people());
                tracing::error!(id = %publication.id, %error, "publication failed");
            }
        }
        publication.finished_at = Some(self.now());
        if let Err(error) = self.store.update_publication(&publication).await {
            tracing::warn!(%error, id = %publication.id, "could not record the end of a \
                publication");
        }
        publication
    }
}
