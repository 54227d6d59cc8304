//! `decompte`: count and publish, commune by commune and day by day, the deaths
//! of a crisis by the place where they happened.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use decompte::{demo, transfer, LocalApp, Options};
use decompte_app::auth::{issue_credential, revoke_credential, NewCredential};
use decompte_app::second_factor;
use decompte_core::{CommuneCode, Role};

#[derive(Parser)]
#[command(name = "decompte", version, about = "Décompte des décès par commune et par lieu, publié \
    en ligne", long_about = None)]
struct Cli {
    #[command(flatten)]
    settings: Options,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the app (form, prefecture page, API) and the public site, publishing on a timer.
    Serve {
        /// Address and port to listen on.
        #[arg(long, env = "DECOMPTE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Seed demonstration data for Morbihan and print access codes to try the app.
        #[arg(long, env = "DECOMPTE_DEMO")]
        demo: bool,
    },
    /// Publish the site once into <data-dir>/site and exit.
    Publish {
        /// Only what changed since the last publication, as the timer does
        /// (a full publication if there was none); without it, every page
        /// is rendered again.
        #[arg(long)]
        changes: bool,
    },
    /// Issue, revoke and list access codes.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Import a CSV in the format of donnees/deces.csv, as corrections with history.
    Import {
        /// The CSV file: header `date,code_commune,nom_commune,<one column per setting>,total`
        /// (or the earlier `date,code_commune,nom_commune,lieu,deces`).
        file: PathBuf,
    },
    /// Manage the store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The morning situation report (« point de situation ») of a day:
    /// write its PDF, or e-mail it now to --report-to (what `serve` does each
    /// morning at --report-hour; a cron job or a scheduler can run this).
    Report {
        /// The day (AAAA-MM-JJ); the day before today by default.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// The département, for --pdf; the first served by default.
        #[arg(long)]
        departement: Option<String>,
        /// Write the report's PDF to this file.
        #[arg(long)]
        pdf: Option<PathBuf>,
        /// E-mail each département's report to its recipients (--report-to).
        #[arg(long)]
        send: bool,
    },
    /// Export every current report as CSV (the format of donnees/deces.csv).
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
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

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Commune,
    Prefecture,
    National,
}

