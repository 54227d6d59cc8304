//! The options of every decompte process: the `decompte` command's flags,
//! each also read from a `DECOMPTE_*` environment variable (see
//! `.env.sample`), which is how the Lambda functions are configured. Validated
//! once at start. Also the commune referential shipped in `data/`.
//!
//! Architecture invariant: one definition of each option for every binary, so
//! a variable means the same to `decompte serve` and to both functions.

use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use clap::Args;
use decompte_core::{Referential, Rules, Scope, Settings as SettingList};

/// Starts a Lambda function's process: its logs, then its options, read from
/// the environment only (a function has no arguments).
pub fn function_environment<T: clap::Parser>(name: &str) -> anyhow::Result<T> {
    init_function_logs();
    T::try_parse_from([name]).context("invalid DECOMPTE_* environment")
}

/// Logs of a Lambda function: one JSON object per line for CloudWatch (which
/// stamps the time), filtered by `RUST_LOG`, `info` by default.
pub fn init_function_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
}

/// The commune referential shipped in `data/` (see `data/README.md`).
pub fn referential() -> anyhow::Result<Referential> {
    Referential::parse(
        include_str!("../../data/communes.csv"),
        include_str!("../../data/departements.csv"),
    )
    .context("the shipped commune referential does not parse")
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Folder holding the SQLite database (decompte.sqlite) and the published site (site/).
    #[arg(
        long,
        env = "DECOMPTE_DATA_DIR",
        default_value = "./decompte-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Where reports are kept: `sqlite` (<data-dir>/decompte.sqlite) or
    /// `dynamodb://TABLE?endpoint=URL&region=REGION` (credentials from the standard AWS chain).
    #[arg(long, env = "DECOMPTE_STORE", global = true)]
    pub store: Option<String>,

    /// Where the site is published: `folder` (<data-dir>/site, served by `serve`) or
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=REGION` (credentials from the standard AWS chain).
    #[arg(long, env = "DECOMPTE_SITE", global = true)]
    pub site: Option<String>,

    /// CDN to tell what each publication changed:
    /// `cloudfront://DISTRIBUTION_ID?endpoint=URL&region=REGION`; none if absent.
    #[arg(long, env = "DECOMPTE_CDN", global = true)]
    pub cdn: Option<String>,

    /// Départements served, comma-separated INSEE codes.
    #[arg(
        long,
        env = "DECOMPTE_DEPARTEMENTS",
        default_value = "56",
        value_delimiter = ',',
        global = true
    )]
    pub departements: Vec<String>,

    /// Settings (lieux de décès) as key=Label pairs, comma-separated; the five defaults if absent.
    #[arg(long, env = "DECOMPTE_SETTINGS", global = true)]
    pub settings: Option<String>,

    /// First day that can be declared (AAAA-MM-JJ).
    #[arg(
        long,
        env = "DECOMPTE_CRISIS_START",
        default_value = "2020-01-01",
        global = true
    )]
    pub crisis_start: NaiveDate,

    /// Largest count accepted for one commune, day and setting.
    #[arg(
        long,
        env = "DECOMPTE_MAX_PER_CELL",
        default_value_t = 1000,
        global = true
    )]
    pub max_per_cell: u32,

    /// Who publishes, as shown on every page.
    #[arg(
        long,
        env = "DECOMPTE_PUBLISHER",
        default_value = "Préfecture du Morbihan",
        global = true
    )]
    pub publisher: String,

    /// Name of the crisis, as shown on every page.
    #[arg(
        long,
        env = "DECOMPTE_CRISIS",
        default_value = "Covid-19",
        global = true
    )]
    pub crisis: String,

    /// Address users reach the app at. An https:// address makes cookies Secure with the __Host- prefix.
    #[arg(long, env = "DECOMPTE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Address of the public site, for the app's links to it; `/` (served with the app) if absent.
    #[arg(long, env = "DECOMPTE_SITE_URL", global = true)]
    pub site_url: Option<String>,

    /// Reverse proxies whose X-Forwarded-For is believed, comma-separated
    /// addresses or networks (`127.0.0.1,10.0.0.0/8`): the client address of a
    /// request that came through them is read from that header, for login
    /// throttling. None by default: the header is then ignored.
    #[arg(
        long,
        env = "DECOMPTE_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<String>,

    /// Replaced by --trusted-proxies, which says which proxies to believe.
    #[arg(long, env = "DECOMPTE_TRUST_FORWARDED_FOR", global = true, hide = true)]
    pub trust_forwarded_for: bool,

    /// Seconds between two automatic publications of the site.
    #[arg(
        long,
        env = "DECOMPTE_PUBLISH_EVERY",
        default_value_t = 60,
        global = true
    )]
    pub publish_every: u64,
}

impl Settings {
    /// Settings for tests and tools: every option at its default, data in `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            store: None,
            site: None,
            cdn: None,
            departements: vec!["56".into()],
            settings: None,
            crisis_start: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
            max_per_cell: 1000,
            publisher: "Préfecture du Morbihan".into(),
            crisis: "Covid-19".into(),
            public_url: None,
            site_url: None,
            trusted_proxies: Vec::new(),
            trust_forwarded_for: false,
            publish_every: 60,
        }
    }

    pub fn scope(&self) -> anyhow::Result<Scope> {
        let departements: Vec<String> = self
            .departements
            .iter()
            .map(|d| d.trim().to_uppercase())
            .filter(|d| !d.is_empty())
            .collect();
        if departements.is_empty() {
            bail!("no département in scope: set --departements or DECOMPTE_DEPARTEMENTS, for example 56");
        }
        referential()?
            .scope(&departements)
            .map_err(|e| anyhow::anyhow!("{e}: check --departements or DECOMPTE_DEPARTEMENTS"))
    }

    pub fn rules(&self) -> anyhow::Result<Rules> {
        let settings = match &self.settings {
            Some(text) => SettingList::parse(text)
                .map_err(|e| anyhow::anyhow!(e))
                .context(
                    "invalid --settings or DECOMPTE_SETTINGS (expected key=Label,key=Label)",
                )?,
            None => SettingList::default(),
        };
        if self.max_per_cell == 0 {
            bail!("--max-per-cell must be at least 1");
        }
        Ok(Rules {
            settings,
            crisis_start: self.crisis_start,
            max_per_cell: self.max_per_cell,
        })
    }

    /// The networks of `--trusted-proxies`. The old `--trust-forwarded-for`
    /// believed any `X-Forwarded-For`: it is refused with the way to replace it.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        if self.trust_forwarded_for {
            bail!("--trust-forwarded-for (DECOMPTE_TRUST_FORWARDED_FOR) is replaced by --trusted-proxies (DECOMPTE_TRUSTED_PROXIES): give the addresses of your reverse proxies, for example 127.0.0.1 or 10.0.0.0/8");
        }
        self.trusted_proxies
            .iter()
            .map(|text| text.trim())
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| anyhow::anyhow!("--trusted-proxies: `{text}` is not an address or a network (for example 127.0.0.1 or 10.0.0.0/8)"))
            })
            .collect()
    }

    /// The origin (`scheme://host[:port]`) of `--public-url`, if it is set.
    pub fn public_origin(&self) -> Option<String> {
        let url = self.public_url.as_deref()?.trim();
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        (!host.is_empty()).then(|| {
            format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            )
        })
    }

    /// Cookies are Secure unless the public address is plain http.
    pub fn secure_cookies(&self) -> bool {
        !self
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("http://"))
    }
}
