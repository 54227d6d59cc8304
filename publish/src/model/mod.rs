//! What a publication is made of, one département at a time: its current
//! reports by commune ([`DepartementReports`], held only while the
//! département is rendered) and their [`Summary`], the few numbers the
//! overview, the setting pages and the next publication need (kept between
//! publications, and next to the manifest for a cold start).

mod kept;

pub use kept::{Kept, TooLarge};

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::{Commune, CommuneCode, Report, Scope, Settings};
use decompte_store::Tally;
use serde::{Deserialize, Serialize};

/// A commune's current report of one day, its counts in the order of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCounts {
    pub date: NaiveDate,
    pub version: u32,
    pub counts: Vec<u32>,
    pub recorded_at: DateTime<Utc>,
    /// Written by the demonstration: the site says so on every page.
    pub demo: bool,
}

impl DayCounts {
    pub fn of(report: &Report, settings: &Settings) -> Self {
        Self {
            date: report.date,
            version: report.version,
            counts: settings.keys().map(|k| report.count(k)).collect(),
            recorded_at: report.recorded_at,
            demo: report.is_demonstration(),
        }
    }

    pub fn from_tally(tally: Tally) -> Self {
        Self {
            date: tally.date,
            version: tally.version,
            counts: tally.counts,
            recorded_at: tally.recorded_at,
            demo: tally.flagged,
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|n| u64::from(*n)).sum()
    }
}

/// The current reports of one département: each of its communes, in code
/// order, with its reported days in order.
#[derive(Debug, Clone)]
pub struct DepartementReports<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub communes: Vec<(&'a Commune, Vec<DayCounts>)>,
}

impl<'a> DepartementReports<'a> {
    /// The département `code` of `scope`, from its communes' days (of any
    /// commune: those of other départements, or out of scope, are left out).
    pub fn from_days(
        code: &'a str,
        scope: &'a Scope,
        days: impl IntoIterator<Item = (CommuneCode, DayCounts)>,
    ) -> Self {
        let mut by_commune: BTreeMap<CommuneCode, Vec<DayCounts>> = BTreeMap::new();
        for (commune, day) in days {
            if commune.departement() == code {
                by_commune.entry(commune).or_default().push(day);
            }
        }
        let communes = scope
            .communes_of(code)
            .map(|commune| {
                let mut days = by_commune.remove(&commune.code).unwrap_or_default();
                days.sort_by_key(|d| d.date);
                (commune, days)
            })
            .collect();
        Self {
            code,
            name: scope.departement_name(code).unwrap_or(code),
            communes,
        }
    }

    /// The département from the tallies the store read: sorted by commune
    /// and day (SQLite reads them so), they are dealt out in one pass.
    pub fn from_tallies(code: &'a str, scope: &'a Scope, mut tallies: Vec<Tally>) -> Self {
        sort_tallies(&mut tallies);
        let mut tallies = tallies.into_iter().peekable();
        let communes = scope
            .communes_of(code)
            .map(|commune| {
                // Skip what is not a commune of the scope (it is left out).
                while tallies.next_if(|t| t.commune < commune.code).is_some() {}
                let mut days = Vec::new();
                while let Some(tally) = tallies.next_if(|t| t.commune == commune.code) {
                    days.push(DayCounts::from_tally(tally));
                }
                (commune, days)
            })
            .collect();
        Self {
            code,
            name: scope.departement_name(code).unwrap_or(code),
            communes,
        }
    }

