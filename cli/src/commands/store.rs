//! `decompte store`: prepare a store, or copy a crisis from one store to
//! another.

use anyhow::{bail, Context};
use clap::Subcommand;
use decompte::Options;
use decompte_core::clock::{Clock, SystemClock};

#[derive(Subcommand)]
pub enum Command {
    /// Create the DynamoDB table of --store, its indexes and its TTL, or bring the PostgreSQL
    /// schema up to date; does nothing if they are.
    Init,
    /// Copy everything a crisis holds (every version of every report, access codes and their
    /// second factors, SpF series, contacts, reminders, publication records; not sessions) from
    /// one store to another, then check each département's versions on both sides. A copy into
    /// a store that already holds something resumes the same copy, or is refused.
    Copy {
        /// The source: an address --store takes (sqlite, sqlite:PATH, dynamodb://…, postgres://…).
        #[arg(long)]
        from: String,
        /// The target, an address of the same kinds.
        #[arg(long)]
        to: String,
    },
}

pub async fn run(options: &Options, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init => init(options).await,
        Command::Copy { from, to } => copy(options, &from, &to).await,
    }
}

/// `decompte store copy --from --to`.
async fn copy(options: &Options, from: &str, to: &str) -> anyhow::Result<()> {
    let from: decompte_config::StoreAddress = from.parse().context("--from")?;
    let to: decompte_config::StoreAddress = to.parse().context("--to")?;
    if from == to {
        bail!("la source et la cible sont la même base : {from}");
    }
    let source = decompte::open_store_at(options, &from).await?;
    let target = decompte::open_store_at(options, &to).await?;
    let scope = options.scope()?;
    // A copy holds the départements served (--departements, 56 by default):
    // the source's others would stay behind without a word.
    let behind =
        decompte::copy::left_out(source.as_ref(), &scope, &decompte_config::referential()?).await?;
    if !behind.is_empty() {
        bail!(
            "la source contient des déclarations des départements {} que --departements ({}) \
             laisse de côté : nommez chaque département à copier dans --departements (ou \
             DECOMPTE_DEPARTEMENTS), sinon ils resteraient en arrière. Rien n'a été copié",
            behind.join(", "),
            options.departements.join(",")
        );
    }
    eprintln!("Copie de {from} vers {to} …");
    let summary = decompte::copy::copy(
        source.as_ref(),
        target.as_ref(),
        &scope,
        scope.latest_today(SystemClock.now()),
        &|line| eprintln!("{line}"),
    )
    .await?;
    eprintln!(
        "{} version(s) de déclaration, {} code(s) d'accès, {} série(s) SpF, {} fichier(s) de \
         contacts, {} relance(s), {} publication(s) copiés.",
        summary.versions_written,
        summary.credentials_written,
        summary.references,
        summary.contacts,
        summary.reminders,
        summary.publications_written
    );
    eprintln!("Vérification, par département (versions, empreinte SHA-256) :");
    for checked in &summary.checked {
        eprintln!(
            "  {} : {} version(s), {}",
            checked.departement, checked.versions, checked.checksum
        );
    }
    Ok(())
}

/// Prepares the store of `--store`: the DynamoDB table with its indexes
/// and its TTL, or the PostgreSQL schema (what it lacks, applied once).
async fn init(options: &Options) -> anyhow::Result<()> {
    match &options.store {
        decompte_config::StoreAddress::Sqlite | decompte_config::StoreAddress::SqliteFile(_) => {
            eprintln!("SQLite n'a besoin d'aucune préparation : la base est créée à la première ouverture.");
            Ok(())
        }
        decompte_config::StoreAddress::DynamoDb(table) => dynamodb_init(options, table).await,
        decompte_config::StoreAddress::Postgres(url) => postgres_init(url).await,
    }
}

#[cfg(feature = "aws")]
async fn dynamodb_init(
    options: &Options,
    table: &decompte_config::TableAddress,
) -> anyhow::Result<()> {
    let store = decompte_aws::DynamoStore::connect(table, options.departements.clone()).await;
    if store.init().await? {
        eprintln!("Table {} créée, avec ses index et son TTL.", table.table);
    } else {
        eprintln!("La table {} existe déjà : rien à faire.", table.table);
    }
    Ok(())
}

#[cfg(not(feature = "aws"))]
async fn dynamodb_init(_: &Options, _: &decompte_config::TableAddress) -> anyhow::Result<()> {
    bail!(
        "`store init` crée une table DynamoDB, et ce decompte a été construit sans AWS : \
        construisez-le avec `cargo build --release -p decompte --features aws`"
    )
}

#[cfg(feature = "postgres")]
async fn postgres_init(url: &decompte_config::PostgresUrl) -> anyhow::Result<()> {
    // Opening applies what the schema lacks; a second run finds nothing to do.
    let store = decompte_store::PostgresStore::connect(url.expose())
        .await
        .with_context(|| format!("impossible d'ouvrir la base {}", url.redacted()))?;
    store.migrate().await?;
    eprintln!("Base {} : schéma à jour.", url.redacted());
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn postgres_init(_: &decompte_config::PostgresUrl) -> anyhow::Result<()> {
    bail!(decompte::NO_POSTGRES)
}
