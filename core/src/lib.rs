//! The pure domain of decompte.
//!
//! Architecture invariant: this crate does no IO and no async. It knows what a
//! commune, a setting (lieu de décès), a report and a correction are, how input
//! is validated, how completeness is computed, and how access
//! codes are formatted and hashed. Clocks and randomness are passed in.

pub mod aggregate;
pub mod auth;
pub mod clock;
pub mod commune;
pub mod completeness;
pub mod correction;
pub mod issuance;
pub mod plausibility;
pub mod reach;
pub mod reference;
pub mod report;
pub mod setting;
pub mod signals;
pub mod spreadsheet;
pub mod time;
pub mod validation;

pub use auth::{AccessCode, Role};
pub use commune::{Commune, CommuneCode, Referential, Scope};
pub use completeness::Completeness;
pub use correction::{check_correction, CorrectionError};
pub use reach::Reach;
pub use report::{Counts, Report, Source};
pub use setting::{Setting, Settings};
pub use validation::{CountValue, Draft, FieldError, Rules, ValidDraft};
