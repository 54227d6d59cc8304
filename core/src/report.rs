//! Reports (déclarations): for one commune and one day, a count for every setting.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::commune::CommuneCode;

/// Counts by setting key. An explicit zero is a report; a missing report is not a zero.
pub type Counts = BTreeMap<String, u32>;

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Form,
    Api,
    Import,
    Prefecture,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Form => "form",
            Source::Api => "api",
            Source::Import => "import",
            Source::Prefecture => "prefecture",
        }
    }

    /// The French label shown in histories.
    pub fn label(self) -> &'static str {
        match self {
            Source::Form => "formulaire",
            Source::Api => "API",
            Source::Import => "import",
            Source::Prefecture => "préfecture",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source that is none of `form`, `api`, `import`, `prefecture`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source `{0}`: form, api, import or prefecture")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "form" => Ok(Source::Form),
            "api" => Ok(Source::Api),
            "import" => Ok(Source::Import),
            "prefecture" => Ok(Source::Prefecture),
            other => Err(UnknownSource(other.to_owned())),
        }
    }
}

/// One stored version of a report. The current value of a (commune, day) is its latest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub commune: CommuneCode,
    pub date: NaiveDate,
    pub counts: Counts,
    pub version: u32,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
    pub source: Source,
    pub reason: Option<String>,
    /// The warnings the author saw and confirmed before saving
    /// (`plausibility::CODES`): kept with the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The author of the demonstration's reports (`decompte serve --demo`):
/// their presence puts the demonstration banner on every page.
pub const DEMONSTRATION: &str = "demonstration";

impl Report {
    /// Whether the demonstration wrote it.
    pub fn is_demonstration(&self) -> bool {
        self.recorded_by == DEMONSTRATION
    }

    pub fn total(&self) -> u64 {
        self.counts.values().map(|&n| u64::from(n)).sum()
    }

    pub fn count(&self, setting: &str) -> u32 {
        self.counts.get(setting).copied().unwrap_or(0)
    }
}