    /// The département from whole reports.
    pub fn build<'r>(
        code: &'a str,
        scope: &'a Scope,
        settings: &Settings,
        reports: impl IntoIterator<Item = &'r Report>,
    ) -> Self {
        Self::from_days(
            code,
            scope,
            reports
                .into_iter()
                .map(|r| (r.commune.clone(), DayCounts::of(r, settings))),
        )
    }

    /// Takes in a newer report of one of its communes.
    pub fn apply(&mut self, commune: &CommuneCode, day: DayCounts) {
        let Some((_, days)) = self.communes.iter_mut().find(|(c, _)| c.code == *commune) else {
            return;
        };
        match days.binary_search_by_key(&day.date, |d| d.date) {
            Ok(at) if days[at].version < day.version => days[at] = day,
            Ok(_) => {}
            Err(at) => days.insert(at, day),
        }
    }

    /// Every département of `scope`, in code order, from `reports`.
    pub fn all(
        scope: &'a Scope,
        settings: &Settings,
        reports: &[Report],
    ) -> Vec<DepartementReports<'a>> {
        let mut by_departement: BTreeMap<&str, Vec<&Report>> = BTreeMap::new();
        for report in reports {
            by_departement
                .entry(report.commune.departement())
                .or_default()
                .push(report);
        }
        scope
            .departement_codes()
            .map(|code| {
                let reports = by_departement.remove(code).unwrap_or_default();
                Self::build(code, scope, settings, reports)
            })
            .collect()
    }

    pub fn report_count(&self) -> usize {
        self.communes.iter().map(|(_, days)| days.len()).sum()
    }

    /// Every report, by day then commune (the order of the open data), as
    /// (commune index, day index) pairs: computed once, read by each file.
    pub fn day_order(&self) -> DayOrder {
        let mut order: Vec<(NaiveDate, u32, u32)> = Vec::with_capacity(self.report_count());
        for (c, (_, days)) in self.communes.iter().enumerate() {
            for (d, day) in days.iter().enumerate() {
                order.push((day.date, c as u32, d as u32));
            }
        }
        order.sort_unstable();
        DayOrder(order.into_iter().map(|(_, c, d)| (c, d)).collect())
    }

    /// The reports in `order`, each with the index of its commune.
    pub fn in_order<'s>(
        &'s self,
        order: &'s DayOrder,
    ) -> impl Iterator<Item = (usize, &'s DayCounts)> + 's {
        order
            .0
            .iter()
            .map(|(c, d)| (*c as usize, &self.communes[*c as usize].1[*d as usize]))
    }

    /// What the rest of the site needs to know of this département,
    /// unmasked: [`crate::SiteConfig::publishable`] is its one reader.
    pub(crate) fn summary(&self, width: usize) -> Summary {
        let mut days: BTreeMap<NaiveDate, DaySummary> = BTreeMap::new();
        let mut communes = Vec::with_capacity(self.communes.len());
        let mut watermark = None;
        let mut demo = false;
        for (commune, reported) in &self.communes {
            let mut by_setting = vec![0u64; width];
            let mut last_recorded = None;
            for day in reported {
                let total = days
                    .entry(day.date)
                    .or_insert_with(|| DaySummary::new(day.date, width));
                total.reporting += 1;
                for (index, count) in day.counts.iter().enumerate() {
                    total.by_setting[index] += u64::from(*count);
                    by_setting[index] += u64::from(*count);
                }
                last_recorded = last_recorded.max(Some(day.recorded_at));
                demo |= day.demo;
            }
            watermark = watermark.max(last_recorded);
            communes.push(CommuneSummary {
                code: commune.code.clone(),
                by_setting,
                days_reported: u32::try_from(reported.len()).unwrap_or(u32::MAX),
                last_date: reported.last().map(|d| d.date),
                last_recorded,
            });
        }
        Summary {
            code: self.code.to_owned(),
            days: days.into_values().collect(),
            communes,
            watermark,
            demo,
            sealed: Sealed,
        }
    }
}

/// The order of a département's reports in its data files.
pub struct DayOrder(Vec<(u32, u32)>);

