//! The morning situation report (« point de situation ») of a day and a
//! département: the day's and the week's deaths by setting, the trend
//! against the week before, the communes flagged by the signals, the
//! communes that did not declare, and the gap with Santé publique France.
//! Made from the store as it stands, so any past day can be made again; shown
//! as a page (`/prefecture/point`), printed as a PDF
//! (`/prefecture/point.pdf`), and e-mailed each morning at
//! `DECOMPTE_REPORT_HOUR` to `DECOMPTE_REPORT_TO`.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use decompte_core::aggregate::{signed, trend, Windows};
use decompte_core::signals::{self, Signal};
use decompte_core::time::{fr_date, fr_datetime};
use decompte_core::{CommuneCode, Report, Scope, Settings};
use decompte_store::{ReportQuery, Store, StoreError};
use decompte_templates::format_int;
use serde::Serialize;

use crate::pdf::Line;

/// The report of one day and one département.
#[derive(Debug, Clone, Serialize)]
pub struct Situation {
    pub date: NaiveDate,
    pub date_fr: String,
    pub week_from_fr: String,
    pub made_at_fr: String,
    pub departement: String,
    pub departement_name: String,
    pub rows: Vec<SettingRow>,
    pub day_total: u64,
    pub week_total: u64,
    pub before_total: u64,
    pub trend: String,
    pub expected: usize,
    pub declared: usize,
    pub missing: Vec<String>,
    pub flagged: Vec<Flagged>,
    pub spf: Option<SpfGap>,
}

/// One setting's deaths: the day, the week, the week before, the trend.
#[derive(Debug, Clone, Serialize)]
pub struct SettingRow {
    pub label: String,
    pub day: u64,
    pub week: u64,
    pub before: u64,
    pub trend: String,
}

/// A commune the signals flag.
#[derive(Debug, Clone, Serialize)]
pub struct Flagged {
    pub name: String,
    pub setting: String,
    pub deaths: u64,
    pub expected: f64,
}

/// The hospital deaths the communes declared against Santé publique France's.
#[derive(Debug, Clone, Serialize)]
pub struct SpfGap {
    pub day: u64,
    pub week: u64,
    pub ours_day: u64,
    pub ours_week: u64,
    pub gap_day: String,
    pub gap_week: String,
    /// SpF's file has the day.
    pub known: bool,
}

/// The report of `date` for `departement` (one of `scope`'s), from the store.
pub async fn situation(
    store: &dyn Store,
    scope: &Scope,
    settings: &Settings,
    date: NaiveDate,
    departement: &str,
    now: DateTime<Utc>,
) -> Result<Situation, StoreError> {
    // Four weeks of one département: the signals' reach, and the two weeks of the trend.
    let reports = store
        .current_reports(&ReportQuery {
            commune: None,
            departements: vec![departement.to_owned()],
            from: Some(signals::first_day_read(date)),
            to: Some(date),
        })
        .await?;
    let reference = store.reference(departement).await?;
    let in_scope: Vec<&Report> = reports
        .iter()
        .filter(|r| scope.contains(&r.commune))
        .collect();
    let windows = Windows::of(in_scope.iter().copied(), settings, date);
    let (week_start, day, week) = (windows.week_start, &windows.day, &windows.week);
    let rows = settings
        .iter()
        .enumerate()
        .map(|(i, s)| SettingRow {
            label: s.label.clone(),
            day: day[i],
            week: week[i],
            before: windows.before[i],
            trend: trend(week[i], windows.before[i]),
        })
        .collect();
    let (day_total, week_total, before_total) = (
        windows.day_total(),
        windows.week_total(),
        windows.before_total(),
    );
    // Who declared the day.
    let declared: std::collections::BTreeSet<&CommuneCode> = in_scope
        .iter()
        .filter(|r| r.date == date)
        .map(|r| &r.commune)
        .collect();
    let communes: Vec<_> = scope
        .communes()
        .filter(|c| c.departement == departement)
        .collect();
    let missing: Vec<String> = communes
        .iter()
        .filter(|c| !declared.contains(&c.code))
        .map(|c| c.name.clone())
        .collect();
    let found = signals::signals(date, departement, scope, settings, &reports);
    let flagged = found
        .iter()
        .filter(|s: &&Signal| s.flagged)
        .map(|s| Flagged {
            name: scope
                .get(&s.commune)
                .map_or_else(String::new, |c| c.name.clone()),
            setting: settings
                .iter()
                .nth(s.setting)
                .map_or_else(String::new, |x| x.label.clone()),
            deaths: s.deaths,
            expected: s.expected,
        })
        .collect();
    // Santé publique France, over the same week.
    let spf = reference.as_ref().and_then(|series| {
        let hospital = settings.position(HOSPITAL)?;
        let spf_day = u64::from(series.days.get(&date).copied().unwrap_or(0));
        let spf_week: u64 = series
            .days
            .range(week_start..=date)
            .map(|(_, n)| u64::from(*n))
            .sum();
        Some(SpfGap {
            day: spf_day,
            week: spf_week,
            ours_day: day[hospital],
            ours_week: week[hospital],
            gap_day: signed(day[hospital] as i64 - spf_day as i64),
            gap_week: signed(week[hospital] as i64 - spf_week as i64),
            known: series.days.contains_key(&date),
        })
    });
    Ok(Situation {
        date,
        date_fr: fr_date(date),
        week_from_fr: fr_date(week_start),
        made_at_fr: fr_datetime(now),
        departement: departement.to_owned(),
        departement_name: scope
            .departement_name(departement)
            .unwrap_or(departement)
            .to_owned(),
        rows,
        day_total,
        week_total,
        before_total,
        trend: trend(week_total, before_total),
        expected: communes.len(),
        declared: communes.len() - missing.len(),
        missing,
        flagged,
        spf,
    })
}

