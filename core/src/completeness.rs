//! Completeness: for a day, which communes in scope have reported and which have not.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
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
        percent(self.reported.len(), self.expected)
    }

    /// How far each département of `scope` has reported, in code order.
    pub fn by_departement(&self, scope: &Scope) -> Vec<DepartementShare> {
        scope
            .departements()
            .map(|(code, name)| DepartementShare {
                code: code.to_owned(),
                name: name.to_owned(),
                expected: scope.communes().filter(|c| c.departement == code).count(),
                reported: self
                    .reported
                    .iter()
                    .filter(|c| c.departement == code)
                    .count(),
            })
            .collect()
    }

    /// Whether the communes that have not declared `self.date` are late at
    /// `now`: the day is over where they are (a day before today), or it is
    /// today and past the cut-off hour (`cutoff_hour`, 0–23, the
    /// département's own clock).
    pub fn is_late(&self, scope: &Scope, now: DateTime<Utc>, cutoff_hour: u32) -> bool {
        let today = scope.today(now);
        self.date < today
            || (self.date == today && now.with_timezone(&scope.zone()).hour() >= cutoff_hour)
    }
}

/// One département's share of a day's declarations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepartementShare {
    pub code: String,
    pub name: String,
    pub expected: usize,
    pub reported: usize,
}

impl DepartementShare {
    pub fn percent(&self) -> usize {
        percent(self.reported, self.expected)
    }
}

/// `reported` out of `expected`, in percent, rounded down (0 when nothing
/// is expected): how every page and the API write a completeness.
pub fn percent(reported: usize, expected: usize) -> usize {
    (reported * 100).checked_div(expected).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Referential;
    use chrono::TimeZone;

    fn deployment() -> Scope {
        Referential::parse(
            "code,nom,departement,population\n56001,Allaire,56,4000\n56002,Arradon,56,5000\n\
             56003,Arzal,56,1600\n97411,Saint-Denis,974,150000\n",
            "code,nom\n56,Morbihan\n974,La Réunion\n",
        )
        .expect("referential")
        .scope(&["56".to_owned(), "974".to_owned()])
        .expect("scope")
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 4, d).expect("a day")
    }

    #[test]
    fn shares_are_whole_percents_rounded_down_by_departement() {
        let scope = deployment();
        let reported = ["56001", "56002", "97411"]
            .into_iter()
            .map(|c| CommuneCode::parse(c).expect("code"))
            .collect();
        let c = Completeness::compute(day(1), &scope, &reported);
        assert_eq!(c.percent(), 75);
        let shares = c.by_departement(&scope);
        let figures: Vec<(&str, usize, usize, usize)> = shares
            .iter()
            .map(|s| (s.code.as_str(), s.reported, s.expected, s.percent()))
            .collect();
        assert_eq!(figures, [("56", 2, 3, 66), ("974", 1, 1, 100)]);
        assert_eq!(percent(0, 0), 0, "nothing expected");
    }

    #[test]
    fn a_day_is_late_past_its_cut_off_hour_on_the_departement_s_clock() {
        let scope = deployment();
        let morbihan = scope.restrict(["56"]);
        let reunion = scope.restrict(["974"]);
        let none = BTreeSet::new();
        // 1 April 2020, 14:30 in Paris (12:30 UTC) is 16:30 in Réunion.
        let now = Utc
            .with_ymd_and_hms(2020, 4, 1, 12, 30, 0)
            .single()
            .expect("an instant");
        let today = Completeness::compute(day(1), &morbihan, &none);
        assert!(!today.is_late(&morbihan, now, 15));
        assert!(today.is_late(&morbihan, now, 14));
        let there = Completeness::compute(day(1), &reunion, &none);
        assert!(there.is_late(&reunion, now, 15), "16:30 in Réunion");
        assert!(!today.is_late(&morbihan, now, 23));
        let yesterday = Completeness::compute(
            NaiveDate::from_ymd_opt(2020, 3, 31).expect("a day"),
            &morbihan,
            &none,
        );
        assert!(yesterday.is_late(&morbihan, now, 23));
    }
}
