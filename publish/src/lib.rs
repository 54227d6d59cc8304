//! The static site generator of decompte.
//!
//! Architecture invariant: `publish` reads the store and writes to a [`Sink`];
//! it never writes to the store except publication records, and it knows
//! nothing of HTTP. A publication goes one département at a time ([`engine`]):
//! read its current reports → render its pages and data files
//! ([`render`](render::Renderer)) → write those whose hash differs from the
//! previous `manifest.json` (data, then pages) → then the whole-scope data,
//! the setting pages and the overview last → delete stale files → write the
//! manifest, then the state the next publication resumes from. A publication
//! that fails half-way leaves the previous manifest in place, and every page
//! it names still exists.

pub mod cdn;
pub mod charts;
pub mod engine;
pub mod headers;
pub mod map;
pub mod model;
pub mod opendata;
pub mod paths;
pub mod render;
pub mod sink;
pub mod trigger;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use decompte_store::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use cdn::Cdn;
pub use engine::{Publisher, AUTOMATIC, STATE};
pub use render::{Publishable, RenderError, RenderedSite, SiteConfig};
#[cfg(any(test, feature = "testing"))]
pub use sink::MemorySink;
pub use sink::{FolderSink, Part, Sink, SinkError};
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

    /// Adds what a following publication did: its files written, deleted
    /// and invalidated (once each); unchanged, as the last one counted.
    pub fn absorb(&mut self, next: Outcome) {
        for (mine, theirs) in [
            (&mut self.written, next.written),
            (&mut self.deleted, next.deleted),
            (&mut self.invalidated, next.invalidated),
        ] {
            mine.retain(|p| !theirs.contains(p));
            mine.extend(theirs);
        }
        self.unchanged = next.unchanged;
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
pub(crate) fn write_rank(path: &str) -> u8 {
    match path {
        _ if path.starts_with(paths::ASSETS) => 0,
        _ if path.starts_with(paths::DATA) => 1,
        _ if paths::is_commune_or_setting(path) => 2,
        paths::OVERVIEW => 4,
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
