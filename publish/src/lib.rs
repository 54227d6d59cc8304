//! The static site generator of decompte.
//!
//! Architecture invariant: `publish` reads the store and writes to a [`Sink`];
//! it never writes to the store except publication records, and it knows
//! nothing of HTTP. A publication is a pipeline: read current reports →
//! [`render`](render::render) the whole site in memory → compare with the
//! previous `manifest.json` → write only what changed (assets, then data, then
//! pages, index last) → delete stale files → write the manifest last. A
//! publication that fails half-way leaves the previous manifest in place, and
//! every page it names still exists.

pub mod cdn;
pub mod charts;
pub mod headers;
pub mod model;
pub mod opendata;
pub mod render;
pub mod sink;
pub mod trigger;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{CommuneCode, Report};
use decompte_store::{
    Publication, PublicationRequest, PublicationStatus, ReportQuery, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use cdn::Cdn;
pub use render::{RenderError, RenderedSite, SiteConfig, DEMO_AUTHOR};
#[cfg(any(test, feature = "testing"))]
pub use sink::MemorySink;
pub use sink::{FolderSink, Sink, SinkError};
pub use trigger::{InProcessTrigger, PublishTrigger};

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// `manifest.json`: every published file with its hash and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// When the content last changed.
    pub generated_at: DateTime<Utc>,
    /// The latest `recorded_at` among the published reports.
    pub watermark: Option<DateTime<Utc>>,
    pub files: Vec<ManifestEntry>,
}

impl Manifest {
    fn hashes(&self) -> BTreeMap<&str, &str> {
        self.files
            .iter()
            .map(|f| (f.path.as_str(), f.sha256.as_str()))
            .collect()
    }
}

/// What a publication did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Files written, in the order they were written (the manifest last, if written).
    pub written: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: usize,
    /// Paths the CDN was told to drop (empty without a CDN, or if it failed).
    pub invalidated: Vec<String>,
}

