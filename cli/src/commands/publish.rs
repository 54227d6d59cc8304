//! `decompte publish`: the site once, in full or what changed.

use anyhow::bail;
use decompte::{LocalApp, Options};

pub async fn run(options: &Options, changes: bool) -> anyhow::Result<()> {
    let app = LocalApp::open(options).await?;
    // Held until the end: no replica publishes meanwhile.
    let Some(_lease) = app.take_lease().await? else {
        bail!(
            "a running `decompte serve` on this store publishes the site: ask it with \
            « Republier » on the prefecture page (or POST /api/v1/publications), or \
            stop the replicas first"
        );
    };
    let target = match &options.site {
        decompte_config::SiteAddress::Folder => app.site_dir.display().to_string(),
        other => other.to_string(),
    };
    eprintln!("Publication du site dans {target} …");
    let outcome = if changes {
        match app.publisher.publish_if_changed(app.state.now()).await? {
            Some(outcome) => outcome,
            None => {
                eprintln!("Rien n'a changé depuis la dernière publication.");
                return Ok(());
            }
        }
    } else {
        let started = app.state.now();
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
