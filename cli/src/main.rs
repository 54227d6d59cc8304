//! `decompte`: count and publish, commune by commune and day by day, the deaths
//! of a crisis by the place where they happened.
//!
//! This file holds the command line's shape; each command is a module of
//! `commands/`.

mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use decompte::Options;

/// mimalloc rather than glibc's malloc: its memory stays level through a
/// national morning, where glibc's arenas kept growing.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "decompte", version, about = "Décompte des décès par commune et par lieu, publié \
    en ligne", long_about = None)]
struct Cli {
    #[command(flatten)]
    options: Options,
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
    Credentials(commands::credentials::Command),
    /// Import a CSV in the format of donnees/deces.csv, as corrections with history.
    Import {
        /// The CSV file: header `date,code_commune,nom_commune,<one column per setting>,total`
        /// (or the earlier `date,code_commune,nom_commune,lieu,deces`).
        file: PathBuf,
    },
    /// Manage the store.
    #[command(subcommand)]
    Store(commands::store::Command),
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // In French, as everything the command says to its user; the
            // causes on the same line, after the context.
            eprintln!("Erreur : {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut options = cli.options;
    match cli.command {
        Command::Serve { listen, demo } => commands::serve::run(&mut options, listen, demo).await,
        Command::Publish { changes } => commands::publish::run(&options, changes).await,
        Command::Credentials(command) => commands::credentials::run(&options, command).await,
        Command::Store(command) => commands::store::run(&options, command).await,
        Command::Import { file } => commands::data::import(&options, &file).await,
        Command::Export { output } => commands::data::export(&options, output).await,
        Command::Report {
            date,
            departement,
            pdf,
            send,
        } => {
            let ask = commands::report::Ask {
                date,
                departement,
                pdf,
                send,
            };
            commands::report::run(&options, ask).await
        }
    }
}