impl Outcome {
    /// Files written or deleted, the manifest included.
    pub fn files_changed(&self) -> usize {
        self.written.len() + self.deleted.len()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    #[error("rendering: {0}")]
    Render(#[from] RenderError),
    #[error("writing the site: {0}")]
    Sink(#[from] SinkError),
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("rendering task failed: {0}")]
    Task(String),
}

impl PublishError {
    /// What failed, in French for the prefecture page, with the technical
    /// detail after it for whoever investigates.
    pub fn for_people(&self) -> String {
        let what = match self {
            PublishError::Store(_) => "Les déclarations n’ont pas pu être lues",
            PublishError::Render(_) | PublishError::Task(_) => {
                "Les pages n’ont pas pu être \
                fabriquées"
            }
            PublishError::Sink(_) => {
                "Le site n’a pas pu être écrit ; la version précédente reste \
                en ligne"
            }
            PublishError::Manifest(_) => {
                "L’index des fichiers publiés n’a pas pu être écrit ; la \
                version précédente reste en ligne"
            }
        };
        format!("{what} (détail : {self})")
    }
}

/// Rank of a path in the write order: assets, open data, commune and setting
/// pages, other pages, the overview last.
fn write_rank(path: &str) -> u8 {
    match path {
        _ if path.starts_with("assets/") => 0,
        _ if path.starts_with("donnees/") => 1,
        _ if path.starts_with("communes/") || path.starts_with("lieux/") => 2,
        "index.html" => 4,
        _ => 3,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `site` to `sink`, incrementally, against the manifest already there.
pub async fn write_site(
    site: &RenderedSite,
    sink: &dyn Sink,
    now: DateTime<Utc>,
) -> Result<Outcome, PublishError> {
    write_site_reporting(site, sink, now, &|_, _| {}).await
}

/// Tells how many of the changed files are written so far, out of how many.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// [`write_site`], telling `progress` after each file written.
pub async fn write_site_reporting(
    site: &RenderedSite,
    sink: &dyn Sink,
    now: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<Outcome, PublishError> {
    let previous: Option<Manifest> = match sink.read(MANIFEST).await? {
        // An unreadable manifest means "publish everything", never a failure.
        Some(bytes) => serde_json::from_slice(&bytes).ok(),
        None => None,
    };
    let old_hashes = previous.as_ref().map(Manifest::hashes).unwrap_or_default();
    let entries: Vec<ManifestEntry> = site
        .files
        .iter()
        .map(|(path, bytes)| ManifestEntry {
            path: path.clone(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        })
        .collect();

    let mut changed: Vec<&ManifestEntry> = entries
        .iter()
        .filter(|e| old_hashes.get(e.path.as_str()) != Some(&e.sha256.as_str()))
        .collect();
    changed.sort_by_key(|e| (write_rank(&e.path), e.path.clone()));
    let stale: Vec<String> = old_hashes
        .keys()
        .filter(|path| !site.files.contains_key(**path) && **path != MANIFEST)
        .map(|path| (*path).to_owned())
        .collect();

    let mut outcome = Outcome {
        unchanged: entries.len() - changed.len(),
        ..Outcome::default()
    };
    for entry in &changed {
        let bytes = site
            .files
            .get(&entry.path)
            .map(Vec::as_slice)
            .unwrap_or_default();
        sink.write(&entry.path, bytes).await?;
        outcome.written.push(entry.path.clone());
        progress(outcome.written.len(), changed.len());
    }
    for path in &stale {
        sink.delete(path).await?;
        outcome.deleted.push(path.clone());
    }
    if previous.is_some() && outcome.written.is_empty() && outcome.deleted.is_empty() {
        return Ok(outcome);
    }
    let manifest = Manifest {
        generated_at: now,
        watermark: site.watermark,
        files: entries,
    };
    let mut bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| PublishError::Manifest(e.to_string()))?;
    bytes.push(b'\n');
    sink.write(MANIFEST, &bytes).await?;
    outcome.written.push(MANIFEST.into());
    Ok(outcome)
}

/// What the last publication saw, so that the timer can tell whether anything
/// changed since without reading every report.
struct LastRun {
    today: NaiveDate,
    watermark: Option<DateTime<Utc>>,
    /// The current reports it published, by (commune, day).
    reports: HashMap<(CommuneCode, NaiveDate), Report>,
}

impl LastRun {
    fn new(today: NaiveDate, reports: Vec<Report>) -> Self {
        let mut run = Self {
            today,
            watermark: None,
            reports: HashMap::with_capacity(reports.len()),
        };
        run.apply(reports);
        run
    }

    /// Takes in newer reports; returns whether any of them was not known yet.
    fn apply(&mut self, reports: Vec<Report>) -> bool {
        let mut changed = false;
        for report in reports {
            self.watermark = self.watermark.max(Some(report.recorded_at));
            let key = (report.commune.clone(), report.date);
            if self
                .reports
                .get(&key)
                .is_none_or(|known| known.version < report.version)
            {
                self.reports.insert(key, report);
                changed = true;
            }
        }
        changed
    }

    fn sorted(&self) -> Vec<Report> {
        let mut reports: Vec<Report> = self.reports.values().cloned().collect();
        reports.sort_by(|a, b| (a.date, &a.commune).cmp(&(b.date, &b.commune)));
        reports
    }
}

/// How far before the last watermark the timer looks for changes: a write takes
/// its `recorded_at` before it commits, and a request lasts at most a few store
/// timeouts, so a slow write can land with an instant a little older than a
/// report already published.
const WATERMARK_MARGIN_MINUTES: i64 = 2;

/// Runs publications: one at a time, recorded in the store.
pub struct Publisher {
    store: Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    cdn: Option<Arc<dyn Cdn>>,
    config: Arc<SiteConfig>,
    /// Held while a publication runs; remembers what the last one published.
    running: tokio::sync::Mutex<Option<LastRun>>,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, sink: Arc<dyn Sink>, config: SiteConfig) -> Self {
        Self {
            store,
            sink,
            cdn: None,
            config: Arc::new(config),
            running: tokio::sync::Mutex::new(None),
        }
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

    /// [`Publisher::publish`], telling `progress` how many changed files are
    /// written (for the command line's progress bar).
    pub async fn publish_reporting(
        &self,
        now: DateTime<Utc>,
        progress: Progress<'_>,
    ) -> Result<Outcome, PublishError> {
        let mut last = self.running.lock().await;
        let reports = self.store.current_reports(&ReportQuery::default()).await?;
        let run = LastRun::new(self.config.scope.today(now), reports);
        let outcome = self.render_and_write(&run, now, progress).await?;
        *last = Some(run);
        Ok(outcome)
    }

    /// The timer's call: after a first full publication, reads only the reports
    /// recorded since the last watermark (less a margin), and renders only if
    /// one of them is new or the day changed. Reports are never deleted, so the
    /// last published set plus these changes is the current set.
    pub async fn publish_if_changed(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, PublishError> {
        let mut last = self.running.lock().await;
        let Some(run) = last.as_mut() else {
            drop(last);
            return self.publish(now).await.map(Some);
        };
        let since = run.watermark.map_or(DateTime::<Utc>::MIN_UTC, |w| {
            w - chrono::Duration::minutes(WATERMARK_MARGIN_MINUTES)
        });
        let changed = run.apply(self.store.changed_since(since).await?);
        let today = self.config.scope.today(now);
        if !changed && run.today == today {
            return Ok(None);
        }
        run.today = today;
        let outcome = self.render_and_write(run, now, &|_, _| {}).await;
        if outcome.is_err() {
            // What was taken in is not published: start again from the store next time.
            *last = None;
        }
        outcome.map(Some)
    }

    async fn render_and_write(
        &self,
        run: &LastRun,
        now: DateTime<Utc>,
        progress: Progress<'_>,
    ) -> Result<Outcome, PublishError> {
        let reports = run.sorted();
        let config = Arc::clone(&self.config);
        let today = run.today;
        let site = tokio::task::spawn_blocking(move || render::render(&reports, &config, today))
            .await
            .map_err(|e| PublishError::Task(e.to_string()))??;
        let mut outcome = write_site_reporting(&site, self.sink.as_ref(), now, progress).await?;
        if let Some(cdn) = &self.cdn {
            let paths = cdn::invalidation_paths(&outcome);
            if !paths.is_empty() {
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
        }
        Ok(outcome)
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

    /// Runs a recorded publication and records how it ended.
    pub async fn run_recorded(&self, mut publication: Publication) -> Publication {
        publication.status = PublicationStatus::Running;
        publication.started_at = Some(Utc::now());
        if let Err(error) = self.store.update_publication(&publication).await {
            tracing::warn!(%error, id = %publication.id, "could not mark publication as running");
        }
        match self.publish(Utc::now()).await {
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
        publication.finished_at = Some(Utc::now());
        if let Err(error) = self.store.update_publication(&publication).await {
            tracing::warn!(%error, id = %publication.id, "could not record the end of a \
                publication");
        }
        publication
    }
}
