//! The options of every decompte process: the `decompte` command's flags,
//! each also read from a `DECOMPTE_*` environment variable (see
//! `.env.sample`), which is how the Lambda functions are configured. Validated
//! once at start: addresses are parsed into types by clap ([`address`]), and
//! every default is written once ([`defaults`]). Also the commune referential
//! shipped in `data/`.
//!
//! Architecture invariant: one definition of each option for every binary, so
//! a variable means the same to `decompte serve` and to both functions.

pub mod address;

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use decompte_core::{Referential, Rules, Scope, Settings as SettingList};

pub use address::{
    AddressError, BucketAddress, CdnAddress, DistributionAddress, Endpoint, FunctionAddress,
    PostgresUrl, SiteAddress, StoreAddress, TableAddress,
};

/// Every default, once: the flags, the tests' settings and the app's
/// configuration all read them from here.
pub mod defaults {
    pub const DATA_DIR: &str = "./decompte-data";
    pub const DEPARTEMENTS: &str = "56";
    pub const CRISIS_START: &str = "2020-01-01";
    pub const MAX_PER_CELL: u32 = 1000;
    pub const PUBLISHER: &str = "Préfecture du Morbihan";
    pub const CRISIS: &str = "Covid-19";
    /// Seconds between two automatic publications.
    pub const PUBLISH_EVERY: u64 = 60;
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// Days a prefecture or national code opens anything after its issue.
    pub const SUPERVISOR_CODE_DAYS: u64 = 90;
    /// Days before today after which a declared day gets a warning.
    pub const OLD_DAY_AFTER: u32 = 30;
    pub const CUTOFF_HOUR: u32 = 14;
    /// The reminder e-mails are about today and the days before it, this many in all.
    pub const REMINDER_DAYS: u32 = 3;
    /// Reminder e-mails a département's mairies may be sent in one day, all
    /// agents together.
    pub const REMINDER_EMAILS: u32 = 1000;
    /// The morning report is e-mailed at 8 h, the département's time.
    pub const REPORT_HOUR: u32 = 8;
    /// Wrong codes one client address (an IPv6 /64) may send in 15 minutes
    /// before its wrong codes are answered 429.
    pub const LOGIN_FAILURES: u32 = 10;
}

/// What is wrong with the options; each message says what to set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid DECOMPTE_* environment: {0}")]
    Environment(#[from] clap::Error),
    #[error("{0}")]
    Layer(#[from] decompte_bundle::LayerError),
    #[error("the shipped data file {0} is not UTF-8 text")]
    DataFile(&'static str),
    #[error("the shipped commune referential does not parse: {0}")]
    Referential(#[from] decompte_core::commune::ReferentialError),
    #[error(
        "no département in scope: set --departements or DECOMPTE_DEPARTEMENTS, for example 56"
    )]
    NoDepartement,
    #[error("{0}: check --departements or DECOMPTE_DEPARTEMENTS")]
    Departement(decompte_core::commune::ReferentialError),
    #[error("invalid --settings or DECOMPTE_SETTINGS (expected key=Label,key=Label): {0}")]
    Settings(#[from] decompte_core::setting::SettingsError),
    #[error("--max-per-cell must be at least 1")]
    MaxPerCell,
    #[error(
        "--trust-forwarded-for (DECOMPTE_TRUST_FORWARDED_FOR) is replaced by --trusted-proxies \
        (DECOMPTE_TRUSTED_PROXIES): give the addresses of your reverse proxies, for example \
        127.0.0.1 or 10.0.0.0/8"
    )]
    TrustForwardedFor,
    #[error(
        "--trusted-proxies: `{0}` is not an address or a network (for example 127.0.0.1 or \
        10.0.0.0/8)"
    )]
    TrustedProxy(String),
    #[error("SMTP (DECOMPTE_SMTP_*): {0}")]
    Smtp(String),
    #[error("ProConnect (DECOMPTE_OIDC_*): {0}")]
    Oidc(String),
    #[error(
        "--report-to (DECOMPTE_REPORT_TO): {0} (expected addresses, comma-separated, or by \
        département: 56=a@example.fr,b@example.fr;29=c@example.fr)"
    )]
    ReportTo(String),
}

/// A secret from the environment: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

