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

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Context};
use chrono::{Duration, NaiveDate};
use decompte_core::{CommuneCode, Report, Scope};
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

/// The lines the checksum hashes: one a version, every field, sorted.
/// Each line starts with its commune's code (five characters), so the lines
/// of communes taken in code order, each commune's sorted, are the
/// département's lines sorted.
fn checksum_lines(versions: &[Report]) -> Vec<String> {
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
    lines
}

/// A département's checksum, fed one commune at a time.
#[derive(Default)]
struct Digest256 {
    hasher: Sha256,
    versions: usize,
}

impl Digest256 {
    fn add(&mut self, versions: &[Report]) {
        for line in checksum_lines(versions) {
            self.hasher.update(line.as_bytes());
            self.hasher.update(b"\n");
        }
        self.versions += versions.len();
    }

    fn finish(self) -> (usize, String) {
        (self.versions, hex::encode(self.hasher.finalize()))
    }
}

/// The communes of `departement` of which `store` holds a declaration, in
/// code order: read as a publication reads a département (its current
/// figures, compact), so that the versions are then read one commune at a
/// time and a copy's memory is one commune's history, whatever the size of
/// the département.
async fn communes_of(
    store: &dyn Store,
    departement: &str,
) -> anyhow::Result<(BTreeSet<CommuneCode>, Option<NaiveDate>)> {
    let tallies = store.current_tallies(departement, &[], "").await?;
    let first = tallies.iter().map(|t| t.date).min();
    Ok((tallies.into_iter().map(|t| t.commune).collect(), first))
}

/// Every version of `commune`, in key order.
async fn versions_of(store: &dyn Store, commune: &CommuneCode) -> anyhow::Result<Vec<Report>> {
    Ok(store
        .versions(&ReportQuery {
            commune: Some(commune.clone()),
            ..ReportQuery::default()
        })
        .await?)
}

/// The communes of `departement` that either store holds, in code order,
/// and the first day the source has.
async fn communes_of_both(
    from: &dyn Store,
    to: &dyn Store,
    departement: &str,
) -> anyhow::Result<(BTreeSet<CommuneCode>, Option<NaiveDate>)> {
    let (mut communes, first) = communes_of(from, departement).await?;
    communes.extend(communes_of(to, departement).await?.0);
    Ok((communes, first))
}

/// The versions of `commune` that `to` lacks; an error if `to` holds a
/// version `from` does not (then it is not a resumption of this copy).
async fn missing(
    from: &dyn Store,
    to: &dyn Store,
    commune: &CommuneCode,
) -> anyhow::Result<Vec<Report>> {
    let source = versions_of(from, commune).await?;
    let target = versions_of(to, commune).await?;
    let by_key: HashMap<(NaiveDate, u32), &Report> =
        source.iter().map(|r| ((r.date, r.version), r)).collect();
    if let Some(foreign) = target
        .iter()
        .find(|r| by_key.get(&(r.date, r.version)) != Some(r))
    {
        bail!(
            "la cible contient une déclaration de {} pour le {} (version {}) que la source n'a \
             pas : ce n'est pas la reprise de cette copie, et rien n'a été copié",
            foreign.commune,
            foreign.date,
            foreign.version
        );
    }
    let present: BTreeSet<(NaiveDate, u32)> = target.iter().map(|r| (r.date, r.version)).collect();
    drop(by_key);
    Ok(source
        .into_iter()
        .filter(|r| !present.contains(&(r.date, r.version)))
        .collect())
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
        if !from.current_tallies(departement, &[], "").await?.is_empty() {
            found.push(departement.to_owned());
        }
    }
    Ok(found)
}

/// Writes copied versions of `departement`, each as it was.
async fn write(to: &dyn Store, departement: &str, versions: Vec<Report>) -> anyhow::Result<()> {
    decompte_store::ledger::restore(to, &versions, BATCH)
        .await
        .with_context(|| format!("copie des déclarations du département {departement}"))
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

    // The access codes checked first, then every département: a refusal
    // leaves the target as it was.
    let source_credentials = from.credentials().await?;
    let target_credentials = to.credentials().await?;
    let known: BTreeSet<&str> = source_credentials.iter().map(|c| c.id.as_str()).collect();
    if let Some(foreign) = target_credentials
        .iter()
        .find(|c| !known.contains(c.id.as_str()))
    {
        bail!(
            "la cible contient le code d'accès {} que la source n'a pas : ce n'est pas la \
             reprise de cette copie, et rien n'a été copié",
            foreign.id
        );
    }
    let first = check_departements(from, to, &departements).await?;
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
        let written = copy_departement(from, to, departement, &mut summary).await?;
        progress(&format!(
            "{departement} : {written} version(s) de déclaration copiées"
        ));
    }
    if let Some(first) = first {
        summary.reminders += copy_reminders(from, to, &departements, first, today).await?;
    }
    for publication in from.publications(usize::MAX).await? {
        if to.publication(&publication.id).await?.is_none() {
            to.insert_publication(&publication).await?;
            summary.publications_written += 1;
        }
    }
    for departement in &departements {
        summary.checked.push(verify(from, to, departement).await?);
    }
    Ok(summary)
}

