//! One département rendered, from the store or from the days kept.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use decompte_core::CommuneCode;
use decompte_store::Tally;

use super::Rendered;
use crate::model::{DayCounts, DepartementReports};
use crate::render::{Renderer, SiteConfig};
use crate::PublishError;

/// Where a département's reports come from: the store, or the days kept
/// from the last publication and the reports recorded since.
pub(super) enum Origin {
    Read(Vec<Tally>),
    Kept(Vec<Vec<DayCounts>>, Vec<(CommuneCode, DayCounts)>),
}

/// Renders one département (on the blocking pool, its commune pages on
/// every core).
pub(super) fn render_departement(
    config: &SiteConfig,
    today: NaiveDate,
    demo: bool,
    code: &str,
    communes: Option<&BTreeSet<String>>,
    source: Origin,
) -> Result<Rendered, PublishError> {
    let (departement, seen) = match source {
        Origin::Read(mut tallies) => {
            // In the order of (commune, day), as SQLite reads them and as
            // what follows is fastest with: PostgreSQL returns a département
            // in the order its rows were written.
            crate::model::sort_tallies(&mut tallies);
            let seen = tallies
                .iter()
                .filter(|t| config.scope.contains(&t.commune))
                .map(|t| (t.commune.clone(), t.date, t.version, t.recorded_at))
                .collect();
            (
                DepartementReports::from_tallies(code, &config.scope, tallies),
                seen,
            )
        }
        Origin::Kept(days, changes) => {
            let mut departement = DepartementReports::from_kept(code, &config.scope, days);
            let seen = changes
                .iter()
                .map(|(c, d)| (c.clone(), d.date, d.version, d.recorded_at))
                .collect();
            for (commune, day) in changes {
                departement.apply(&commune, day);
            }
            (departement, seen)
        }
    };
    let view = config.publishable(&departement);
    let renderer = Renderer::new(config, today, demo);
    let rendered = renderer.departement(&view, communes)?;
    let summary = view.into_summary();
    Ok(Rendered {
        code: code.to_owned(),
        files: rendered.files,
        summary,
        data: rendered.data,
        seen,
        days: departement.into_days(),
    })
}
