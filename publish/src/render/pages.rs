//! A département's page (several départements) and a commune's page.

use decompte_core::aggregate::per_100k;
use decompte_core::time::{fr_date, fr_datetime_in, zone_label};
use decompte_core::Commune;
use serde_json::{json, Value};

use crate::model::{DayCounts, DaySummary, Summary};

use super::format::*;
use super::{RenderError, Renderer};

impl Renderer<'_> {
    /// `departements/{code}.html`: the département's totals, charts,
    /// completeness and communes.
    pub fn departement_page(&self, summary: &Summary) -> Result<Vec<u8>, RenderError> {
        let scope = &self.config.scope;
        let name = scope
            .departement_name(&summary.code)
            .unwrap_or(&summary.code);
        let label = format!("{name} ({})", summary.code);
        let (expected, population) = scope
            .communes_of(&summary.code)
            .fold((0usize, 0u64), |(n, p), c| (n + 1, p + c.population));
        let mut context = self.level(
            "../",
            &[summary],
            &label,
            population,
            expected,
            &format!("departement-{}", summary.code),
        )?;
        merge(
            &mut context,
            json!({
                "departement": {"code": summary.code, "name": name, "label": label},
                "communes": self.commune_rows(summary),
                "map": self.commune_map(&[summary], &label, "../"),
                "map_of": "communes",
            }),
        );
        self.page("site/departement.html", context)
    }

    /// `communes/{code}.html`: one commune's days.
    pub fn commune_page(
        &self,
        commune: &Commune,
        days: &[DayCounts],
    ) -> Result<Vec<u8>, RenderError> {
        let width = self.config.settings.len();
        let updated = days.iter().map(|d| d.recorded_at).max();
        let lines: Vec<DaySummary> = days
            .iter()
            .map(|d| DaySummary {
                by_setting: d.counts.iter().map(|n| u64::from(*n)).collect(),
                reporting: 1,
                ..DaySummary::new(d.date, 0)
            })
            .collect();
        let by_setting = sum_settings(lines.iter().map(|d| &d.by_setting), width);
        let total: u64 = by_setting.iter().sum();
        let chart = if lines.is_empty() || !self.config.commune_figures() {
            Value::Null
        } else {
            // Communes report sparsely: the chart covers their own first to last day.
            stacked_chart(
                &filled(&lines, width),
                &self.colors,
                &format!("commune-{}", commune.code),
                &format!("Décès par jour et par lieu, {}", commune.name),
            )?
        };
        let up = if self.multi() {
            let name = self
                .config
                .scope
                .departement_name(&commune.departement)
                .unwrap_or(&commune.departement);
            json!({"href": format!("../departements/{}.html", commune.departement),
                   "label": format!("{name} ({})", commune.departement)})
        } else {
            json!({"href": "../index.html", "label": "Vue d'ensemble"})
        };
        let mut context = self.base("../");
        merge(
            &mut context,
            json!({
                "commune": {
                    "code": commune.code,
                    "name": commune.name,
                    "population": commune.population,
                },
                "up": up,
                "declared": !days.is_empty(),
                "updated_fr": updated
                    .filter(|_| self.config.commune_figures())
                    .map(|at| fr_datetime_in(at, &commune.departement)),
                "clock": zone_label(&commune.departement),
                "total": total,
                "per_100k": per_100k(total, commune.population),
                "settings_totals": self.totals(&by_setting, false),
                "day_count": lines.len(),
                "first_day_fr": lines.first().map(|d| fr_date(d.date)),
                "last_day_fr": lines.last().map(|d| fr_date(d.date)),
                // Written here, not by the template: a commune page of a
                // year is 365 rows, and the country has 35,000 communes.
                "days": commune_days(&lines, width, self.config.commune_figures()),
                "chart_daily": chart,
            }),
        );
        self.page("site/commune.html", context)
    }
}
