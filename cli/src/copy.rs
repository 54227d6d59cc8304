//! `decompte store copy`: everything a crisis holds, from one store to
//! another (SQLite, PostgreSQL, DynamoDB) — every version of every report
//! with who, when and why, the access codes (hashes) with their second
//! factors and recovery codes, the SpF series, the contacts, the reminders
//! and the publication records; not the sessions, which end with the move.
//!
//! A copy into a store that already holds something is a resumption: what
//! the target holds must be the source's, and only what it lacks is
//! written; anything else there, and the copy is refused. At the end, each
//! département's versions are counted and hashed on both sides.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use chrono::{Duration, NaiveDate};
use decompte_core::{Report, Scope};
use decompte_store::prelude::*;
use decompte_store::ReportQuery;
use sha2::{Digest, Sha256};

/// How many versions one write sends.
const BATCH: usize = 500;

/// One département's versions, as both stores hold them after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub departement: String,
    pub versions: usize,
    /// SHA-256 of the versions' every field, in key order.
    pub checksum: String,
}

/// What a copy did.
#[derive(Debug, Default)]
pub struct CopySummary {
    pub versions_written: usize,
    pub credentials_written: usize,
    pub references: usize,
    pub contacts: usize,
    pub reminders: usize,
    pub publications_written: usize,
    pub checked: Vec<Checked>,
}

/// The checksum of versions (sorted by key and version).
fn checksum(versions: &[Report]) -> String {
    let mut lines: Vec<String> = versions
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.commune,
                r.date,
                r.version,
                serde_json::to_string(&r.counts).unwrap_or_default(),
                r.recorded_at.to_rfc3339(),
                r.recorded_by,
                r.source.as_str(),
                r.reason.as_deref().unwrap_or(""),
                r.warnings.join(",")
            )
        })
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

async fn versions_of(store: &dyn Store, departement: &str) -> anyhow::Result<Vec<Report>> {
    Ok(store
        .versions(&ReportQuery {
            departements: vec![departement.to_owned()],
            ..ReportQuery::default()
        })
        .await?)
}

/// The versions of `departement` that `to` lacks, and the first day `from`
/// has; an error if `to` holds a version `from` does not (then it is not a
/// resumption of this copy).
async fn missing(
    from: &dyn Store,
    to: &dyn Store,
    departement: &str,
) -> anyhow::Result<(Option<NaiveDate>, Vec<Report>)> {
    let source = versions_of(from, departement).await?;
    let target = versions_of(to, departement).await?;
    let first = source.iter().map(|r| r.date).min();
    let by_key: std::collections::HashMap<(String, NaiveDate, u32), &Report> = source
        .iter()
        .map(|r| ((r.commune.to_string(), r.date, r.version), r))
        .collect();
    if let Some(foreign) = target
        .iter()
        .find(|r| by_key.get(&(r.commune.to_string(), r.date, r.version)) != Some(r))
    {
        bail!(
            "the target holds a declaration of {} for {} (version {}) that the source does not: \
             it is not a resumption of this copy, and nothing was copied",
            foreign.commune,
            foreign.date,
            foreign.version
        );
    }
    let present: BTreeSet<(String, NaiveDate, u32)> = target
        .iter()
        .map(|r| (r.commune.to_string(), r.date, r.version))
        .collect();
    drop(by_key);
    let missing = source
        .into_iter()
        .filter(|r| !present.contains(&(r.commune.to_string(), r.date, r.version)))
        .collect();
    Ok((first, missing))
}

/// The départements of `all` outside `scope` of which `from` holds a
/// declaration: what a copy limited to `scope` would leave behind.
pub async fn left_out(
    from: &dyn Store,
    scope: &Scope,
    all: &decompte_core::commune::Referential,
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for departement in all
        .departement_codes()
        .filter(|d| !scope.has_departement(d))
    {
        let held = from
            .current_reports(&ReportQuery {
                departements: vec![departement.to_owned()],
                ..ReportQuery::default()
            })
            .await?;
        if !held.is_empty() {
            found.push(departement.to_owned());
        }
    }
    Ok(found)
}

/// Copies what `from` holds for `scope` into `to`, telling `progress` what
/// it is doing.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    scope: &Scope,
    today: NaiveDate,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<CopySummary> {
    let mut summary = CopySummary::default();
    let departements: Vec<String> = scope.departement_codes().map(str::to_owned).collect();

    // The access codes first: a refusal leaves the target as it was.
    let source_credentials = from.credentials().await?;
    let target_credentials = to.credentials().await?;
    let known: BTreeSet<&str> = source_credentials.iter().map(|c| c.id.as_str()).collect();
    if let Some(foreign) = target_credentials
        .iter()
        .find(|c| !known.contains(c.id.as_str()))
    {
        bail!(
            "the target holds the access code {} that the source does not: it is not a \
             resumption of this copy, and nothing was copied",
            foreign.id
        );
    }
    // First, every département checked (the target's versions are the
    // source's); then written, one département in memory at a time.
    let mut first: Option<NaiveDate> = None;
    for departement in &departements {
        let (source, _) = missing(from, to, departement).await?;
        if let Some(day) = source {
            first = Some(first.map_or(day, |f| f.min(day)));
        }
    }
    let target_ids: BTreeSet<&str> = target_credentials.iter().map(|c| c.id.as_str()).collect();
    for credential in &source_credentials {
        if !target_ids.contains(credential.id.as_str()) {
            to.insert_credential(credential).await?;
            summary.credentials_written += 1;
        }
    }
    progress(&format!(
        "{} code(s) d'accès copiés ({} déjà présents)",
        summary.credentials_written,
        target_ids.len()
    ));

    for departement in &departements {
        let (_, missing) = missing(from, to, departement).await?;
        decompte_store::ledger::restore(to, &missing, BATCH)
            .await
            .with_context(|| format!("copying the declarations of {departement}"))?;
        summary.versions_written += missing.len();
        if let Some(series) = from.reference(departement).await? {
            to.put_reference(&series).await?;
            summary.references += 1;
        }
        if let Some(contacts) = from.contacts(departement).await? {
            to.put_contacts(&contacts).await?;
            summary.contacts += 1;
        }
        progress(&format!(
            "{departement} : {} version(s) de déclaration copiées",
            missing.len()
        ));
    }

    if let Some(first) = first {
        let mut day = first;
        while day <= today {
            for departement in &departements {
                for reminder in from.reminders(day, departement).await? {
                    if to.record_reminder(&reminder).await? {
                        summary.reminders += 1;
                    }
                }
            }
            day += Duration::days(1);
        }
    }

    for publication in from.publications(usize::MAX).await? {
        if to.publication(&publication.id).await?.is_none() {
            to.insert_publication(&publication).await?;
            summary.publications_written += 1;
        }
    }

    // The check: each département's versions, counted and hashed on both sides.
    for departement in &departements {
        let source = versions_of(from, departement).await?;
        let target = versions_of(to, departement).await?;
        let (a, b) = (checksum(&source), checksum(&target));
        if source.len() != target.len() || a != b {
            bail!(
                "{departement}: {} version(s) in the source, {} in the target, checksums {a} and \
                 {b}: the copy differs",
                source.len(),
                target.len()
            );
        }
        summary.checked.push(Checked {
            departement: departement.clone(),
            versions: source.len(),
            checksum: a,
        });
    }
    Ok(summary)
}
