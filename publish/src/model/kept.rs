//! A département's current reports kept between publications, compactly:
//! what lets a publication in the middle of a national morning apply the
//! reports written since the last one and render its pages without reading
//! the département again.
//!
//! About 18 bytes a (commune, day) with the five default settings (the
//! date, the version and whether the demonstration wrote it, then a `u16` a
//! setting), so a national year (12.8 million) holds in about 230 MB,
//! against 80 bytes as [`DayCounts`]. Only the latest instant of each
//! commune is kept: the site shows no other ([`Summary`]'s
//! `last_recorded`, a commune page's « mis à jour »).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use decompte_core::{CommuneCode, Scope};

use super::{CommuneSummary, DayCounts, DaySummary, DepartementReports, Sealed, Summary};

/// The demonstration's mark in [`Day::version`].
const DEMO: u32 = 1 << 31;

/// One département's days (see the module).
#[derive(Debug, Clone)]
pub struct Kept {
    width: usize,
    communes: Vec<KeptCommune>,
}

#[derive(Debug, Clone)]
struct KeptCommune {
    code: CommuneCode,
    days: Vec<Day>,
    /// `width` counts a day, in the order of `days`.
    counts: Vec<u16>,
    last_recorded: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
struct Day {
    /// Days from the Common Era, as [`NaiveDate::num_days_from_ce`].
    date: i32,
    /// The version, with [`DEMO`] set for the demonstration's.
    version: u32,
}

/// A report that does not fit the compact form (a count of 65,536 or more,
/// a version of 2³¹ or more): the département is read from the store again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl Day {
    fn of(day: &DayCounts) -> Result<Self, TooLarge> {
        if day.version >= DEMO {
            return Err(TooLarge);
        }
        Ok(Self {
            date: day.date.num_days_from_ce(),
            version: day.version | if day.demo { DEMO } else { 0 },
        })
    }

    fn date(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.date).unwrap_or(NaiveDate::MIN)
    }

    fn version(self) -> u32 {
        self.version & !DEMO
    }

    fn demo(self) -> bool {
        self.version & DEMO != 0
    }
}

fn narrow(counts: &[u32], width: usize) -> Result<impl Iterator<Item = u16> + '_, TooLarge> {
    if counts.len() != width || counts.iter().any(|n| *n > u32::from(u16::MAX)) {
        return Err(TooLarge);
    }
    Ok(counts.iter().map(|n| *n as u16))
}

impl KeptCommune {
    fn counts(&self, index: usize, width: usize) -> &[u16] {
        &self.counts[index * width..(index + 1) * width]
    }

    fn day_counts(&self, width: usize) -> Vec<DayCounts> {
        let recorded_at = self.last_recorded.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        self.days
            .iter()
            .enumerate()
            .map(|(index, day)| DayCounts {
                date: day.date(),
                version: day.version(),
                counts: self
                    .counts(index, width)
                    .iter()
                    .map(|n| u32::from(*n))
                    .collect(),
                recorded_at,
                demo: day.demo(),
            })
            .collect()
    }
}

impl Kept {
    /// The département of `reports` kept, or [`TooLarge`].
    pub fn of(reports: DepartementReports<'_>, width: usize) -> Result<Self, TooLarge> {
        let mut communes = Vec::with_capacity(reports.communes.len());
        for (commune, days) in reports.communes {
            let mut kept = KeptCommune {
                code: commune.code.clone(),
                days: Vec::with_capacity(days.len()),
                counts: Vec::with_capacity(days.len() * width),
                last_recorded: None,
            };
            for day in &days {
                kept.days.push(Day::of(day)?);
                kept.counts.extend(narrow(&day.counts, width)?);
                kept.last_recorded = kept.last_recorded.max(Some(day.recorded_at));
            }
            communes.push(kept);
        }
        Ok(Self { width, communes })
    }