impl DayOrder {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The totals of one département: by day, by commune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub code: String,
    /// The days some commune reported, in order.
    pub days: Vec<DaySummary>,
    /// Every commune of the département in scope, in code order.
    pub communes: Vec<CommuneSummary>,
    /// The latest `recorded_at` of its reports.
    pub watermark: Option<DateTime<Utc>>,
    /// Some of its reports come from the demonstration.
    pub demo: bool,
    /// Outside this crate a summary is read, never made: the only ones are
    /// [`crate::SiteConfig::publishable`]'s.
    #[serde(skip)]
    sealed: Sealed,
}

/// See [`Summary::sealed`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sealed;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySummary {
    pub date: NaiveDate,
    pub by_setting: Vec<u64>,
    /// How many communes reported that day.
    pub reporting: u32,
    /// Not published under the rule of small counts (its counts are zeros
    /// here): see [`Protection`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
}

impl DaySummary {
    pub fn new(date: NaiveDate, width: usize) -> Self {
        Self {
            date,
            by_setting: vec![0; width],
            reporting: 0,
            withheld: false,
        }
    }
}

/// The rule of small counts (`--small-counts k`): no published figure lets
/// a reader know, or deduce from others, the count of one commune, one
/// setting and one day between 1 and k − 1.
///
/// The rule publishes the communes coarser, not masked cell by cell (which
/// needs complementary masks that sums and running totals undo easily):
/// - a commune's days are published as declared or not, **without their
///   counts**, and no total of a commune either (a commune's total beside
///   the département's daily figures gives its days away when the others
///   have none);
/// - a département's figures by day and setting are published exact when
///   at least two of its communes declared that day: any one death of such
///   a day can belong to either, so no commune's count follows;
/// - a day fewer than two communes declared, with some death, is withheld
///   (and counted in no total, no running total, no chart) until a second
///   commune declares it: its figures would be that commune's.
///
/// - no instant of a declaration and no version is published: a reader
///   comparing two publications sees the département's day change, not
///   which of its communes declared or corrected in between (any of them
///   may have), and the publisher releases these figures once an hour
///   ([`crate::engine::RELEASE_EVERY_MINUTES`]), so that a change gathers
///   the declarations of the hour.
///
/// So the same published files come from every dataset that moves a death
/// between two communes that declared the same day (tested by rendering
/// both), and the same sequence of publications from every sequence of
/// declarations that does so at one publication with corrections no one
/// sees; no commune's count is in them. The cost: every commune
/// figure, whatever k, and the withheld days. The view the renderer reads
/// is made here, once: the renderer has no other number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub k: u32,
}