/// Starts a Lambda function's process: its logs, its data layer (unless
/// this build carries the data), then its options, read from the
/// environment only (a function has no arguments).
pub fn function_environment<T: clap::Parser>(name: &str) -> Result<T, ConfigError> {
    init_function_logs();
    #[cfg(not(feature = "bundled"))]
    decompte_bundle::check_layer()?;
    Ok(T::try_parse_from([name])?)
}

/// The log targets that print a Lambda event whole, at trace level.
const RAW_EVENT_LOGGERS: [&str; 1] = ["lambda_runtime::layers::api_response"];

/// Logs of a Lambda function: one JSON object per line for CloudWatch (which
/// stamps the time), filtered by `RUST_LOG`, `info` by default.
///
/// Whatever `RUST_LOG` asks, the runtime's own log of each raw event stays
/// off: at trace level `lambda_runtime` prints the whole event, headers
/// (`Authorization`, `Cookie`) and body (a typed access code) included.
pub fn init_function_logs() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // `Targets` reads `target=level` directives without the regular
    // expressions of `EnvFilter`, which the functions need not carry.
    let mut filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    for capped in RAW_EVENT_LOGGERS {
        filter = filter.with_target(capped, LevelFilter::DEBUG);
    }
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_target(false)
                .without_time(),
        )
        .with(filter)
        .init();
}

/// The origin of an absolute address, `scheme://host[:port]` in lower case:
/// what browsers send in `Origin`.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}").to_ascii_lowercase())
}

/// A file of `data/` as text: compiled in with the `bundled` feature, read
/// from the Lambda functions' data layer otherwise (`decompte_bundle`).
macro_rules! data_text {
    ($name:literal) => {
        text($name, decompte_bundle::file!($name))
    };
}

fn text(name: &'static str, bytes: &'static [u8]) -> Result<&'static str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|_| ConfigError::DataFile(name))
}

/// The commune referential shipped in `data/` (see `data/README.md`).
pub fn referential() -> Result<Referential, ConfigError> {
    Ok(Referential::parse(
        data_text!("data/communes.csv")?,
        data_text!("data/departements.csv")?,
    )?)
}

/// Deaths of all causes in 2019 by département (`data/deces-2019.csv`, from
/// INSEE): what the form's plausibility warnings scale by population.
pub fn deaths_2019() -> std::collections::BTreeMap<String, u64> {
    records(decompte_bundle::file!("data/deces-2019.csv"))
        .filter_map(|row| Some((row.get(0)?.to_owned(), row.get(1)?.parse().ok()?)))
        .collect()
}

/// The rows of one of the referential's CSV files (header skipped, fields
/// trimmed), read by the `csv` crate like every other CSV.
fn records(text: &'static [u8]) -> impl Iterator<Item = csv::StringRecord> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text)
        .into_records()
        .filter_map(Result::ok)
}

/// A mairie's telephone and e-mail (`data/mairies.csv`): how the crisis
/// cell reaches a commune that has not declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MairieContact {
    /// « 02 97 01 60 00 »
    pub telephone: String,
    pub email: String,
}

