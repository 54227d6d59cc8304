//! `decompte credentials`: issue, revoke and list access codes, and write
//! the mairies' access letters.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use decompte::{LocalApp, Options};
use decompte_app::auth::{issue_credential, revoke_credential};
use decompte_app::second_factor;
use decompte_core::issuance::{self, Issuer, Refusal};
use decompte_core::{CommuneCode, Role};

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Commune,
    Prefecture,
    National,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Commune => Role::Commune,
            RoleArg::Prefecture => Role::Prefecture,
            RoleArg::National => Role::National,
        }
    }
}

/// What `decompte credentials issue` takes.
#[derive(Args)]
pub struct IssueArgs {
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// INSEE code of the commune (required for --role commune).
    #[arg(long)]
    pub commune: Option<String>,
    /// For --role prefecture: the départements the code covers (`56,29`),
    /// inside the deployment's --departements; every one of them if omitted.
    #[arg(long, value_delimiter = ',')]
    pub scope: Vec<String>,
    /// Who holds the code, for the list ("Mairie de Vannes", "Cellule de crise").
    #[arg(long)]
    pub label: Option<String>,
    /// Days the code stays valid. Default: prefecture and national codes
    /// --supervisor-code-days (90), commune codes for ever.
    #[arg(long)]
    pub expires_in_days: Option<u64>,
    /// For a prefecture or national code: enrol its second factor now
    /// and print the TOTP secret and the recovery codes with the access
    /// code — for a machine client of the API, or a hand-over in
    /// person. Without it, the holder enrols at the first login.
    #[arg(long)]
    pub second_factor: bool,
    /// With --role commune and no --commune: a code for every commune of
    /// the deployment, one line each (one JSON object per line with --json).
    #[arg(long, conflicts_with = "commune")]
    pub every_commune: bool,
    /// With --role commune: write a printable access letter per mairie
    /// (PDF, A4) to this file, the code shown there only. With
    /// --every-commune, for the communes that have no active code yet
    /// (--scope limits them to some départements); with --commune, a new
    /// code that replaces the commune's previous ones. Needs --public-url,
    /// the address the letters give.
    #[arg(long, value_name = "FILE.pdf")]
    pub letters: Option<PathBuf>,
    /// Print {"id","access_code","role","commune","departements","expires_at"}
    /// (and "totp_secret", "recovery_codes" with --second-factor) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Issue an access code; it is printed once and never stored.
    Issue(IssueArgs),
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

pub async fn run(options: &Options, command: Command) -> anyhow::Result<()> {
    let app = LocalApp::open(options).await?;
    match command {
        Command::Issue(args) => issue(options, &app, args).await,
        Command::Revoke { id, cascade } => revoke(&app, &id, cascade).await,
        Command::List { json } => list(&app, json).await,
    }
}

/// `credentials issue`.
async fn issue(options: &Options, app: &LocalApp, args: IssueArgs) -> anyhow::Result<()> {
    let IssueArgs {
        role,
        commune,
        scope: departements,
        label,
        expires_in_days,
        second_factor,
        every_commune,
        letters,
        json,
    } = args;
    let store = app.store.as_ref();
    let scope = &app.state.config.scope;
    if let Some(path) = letters {
        if !matches!(role, RoleArg::Commune) || (commune.is_none() && !every_commune) {
            bail!("--letters va avec --role commune et --every-commune ou --commune CODE");
        }
        return write_letters(
            options,
            app,
            &path,
            commune.as_deref(),
            &departements,
            expires_in_days,
        )
        .await;
    }
    if every_commune {
        if !matches!(role, RoleArg::Commune) {
            bail!("--every-commune ne vaut que pour --role commune");
        }
        return issue_every_commune(app, expires_in_days, json).await;
    }
    let role = role.role();
    if second_factor && !role.is_supervisor() {
        bail!("--second-factor ne vaut que pour --role prefecture ou national");
    }
    let now = app.state.now();
    let request = issuance::Request {
        role: Some(role),
        commune,
        departements,
        label,
        valid_days: expires_in_days,
    };
    let new = issuance::decide(
        Issuer::Operator,
        request,
        scope,
        options.supervisor_code_days,
        now,
    )
    .map_err(|refusal| anyhow::anyhow!("{refusal} : {}", what_to_check(&refusal)))?;
    let (credential, code) = issue_credential(store, new, None, now).await?;
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

/// `credentials issue --role commune --every-commune`: a code for every
/// commune of the deployment, one line each.
async fn issue_every_commune(
    app: &LocalApp,
    expires_in_days: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let scope = &app.state.config.scope;
    let now = app.state.now();
    let mut out = std::io::stdout().lock();
    for commune in scope.communes() {
        let (credential, code) = issue_mairie_code(app, commune, expires_in_days, now).await?;
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
    Ok(())
}

/// `credentials revoke ID [--cascade]`.
async fn revoke(app: &LocalApp, id: &str, cascade: bool) -> anyhow::Result<()> {
    let store = app.store.as_ref();
    let revoked = revoke_credential(store, id, cascade, app.state.now()).await?;
    if let Some((first, issued)) = revoked.split_first() {
        tracing::info!(event = "code_revoked", id = %first, by = "command line", "access code revoked");
        println!("Code {first} révoqué.");
        for other in issued {
            tracing::info!(event = "code_revoked", id = %other, cascade_from = %first, by = "command line", "access code revoked");
            println!("Code {other}, créé à partir de lui, révoqué.");
        }
        Ok(())
    } else {
        bail!(
            "aucun code d'accès actif n'a l'identifiant `{id}` : voyez `decompte credentials list`"
        )
    }
}

/// `credentials list [--json]`.
async fn list(app: &LocalApp, json: bool) -> anyhow::Result<()> {
    let store = app.store.as_ref();
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
                match (c.revoked_at, c.is_active(app.state.now())) {
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

/// `credentials issue --letters`: issues the codes and writes their letters.
async fn write_letters(
    options: &Options,
    app: &LocalApp,
    path: &std::path::Path,
    commune: Option<&str>,
    departements: &[String],
    expires_in_days: Option<u64>,
) -> anyhow::Result<()> {
    let config = &app.state.config;
    let store = app.store.as_ref();
    let app_url = options
        .public_url
        .clone()
        .context("--letters demande --public-url (DECOMPTE_PUBLIC_URL) : l'adresse que les lettres donnent aux mairies")?;
    let now = app.state.now();
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
                format!(
                    "la commune {code} n'est pas dans le périmètre ({})",
                    config.scope.label()
                )
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
                bail!("le département {unknown} n'est pas servi par ce déploiement : vérifiez --scope");
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
        let (_, code) = issue_mairie_code(app, commune, expires_in_days, now).await?;
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
            .with_context(|| format!("impossible d'écrire {}", path.display()))?
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
    app: &LocalApp,
    commune: &decompte_core::Commune,
    valid_days: Option<u64>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(decompte_store::Credential, decompte_core::AccessCode)> {
    let request = issuance::Request {
        role: Some(Role::Commune),
        commune: Some(commune.code.to_string()),
        valid_days,
        ..issuance::Request::default()
    };
    let config = &app.state.config;
    let new = issuance::decide(
        Issuer::Operator,
        request,
        &config.scope,
        config.supervisor_code_days,
        now,
    )?;
    Ok(issue_credential(app.store.as_ref(), new, None, now).await?)
}

/// Enrols a second factor at issue (`credentials issue --second-factor`):
/// returns the TOTP secret and the recovery codes, to print once.
async fn enrol_now(
    store: &dyn decompte_store::Store,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
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
        bail!("le second facteur de {id} n'a pas pu être enregistré");
    }
    tracing::info!(event = "second_factor_enrolled", credential = %id, by = "command line", "second factor enrolled at issue");
    Ok((secret, recovery))
}

/// The options a refused issuance asks to look at again.
fn what_to_check(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::TooLong(_) | Refusal::NoDays => "vérifiez --expires-in-days",
        Refusal::NotPermitted { .. } => "vérifiez --role",
        Refusal::NoCommune | Refusal::CommuneForSupervisor(_) => "vérifiez --commune et --role",
        Refusal::CommuneOutOfReach(..) => {
            "vérifiez --commune, ou les --departements du déploiement"
        }
        Refusal::DepartementOutOfReach(..) => {
            "vérifiez --scope, ou les --departements du déploiement"
        }
        Refusal::DepartementsNotForRole => "vérifiez --scope et --role",
    }
}
