//! What a publication leaves for the next: the state among the publisher's
//! private files, and how published reports are remembered.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::CommuneCode;
use decompte_store::{ChangeMark, CHANGE_MARGIN_MINUTES};
use serde::{Deserialize, Serialize};

use super::RELEASE_EVERY_MINUTES;
use crate::model::{Kept, Summary};
use crate::{ManifestEntry, PublishError};

/// What the last publication published: enough to publish the next change
/// without reading every report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The text, the configuration and the version that rendered it: another
    /// one means a full publication.
    pub(super) fingerprint: String,
    pub(super) today: NaiveDate,
    /// The latest `recorded_at` published.
    pub(super) watermark: Option<DateTime<Utc>>,
    /// Where the store's changes are read from next; none (a state of an
    /// earlier version) or of another kind: a full publication.
    #[serde(default)]
    pub(super) mark: Option<ChangeMark>,
    /// When this publication ran (its `now`).
    #[serde(default)]
    pub(super) published_at: Option<DateTime<Utc>>,
    /// With a mark by instant, the reports published that were recorded
    /// within the margin before the watermark: a change read again is
    /// recognised, not re-rendered. Empty with a sequence.
    pub(super) recent: BTreeMap<String, DateTime<Utc>>,
    pub(super) demo: bool,
    pub(super) summaries: BTreeMap<String, Summary>,
    /// The départements whose pages were patched since their data files
    /// were last written, and since when: their files are written again by
    /// a publication with time left (see [`super::DATA_BUDGET`]).
    #[serde(default)]
    pub(super) stale: BTreeMap<String, DateTime<Utc>>,
    /// Some département's data files were written since the whole-scope
    /// files were composed from them.
    #[serde(default)]
    pub(super) compose_pending: bool,
    /// When the whole-scope data files were last composed.
    #[serde(default)]
    pub(super) composed_at: Option<DateTime<Utc>>,
    /// The manifest the state goes with (in memory only).
    #[serde(skip)]
    pub(super) manifest: BTreeMap<String, ManifestEntry>,
    /// The days of the départements published last, as many as
    /// [`KEPT_DAYS`] allows, least recently published first (in memory
    /// only): a change there is applied to them, not read again.
    #[serde(skip)]
    pub(super) kept: Vec<(String, Kept)>,
}

/// How many commune-days the publisher keeps in memory between
/// publications (about 18 bytes each with five settings, see [`Kept`]): a
/// national year (12.8 million) and more.
pub const KEPT_DAYS: usize = 16_000_000;

impl State {
    /// Takes in reports now published: the watermark moves, and with a mark
    /// by instant, those within the margin before it are remembered (only
    /// those: the set is bounded by the writes of the last minutes).
    pub(super) fn saw(&mut self, reports: &[(CommuneCode, NaiveDate, u32, DateTime<Utc>)]) {
        for (_, _, _, at) in reports {
            self.watermark = self.watermark.max(Some(*at));
        }
        if !matches!(self.mark, Some(ChangeMark::Instant(_))) {
            return;
        }
        let floor = self.since();
        for (commune, date, version, at) in reports {
            if *at >= floor {
                self.recent
                    .insert(recent_key(commune, *date, *version), *at);
            }
        }
        self.recent.retain(|_, at| *at >= floor);
    }

    pub(super) fn take_kept(&mut self, code: &str) -> Option<Kept> {
        let at = self.kept.iter().position(|(c, _)| c == code)?;
        Some(self.kept.remove(at).1)
    }

    /// Keeps a département's days, forgetting the least recently published
    /// ones beyond [`KEPT_DAYS`].
    pub(super) fn keep(&mut self, code: &str, days: Kept) {
        if days.len() > KEPT_DAYS {
            return;
        }
        self.kept.push((code.to_owned(), days));
        let mut total: usize = self.kept.iter().map(|(_, d)| d.len()).sum();
        while total > KEPT_DAYS {
            let (_, evicted) = self.kept.remove(0);
            total -= evicted.len();
        }
    }

    /// Some data files lag the pages: a publication is due even with no
    /// new report.
    pub(super) fn pending(&self) -> bool {
        !self.stale.is_empty() || self.compose_pending
    }

    pub(super) fn since(&self) -> DateTime<Utc> {
        self.watermark.map_or(DateTime::<Utc>::MIN_UTC, |w| {
            w - chrono::Duration::minutes(CHANGE_MARGIN_MINUTES)
        })
    }

    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, PublishError> {
        let json = serde_json::to_vec(self).map_err(|e| PublishError::Manifest(e.to_string()))?;
        Ok(crate::opendata::gzip(&json))
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut json = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut json)
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// The release period of an instant (see [`RELEASE_EVERY_MINUTES`]).
pub(super) fn release_period(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(RELEASE_EVERY_MINUTES * 60)
}

/// How a published report is remembered in [`State::recent`].
pub(super) fn recent_key(commune: &CommuneCode, date: NaiveDate, version: u32) -> String {
    format!("{commune}/{date}/{version}")
}