#[derive(Subcommand)]
enum CredentialsCommand {
    /// Issue an access code; it is printed once and never stored.
    Issue {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// INSEE code of the commune (required for --role commune).
        #[arg(long)]
        commune: Option<String>,
        /// For --role prefecture: the départements the code covers (`56,29`),
        /// inside the deployment's --departements; every one of them if omitted.
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
        /// Who holds the code, for the list ("Mairie de Vannes", "Cellule de crise").
        #[arg(long)]
        label: Option<String>,
        /// Days the code stays valid. Default: prefecture and national codes
        /// --supervisor-code-days (90), commune codes for ever.
        #[arg(long)]
        expires_in_days: Option<u64>,
        /// For a prefecture or national code: enrol its second factor now
        /// and print the TOTP secret and the recovery codes with the access
        /// code — for a machine client of the API, or a hand-over in
        /// person. Without it, the holder enrols at the first login.
        #[arg(long)]
        second_factor: bool,
        /// With --role commune and no --commune: a code for every commune of
        /// the deployment, one line each (one JSON object per line with --json).
        #[arg(long, conflicts_with = "commune")]
        every_commune: bool,
        /// With --role commune: write a printable access letter per mairie
        /// (PDF, A4) to this file, the code shown there only. With
        /// --every-commune, for the communes that have no active code yet
        /// (--scope limits them to some départements); with --commune, a new
        /// code that replaces the commune's previous ones. Needs --public-url,
        /// the address the letters give.
        #[arg(long, value_name = "FILE.pdf")]
        letters: Option<PathBuf>,
        /// Print {"id","access_code","role","commune","departements","expires_at"}
        /// (and "totp_secret", "recovery_codes" with --second-factor) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an access code by its id; its sessions end at once.
    Revoke {
        id: String,
        /// Also revoke every code it issued, and the codes those issued.
        #[arg(long)]
        cascade: bool,
    },
    /// List access codes (never the codes themselves).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut settings = cli.settings;
    match cli.command {
        Command::Serve { listen, demo } => serve(&mut settings, listen, demo).await,
        Command::Publish { changes } => {
            let app = LocalApp::open(&settings).await?;
            // Held until the end: no replica publishes meanwhile.
            let Some(_lease) = app.take_lease().await? else {
                bail!(
                    "a running `decompte serve` on this store publishes the site: ask it with \
                    « Republier » on the prefecture page (or POST /api/v1/publications), or \
                    stop the replicas first"
                );
            };
            let target = match &settings.site {
                decompte_config::SiteAddress::Folder => app.site_dir.display().to_string(),
                other => other.to_string(),
            };
            eprintln!("Publication du site dans {target} …");
            let outcome = if changes {
                match app.publisher.publish_if_changed(Utc::now()).await? {
                    Some(outcome) => outcome,
                    None => {
                        eprintln!("Rien n'a changé depuis la dernière publication.");
                        return Ok(());
                    }
                }
            } else {
                let started = Utc::now();
                let outcome = decompte::progress::publish(&app.publisher, started).await?;
                app.publisher
                    .record("Publication en ligne de commande", started, &outcome)
                    .await;
                outcome
            };
            eprintln!(
                "{} fichier(s) écrit(s), {} supprimé(s), {} inchangé(s).",
                outcome.written.len(),
                outcome.deleted.len(),
                outcome.unchanged
            );
            Ok(())
        }
        Command::Credentials(command) => credentials(&settings, command).await,
        Command::Store(StoreCommand::Init) => store_init(&settings).await,
        Command::Store(StoreCommand::Copy { from, to }) => store_copy(&settings, &from, &to).await,
        Command::Import { file } => {
            let app = LocalApp::open(&settings).await?;
            let config = &app.state.config;
            let author = format!(
                "import:{}",
                file.file_name().and_then(|n| n.to_str()).unwrap_or("csv")
            );
            let mut progress: Option<decompte::progress::Progress> = None;
            let summary = transfer::import(
                app.store.as_ref(),
                &config.scope,
                &config.rules,
                &file,
                &author,
                Utc::now(),
                |done, total| {
                    progress
                        .get_or_insert_with(|| {
                            decompte::progress::Progress::new("déclarations", total as u64)
                        })
                        .set(done as u64);
                },
            )
            .await?;
            if let Some(progress) = progress {
                progress.finish();
            }
            eprintln!(
                "{} créée(s), {} corrigée(s), {} inchangée(s).",
                summary.created, summary.corrected, summary.unchanged
            );
            Ok(())
        }
        Command::Export { output } => {
            let app = LocalApp::open(&settings).await?;
            let config = &app.state.config;
            let rows = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    transfer::export(
                        app.store.as_ref(),
                        &config.scope,
                        &config.rules,
                        std::io::BufWriter::new(file),
                    )
                    .await?
                }
                None => {
                    transfer::export(
                        app.store.as_ref(),
                        &config.scope,
                        &config.rules,
                        std::io::stdout().lock(),
                    )
                    .await?
                }
            };
            eprintln!("{rows} ligne(s) exportée(s).");
            Ok(())
        }
        Command::Report {
            date,
            departement,
            pdf,
            send,
        } => {
            let app = LocalApp::open(&settings).await?;
            let config = &app.state.config;
            let now = Utc::now();
            let date = date.unwrap_or_else(|| config.scope.today(now) - chrono::Duration::days(1));
            if pdf.is_none() && !send {
                bail!("say what to do with the report: --pdf FILE, --send, or both");
            }
            if let Some(path) = pdf {
                let departement = match departement {
                    Some(code) => code.trim().to_uppercase(),
                    None => config
                        .scope
                        .departement_codes()
                        .next()
                        .context("no département served")?
                        .to_owned(),
                };
                if config.scope.departement_name(&departement).is_none() {
                    bail!(
                        "département {departement} is not served ({})",
                        config.scope.label()
                    );
                }
                let report = decompte_app::report::situation(
                    app.store.as_ref(),
                    &config.scope,
                    &config.rules.settings,
                    date,
                    &departement,
                    now,
                )
                .await?;
                std::fs::write(&path, report.pdf(&config.publisher, &config.crisis))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "Point de situation du {} écrit dans {}.",
                    report.date_fr,
                    path.display()
                );
            }
            if send {
                if config.report_recipients.is_empty() {
                    bail!("--send needs --report-to (DECOMPTE_REPORT_TO): nobody to send the report to");
                }
                let sent =
                    decompte_app::report::send_morning_reports(&app.state, date, None, now).await?;
                eprintln!(
                    "Point de situation du {} envoyé pour : {}.",
                    decompte_core::time::fr_date(date),
                    sent.join(", ")
                );
            }
            Ok(())
        }
    }
}