/// Checks that what the target holds of each département is the source's
/// (a resumption, or nothing); returns the first day either holds.
async fn check_departements(
    from: &dyn Store,
    to: &dyn Store,
    departements: &[String],
) -> anyhow::Result<Option<NaiveDate>> {
    let mut first: Option<NaiveDate> = None;
    for departement in departements {
        let (communes, day) = communes_of_both(from, to, departement).await?;
        if let Some(day) = day {
            first = Some(first.map_or(day, |f| f.min(day)));
        }
        for commune in &communes {
            missing(from, to, commune).await?;
        }
    }
    Ok(first)
}

/// Copies the versions the target misses of one département, its SpF
/// series and its contacts; returns how many versions it wrote.
async fn copy_departement(
    from: &dyn Store,
    to: &dyn Store,
    departement: &str,
    summary: &mut CopySummary,
) -> anyhow::Result<usize> {
    let (communes, _) = communes_of(from, departement).await?;
    // Whole communes are gathered up to about a batch, so that each write
    // carries many versions and each commune's versions follow one another.
    let mut pending: Vec<Report> = Vec::new();
    let mut written = 0;
    for commune in &communes {
        pending.extend(missing(from, to, commune).await?);
        if pending.len() >= BATCH {
            written += pending.len();
            write(to, departement, std::mem::take(&mut pending)).await?;
        }
    }
    written += pending.len();
    write(to, departement, pending).await?;
    summary.versions_written += written;
    if let Some(series) = from.reference(departement).await? {
        to.put_reference(&series).await?;
        summary.references += 1;
    }
    if let Some(contacts) = from.contacts(departement).await? {
        to.put_contacts(&contacts).await?;
        summary.contacts += 1;
    }
    Ok(written)
}

/// Copies the reminders of every day from `first` to `today`; returns how
/// many the target did not have.
async fn copy_reminders(
    from: &dyn Store,
    to: &dyn Store,
    departements: &[String],
    first: NaiveDate,
    today: NaiveDate,
) -> anyhow::Result<usize> {
    let mut copied = 0;
    let mut day = first;
    while day <= today {
        for departement in departements {
            for reminder in from.reminders(day, departement).await? {
                if to.record_reminder(&reminder).await? {
                    copied += 1;
                }
            }
        }
        day += Duration::days(1);
    }
    Ok(copied)
}

/// The check: a département's versions, counted and hashed on both sides,
/// one commune at a time.
async fn verify(from: &dyn Store, to: &dyn Store, departement: &str) -> anyhow::Result<Checked> {
    let (communes, _) = communes_of_both(from, to, departement).await?;
    let (mut source, mut target) = (Digest256::default(), Digest256::default());
    for commune in &communes {
        source.add(&versions_of(from, commune).await?);
        target.add(&versions_of(to, commune).await?);
    }
    let ((count, a), (target_count, b)) = (source.finish(), target.finish());
    if count != target_count || a != b {
        bail!(
            "{departement} : {count} version(s) dans la source, {target_count} dans la cible, \
             sommes de contrôle {a} et {b} : la copie diffère"
        );
    }
    Ok(Checked {
        departement: departement.to_owned(),
        versions: count,
        checksum: a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use decompte_core::report::Source;

    fn version(commune: &str, day: u32, version: u32, deaths: u32) -> Report {
        Report {
            commune: CommuneCode::parse(commune).expect("a commune code"),
            date: NaiveDate::from_ymd_opt(2020, 4, day).expect("a day"),
            counts: [("hopital".to_owned(), deaths)].into(),
            version,
            recorded_at: Utc
                .with_ymd_and_hms(2020, 4, day, 18, 0, version)
                .single()
                .expect("an instant"),
            recorded_by: "mairie".to_owned(),
            source: Source::Form,
            reason: (version > 1).then(|| "erreur de saisie".to_owned()),
            warnings: Vec::new(),
        }
    }

    /// The checksum fed commune by commune, in code order, is the
    /// checksum of the département's lines sorted at once: a copy checked
    /// before this change and after it gives the same figure.
    #[test]
    fn the_checksum_fed_by_commune_is_the_sorted_departement_s() {
        let versions = [
            version("2A004", 12, 2, 3),
            version("2A004", 3, 1, 1),
            version("2A041", 1, 1, 0),
            version("2A004", 12, 1, 2),
            version("2A041", 30, 1, 7),
            version("2A004", 1, 1, 4),
        ];
        let mut whole = Sha256::new();
        for line in checksum_lines(&versions) {
            whole.update(line.as_bytes());
            whole.update(b"\n");
        }
        let mut by_commune = Digest256::default();
        for commune in ["2A004", "2A041"] {
            let of: Vec<Report> = versions
                .iter()
                .filter(|r| r.commune.as_str() == commune)
                .cloned()
                .collect();
            by_commune.add(&of);
        }
        assert_eq!(
            by_commune.finish(),
            (versions.len(), hex::encode(whole.finalize()))
        );
    }
}