/// The setting Santé publique France's hospital deaths compare with.
pub const HOSPITAL: &str = "hopital";

impl Situation {
    /// The report as lines of a printed page.
    pub fn lines(&self, publisher: &str, crisis: &str) -> Vec<Line> {
        let n = |x: u64| format_int(x);
        let mut all = vec![
            Line::bold(
                15.0,
                format!(
                    "Point de situation du {} · {} ({})",
                    self.date_fr, self.departement_name, self.departement
                ),
            ),
            Line::gap(),
        ];
        all.extend(Line::paragraph(&format!(
            "Décès liés à la crise {crisis} déclarés par les communes pour le {}, et la semaine \
             du {} au {}. Établi le {} (heure de Paris) par la {publisher}, d'après les \
             déclarations reçues à cette heure.",
            self.date_fr, self.week_from_fr, self.date_fr, self.made_at_fr
        )));
        all.push(Line::gap());
        all.push(Line::bold(13.0, "Décès"));
        all.push(Line::plain(
            11.0,
            format!(
                "{} le {} · {} sur sept jours · tendance {} par rapport aux sept jours \
                 précédents ({})",
                n(self.day_total),
                self.date_fr,
                n(self.week_total),
                self.trend,
                n(self.before_total)
            ),
        ));
        all.push(Line::gap());
        for row in &self.rows {
            all.push(Line::plain(
                11.0,
                format!(
                    "{} : {} le jour, {} sur sept jours, {} les sept jours précédents ({})",
                    row.label,
                    n(row.day),
                    n(row.week),
                    n(row.before),
                    row.trend
                ),
            ));
        }
        all.push(Line::gap());
        all.push(Line::bold(13.0, "Communes signalées"));
        if self.flagged.is_empty() {
            all.push(Line::plain(
                11.0,
                "Aucune commune ne sort de l'ordinaire sur les sept jours.",
            ));
        }
        for f in &self.flagged {
            all.extend(Line::paragraph(&format!(
                "{} : {} décès ({}) sur sept jours, pour {} attendus au taux du reste du \
                 département.",
                f.name,
                f.deaths,
                f.setting,
                format!("{:.2}", f.expected).replace('.', ",")
            )));
        }
        all.push(Line::gap());
        all.push(Line::bold(13.0, "Déclarations"));
        let mut declared = format!(
            "{} commune{} sur {} {} déclaré le {}.",
            n(self.declared as u64),
            if self.declared > 1 { "s" } else { "" },
            n(self.expected as u64),
            if self.declared > 1 { "ont" } else { "a" },
            self.date_fr
        );
        if !self.missing.is_empty() {
            declared.push_str(&format!(
                " N'ont pas déclaré ({}) : {}.",
                self.missing.len(),
                self.missing.join(", ")
            ));
        }
        all.extend(Line::paragraph(&declared));
        all.push(Line::gap());
        all.push(Line::bold(13.0, "Santé publique France"));
        all.extend(Line::paragraph(&match &self.spf {
            None => "Aucun fichier de Santé publique France n'a été importé pour ce département."
                .to_owned(),
            Some(spf) if spf.known => format!(
                "Décès à l'hôpital : {} déclarés par les communes le {}, {} selon Santé \
                 publique France (écart {}) ; sur sept jours, {} contre {} (écart {}).",
                n(spf.ours_day),
                self.date_fr,
                n(spf.day),
                spf.gap_day,
                n(spf.ours_week),
                n(spf.week),
                spf.gap_week
            ),
            Some(spf) => format!(
                "Décès à l'hôpital : {} déclarés par les communes le {} ; Santé publique France \
                 n'a pas encore de chiffre pour ce jour ; sur sept jours, {} contre {} (écart \
                 {}).",
                n(spf.ours_day),
                self.date_fr,
                n(spf.ours_week),
                n(spf.week),
                spf.gap_week
            ),
        }));
        all
    }