/// `decompte store copy --from --to`.
async fn store_copy(settings: &Options, from: &str, to: &str) -> anyhow::Result<()> {
    let from: decompte_config::StoreAddress = from.parse().context("--from")?;
    let to: decompte_config::StoreAddress = to.parse().context("--to")?;
    if from == to {
        bail!("the source and the target are the same store: {from}");
    }
    let source = decompte::open_store_at(settings, &from).await?;
    let target = decompte::open_store_at(settings, &to).await?;
    let scope = settings.scope()?;
    // A copy holds the départements served (--departements, 56 by default):
    // the source's others would stay behind without a word.
    let behind =
        decompte::copy::left_out(source.as_ref(), &scope, &decompte_config::referential()?).await?;
    if !behind.is_empty() {
        bail!(
            "the source holds declarations of départements {} that --departements ({}) leaves \
             out: name every département to copy in --departements (or DECOMPTE_DEPARTEMENTS), \
             or they stay behind. Nothing was copied",
            behind.join(", "),
            settings.departements.join(",")
        );
    }
    eprintln!("Copie de {from} vers {to} …");
    let summary = decompte::copy::copy(
        source.as_ref(),
        target.as_ref(),
        &scope,
        scope.latest_today(Utc::now()),
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
async fn store_init(settings: &Options) -> anyhow::Result<()> {
    match &settings.store {
        decompte_config::StoreAddress::Sqlite | decompte_config::StoreAddress::SqliteFile(_) => {
            eprintln!("SQLite n'a besoin d'aucune préparation : la base est créée à la première ouverture.");
            Ok(())
        }
        decompte_config::StoreAddress::DynamoDb(table) => dynamodb_init(settings, table).await,
        decompte_config::StoreAddress::Postgres(url) => postgres_init(url).await,
    }
}

#[cfg(feature = "aws")]
async fn dynamodb_init(
    settings: &Options,
    table: &decompte_config::TableAddress,
) -> anyhow::Result<()> {
    let store = decompte_aws::DynamoStore::connect(table, settings.departements.clone()).await;
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
        "`store init` creates a DynamoDB table, and this decompte was built without AWS support: \
        build it with `cargo build --release -p decompte --features aws`"
    )
}

#[cfg(feature = "postgres")]
async fn postgres_init(url: &decompte_config::PostgresUrl) -> anyhow::Result<()> {
    // Opening applies what the schema lacks; a second run finds nothing to do.
    let store = decompte_store::PostgresStore::connect(url.expose())
        .await
        .with_context(|| format!("cannot open the database {}", url.redacted()))?;
    store.migrate().await?;
    eprintln!("Base {} : schéma à jour.", url.redacted());
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn postgres_init(_: &decompte_config::PostgresUrl) -> anyhow::Result<()> {
    bail!(decompte::NO_POSTGRES)
}

async fn serve(settings: &mut Options, listen: SocketAddr, demo: bool) -> anyhow::Result<()> {
    settings.demo = demo;
    if demo {
        // The demonstration replays 2020: its days are years old, by design.
        settings.old_day_after = 0;
    }
    if demo && !listen.ip().is_loopback() {
        bail!(
            "--demo serves invented figures and prints access codes: it listens on loopback only \
            (127.0.0.1 or ::1), not on {listen}"
        );
    }
    if settings.public_url.is_none() && listen.ip().is_loopback() {
        // Plain http on loopback: the only case where cookies may go without Secure.
        settings.public_url = Some(format!("http://{listen}"));
    }
    // Publications render on threads that yield to the requests.
    if let Err(error) = decompte_publish::engine::render_in_background() {
        tracing::warn!(%error, "publications render at the requests' priority");
    }
    let app = LocalApp::open(settings).await?;
    let config = Arc::clone(&app.state.config);
    let base = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    let mut codes = Vec::new();
    if demo {
        if demo::holds_real_reports(app.store.as_ref()).await? {
            bail!(
                "--demo refuses a store that holds reports other than demonstration ones: it \
                would mix invented figures with real ones. Use another --data-dir (or --store) for \
                the demonstration"
            );
        }
        eprintln!("Données de démonstration : préparation …");
        let mut progress: Option<decompte::progress::Progress> = None;
        let written = demo::seed(
            app.store.as_ref(),
            &config.scope,
            &config.rules,
            |day, days| {
                progress
                    .get_or_insert_with(|| decompte::progress::Progress::new("jours", days as u64))
                    .set(day as u64);
            },
        )
        .await?;
        if let Some(progress) = progress {
            progress.finish();
        }
        eprintln!("{written} déclarations de démonstration ajoutées.");
        let mayor_commune = ["56260", "56121"]
            .into_iter()
            .filter_map(|c| CommuneCode::parse(c).ok())
            .find(|c| config.scope.contains(c))
            .or_else(|| config.scope.communes().next().map(|c| c.code.clone()))
            .context("the scope has no commune")?;
        let name = config
            .scope
            .get(&mayor_commune)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let (_, mayor) = issue_credential(
            app.store.as_ref(),
            NewCredential::new(
                Role::Commune,
                Some(mayor_commune.clone()),
                &format!("Démonstration · mairie de {name}"),
            ),
            Utc::now(),
        )
        .await?;
        let (_, prefecture) = issue_credential(
            app.store.as_ref(),
            NewCredential::new(Role::Prefecture, None, "Démonstration · préfecture"),
            Utc::now(),
        )
        .await?;
        codes.push((
            format!(
                "Mairie {} ({mayor_commune})",
                decompte_core::commune::of_name(&name)
            ),
            mayor.display_grouped(),
        ));
        codes.push(("Préfecture".to_owned(), prefecture.display_grouped()));
    } else if app
        .store
        .credentials()
        .await?
        .iter()
        .all(|c| !c.is_active(Utc::now()))
    {
        eprintln!(
            "Aucun code d'accès actif : créez-en un avec `decompte credentials issue --role \
            prefecture`."
        );
    }
    let lease = app.take_lease().await?;
    if lease.is_some() {
        eprintln!("Première publication du site …");
        let started = Utc::now();
        let outcome = decompte::progress::publish(&app.publisher, started).await?;
        // The prefecture page says when the site was last published.
        app.publisher
            .record("Démarrage du service", started, &outcome)
            .await;
        eprintln!(
            "Site publié : {} fichier(s) écrit(s).",
            outcome.written.len()
        );
    } else {
        eprintln!(
            "Une autre instance de decompte publie le site : celle-ci prendra le relais si \
            l'autre s'arrête."
        );
    }
    app.spawn_publish_timer(Duration::from_secs(settings.publish_every.max(1)), lease);
    app.spawn_report_timer();
    let mut out = std::io::stdout().lock();
    writeln!(out, "\ndecompte est prêt.")?;
    writeln!(out, "  Site public         : {base}/")?;
    writeln!(out, "  Déclarer (mairies)  : {base}/connexion")?;
    writeln!(out, "  Suivi (préfecture)  : {base}/prefecture")?;
    writeln!(out, "  API                 : {base}/api/v1/openapi.json")?;
    for (who, code) in &codes {
        writeln!(out, "  Code d'accès · {who} : {code}")?;
    }
    if demo {
        writeln!(
            out,
            "  (Les données de démonstration couvrent le {} au {} : sur la page \
            préfecture, choisissez par exemple le 2020-04-01.)",
            demo::period().0.format("%d/%m/%Y"),
            demo::period().1.format("%d/%m/%Y")
        )?;
    }
    writeln!(out, "Ctrl-C pour arrêter.")?;
    drop(out);
    decompte::serve_app(&app, listen, Duration::from_secs(settings.drain_seconds)).await
}

/// `credentials issue --letters`: issues the codes and writes their letters.
async fn write_letters(
    settings: &Options,
    app: &LocalApp,
    path: &std::path::Path,
    commune: Option<&str>,
    departements: &[String],
    expires_in_days: Option<u64>,
) -> anyhow::Result<()> {
    let config = &app.state.config;
    let store = app.store.as_ref();
    let app_url = settings
        .public_url
        .clone()
        .context("--letters needs --public-url (DECOMPTE_PUBLIC_URL): the address the letters give the mairies")?;
    let now = Utc::now();
    let expires_at = expiry(now, expires_in_days)?;
    let active: Vec<decompte_store::Credential> = store
        .credentials()
        .await?
        .into_iter()
        .filter(|c| c.role == Role::Commune && c.is_active(now))
        .collect();
    let communes: Vec<decompte_core::Commune> = match commune {
        Some(text) => {
            let code = CommuneCode::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
            let found = config.scope.get(&code).with_context(|| {
                format!("commune {code} is not in scope ({})", config.scope.label())
            })?;
            // A new letter replaces the commune's previous codes.
            for old in active.iter().filter(|c| c.commune.as_ref() == Some(&code)) {
                store.revoke_credential(&old.id, now).await?;
                tracing::info!(event = "code_revoked", id = %old.id, by = "command line", "replaced by a new access letter");
            }
            vec![found.clone()]
        }
        None => {
            let wanted: Vec<String> = departements
                .iter()
                .map(|d| d.trim().to_ascii_uppercase())
                .filter(|d| !d.is_empty())
                .collect();
            if let Some(unknown) = wanted.iter().find(|d| !config.scope.has_departement(d)) {
                bail!("département {unknown} is not one of this deployment's: check --scope");
            }
            config
                .scope
                .communes()
                .filter(|c| wanted.is_empty() || wanted.contains(&c.departement))
                .filter(|c| !active.iter().any(|a| a.commune.as_ref() == Some(&c.code)))
                .cloned()
                .collect()
        }
    };
    let mut issued = Vec::with_capacity(communes.len());
    for commune in &communes {
        let (_, code) = issue_mairie_code(store, commune, expires_at, now).await?;
        issued.push(decompte::letters::Letter {
            commune: commune.code.to_string(),
            name: commune.name.clone(),
            access_code: code.display_grouped(),
        });
    }
    let sender = decompte::letters::Sender {
        publisher: config.publisher.clone(),
        crisis: config.crisis.clone(),
        app_url,
        settings: config
            .rules
            .settings
            .iter()
            .map(|s| s.label.clone())
            .collect(),
    };
    // The codes are in it: the owner's only, like the database.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?
    };
    file.write_all(&decompte::letters::pdf(&issued, &sender))?;
    tracing::info!(
        event = "code_issued",
        role = "commune",
        count = issued.len(),
        by = "command line",
        "access letters written"
    );
    eprintln!(
        "{} lettre(s) d'accès écrite(s) dans {} : les codes n'y figurent qu'une fois et ne sont \
        conservés nulle part ailleurs. Imprimez-les, puis supprimez le fichier.",
        issued.len(),
        path.display()
    );
    Ok(())
}

/// A mairie's code, labelled « Mairie de … » as French writes it.
async fn issue_mairie_code(
    store: &dyn decompte_store::Store,
    commune: &decompte_core::Commune,
    expires_at: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<(decompte_store::Credential, decompte_core::AccessCode)> {
    let new = NewCredential {
        expires_at,
        ..NewCredential::new(
            Role::Commune,
            Some(commune.code.clone()),
            &format!("Mairie {}", commune.of_name()),
        )
    };
    Ok(issue_credential(store, new, now).await?)
}

/// The end of a code valid for `days` from `now`; `None`, no end.
fn expiry(
    now: chrono::DateTime<Utc>,
    days: Option<u64>,
) -> anyhow::Result<Option<chrono::DateTime<Utc>>> {
    days.map(|days| {
        i64::try_from(days)
            .ok()
            .and_then(chrono::Duration::try_days)
            .and_then(|d| now.checked_add_signed(d))
            .context("--expires-in-days is too large")
    })
    .transpose()
}

/// Enrols a second factor at issue (`credentials issue --second-factor`):
/// returns the TOTP secret and the recovery codes, to print once.
async fn enrol_now(
    store: &dyn decompte_store::Store,
    id: &str,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<(String, Vec<String>)> {
    let secret = second_factor::new_secret();
    let recovery = second_factor::new_recovery_codes();
    let hashes: Vec<String> = recovery
        .iter()
        .filter_map(|c| second_factor::recovery_hash(c))
        .collect();
    let enrolled = store.begin_second_factor(id, &secret).await?
        && store
            .confirm_second_factor(id, &secret, 0, &hashes, now)
            .await?;
    if !enrolled {
        bail!("the second factor of {id} could not be enrolled");
    }
    tracing::info!(event = "second_factor_enrolled", credential = %id, by = "command line", "second factor enrolled at issue");
    Ok((secret, recovery))
}

async fn credentials(settings: &Options, command: CredentialsCommand) -> anyhow::Result<()> {
    let app = LocalApp::open(settings).await?;
    let store = app.store.as_ref();
    match command {
        CredentialsCommand::Issue {
            role,
            commune,
            scope: departements,
            label,
            expires_in_days,
            second_factor,
            every_commune,
            letters,
            json,
        } => {
            let scope = &app.state.config.scope;
            if let Some(path) = letters {
                if !matches!(role, RoleArg::Commune) || (commune.is_none() && !every_commune) {
                    bail!(
                        "--letters goes with --role commune and --every-commune or --commune CODE"
                    );
                }
                return write_letters(
                    settings,
                    &app,
                    &path,
                    commune.as_deref(),
                    &departements,
                    expires_in_days,
                )
                .await;
            }
            if every_commune {
                if !matches!(role, RoleArg::Commune) {
                    bail!("--every-commune is for --role commune only");
                }
                let now = Utc::now();
                let expires_at = expiry(now, expires_in_days)?;
                let mut out = std::io::stdout().lock();
                for commune in scope.communes() {
                    let (credential, code) =
                        issue_mairie_code(store, commune, expires_at, now).await?;
                    if json {
                        let line = serde_json::json!({
                            "id": credential.id,
                            "access_code": code.display_grouped(),
                            "role": credential.role,
                            "commune": credential.commune,
                            "name": commune.name,
                            "expires_at": credential.expires_at,
                        });
                        writeln!(out, "{line}")?;
                    } else {
                        writeln!(
                            out,
                            "{}\t{}\t{}",
                            commune.code,
                            commune.name,
                            code.display_grouped()
                        )?;
                    }
                }
                tracing::info!(
                    event = "code_issued",
                    role = "commune",
                    count = scope.communes().count(),
                    by = "command line",
                    "a code for every commune"
                );
                return Ok(());
            }
            let mut departements: Vec<String> = departements
                .iter()
                .map(|d| d.trim().to_ascii_uppercase())
                .filter(|d| !d.is_empty())
                .collect();
            departements.sort();
            departements.dedup();
            if let Some(unknown) = departements.iter().find(|d| !scope.has_departement(d)) {
                bail!(
                    "département {unknown} is not one of this deployment's ({}): check --scope \
                    or --departements",
                    scope.departement_codes().collect::<Vec<_>>().join(",")
                );
            }
            if !departements.is_empty() && !matches!(role, RoleArg::Prefecture) {
                bail!("--scope is for --role prefecture only");
            }
            let (role, commune) = match (role, commune) {
                (RoleArg::Commune, None) => {
                    bail!("--role commune needs --commune CODE (the INSEE code, for example 56260)")
                }
                (RoleArg::Commune, Some(text)) => {
                    let code = CommuneCode::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
                    if !scope.contains(&code) {
                        bail!(
                            "commune {code} is not in scope ({}): check --commune or \
                            --departements",
                            scope.label()
                        );
                    }
                    (Role::Commune, Some(code))
                }
                (RoleArg::Prefecture, Some(_)) => {
                    bail!("--role prefecture takes no --commune: it covers every commune in scope")
                }
                (RoleArg::Prefecture, None) => (Role::Prefecture, None),
                (RoleArg::National, Some(_)) => {
                    bail!("--role national takes no --commune: it reads every département")
                }
                (RoleArg::National, None) => (Role::National, None),
            };
            let label = label.unwrap_or_else(|| match (&commune, role) {
                (Some(code), _) => format!(
                    "Mairie {}",
                    scope
                        .get(code)
                        .map_or_else(|| "?".to_owned(), |c| c.of_name())
                ),
                (None, Role::National) => "Niveau national".into(),
                (None, _) if departements.is_empty() => "Préfecture".into(),
                (None, _) => format!("Préfecture ({})", departements.join(", ")),
            });
            if second_factor && !role.is_supervisor() {
                bail!("--second-factor is for --role prefecture or national only");
            }
            let now = Utc::now();
            let days = expires_in_days.or_else(|| {
                role.is_supervisor()
                    .then_some(settings.supervisor_code_days)
            });
            let expires_at = expiry(now, days)?;
            let new = NewCredential {
                departements,
                expires_at,
                ..NewCredential::new(role, commune, &label)
            };
            let (credential, code) = issue_credential(store, new, now).await?;
            let enrolled = match second_factor {
                true => Some(enrol_now(store, &credential.id, now).await?),
                false => None,
            };
            if json {
                let mut out = serde_json::json!({
                    "id": credential.id,
                    "access_code": code.display_grouped(),
                    "role": credential.role,
                    "commune": credential.commune,
                    "departements": credential.departements,
                    "expires_at": credential.expires_at,
                });
                if let Some((secret, recovery)) = &enrolled {
                    out["totp_secret"] = serde_json::json!(secret);
                    out["recovery_codes"] = serde_json::json!(recovery);
                }
                println!("{out}");
            } else {
                println!(
                    "Code d'accès ({}, {}) : {}",
                    credential.id,
                    credential.label,
                    code.display_grouped()
                );
                if let Some(at) = credential.expires_at {
                    println!("Valable jusqu'au {}.", at.format("%d/%m/%Y à %H:%M UTC"));
                }
                if let Some((secret, recovery)) = &enrolled {
                    println!("Clé de double authentification (TOTP) : {secret}");
                    println!("Codes de secours : {}", recovery.join("  "));
                }
                eprintln!(
                    "Ce code n'est affiché qu'une fois : transmettez-le maintenant. Il ne \
                    peut pas être retrouvé, seulement révoqué."
                );
            }
            Ok(())
        }
        CredentialsCommand::Revoke { id, cascade } => {
            let revoked = revoke_credential(store, &id, cascade, Utc::now()).await?;
            if let Some((first, issued)) = revoked.split_first() {
                tracing::info!(event = "code_revoked", id = %first, by = "command line", "access code revoked");
                println!("Code {first} révoqué.");
                for other in issued {
                    tracing::info!(event = "code_revoked", id = %other, cascade_from = %first, by = "command line", "access code revoked");
                    println!("Code {other}, créé à partir de lui, révoqué.");
                }
                Ok(())
            } else {
                bail!("no active access code with id `{id}`: see `decompte credentials list`")
            }
        }
        CredentialsCommand::List { json } => {
            let list = store.credentials().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<24} {:<10} {:<7} {:<12} {:<17} {:<17} {:<10} libellé",
                    "id", "rôle", "commune", "départements", "créé", "dernier usage", "état"
                );
                for c in list {
                    let departements = if c.departements.is_empty() {
                        "—".to_owned()
                    } else {
                        c.departements_text()
                    };
                    println!(
                        "{:<24} {:<10} {:<7} {:<12} {:<17} {:<17} {:<10} {}",
                        c.id,
                        c.role,
                        c.commune.as_ref().map_or("—", |c| c.as_str()),
                        departements,
                        c.created_at.format("%Y-%m-%d %H:%M"),
                        c.last_used_at
                            .map_or("—".into(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
                        match (c.revoked_at, c.is_active(Utc::now())) {
                            (Some(_), _) => "révoqué",
                            (None, false) => "expiré",
                            (None, true) => "actif",
                        },
                        c.label
                    );
                }
            }
            Ok(())
        }
    }
}
