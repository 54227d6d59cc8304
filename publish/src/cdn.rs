//! Telling the CDN in front of the site what a publication changed: one
//! invalidation per publication, of the changed paths only, or of everything
//! (`/*`, billed as one path) when more than [`WILDCARD_ABOVE`] paths changed.
//! The CDN itself is behind the [`Cdn`] trait (CloudFront in `decompte-aws`).

use async_trait::async_trait;

use crate::Outcome;

/// Above this many changed paths, one wildcard replaces them. AWS bills each
/// invalidated path beyond 1,000 a month and counts `/*` as one: a correction
/// changes 7 paths, a new day or a full republication a few hundred.
pub const WILDCARD_ABOVE: usize = 15;

/// The paths to invalidate after `outcome`: every page and data file written
/// or deleted, and `/` with `index.html`. Fingerprinted assets are left out: a
/// changed asset has a new name, so no cache holds it.
pub fn invalidation_paths(outcome: &Outcome) -> Vec<String> {
    let mut paths: Vec<String> = outcome
        .written
        .iter()
        .chain(&outcome.deleted)
        .filter(|path| !path.starts_with(crate::paths::ASSETS))
        .flat_map(|path| {
            let url = format!("/{path}");
            if path == crate::paths::OVERVIEW {
                vec!["/".to_owned(), url]
            } else {
                vec![url]
            }
        })
        .collect();
    paths.sort();
    paths.dedup();
    if paths.len() > WILDCARD_ABOVE {
        vec!["/*".to_owned()]
    } else {
        paths
    }
}

/// A CDN whose cached copies of the site can be invalidated.
#[async_trait]
pub trait Cdn: Send + Sync {
    /// Invalidates `paths` in one request; returns the invalidation's id.
    async fn invalidate(&self, paths: &[String], reference: &str) -> Result<String, CdnError>;
}

/// An invalidation the CDN refused or never received.
#[derive(Debug, thiserror::Error)]
#[error("CDN invalidation failed: {0}")]
pub struct CdnError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(written: &[&str], deleted: &[&str]) -> Outcome {
        Outcome {
            written: written.iter().map(|p| (*p).to_owned()).collect(),
            deleted: deleted.iter().map(|p| (*p).to_owned()).collect(),
            ..Outcome::default()
        }
    }

    #[test]
    fn a_correction_invalidates_its_pages_and_the_root() {
        let paths = invalidation_paths(&outcome(
            &[
                "donnees/deces.csv",
                "communes/56260.html",
                "index.html",
                "manifest.json",
            ],
            &[],
        ));
        assert_eq!(
            paths,
            [
                "/",
                "/communes/56260.html",
                "/donnees/deces.csv",
                "/index.html",
                "/manifest.json"
            ]
        );
    }

    #[test]
    fn assets_are_never_invalidated_and_nothing_changed_means_nothing_sent() {
        assert!(invalidation_paths(&outcome(&["assets/style.0a1b2c.css"], &[])).is_empty());
        assert!(invalidation_paths(&outcome(&[], &[])).is_empty());
        assert_eq!(
            invalidation_paths(&outcome(&[], &["communes/56999.html"])),
            ["/communes/56999.html"]
        );
    }

    #[test]
    fn many_paths_become_one_wildcard() {
        let pages: Vec<String> = (0..=WILDCARD_ABOVE)
            .map(|i| format!("communes/56{i:03}.html"))
            .collect();
        let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
        assert_eq!(invalidation_paths(&outcome(&refs, &[])), ["/*"]);
        assert_eq!(
            invalidation_paths(&outcome(&refs[..WILDCARD_ABOVE], &[])).len(),
            WILDCARD_ABOVE
        );
    }
}
