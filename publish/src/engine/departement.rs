//! One département rendered, from the store or from the days kept.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use decompte_store::Tally;

use super::Rendered;
use crate::model::{DepartementReports, Kept};
use crate::render::{Renderer, SiteConfig};
use crate::PublishError;

/// Where a département's reports come from: the store, or the days kept
/// from the last publication (the reports recorded since applied).
pub(super) enum Origin {
    Read(Vec<Tally>),
    Kept(Kept),
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
    let width = config.settings.len();
    let (departement, seen, kept) = match source {
        Origin::Read(mut tallies) => {
            // In the order of (commune, day), as SQLite reads them and as
            // what follows is fastest with: PostgreSQL returns a département
            // in the order its rows were written.
            crate::model::sort_tallies(&mut tallies);
            let mut seen = Vec::with_capacity(tallies.len());
            seen.extend(
                tallies
                    .iter()
                    .filter(|t| config.scope.contains(&t.commune))
                    .map(|t| (t.commune.clone(), t.date, t.version, t.recorded_at)),
            );
            (
                DepartementReports::from_tallies(code, &config.scope, tallies),
                seen,
                None,
            )
        }
        Origin::Kept(kept) => (kept.reports(code, &config.scope), Vec::new(), Some(kept)),
    };
    let view = config.publishable(&departement);
    let renderer = Renderer::new(config, today, demo);
    let rendered = renderer.departement(&view, communes)?;
    let summary = view.into_summary();
    Ok(Rendered {
        code: code.to_owned(),
        files: rendered.files,
        summary,
        data: Some(rendered.data),
        seen,
        // A count too large for the compact form: read again next time.
        kept: match kept {
            Some(kept) => Some(kept),
            None => Kept::of(departement, width).ok(),
        },
    })
}

/// The pages of a département kept from the last publication, the reports
/// recorded since applied: those of `communes` and its own, from what is
/// kept (on the blocking pool, the commune pages on every core). Its data
/// files wait ([`super::State::stale`]). None under the rule of small
/// counts, where pages are made from the whole département only.
pub(super) fn render_patched(
    config: &SiteConfig,
    today: NaiveDate,
    demo: bool,
    code: &str,
    communes: &BTreeSet<String>,
    kept: Kept,
) -> Result<Result<Rendered, Kept>, PublishError> {
    let Some(patched) = config.patched(&kept, code) else {
        return Ok(Err(kept));
    };
    let files = Renderer::new(config, today, demo).patched_pages(&patched, communes)?;
    let summary = patched.into_summary();
    Ok(Ok(Rendered {
        code: code.to_owned(),
        files,
        summary,
        data: None,
        seen: Vec::new(),
        kept: Some(kept),
    }))
}