/// The contacts of the mairies of `codes` that the referential has: one
/// pass over the file, nothing kept in memory between calls.
pub fn mairie_contacts(
    codes: &std::collections::BTreeSet<&str>,
) -> std::collections::BTreeMap<String, MairieContact> {
    records(decompte_bundle::file!("data/mairies.csv"))
        .filter_map(|row| {
            let code = row.get(0)?;
            codes.contains(code).then(|| {
                (
                    code.to_owned(),
                    MairieContact {
                        telephone: row.get(1).unwrap_or_default().to_owned(),
                        email: row.get(2).unwrap_or_default().to_owned(),
                    },
                )
            })
        })
        .collect()
}

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Folder holding the SQLite database (decompte.sqlite) and the published site (site/).
    #[arg(long, env = "DECOMPTE_DATA_DIR", default_value = defaults::DATA_DIR, global = true)]
    pub data_dir: PathBuf,

    /// Where reports are kept: `sqlite` (<data-dir>/decompte.sqlite),
    /// `dynamodb://TABLE?endpoint=URL&region=REGION` (credentials from the standard AWS chain) or
    /// `postgres://USER@HOST1:5432,HOST2:5432/DB?target_session_attrs=read-write&sslmode=verify-full`
    /// (libpq's URL; the password from PGPASSWORD or DECOMPTE_STORE_PASSWORD_FILE).
    #[arg(long, env = "DECOMPTE_STORE", default_value = "sqlite", global = true)]
    pub store: StoreAddress,

    /// Where the site is published: `folder` (<data-dir>/site, served by `serve`) or
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=REGION` (credentials from the standard AWS chain).
    #[arg(long, env = "DECOMPTE_SITE", default_value = "folder", global = true)]
    pub site: SiteAddress,

    /// CDN to tell what each publication changed:
    /// `cloudfront://DISTRIBUTION_ID?endpoint=URL&region=REGION`, or `none`.
    #[arg(long, env = "DECOMPTE_CDN", default_value = "none", global = true)]
    pub cdn: CdnAddress,

    /// Départements served, comma-separated INSEE codes.
    #[arg(
        long,
        env = "DECOMPTE_DEPARTEMENTS",
        default_value = defaults::DEPARTEMENTS,
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
        default_value = defaults::CRISIS_START,
        global = true,
    )]
    pub crisis_start: NaiveDate,

    /// Largest count accepted for one commune, day and setting.
    #[arg(
        long,
        env = "DECOMPTE_MAX_PER_CELL",
        default_value_t = defaults::MAX_PER_CELL,
        global = true,
    )]
    pub max_per_cell: u32,

    /// Who publishes, as shown on every page.
    #[arg(long, env = "DECOMPTE_PUBLISHER", default_value = defaults::PUBLISHER, global = true)]
    pub publisher: String,

    /// The look of the pages: `etat`, the Système de design de l'État with the
    /// « République française » brand and the Marianne typeface, reserved to
    /// State services (a prefecture is one); `neutre`, the same layout without
    /// them, for a deployment that is not a State service.
    #[arg(long, env = "DECOMPTE_THEME", default_value = "etat",
          value_parser = ["etat", "neutre"], global = true)]
    pub theme: String,

    /// Name of the crisis, as shown on every page.
    #[arg(long, env = "DECOMPTE_CRISIS", default_value = defaults::CRISIS, global = true)]
    pub crisis: String,

    /// Address users reach the app at. An https:// address makes cookies Secure
    /// with the __Host- prefix.
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
        default_value_t = defaults::PUBLISH_EVERY,
        global = true,
    )]
    pub publish_every: u64,

    /// Seconds `serve` keeps answering after SIGTERM while `/readyz` says it
    /// is stopping, so that the load balancer sends its requests elsewhere
    /// before it stops accepting them: a rolling upgrade of several
    /// replicas then fails no request. 0 (alone on its machine): it stops at once.
    #[arg(
        long,
        env = "DECOMPTE_DRAIN_SECONDS",
        default_value_t = 0,
        global = true
    )]
    pub drain_seconds: u64,

    /// Days a prefecture or national access code issued by the app (or by
    /// `credentials issue` without --expires-in-days) stays valid: a
    /// supervisor's code is renewed, never forgotten in a drawer.
    #[arg(
        long,
        env = "DECOMPTE_SUPERVISOR_CODE_DAYS",
        default_value_t = defaults::SUPERVISOR_CODE_DAYS,
        global = true,
    )]
    pub supervisor_code_days: u64,

    /// Wrong access codes (or second factors) one client address may send in
    /// 15 minutes before its wrong codes get 429: raise it for many mairies
    /// behind one address that no trusted proxy names. A right code always
    /// passes, whatever the count.
    #[arg(
        long,
        env = "DECOMPTE_LOGIN_FAILURES",
        default_value_t = defaults::LOGIN_FAILURES,
        global = true,
    )]
    pub login_failures: u32,

    /// A declaration for a day more than this many days before today gets a
    /// warning to confirm (0: never, for a deployment that replays a past
    /// crisis).
    #[arg(
        long,
        env = "DECOMPTE_OLD_DAY_AFTER",
        default_value_t = defaults::OLD_DAY_AFTER,
        global = true,
    )]
    pub old_day_after: u32,

    /// The hour (0–23, in the département's time zone) by which the mairies
    /// declare the day: after it, the prefecture page calls the communes
    /// that have not declared late.
    #[arg(
        long,
        env = "DECOMPTE_CUTOFF_HOUR",
        default_value_t = defaults::CUTOFF_HOUR,
        value_parser = clap::value_parser!(u32).range(0..24),
        global = true,
    )]
    pub cutoff_hour: u32,

    /// « Relancer par courriel » reminds the mairies of today and of the
    /// days before it, this many days in all (1: today only).
    #[arg(
        long,
        env = "DECOMPTE_REMINDER_DAYS",
        default_value_t = defaults::REMINDER_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=31),
        global = true,
    )]
    pub reminder_days: u32,

    /// The most reminder e-mails one département's mairies are sent in one
    /// day (its own calendar day), by all agents together.
    #[arg(
        long,
        env = "DECOMPTE_REMINDER_EMAILS",
        default_value_t = defaults::REMINDER_EMAILS,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        global = true,
    )]
    pub reminder_emails: u32,

    /// The rule of small counts (off if absent): with k, no published figure
    /// lets a reader know or deduce a commune's count of one setting and one
    /// day between 1 and k − 1. The public site then shows each commune's
    /// days as declared or not, without their counts, and each département's
    /// figures by day (a day fewer than two of its communes declared, with
    /// some death, waits for a second one). See the methodology page.
    #[arg(
        long,
        env = "DECOMPTE_SMALL_COUNTS",
        value_parser = clap::value_parser!(u32).range(2..=1000),
        global = true,
    )]
    pub small_counts: Option<u32>,

    /// The SMTP server the app sends e-mail through: the reminders to the
    /// mairies that have not declared. None: no e-mail. On AWS, Amazon SES's
    /// SMTP interface (email-smtp.REGION.amazonaws.com), the same code.
    #[arg(long, env = "DECOMPTE_SMTP_HOST", global = true)]
    pub smtp_host: Option<String>,

    /// The SMTP server's port.
    #[arg(long, env = "DECOMPTE_SMTP_PORT", default_value_t = 587, global = true)]
    pub smtp_port: u16,

    /// `starttls` (port 587), `tls` (port 465), or `none`: a server on
    /// loopback only, since nothing else should see the password in clear.
    #[arg(long, env = "DECOMPTE_SMTP_SECURITY", default_value = "starttls",
          value_parser = ["starttls", "tls", "none"], global = true)]
    pub smtp_security: String,

    /// The SMTP user (SES: the SMTP credentials' user name).
    #[arg(long, env = "DECOMPTE_SMTP_USER", global = true)]
    pub smtp_user: Option<String>,

    /// The SMTP password: never logged, never printed.
    #[arg(
        long,
        env = "DECOMPTE_SMTP_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub smtp_password: Option<Secret>,

    /// The sender of the e-mails, `Préfecture du Morbihan <crise@morbihan.gouv.fr>`.
    #[arg(long, env = "DECOMPTE_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,

    /// Who receives the morning situation report by e-mail (its PDF
    /// attached), at --report-hour: addresses, comma-separated, for every
    /// département served, or by département, `56=cab@morbihan.gouv.fr,
    /// sidpc@morbihan.gouv.fr;29=…`. None: no report is e-mailed.
    #[arg(long, env = "DECOMPTE_REPORT_TO", global = true)]
    pub report_to: Option<String>,

    /// The hour (0–23, in the département's time zone) `decompte serve`
    /// e-mails the report of the day before.
    #[arg(
        long,
        env = "DECOMPTE_REPORT_HOUR",
        default_value_t = defaults::REPORT_HOUR,
        value_parser = clap::value_parser!(u32).range(0..24),
        global = true,
    )]
    pub report_hour: u32,

    /// Sign-in of State agents with ProConnect (OpenID Connect), beside the
    /// prefecture access codes: the provider's issuer address
    /// (`https://auth.agentconnect.gouv.fr/api/v2`, or its test one). None:
    /// access codes only.
    #[arg(long, env = "DECOMPTE_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,

    /// The client id ProConnect gave the deployment.
    #[arg(long, env = "DECOMPTE_OIDC_CLIENT_ID", global = true)]
    pub oidc_client_id: Option<String>,

    /// The client secret ProConnect gave the deployment: never logged.
    #[arg(
        long,
        env = "DECOMPTE_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub oidc_client_secret: Option<Secret>,

    /// Who signs in with ProConnect as a prefecture: e-mail domains
    /// (`morbihan.gouv.fr`) or addresses, comma-separated, each with the
    /// départements it reaches after `=` (`morbihan.gouv.fr=56`,
    /// `cab@bretagne.gouv.fr=29+56`); without, every département served.
    #[arg(
        long,
        env = "DECOMPTE_OIDC_AGENTS",
        value_delimiter = ',',
        global = true
    )]
    pub oidc_agents: Vec<String>,

    /// Set by `serve --demo` (loopback only): the app shows what a
    /// demonstration needs, such as the second factor's current code.
    #[arg(skip)]
    pub demo: bool,
}

