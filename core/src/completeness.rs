//! Completeness: for a day, which communes in scope have reported and which have not.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;

use crate::commune::{Commune, CommuneCode, Scope};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Completeness {
    pub date: NaiveDate,
    pub expected: usize,
    pub reported: Vec<Commune>,
    pub missing: Vec<Commune>,
}

impl Completeness {
    /// `reported` may hold communes out of scope (a scope that shrank); they are ignored.
    pub fn compute(date: NaiveDate, scope: &Scope, reported: &BTreeSet<CommuneCode>) -> Self {
        let (reported, missing): (Vec<&Commune>, Vec<&Commune>) =
            scope.communes().partition(|c| reported.contains(&c.code));
        Self {
            date,
            expected: scope.len(),
            reported: reported.into_iter().cloned().collect(),
            missing: missing.into_iter().cloned().collect(),
        }
    }

    /// Share of communes that reported, in percent, rounded down.
    pub fn percent(&self) -> usize {
        (self.reported.len() * 100)
            .checked_div(self.expected)
            .unwrap_or(0)
    }
}