    /// How many (commune, day)s it holds.
    pub fn len(&self) -> usize {
        self.communes.iter().map(|c| c.days.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The département again as [`DepartementReports`] (each day with its
    /// commune's latest instant).
    pub fn reports<'a>(&self, code: &'a str, scope: &'a Scope) -> DepartementReports<'a> {
        DepartementReports {
            code,
            name: scope.departement_name(code).unwrap_or(code),
            communes: scope
                .communes_of(code)
                .zip(&self.communes)
                .map(|(commune, kept)| (commune, kept.day_counts(self.width)))
                .collect(),
        }
    }

    /// One commune's days, as the commune's page shows them; none for a
    /// commune it does not hold.
    pub fn commune_days(&self, commune: &CommuneCode) -> Vec<DayCounts> {
        self.find(commune)
            .map(|at| self.communes[at].day_counts(self.width))
            .unwrap_or_default()
    }

    fn find(&self, commune: &CommuneCode) -> Option<usize> {
        self.communes.binary_search_by(|c| c.code.cmp(commune)).ok()
    }

    /// Takes in a report of one of its communes, as
    /// [`DepartementReports::apply`]: a newer version replaces the day, an
    /// older one changes nothing. A report of another commune is left out.
    pub fn apply(&mut self, commune: &CommuneCode, day: &DayCounts) -> Result<(), TooLarge> {
        let width = self.width;
        let Some(at) = self.find(commune) else {
            return Ok(());
        };
        let kept = &mut self.communes[at];
        let new = Day::of(day)?;
        let counts: Vec<u16> = narrow(&day.counts, width)?.collect();
        match kept.days.binary_search_by_key(&new.date, |d| d.date) {
            Ok(index) if kept.days[index].version() < day.version => {
                kept.days[index] = new;
                kept.counts[index * width..(index + 1) * width].copy_from_slice(&counts);
            }
            Ok(_) => return Ok(()),
            Err(index) => {
                // Exactly one more: a commune's days grow by one a day, and
                // doubling every commune's room would double what is kept.
                kept.days.reserve_exact(1);
                kept.counts.reserve_exact(width);
                kept.days.insert(index, new);
                kept.counts
                    .splice(index * width..index * width, counts.iter().copied());
            }
        }
        kept.last_recorded = kept.last_recorded.max(Some(day.recorded_at));
        Ok(())
    }

    /// What [`DepartementReports::summary`] gives of the same reports,
    /// unmasked, without making them again: [`crate::SiteConfig::patched`]
    /// is its one reader.
    pub(crate) fn summary(&self, code: &str) -> Summary {
        let width = self.width;
        let (first, last) = self
            .communes
            .iter()
            .filter_map(|c| Some((c.days.first()?.date, c.days.last()?.date)))
            .fold((i32::MAX, i32::MIN), |(lo, hi), (a, b)| {
                (lo.min(a), hi.max(b))
            });
        let span = usize::try_from(last.saturating_sub(first) + 1).unwrap_or(0);
        let mut by_day: Vec<Option<DaySummary>> = vec![None; span];
        let mut communes = Vec::with_capacity(self.communes.len());
        let (mut watermark, mut demo) = (None, false);
        for kept in &self.communes {
            let mut by_setting = vec![0u64; width];
            for (index, day) in kept.days.iter().enumerate() {
                let slot = &mut by_day[(day.date - first) as usize];
                let total = slot.get_or_insert_with(|| DaySummary::new(day.date(), width));
                total.reporting += 1;
                for (setting, count) in kept.counts(index, width).iter().enumerate() {
                    total.by_setting[setting] += u64::from(*count);
                    by_setting[setting] += u64::from(*count);
                }
                demo |= day.demo();
            }
            watermark = watermark.max(kept.last_recorded);
            communes.push(CommuneSummary {
                code: kept.code.clone(),
                by_setting,
                days_reported: u32::try_from(kept.days.len()).unwrap_or(u32::MAX),
                last_date: kept.days.last().map(|d| d.date()),
                last_recorded: kept.last_recorded,
            });
        }
        Summary {
            code: code.to_owned(),
            days: by_day.into_iter().flatten().collect(),
            communes,
            watermark,
            demo,
            sealed: Sealed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn scope() -> Scope {
        decompte_core::Referential::parse(
            "code,nom,departement,population\n56001,A,56,10\n56002,B,56,10\n56003,C,56,10\n",
            "code,nom\n56,M\n",
        )
        .and_then(|r| r.scope(&["56".into()]))
        .expect("scope")
    }

    /// A report of `date` days after 1 April 2020, recorded `minute`s after 8:00 on 1 June.
    fn day(date: u32, version: u32, counts: [u32; 2], minute: u32, demo: bool) -> DayCounts {
        DayCounts {
            date: NaiveDate::from_ymd_opt(2020, 4, 1).expect("date")
                + chrono::Duration::days(i64::from(date)),
            version,
            counts: counts.to_vec(),
            recorded_at: Utc
                .with_ymd_and_hms(2020, 6, 1, 8, 0, 0)
                .single()
                .expect("instant")
                + chrono::Duration::minutes(i64::from(minute)),
            demo,
        }
    }

    fn communes() -> [CommuneCode; 3] {
        ["56001", "56002", "56003"].map(|c| CommuneCode::parse(c).expect("code"))
    }

    proptest! {
        /// Kept and given reports one by one, a département gives the
        /// summary, the days and the same département as the reports
        /// applied to [`DepartementReports`].
        #[test]
        fn kept_gives_what_the_reports_give(
            first in prop::collection::vec((0usize..3, 0u32..40, 1u32..3, [0u32..70_000, 0u32..5], 0u32..60, any::<bool>()), 0..60),
            then in prop::collection::vec((0usize..3, 0u32..40, 1u32..5, [0u32..9, 0u32..5], 0u32..60, any::<bool>()), 0..30),
        ) {
            let scope = scope();
            let codes = communes();
            let mut whole = DepartementReports::from_days(
                "56",
                &scope,
                first.iter().map(|(c, d, v, n, m, demo)| (codes[*c].clone(), day(*d, *v, *n, *m, *demo))),
            );
            // `from_days` keeps every report given; `apply` the newest of a day.
            for (_, days) in &mut whole.communes {
                let mut newest: Vec<DayCounts> = Vec::new();
                for d in days.drain(..) {
                    match newest.last_mut() {
                        Some(last) if last.date == d.date => {
                            if d.version > last.version { *last = d; }
                        }
                        _ => newest.push(d),
                    }
                }
                *days = newest;
            }
            let wide = whole.communes.iter().flat_map(|(_, d)| d).any(|d| d.counts.iter().any(|n| *n > 65_535));
            let kept = Kept::of(whole.clone(), 2);
            prop_assert_eq!(kept.is_err(), wide);
            let Ok(mut kept) = kept else { return Ok(()) };
            // Written later than the first ones, each after the one before.
            for (minute, (c, d, v, n, _, demo)) in (100..).zip(&then) {
                let report = day(*d, *v, *n, minute, *demo);
                whole.apply(&codes[*c], report.clone());
                kept.apply(&codes[*c], &report).expect("small counts");
            }
            prop_assert_eq!(kept.len(), whole.report_count());
            prop_assert_eq!(kept.summary("56"), whole.summary(2));
            let again = kept.reports("56", &scope);
            prop_assert_eq!(again.summary(2), whole.summary(2));
            for (code, ((_, mine), (_, theirs))) in codes.iter().zip(again.communes.iter().zip(&whole.communes)) {
                let dates = |days: &[DayCounts]| days.iter().map(|d| (d.date, d.version, d.counts.clone(), d.demo)).collect::<Vec<_>>();
                prop_assert_eq!(dates(mine), dates(theirs));
                prop_assert_eq!(dates(&kept.commune_days(code)), dates(theirs));
            }
        }
    }

    #[test]
    fn a_count_too_large_for_the_compact_form_is_refused_and_changes_nothing() {
        let scope = scope();
        let codes = communes();
        let whole = DepartementReports::from_days(
            "56",
            &scope,
            [(codes[0].clone(), day(1, 1, [3, 0], 0, false))],
        );
        let mut kept = Kept::of(whole, 2).expect("small counts");
        assert_eq!(
            kept.apply(&codes[0], &day(1, 2, [70_000, 0], 1, false)),
            Err(TooLarge)
        );
        assert_eq!(kept.commune_days(&codes[0])[0].counts, [3, 0]);
        assert_eq!(kept.len(), 1);
    }
}
