//! Writes the files of one publication against the previous manifest.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::sink::Part;
use crate::{write_rank, Manifest, ManifestEntry, Outcome, PublishError, Sink, MANIFEST};

/// A whole-scope file to compose: its path, its head, and the
/// départements' files with the bytes of their own head to skip.
pub(super) type Composed<'a> = (&'a str, &'a [u8], &'a [(String, usize)]);

/// Writes the files of one publication against the previous manifest:
/// only what changed, each file once, the manifest last.
pub(super) struct Writer {
    pub(super) sink: Arc<dyn Sink>,
    pub(super) previous: BTreeMap<String, ManifestEntry>,
    pub(super) next: BTreeMap<String, ManifestEntry>,
    pub(super) outcome: Outcome,
    pub(super) had_manifest: bool,
    /// The batch being written while the next département renders.
    pub(super) pending: Option<tokio::task::JoinHandle<Result<(), crate::SinkError>>>,
}

impl Writer {
    pub(super) fn new(
        sink: Arc<dyn Sink>,
        previous: BTreeMap<String, ManifestEntry>,
        had_manifest: bool,
        full: bool,
    ) -> Self {
        // A partial publication keeps every file it does not render.
        let next = if full {
            BTreeMap::new()
        } else {
            previous.clone()
        };
        Self {
            sink,
            previous,
            next,
            outcome: Outcome::default(),
            had_manifest,
            pending: None,
        }
    }

    /// Hashes every file (on all cores), then starts writing those that
    /// changed, after the batch before: writes stay in order, and a batch is
    /// written while the next département renders.
    pub(super) async fn put_all(
        &mut self,
        mut files: Vec<(String, Vec<u8>)>,
    ) -> Result<(), PublishError> {
        files.sort_by(|a, b| (write_rank(&a.0), &a.0).cmp(&(write_rank(&b.0), &b.0)));
        let hashed: Vec<(String, Vec<u8>, String)> = tokio::task::spawn_blocking(move || {
            files
                .into_par_iter()
                .map(|(path, bytes)| {
                    let hash = hex::encode(Sha256::digest(&bytes));
                    (path, bytes, hash)
                })
                .collect()
        })
        .await
        .map_err(|e| PublishError::Task(e.to_string()))?;
        let mut changed = Vec::new();
        for (path, bytes, sha256) in hashed {
            self.next.insert(
                path.clone(),
                ManifestEntry {
                    path: path.clone(),
                    sha256: sha256.clone(),
                    size: bytes.len() as u64,
                },
            );
            if self.previous.get(&path).is_none_or(|e| e.sha256 != sha256) {
                self.outcome.written.push(path.clone());
                changed.push((path, bytes));
            }
        }
        self.flush().await?;
        if !changed.is_empty() {
            // One call per rank (data, pages, the overview): a sink may
            // write a call's files in any order, never two calls at once.
            let mut groups: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
            for file in changed {
                match groups.last_mut() {
                    Some(group) if write_rank(&group[0].0) == write_rank(&file.0) => {
                        group.push(file)
                    }
                    _ => groups.push(vec![file]),
                }
            }
            let sink = Arc::clone(&self.sink);
            self.pending = Some(tokio::spawn(async move {
                for group in groups {
                    sink.write_files(group).await?;
                }
                Ok(())
            }));
        }
        Ok(())
    }

    /// Waits for the batch being written.
    pub(super) async fn flush(&mut self) -> Result<(), PublishError> {
        if let Some(pending) = self.pending.take() {
            pending
                .await
                .map_err(|e| PublishError::Task(e.to_string()))??;
        }
        Ok(())
    }

    /// The whole-scope files, each composed by the sink from the
    /// départements' files (`target`, its head, and the parts with the
    /// bytes of their head to skip), all at once: the plain CSV and its
    /// gzip are copied and hashed side by side.
    pub(super) async fn compose(&mut self, files: [Composed<'_>; 2]) -> Result<(), PublishError> {
        self.flush().await?;
        let [(first, first_head, first_parts), (second, second_head, second_parts)] = files;
        // Each part with its SHA-256 as this publication's manifest has it.
        let parts = |parts: &[(String, usize)]| -> Vec<Part> {
            parts
                .iter()
                .map(|(path, skip)| Part {
                    path: path.clone(),
                    skip: *skip,
                    sha256: self.next.get(path).map(|e| e.sha256.clone()),
                })
                .collect()
        };
        let (first_parts, second_parts) = (parts(first_parts), parts(second_parts));
        let (one, two) = tokio::join!(
            self.sink.compose(first, first_head, &first_parts),
            self.sink.compose(second, second_head, &second_parts)
        );
        for (target, composed) in [(first, one), (second, two)] {
            let (sha256, size) = composed?;
            if self.previous.get(target).is_none_or(|e| e.sha256 != sha256) {
                self.outcome.written.push(target.to_owned());
            }
            self.next.insert(
                target.to_owned(),
                ManifestEntry {
                    path: target.to_owned(),
                    sha256,
                    size,
                },
            );
        }
        Ok(())
    }

    /// Deletes what the previous manifest named and this full publication
    /// did not write, then writes the manifest if anything changed.
    pub(super) async fn finish(
        mut self,
        full: bool,
        now: DateTime<Utc>,
        watermark: Option<DateTime<Utc>>,
    ) -> Result<(Outcome, BTreeMap<String, ManifestEntry>), PublishError> {
        self.flush().await?;
        if full {
            let stale: Vec<String> = self
                .previous
                .keys()
                .filter(|p| !self.next.contains_key(*p) && p.as_str() != MANIFEST)
                .cloned()
                .collect();
            for path in stale {
                self.sink.delete(&path).await?;
                self.outcome.deleted.push(path);
            }
        }
        self.outcome.unchanged = self.next.len().saturating_sub(self.outcome.written.len());
        if self.had_manifest && self.outcome.written.is_empty() && self.outcome.deleted.is_empty() {
            return Ok((self.outcome, self.next));
        }
        let manifest = Manifest {
            generated_at: now,
            watermark,
            files: self.next.values().cloned().collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| PublishError::Manifest(e.to_string()))?;
        bytes.push(b'\n');
        self.sink.write(MANIFEST, &bytes).await?;
        self.outcome.written.push(MANIFEST.into());
        Ok((self.outcome, self.next))
    }
}