    /// The report as a PDF.
    pub fn pdf(&self, publisher: &str, crisis: &str) -> Vec<u8> {
        crate::pdf::document(&[self.lines(publisher, crisis)])
    }

    /// The report as the text of an e-mail.
    pub fn text(&self, publisher: &str, crisis: &str) -> String {
        let mut text = String::new();
        for line in self.lines(publisher, crisis) {
            if line.bold && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    }

    /// The PDF's file name: `point-de-situation-56-2020-04-05.pdf`.
    pub fn file_name(&self) -> String {
        format!(
            "point-de-situation-{}-{}.pdf",
            self.departement.to_lowercase(),
            self.date
        )
    }
}

/// Why a morning report did not go.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no SMTP server configured (DECOMPTE_SMTP_HOST)")]
    NoMailer,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("e-mail: {0}")]
    Mail(#[from] crate::mail::MailError),
}

/// E-mails the report of `date` of each département of `departements`
/// (all if `None`) that has recipients, its PDF attached; returns the
/// départements sent. One that fails does not stop the others; the first
/// error is returned after them all.
pub async fn send_morning_reports(
    state: &crate::AppState,
    date: NaiveDate,
    departements: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ReportError> {
    let config = &state.config;
    let mailer = config.mailer.as_ref().ok_or(ReportError::NoMailer)?;
    let (mut sent, mut first_error) = (Vec::new(), None);
    let wanted = config
        .report_recipients
        .iter()
        .filter(|(code, _)| departements.is_none_or(|only| only.contains(code)));
    for (departement, recipients) in wanted {
        let outcome = async {
            let report = situation(
                state.store.as_ref(),
                &config.scope,
                &config.rules.settings,
                date,
                departement,
                now,
            )
            .await?;
            let subject = format!(
                "Point de situation du {} · {} ({}) · décès {}",
                report.date_fr, report.departement_name, report.departement, config.crisis
            );
            mailer
                .send_with_pdf(
                    recipients,
                    &subject,
                    report.text(&config.publisher, &config.crisis),
                    &report.file_name(),
                    report.pdf(&config.publisher, &config.crisis),
                )
                .await?;
            Ok::<_, ReportError>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                tracing::info!(event = "report_emailed", %departement, %date, recipients = recipients.len(), "morning report");
                sent.push(departement.clone());
            }
            Err(error) => {
                tracing::error!(%departement, %date, %error, "the morning report did not go");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(sent),
    }
}

/// The next time after `now` the clock of `zone` reads `hour` o'clock.
pub fn next_report_at(
    now: DateTime<Utc>,
    hour: u32,
    zone: decompte_core::time::Tz,
) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = now.with_timezone(&zone).date_naive();
    (0..3)
        .filter_map(|days| {
            let day = local + Duration::days(days);
            let at = day.and_hms_opt(hour, 0, 0)?;
            // A spring-forward gap has no such hour: take the first instant after it.
            zone.from_local_datetime(&at).earliest().or_else(|| {
                zone.from_local_datetime(&(at + Duration::hours(1)))
                    .earliest()
            })
        })
        .map(|at| at.with_timezone(&Utc))
        .find(|at| *at > now)
        .unwrap_or(now + Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_goes_at_the_next_hour_of_the_departement_s_clock() {
        use chrono::TimeZone;
        let paris = decompte_core::time::zone("56");
        let at = |d: u32, h: u32, m: u32| {
            Utc.with_ymd_and_hms(2020, 4, d, h, m, 0)
                .single()
                .expect("instant")
        };
        // 8 h in Paris is 6 h UTC in April (summer time).
        assert_eq!(next_report_at(at(5, 5, 0), 8, paris), at(5, 6, 0));
        assert_eq!(next_report_at(at(5, 6, 0), 8, paris), at(6, 6, 0));
        assert_eq!(next_report_at(at(5, 7, 30), 8, paris), at(6, 6, 0));
        // Réunion is UTC+4.
        let reunion = decompte_core::time::zone("974");
        assert_eq!(next_report_at(at(5, 3, 0), 8, reunion), at(5, 4, 0));
        // The night of the spring change (29 March 2020), 2 h does not exist.
        let change = Utc
            .with_ymd_and_hms(2020, 3, 29, 0, 30, 0)
            .single()
            .expect("instant");
        assert_eq!(
            next_report_at(change, 2, paris),
            Utc.with_ymd_and_hms(2020, 3, 29, 1, 0, 0)
                .single()
                .expect("instant")
        );
    }
}
