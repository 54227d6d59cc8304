//! `decompte publish`: the site once, in full or what changed.

use anyhow::bail;
use decompte::{LocalApp, Options};

pub async fn run(options: &Options, changes: bool) -> anyhow::Result<()> {
    let app = LocalApp::open(options).await?;
    // Held until the end: no replica publishes meanwhile.
    let Some(_lease) = app.take_lease().await? else {
        bail!(
            "un `decompte serve` en marche sur cette base publie le site : demandez-lui de \
            le faire avec « Republier » sur la page préfecture (ou POST /api/v1/publications), \
            ou arrêtez d'abord les réplicas"
        );
    };
    let target = match &options.site {
        decompte_config::SiteAddress::Folder => app.site_dir.display().to_string(),
        other => other.to_string(),
    };
    eprintln!("Publication du site dans {target} …");
    // Once: nothing to keep in memory for a next publication.
    app.publisher.set_keeping(false);
    let outcome = if changes {
        // Data files a running `serve` left waiting: all of them now.
        let Some(outcome) = app
            .publisher
            .publish_settled(std::time::Duration::MAX)
            .await?
        else {
            eprintln!("Rien n'a changé depuis la dernière publication.");
            return Ok(());
        };
        outcome
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
