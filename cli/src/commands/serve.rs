//! `decompte serve`: the app, the public site and the timers, until SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use decompte::{demo, LocalApp, Options};
use decompte_app::auth::issue_credential;
use decompte_core::issuance::{self, Issuer};
use decompte_core::{CommuneCode, Role};

pub async fn run(options: &mut Options, listen: SocketAddr, demo: bool) -> anyhow::Result<()> {
    options.demo = demo;
    if demo {
        // The demonstration replays 2020: its days are years old, by design.
        options.old_day_after = 0;
    }
    if demo && !listen.ip().is_loopback() {
        bail!(
            "--demo sert des chiffres inventés et affiche des codes d'accès : il n'écoute que sur \
            la boucle locale (127.0.0.1 ou ::1), pas sur {listen}"
        );
    }
    if options.public_url.is_none() && listen.ip().is_loopback() {
        // Plain http on loopback: the only case where cookies may go without Secure.
        options.public_url = Some(format!("http://{listen}"));
    }
    // Publications render on threads that yield to the requests.
    if let Err(error) = decompte_publish::engine::render_in_background() {
        tracing::warn!(%error, "publications render at the requests' priority");
    }
    let app = LocalApp::open(options).await?;
    let base = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    let mut codes = Vec::new();
    if demo {
        codes = seed_demo(&app).await?;
    } else if app
        .store
        .credentials()
        .await?
        .iter()
        .all(|c| !c.is_active(app.state.now()))
    {
        eprintln!(
            "Aucun code d'accès actif : créez-en un avec `decompte credentials issue --role \
            prefecture`."
        );
    }
    let lease = app.take_lease().await?;
    // Restarted (a new version, other settings): the app answers at once,
    // the site serves the last publication, and every page is published
    // again in the background. The first start publishes before it answers.
    let republish = lease.is_some() && app.publisher.has_published().await;
    if republish {
        eprintln!("Le site publié reste en ligne ; il est publié de nouveau en arrière-plan.");
    } else if lease.is_some() {
        eprintln!("Première publication du site …");
        let started = app.state.now();
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
    // After the lines above, which say the app is ready.
    app.spawn_publish_timer(
        Duration::from_secs(options.publish_every.max(1)),
        lease,
        republish,
    );
    app.spawn_report_timer();
    decompte::serve_app(&app, listen, Duration::from_secs(options.drain_seconds)).await
}

/// The demonstration's data and its two access codes (a mairie's and the
/// prefecture's), printed by `serve --demo`.
async fn seed_demo(app: &LocalApp) -> anyhow::Result<Vec<(String, String)>> {
    let config = Arc::clone(&app.state.config);
    let mut codes = Vec::new();
    if demo::holds_real_reports(app.store.as_ref()).await? {
        bail!(
            "--demo refuse une base qui contient d'autres déclarations que celles de \
            démonstration : il mêlerait des chiffres inventés aux vrais. Donnez un autre \
            --data-dir (ou --store) à la démonstration"
        );
    }
    eprintln!("Données de démonstration : préparation …");
    let mut progress: Option<decompte::progress::Progress> = None;
    let written = demo::seed(
        app.store.as_ref(),
        &config.scope,
        &config.rules,
        app.state.now(),
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
        .context("le périmètre ne compte aucune commune")?;
    let name = config
        .scope
        .get(&mayor_commune)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    // Through the one rule of issuance, like any code.
    let now = app.state.now();
    let issue = |role: Role, commune: Option<&CommuneCode>, label: String| {
        issuance::decide(
            Issuer::Operator,
            issuance::Request {
                role: Some(role),
                commune: commune.map(ToString::to_string),
                label: Some(label),
                ..issuance::Request::default()
            },
            &config.scope,
            config.supervisor_code_days,
            now,
        )
    };
    let mayor_code = issue(
        Role::Commune,
        Some(&mayor_commune),
        format!("Démonstration · mairie de {name}"),
    )?;
    let (_, mayor) = issue_credential(app.store.as_ref(), mayor_code, None, now).await?;
    let prefecture_code = issue(Role::Prefecture, None, "Démonstration · préfecture".into())?;
    let (_, prefecture) = issue_credential(app.store.as_ref(), prefecture_code, None, now).await?;
    codes.push((
        format!(
            "Mairie {} ({mayor_commune})",
            decompte_core::commune::of_name(&name)
        ),
        mayor.display_grouped(),
    ));
    codes.push(("Préfecture".to_owned(), prefecture.display_grouped()));
    Ok(codes)
}
