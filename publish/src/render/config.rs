//! What a deployment publishes about itself, and what the renderer may read
//! of a département: [`SiteConfig::publishable`], the one way to a page.

use decompte_core::{Scope, Settings};

use decompte_core::CommuneCode;

use crate::model::{DayCounts, DepartementReports, Kept, Protection, Summary};

/// What a deployment publishes about itself.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// "Préfecture du Morbihan".
    pub publisher: String,
    /// "Covid-19".
    pub crisis: String,
    /// The « République française » brand and Marianne (`--theme etat`).
    pub state_brand: bool,
    pub scope: Scope,
    pub settings: Settings,
    /// The rule of small counts, `k` (`--small-counts`): see [`crate::model::Protection`].
    pub small_counts: Option<u32>,
}

impl SiteConfig {
    /// The site's configuration from the process options.
    pub fn from_options(
        options: &decompte_config::Options,
    ) -> Result<Self, decompte_config::ConfigError> {
        Ok(Self {
            publisher: options.publisher.clone(),
            crisis: options.crisis.clone(),
            state_brand: options.state_brand(),
            scope: options.scope()?,
            settings: options.rules()?.settings,
            small_counts: options.small_counts,
        })
    }

    /// The communes' own figures are published (the rule of small counts is off).
    pub fn commune_figures(&self) -> bool {
        self.small_counts.is_none()
    }

    /// The rule of small counts, if on.
    pub fn protection(&self) -> Option<Protection> {
        self.small_counts.map(|k| Protection { k })
    }

    /// What the renderer may read of a département: all of it, or under
    /// the rule of small counts its masked view ([`Protection`]). The one
    /// way to a [`Publishable`], and so to a page.
    pub fn publishable<'v, 'a>(
        &self,
        departement: &'v DepartementReports<'a>,
    ) -> Publishable<'v, 'a> {
        let mut summary = departement.summary(self.settings.len());
        let masked = self.protection().map(|protection| {
            protection.mask_summary(&mut summary);
            protection.mask(departement)
        });
        Publishable {
            summary,
            masked,
            whole: departement,
        }
    }

    /// A département kept between publications, as the site may show it
    /// without making it again ([`Patched`]): only when nothing is masked.
    /// Under the rule of small counts, none: the département is made
    /// publishable from its reports ([`SiteConfig::publishable`]).
    pub fn patched<'k>(&self, kept: &'k Kept, code: &str) -> Option<Patched<'k>> {
        if self.protection().is_some() {
            return None;
        }
        Some(Patched {
            summary: kept.summary(code),
            kept,
        })
    }

    /// Several départements: the site has a level per département.
    pub fn by_departement(&self) -> bool {
        self.scope.departement_codes().nth(1).is_some()
    }
}

/// A département as the site may show it: its summary and its reports,
/// masked under the rule of small counts. Only [`SiteConfig::publishable`]
/// makes one, and the renderer reads a département through nothing else,
/// so an unmasked figure cannot reach a page.
pub struct Publishable<'v, 'a> {
    summary: Summary,
    masked: Option<DepartementReports<'a>>,
    whole: &'v DepartementReports<'a>,
}

impl<'v, 'a> Publishable<'v, 'a> {
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The reports the pages may show.
    pub fn reports(&self) -> &DepartementReports<'a> {
        self.masked.as_ref().unwrap_or(self.whole)
    }

    /// Whether the rule of small counts masked it.
    pub fn is_masked(&self) -> bool {
        self.masked.is_some()
    }

    /// The summary, what the scope's pages are made of.
    pub fn into_summary(self) -> Summary {
        self.summary
    }
}

/// A département kept between publications with the reports written since
/// applied, when the site shows it unmasked: its summary, and its communes'
/// days one commune at a time. Only [`SiteConfig::patched`] makes one.
pub struct Patched<'k> {
    summary: Summary,
    kept: &'k Kept,
}

impl Patched<'_> {
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// One commune's days, for its page.
    pub fn commune_days(&self, commune: &CommuneCode) -> Vec<DayCounts> {
        self.kept.commune_days(commune)
    }

    /// The summary, what the scope's pages are made of.
    pub fn into_summary(self) -> Summary {
        self.summary
    }
}
