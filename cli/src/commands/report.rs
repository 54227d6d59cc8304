//! `decompte report`: the morning situation report of a day, as a PDF or by
//! e-mail.

use std::path::PathBuf;

use anyhow::{bail, Context};
use decompte::{LocalApp, Options};

/// What `decompte report` was asked.
pub struct Ask {
    pub date: Option<chrono::NaiveDate>,
    pub departement: Option<String>,
    pub pdf: Option<PathBuf>,
    pub send: bool,
}

pub async fn run(options: &Options, ask: Ask) -> anyhow::Result<()> {
    let Ask {
        date,
        departement,
        pdf,
        send,
    } = ask;
    let app = LocalApp::open(options).await?;
    let config = &app.state.config;
    let now = app.state.now();
    let date = date.unwrap_or_else(|| config.scope.today(now) - chrono::Duration::days(1));
    if pdf.is_none() && !send {
        bail!("dites que faire du point de situation : --pdf FICHIER, --send, ou les deux");
    }
    if let Some(path) = pdf {
        let departement = match departement {
            Some(code) => code.trim().to_uppercase(),
            None => config
                .scope
                .departement_codes()
                .next()
                .context("aucun département servi")?
                .to_owned(),
        };
        if config.scope.departement_name(&departement).is_none() {
            bail!(
                "le département {departement} n'est pas servi ({})",
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
            .with_context(|| format!("impossible d'écrire {}", path.display()))?;
        eprintln!(
            "Point de situation du {} écrit dans {}.",
            report.date_fr,
            path.display()
        );
    }
    if send {
        if config.report_recipients.is_empty() {
            bail!("--send demande --report-to (DECOMPTE_REPORT_TO) : personne à qui envoyer le point de situation");
        }
        let sent = decompte_app::report::send_morning_reports(&app.state, date, None, now).await?;
        eprintln!(
            "Point de situation du {} envoyé pour : {}.",
            decompte_core::time::fr_date(date),
            sent.join(", ")
        );
    }
    Ok(())
}
