//! Sums and rates: a day's deaths by setting, the week ending on it and the
//! week before, the trend between the two weeks, deaths per 100,000
//! inhabitants. (The site's sums by day and commune are the publisher's
//! model, one département at a time.)

use chrono::{Duration, NaiveDate};

use crate::report::Report;
use crate::setting::Settings;

/// A day's deaths by setting (in the settings' order), the seven days
/// ending on it and the seven before: what the morning report and the
/// prefecture page sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    pub date: NaiveDate,
    /// The week's first day (six days before `date`).
    pub week_start: NaiveDate,
    pub day: Vec<u64>,
    pub week: Vec<u64>,
    pub before: Vec<u64>,
}

impl Windows {
    /// The sums of `reports` (any days: those outside the two weeks are left
    /// out), in one pass.
    pub fn of<'a>(
        reports: impl IntoIterator<Item = &'a Report>,
        settings: &Settings,
        date: NaiveDate,
    ) -> Self {
        let week_start = date - Duration::days(6);
        let before_start = week_start - Duration::days(7);
        let zero = vec![0u64; settings.len()];
        let (mut day, mut week, mut before) = (zero.clone(), zero.clone(), zero);
        for report in reports {
            let windows: &mut [&mut Vec<u64>] = if report.date == date {
                &mut [&mut day, &mut week]
            } else if report.date >= week_start && report.date < date {
                &mut [&mut week]
            } else if report.date >= before_start && report.date < week_start {
                &mut [&mut before]
            } else {
                &mut []
            };
            for (i, key) in settings.keys().enumerate() {
                let count = u64::from(report.count(key));
                for window in windows.iter_mut() {
                    window[i] += count;
                }
            }
        }
        Self {
            date,
            week_start,
            day,
            week,
            before,
        }
    }

    pub fn day_total(&self) -> u64 {
        self.day.iter().sum()
    }

    pub fn week_total(&self) -> u64 {
        self.week.iter().sum()
    }

    pub fn before_total(&self) -> u64 {
        self.before.iter().sum()
    }
}

/// The week against the one before: « +25 % », « −10 % », « stable », or
/// « nouveau » when the week before had none.
pub fn trend(week: u64, before: u64) -> String {
    match (week, before) {
        (0, 0) => "—".to_owned(),
        (_, 0) => "nouveau".to_owned(),
        (w, b) if w == b => "stable".to_owned(),
        (w, b) => {
            let change = (w as f64 - b as f64) * 100.0 / b as f64;
            let rounded = change.round() as i64;
            if rounded > 0 {
                format!("+{rounded} %")
            } else {
                format!("−{} %", rounded.unsigned_abs())
            }
        }
    }
}

/// A difference with its sign: « +3 », « −2 », « 0 ».
pub fn signed(n: i64) -> String {
    match n {
        0 => "0".to_owned(),
        n if n > 0 => format!("+{n}"),
        n => format!("−{}", n.unsigned_abs()),
    }
}

pub fn per_100k(deaths: u64, population: u64) -> Option<f64> {
    (population > 0).then(|| deaths as f64 * 100_000.0 / population as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commune::CommuneCode;
    use crate::report::Source;
    use chrono::{TimeZone, Utc};

    fn report(day: u32, hopital: u32, domicile: u32) -> Report {
        Report {
            commune: CommuneCode::parse("56260").expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, day).expect("a day"),
            counts: [
                ("hopital".to_owned(), hopital),
                ("domicile".to_owned(), domicile),
            ]
            .into(),
            version: 1,
            recorded_at: Utc
                .with_ymd_and_hms(2020, 4, day, 18, 0, 0)
                .single()
                .expect("an instant"),
            recorded_by: "test".into(),
            source: Source::Form,
            reason: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_day_its_week_and_the_week_before() {
        let settings = Settings::parse("hopital=Hôpital,domicile=Domicile").expect("settings");
        let reports = [
            report(15, 1, 2), // the day
            report(9, 4, 0),  // the week's first day
            report(8, 2, 1),  // the week before's last day
            report(2, 5, 0),  // the week before's first day
            report(1, 9, 9),  // before both weeks
            report(16, 7, 7), // after the day
        ];
        let day = NaiveDate::from_ymd_opt(2020, 4, 15).expect("a day");
        let windows = Windows::of(&reports, &settings, day);
        assert_eq!(windows.week_start, day - Duration::days(6));
        assert_eq!(windows.day, [1, 2]);
        assert_eq!(windows.week, [5, 2]);
        assert_eq!(windows.before, [7, 1]);
        assert_eq!(
            (
                windows.day_total(),
                windows.week_total(),
                windows.before_total()
            ),
            (3, 7, 8)
        );
    }

    #[test]
    fn trends_and_signs_in_french() {
        assert_eq!(trend(0, 0), "—");
        assert_eq!(trend(3, 0), "nouveau");
        assert_eq!(trend(4, 4), "stable");
        assert_eq!(trend(5, 4), "+25 %");
        assert_eq!(trend(3, 4), "−25 %");
        assert_eq!(signed(-2), "−2");
        assert_eq!(signed(3), "+3");
        assert_eq!(signed(0), "0");
    }

    #[test]
    fn rates() {
        assert_eq!(per_100k(1, 4000), Some(25.0));
        assert_eq!(per_100k(3, 0), None, "no population, no rate");
    }
}