impl Options {
    /// Options for tests and tools: every option at its default, data in `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            store: StoreAddress::Sqlite,
            site: SiteAddress::Folder,
            cdn: CdnAddress::None,
            departements: vec![defaults::DEPARTEMENTS.into()],
            settings: None,
            crisis_start: defaults::CRISIS_START.parse().unwrap_or_default(),
            max_per_cell: defaults::MAX_PER_CELL,
            publisher: defaults::PUBLISHER.into(),
            theme: "etat".into(),
            crisis: defaults::CRISIS.into(),
            public_url: None,
            site_url: None,
            trusted_proxies: Vec::new(),
            trust_forwarded_for: false,
            publish_every: defaults::PUBLISH_EVERY,
            drain_seconds: 0,
            supervisor_code_days: defaults::SUPERVISOR_CODE_DAYS,
            login_failures: defaults::LOGIN_FAILURES,
            old_day_after: defaults::OLD_DAY_AFTER,
            cutoff_hour: defaults::CUTOFF_HOUR,
            reminder_days: defaults::REMINDER_DAYS,
            reminder_emails: defaults::REMINDER_EMAILS,
            small_counts: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_user: None,
            smtp_password: None,
            smtp_from: None,
            report_to: None,
            report_hour: defaults::REPORT_HOUR,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_agents: Vec::new(),
            demo: false,
        }
    }

    /// The State's brand and typeface are shown (`--theme etat`).
    pub fn state_brand(&self) -> bool {
        self.theme != "neutre"
    }

    pub fn scope(&self) -> Result<Scope, ConfigError> {
        let departements: Vec<String> = self
            .departements
            .iter()
            .map(|d| d.trim().to_uppercase())
            .filter(|d| !d.is_empty())
            .collect();
        if departements.is_empty() {
            return Err(ConfigError::NoDepartement);
        }
        // Only the communes of the départements served are built.
        Referential::parse_where(
            data_text!("data/communes.csv")?,
            data_text!("data/departements.csv")?,
            |code| departements.iter().any(|d| d == code),
        )?
        .scope(&departements)
        .map_err(ConfigError::Departement)
    }

    pub fn rules(&self) -> Result<Rules, ConfigError> {
        let settings = match &self.settings {
            Some(text) => SettingList::parse(text)?,
            None => SettingList::default(),
        };
        if self.max_per_cell == 0 {
            return Err(ConfigError::MaxPerCell);
        }
        Ok(Rules {
            settings,
            crisis_start: self.crisis_start,
            max_per_cell: self.max_per_cell,
        })
    }

    /// The networks of `--trusted-proxies`. The old `--trust-forwarded-for`
    /// believed any `X-Forwarded-For`: it is refused with the way to replace it.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        if self.trust_forwarded_for {
            return Err(ConfigError::TrustForwardedFor);
        }
        self.trusted_proxies
            .iter()
            .map(|text| text.trim())
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::TrustedProxy(text.to_owned()))
            })
            .collect()
    }

    /// The origin (`scheme://host[:port]`) of `--public-url`, if it is set.
    pub fn public_origin(&self) -> Option<String> {
        origin_of(self.public_url.as_deref()?)
    }

    /// The morning report's recipients of each département served (those
    /// without any left out), from --report-to.
    pub fn report_recipients(&self) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
        let Some(text) = self.report_to.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        let scope = self.scope()?;
        let mut by_departement: Vec<(String, Vec<String>)> = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (departements, addresses): (Vec<String>, &str) = match part.split_once('=') {
                Some((code, addresses)) => {
                    let code = code.trim().to_uppercase();
                    if scope.departement_name(&code).is_none() {
                        return Err(ConfigError::ReportTo(format!(
                            "{code} is not a département served"
                        )));
                    }
                    (vec![code], addresses)
                }
                None => (scope.departement_codes().map(str::to_owned).collect(), part),
            };
            let addresses: Vec<String> = addresses
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = addresses.iter().find(|a| {
                a.split_once('@')
                    .is_none_or(|(user, host)| user.is_empty() || !host.contains('.'))
            }) {
                return Err(ConfigError::ReportTo(format!(
                    "`{bad}` is not an e-mail address"
                )));
            }
            for code in departements {
                match by_departement.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, all)) => all.extend(addresses.iter().cloned()),
                    None => by_departement.push((code, addresses.clone())),
                }
            }
        }
        by_departement.retain(|(_, addresses)| !addresses.is_empty());
        Ok(by_departement)
    }

    /// Cookies are Secure unless the public address is plain http.
    pub fn secure_cookies(&self) -> bool {
        !self
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("http://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_referential_s_files_are_read_as_csv() {
        let contacts = mairie_contacts(&["56260", "99999"].into_iter().collect());
        assert_eq!(
            contacts.get("56260"),
            Some(&MairieContact {
                telephone: "02 97 01 60 00".into(),
                email: "contact@mairie-vannes.fr".into(),
            })
        );
        assert_eq!(contacts.len(), 1, "no contact for a commune the file lacks");
        assert_eq!(deaths_2019().get("56"), Some(&8575));
    }

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        options: Options,
    }

    #[test]
    fn report_recipients_for_all_or_by_departement() {
        let mut options = Options::for_data_dir(std::env::temp_dir());
        options.departements = vec!["29".into(), "56".into()];
        options.report_to = Some("cab@bretagne.gouv.fr; 56=sidpc@morbihan.gouv.fr".into());
        let recipients = options.report_recipients().expect("recipients");
        assert_eq!(
            recipients,
            [
                ("29".to_owned(), vec!["cab@bretagne.gouv.fr".to_owned()]),
                (
                    "56".to_owned(),
                    vec![
                        "cab@bretagne.gouv.fr".to_owned(),
                        "sidpc@morbihan.gouv.fr".to_owned()
                    ]
                ),
            ]
        );
        options.report_to = Some("75=cab@paris.gouv.fr".into());
        assert!(options.report_recipients().is_err(), "75 is not served");
        options.report_to = Some("cabinet".into());
        assert!(options.report_recipients().is_err(), "no address");
        options.report_to = None;
        assert_eq!(options.report_recipients().expect("none"), []);
    }

    /// The SMTP password is read, and never shown by `Debug` (a logged
    /// configuration, a panic message).
    #[test]
    fn the_smtp_password_never_shows() {
        let parsed = Command::try_parse_from([
            "decompte",
            "--smtp-host",
            "email-smtp.eu-west-3.amazonaws.com",
            "--smtp-password",
            "s3cr3t-p4ss",
        ])
        .expect("parse");
        let password = parsed.options.smtp_password.as_ref().map(Secret::expose);
        assert_eq!(password, Some("s3cr3t-p4ss"));
        assert!(!format!("{:?}", parsed.options).contains("s3cr3t"));
    }

    /// The defaults of the flags are those of `for_data_dir`: one source.
    #[test]
    fn flags_and_tests_share_their_defaults() {
        let parsed = Command::try_parse_from(["decompte"])
            .expect("defaults")
            .options;
        let for_tests = Options::for_data_dir(PathBuf::from(defaults::DATA_DIR));
        assert_eq!(format!("{parsed:?}"), format!("{for_tests:?}"));
    }

    #[test]
    fn a_bad_address_is_refused_at_the_edge_with_the_fix() {
        let error = Command::try_parse_from(["decompte", "--store", "mysql://x"])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.contains("dynamodb://TABLE?endpoint=URL&region=REGION"),
            "{error}"
        );
    }
}
