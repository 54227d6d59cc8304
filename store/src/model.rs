//! Records the store keeps besides reports.

use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{CommuneCode, Reach, Report, Role};
use serde::{Deserialize, Serialize};

/// The crisis cell reached a mairie about a day it had not declared, so
/// that two agents do not call the same mairie. The first one of a day and
/// commune stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub date: NaiveDate,
    pub commune: CommuneCode,
    /// `telephone` (an agent called) or `email`.
    pub channel: String,
    pub at: DateTime<Utc>,
    /// The credential of the agent.
    pub by: String,
}

/// A reference series a prefecture imported for one of its départements:
/// Santé publique France's daily hospital deaths. Replaced whole by each import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceSeries {
    pub departement: String,
    pub days: std::collections::BTreeMap<NaiveDate, u32>,
    pub imported_at: DateTime<Utc>,
    /// The credential that imported it.
    pub imported_by: String,
}

/// The mairies' telephones and e-mail addresses a prefecture set for one
/// of its départements, over the public directory's. Replaced whole by
/// each import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactOverrides {
    pub departement: String,
    /// By commune code: its telephone and its e-mail ("" for none).
    pub contacts: std::collections::BTreeMap<String, (String, String)>,
    pub imported_at: DateTime<Utc>,
    /// The credential that imported them.
    pub imported_by: String,
}

/// Which current reports to read. Every bound is inclusive; `None` means no bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    pub commune: Option<CommuneCode>,
    /// Only the communes of these départements; empty, every département.
    pub departements: Vec<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl ReportQuery {
    /// Whether `report` is one this query asks for.
    pub fn matches(&self, report: &Report) -> bool {
        self.commune.as_ref().is_none_or(|c| *c == report.commune)
            && (self.departements.is_empty()
                || self
                    .departements
                    .iter()
                    .any(|d| d == report.commune.departement()))
            && self.from.is_none_or(|f| report.date >= f)
            && self.to.is_none_or(|t| report.date <= t)
    }
}

/// An access credential. The code itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    pub id: String,
    pub role: Role,
    pub commune: Option<CommuneCode>,
    /// A prefecture credential's départements; empty, every département of
    /// the deployment (what a single-département deployment issues).
    pub departements: Vec<String>,
    pub label: String,
    #[serde(skip)]
    pub code_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The credential that issued this one; `None`, the command line.
    pub issued_by: Option<String>,
    /// Past this instant the code no longer opens anything.
    pub expires_at: Option<DateTime<Utc>>,
    /// The prefecture's and the national level's second factor (TOTP), once
    /// its enrolment has begun.
    pub second_factor: Option<SecondFactor>,
}

impl Credential {
    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|end| now < end)
    }

    /// Whether its second factor is enrolled and confirmed.
    pub fn has_second_factor(&self) -> bool {
        self.second_factor
            .as_ref()
            .is_some_and(|factor| factor.confirmed_at.is_some())
    }

    /// What this credential may see inside the deployment.
    pub fn reach(&self) -> Reach {
        Reach::of(self.role, self.commune.as_ref(), &self.departements)
    }

    /// The départements as the stores keep them: `29,56`, or empty.
    pub fn departements_text(&self) -> String {
        self.departements.join(",")
    }

    /// Reads [`Credential::departements_text`] back.
    pub fn parse_departements(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A TOTP second factor (RFC 6238). The shared secret cannot be a hash — the
/// server computes the same codes as the phone — so it never leaves the
/// store, is never serialized and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SecondFactor {
    /// The shared secret, in base 32.
    #[serde(skip)]
    pub secret: String,
    /// When the holder proved the phone has it; `None`, enrolment begun.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last time step accepted at a login: a code is good once.
    #[serde(skip)]
    pub last_step: u64,
    /// Hashes of the recovery codes not yet used.
    #[serde(skip)]
    pub recovery_hashes: Vec<String>,
}

impl SecondFactor {
    /// An enrolment begun with `secret`, not confirmed yet.
    pub fn pending(secret: String) -> Self {
        Self {
            secret,
            confirmed_at: None,
            last_step: 0,
            recovery_hashes: Vec::new(),
        }
    }

    /// How many recovery codes are left.
    pub fn recovery_left(&self) -> usize {
        self.recovery_hashes.len()
    }
}

impl std::fmt::Debug for SecondFactor {
    /// The secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactor")
            .field("secret", &"…")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .field("recovery_left", &self.recovery_hashes.len())
            .finish()
    }
}

/// A browser session. Only the hash of the session id is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub credential_id: String,
    pub created_at: DateTime<Utc>,
    /// The absolute end of the session, whatever its activity.
    pub expires_at: DateTime<Utc>,
    /// The last request seen (to a minute): past the role's idle timeout,
    /// the session is over.
    pub last_seen_at: DateTime<Utc>,
    /// A login half done: the access code was right, the second factor is
    /// still to come. Such a session opens nothing.
    pub pending: bool,
}

/// The first answer given to a request that carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The credential id and the client's key, so that two clients never share a key.
    pub key: String,
    /// SHA-256 of the request body, to refuse the same key with another body.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl PublicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicationStatus::Queued => "queued",
            PublicationStatus::Running => "running",
            PublicationStatus::Succeeded => "succeeded",
            PublicationStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// French label for the prefecture page.
    pub fn label(self) -> &'static str {
        match self {
            PublicationStatus::Queued => "en attente",
            PublicationStatus::Running => "en cours",
            PublicationStatus::Succeeded => "réussie",
            PublicationStatus::Failed => "échouée",
        }
    }
}

/// One run of the publisher, as the prefecture page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publication {
    pub id: String,
    pub status: PublicationStatus,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub files_changed: Option<u32>,
    pub error: Option<String>,
}

impl Publication {
    /// A new publication id: `pub-` and 64 random bits in hex.
    pub fn new_id() -> String {
        format!("pub-{:016x}", rand::random::<u64>())
    }

    /// A publication just asked for, not started yet.
    pub fn queued(request: &PublicationRequest, id: String, now: DateTime<Utc>) -> Self {
        Self {
            id,
            status: PublicationStatus::Queued,
            requested_by: request.requested_by.clone(),
            reason: request.reason.clone(),
            requested_at: now,
            started_at: None,
            finished_at: None,
            files_changed: None,
            error: None,
        }
    }
}

/// A request for a publication, as the app sends it to the publish function
/// (`{"reason", "requested_by"}`), with the queued record it already wrote, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationRequest {
    pub reason: String,
    pub requested_by: String,
    /// The id of the queued record the requester wrote; absent, the publisher writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
}

/// A current report as the publisher reads it, by the million: the counts
/// of the settings asked for, in their order, and whether its author is the
/// one the publisher flags (the demonstration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub commune: CommuneCode,
    pub date: NaiveDate,
    pub version: u32,
    pub counts: Vec<u32>,
    pub recorded_at: DateTime<Utc>,
    pub flagged: bool,
}

impl Tally {
    /// The tally of a report, for `keys` in order.
    pub fn of(report: &Report, keys: &[String], flag: &str) -> Self {
        Self {
            commune: report.commune.clone(),
            date: report.date,
            version: report.version,
            counts: keys.iter().map(|k| report.count(k)).collect(),
            recorded_at: report.recorded_at,
            flagged: report.recorded_by == flag,
        }
    }
}