impl Protection {
    /// What the renderer may read of `departement`: its communes' days,
    /// declared or not, without their counts, versions or instants (when a
    /// commune declared, or corrected, would tell two publications' change
    /// apart as that commune's).
    pub fn mask<'a>(&self, departement: &DepartementReports<'a>) -> DepartementReports<'a> {
        DepartementReports {
            code: departement.code,
            name: departement.name,
            communes: departement
                .communes
                .iter()
                .map(|(commune, days)| {
                    let days = days
                        .iter()
                        .map(|day| DayCounts {
                            date: day.date,
                            version: 0,
                            counts: Vec::new(),
                            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
                            demo: day.demo,
                        })
                        .collect();
                    (*commune, days)
                })
                .collect(),
        }
    }

    /// `summary` made publishable: no commune's totals, no instant of a
    /// declaration, and the days fewer than two communes declared with some
    /// death withheld.
    pub fn mask_summary(&self, summary: &mut Summary) {
        summary.watermark = None;
        for commune in &mut summary.communes {
            commune.by_setting.iter_mut().for_each(|n| *n = 0);
            commune.last_recorded = None;
        }
        for day in &mut summary.days {
            if day.reporting < 2 && day.by_setting.iter().any(|n| *n > 0) {
                day.withheld = true;
                day.by_setting.iter_mut().for_each(|n| *n = 0);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommuneSummary {
    pub code: CommuneCode,
    pub by_setting: Vec<u64>,
    pub days_reported: u32,
    pub last_date: Option<NaiveDate>,
    pub last_recorded: Option<DateTime<Utc>>,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.days.iter().flat_map(|d| &d.by_setting).sum()
    }

    pub fn by_setting(&self, width: usize) -> Vec<u64> {
        let mut sums = vec![0; width];
        for day in &self.days {
            for (sum, n) in sums.iter_mut().zip(&day.by_setting) {
                *sum += n;
            }
        }
        sums
    }
}

/// The days of several summaries added up, in order.
pub fn add_days<'s>(
    summaries: impl IntoIterator<Item = &'s Summary>,
    width: usize,
) -> Vec<DaySummary> {
    let mut days: BTreeMap<NaiveDate, DaySummary> = BTreeMap::new();
    for summary in summaries {
        for day in &summary.days {
            let fresh = !days.contains_key(&day.date);
            let total = days
                .entry(day.date)
                .or_insert_with(|| DaySummary::new(day.date, width));
            total.reporting += day.reporting;
            // Withheld where every département withheld it; elsewhere the
            // published figures add up.
            total.withheld = (fresh || total.withheld) && day.withheld;
            for (sum, n) in total.by_setting.iter_mut().zip(&day.by_setting) {
                *sum += n;
            }
        }
    }
    days.into_values().collect()
}

/// Puts tallies in the order of (commune, day), one a (commune, day): a
/// pass when they already are (SQLite reads them so).
pub fn sort_tallies(tallies: &mut Vec<Tally>) {
    let sorted = tallies
        .windows(2)
        .all(|w| (&w[0].commune, w[0].date) < (&w[1].commune, w[1].date));
    if !sorted {
        // A stable sort: it merges the sorted runs it finds (PostgreSQL
        // returns a département as the runs of the batches that wrote it).
        tallies.sort_by(|a, b| (&a.commune, a.date).cmp(&(&b.commune, b.date)));
        tallies.dedup_by(|b, a| a.commune == b.commune && a.date == b.date);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tally(commune: &str, day: u32, hopital: u32) -> Tally {
        Tally {
            commune: CommuneCode::parse(commune).expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, day).expect("date"),
            version: 1,
            counts: vec![hopital, 0],
            recorded_at: Utc
                .with_ymd_and_hms(2020, 4, day, 18, 0, 0)
                .single()
                .expect("instant"),
            flagged: false,
        }
    }

    #[test]
    fn tallies_in_any_order_are_dealt_to_their_communes() {
        let scope = decompte_core::Referential::parse(
            "code,nom,departement,population\n56001,A,56,10\n56003,C,56,10\n29001,B,29,10\n",
            "code,nom\n29,F\n56,M\n",
        )
        .and_then(|r| r.scope(&["29".into(), "56".into()]))
        .expect("scope");
        // 56002 is no commune of the scope; the order is the store's, or not.
        for tallies in [
            vec![
                tally("56001", 1, 1),
                tally("56001", 2, 2),
                tally("56002", 1, 9),
                tally("56003", 1, 3),
            ],
            vec![
                tally("56003", 1, 3),
                tally("56002", 1, 9),
                tally("56001", 2, 2),
                tally("56001", 1, 1),
            ],
        ] {
            let departement = DepartementReports::from_tallies("56", &scope, tallies);
            let dealt: Vec<(String, Vec<u32>)> = departement
                .communes
                .iter()
                .map(|(c, days)| {
                    (
                        c.code.to_string(),
                        days.iter().map(|d| d.counts[0]).collect(),
                    )
                })
                .collect();
            assert_eq!(
                dealt,
                [
                    ("56001".to_owned(), vec![1, 2]),
                    ("56003".to_owned(), vec![3])
                ]
            );
            let order = departement.day_order();
            let rows: Vec<u32> = departement
                .in_order(&order)
                .map(|(_, d)| d.counts[0])
                .collect();
            assert_eq!(rows, [1, 3, 2], "by day, then commune");
        }
    }
}
