//! Warnings before saving: figures that are possible but unlikely enough to
//! ask the person to look again. Never a rejection: a confirmed warning is
//! saved with the version that carries it.
//!
//! Three rules, stated on the methodology page:
//! - **implausible for the commune**: more deaths in one day than the
//!   commune's population makes believable — the day's total `n` such that a
//!   Poisson count of mean `λ` reaches `n` less than once in a million days,
//!   where `λ` is the commune's expected deaths of all causes in a day: its
//!   population times its département's daily death rate in 2019 (INSEE's
//!   daily deaths; France's rate where the département's is not shipped).
//!   Deaths of the crisis are a part of all deaths: a day above that bound is
//!   extraordinary, or a typing mistake (80 at home in a village of 300);
//! - **a jump**: at least 4 deaths, and at least four times one more than the
//!   mean of the commune's declared days of the week before;
//! - **an old day**: a day more than 30 days before today (configurable;
//!   off for a deployment that replays a past crisis).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::Scope;

/// France's daily death rate of all causes, per inhabitant: about 613,000
/// deaths in 2019 (INSEE) for about 68 million inhabitants.
pub const FRANCE_DAILY_RATE: f64 = 613_000.0 / 365.0 / 68_000_000.0;

/// Daily deaths of all causes per inhabitant, by département.
#[derive(Debug, Clone, Default)]
pub struct Rates(BTreeMap<String, f64>);

impl Rates {
    /// From a year's deaths of all causes by département (INSEE, 2019) and
    /// the populations of the communes in `scope`.
    pub fn from_yearly_deaths(deaths: &BTreeMap<String, u64>, scope: &Scope) -> Self {
        let mut population: BTreeMap<&str, u64> = BTreeMap::new();
        for commune in scope.communes() {
            *population.entry(commune.departement.as_str()).or_default() += commune.population;
        }
        Self(
            deaths
                .iter()
                .filter_map(|(departement, &yearly)| {
                    let people = *population.get(departement.as_str())?;
                    (people > 0)
                        .then(|| (departement.clone(), yearly as f64 / 365.0 / people as f64))
                })
                .collect(),
        )
    }

    /// The département's daily rate; France's where it is not known.
    pub fn daily_rate(&self, departement: &str) -> f64 {
        self.0
            .get(departement)
            .copied()
            .unwrap_or(FRANCE_DAILY_RATE)
    }
}

/// A figure to look at again before saving.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// `implausible`, `jump` or `old_day`: what is kept with the version.
    pub code: &'static str,
    /// The field it is about (`counts`, `date`).
    pub field: &'static str,
    /// What to check, in French.
    pub message: String,
}

/// Every warning code, for documentation and for reading stored versions back.
pub const CODES: [&str; 3] = ["implausible", "jump", "old_day"];

/// How a confirmed warning is named in a version's history.
pub fn label(code: &str) -> &'static str {
    match code {
        "implausible" => "nombre exceptionnel confirmé",
        "jump" => "hausse brusque confirmée",
        "old_day" => "jour ancien confirmé",
        _ => "avertissement confirmé",
    }
}

/// Days before today after which a declaration is an old one, by default.
pub const OLD_DAY_AFTER: i64 = 30;

/// One-in-how-many-days a day's total must be to be called implausible.
const ONE_IN: f64 = 1_000_000.0;

/// The smallest `n` with `P(X ≥ n) < 1 / ONE_IN` for `X ~ Poisson(λ)`.
pub fn implausible_from(lambda: f64) -> u64 {
    let lambda = lambda.max(1e-9);
    // P(X ≥ n) = 1 − Σ_{k<n} e^−λ λ^k / k!, summed until the tail is small.
    let mut term = (-lambda).exp();
    let mut below = 0.0;
    let mut n = 0u64;
    loop {
        below += term;
        n += 1;
        let tail = 1.0 - below;
        if tail < 1.0 / ONE_IN || n > 100_000 {
            return n;
        }
        term *= lambda / n as f64;
    }
}

/// What a day's declaration is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The commune's population.
    pub population: u64,
    /// Expected deaths of all causes in the commune in one day.
    pub expected_daily: f64,
    /// The commune's declared totals of the week before the day.
    pub week_before: &'a [u64],
    /// Today, in the commune's time zone.
    pub today: NaiveDate,
    /// Days before today after which a day is an old one; `None`, never.
    pub old_after: Option<i64>,
}

/// The warnings of a day's `total` declared for `date`.
pub fn warnings(total: u64, date: NaiveDate, context: &Context<'_>) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let bound = implausible_from(context.expected_daily);
    if total >= bound.max(2) {
        warnings.push(Warning {
            code: "implausible",
            field: "counts",
            message: format!(
                "{total} décès en un jour, c'est exceptionnel pour une commune de {} habitants : \
                toutes causes confondues, {bound} décès ou plus en un jour n'y arrivent même pas \
                un jour sur un million. Vérifiez chaque nombre, puis confirmez.",
                crate::time::fr_int(context.population)
            ),
        });
    }
    if !context.week_before.is_empty() && total >= 4 {
        let mean =
            context.week_before.iter().sum::<u64>() as f64 / context.week_before.len() as f64;
        if total as f64 >= 4.0 * (mean + 1.0) {
            warnings.push(Warning {
                code: "jump",
                field: "counts",
                message: format!(
                    "{total} décès, contre {mean:.1} par jour en moyenne la semaine précédente : \
                    vérifiez qu'il ne s'agit pas d'une erreur de saisie, puis confirmez."
                ),
            });
        }
    }
    if let Some(days) = context
        .old_after
        .filter(|days| (context.today - date).num_days() > *days)
    {
        warnings.push(Warning {
            code: "old_day",
            field: "date",
            message: format!(
                "Ce jour remonte à plus de {days} jours : vérifiez la date (le jour du décès, pas \
                celui de la déclaration), puis confirmez."
            ),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 4, d).unwrap_or_default()
    }

    #[test]
    fn the_bound_grows_with_the_population() {
        // Morbihan 2019: 8,575 deaths, about 759,000 inhabitants.
        let rate = 8575.0 / 365.0 / 759_000.0;
        let village = implausible_from(300.0 * rate);
        let vannes = implausible_from(53_000.0 * rate);
        assert_eq!(
            village, 3,
            "a village of 300: three deaths in a day is a one-in-a-million day"
        );
        assert!((10..=14).contains(&vannes), "Vannes: {vannes}");
    }

    #[test]
    fn eighty_at_home_in_a_village_is_flagged_and_a_usual_day_is_not() {
        let context = Context {
            population: 300,
            expected_daily: 300.0 * 3.1e-5,
            week_before: &[0, 0, 1, 0],
            today: day(10),
            old_after: Some(OLD_DAY_AFTER),
        };
        let codes = |total, date| {
            warnings(total, date, &context)
                .iter()
                .map(|w| w.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(80, day(9)), ["implausible", "jump"]);
        assert_eq!(codes(1, day(9)), Vec::<&str>::new());
        assert_eq!(
            codes(0, NaiveDate::from_ymd_opt(2020, 3, 1).unwrap_or_default()),
            ["old_day"]
        );
    }
}
