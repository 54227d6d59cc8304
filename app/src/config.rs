//! The app's configuration, built once at start by the binary that runs it.

use std::time::Duration;

use decompte_core::{Rules, Scope};

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub scope: Scope,
    pub rules: Rules,
    /// "Préfecture du Morbihan", shown in footers and help texts.
    pub publisher: String,
    /// "Covid-19".
    pub crisis: String,
    /// The « République française » brand and Marianne (`--theme etat`).
    pub state_brand: bool,
    /// Where the public site is: `/` when served with the app, the CDN's address otherwise.
    pub site_url: String,
    /// Secure cookies with the `__Host-` prefix. Off only for plain-http loopback.
    pub secure_cookies: bool,
    /// A session's absolute lifetime.
    pub session_ttl: Duration,
    /// How long a prefecture session lives without a request (its holder can
    /// issue codes and correct any commune).
    pub idle_prefecture: Duration,
    /// How long a mairie's session lives without a request.
    pub idle_commune: Duration,
    /// The app's own origin (`https://declarer.example.gouv.fr`), when known:
    /// a browser's `Origin` must equal it for a typed draft to be kept.
    pub public_origin: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see [`crate::auth::client_address`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub throttle: ThrottlePolicy,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How often the site is republished on its own, for the prefecture page.
    pub publish_every: Duration,
    /// The rule of small counts is on: the site's figures are released
    /// once an hour, not within the minute (what the pages say).
    pub hourly_release: bool,
    /// Days a prefecture or national code opens anything, unless its
    /// issuer says otherwise (`decompte_core::issuance`).
    pub supervisor_code_days: u64,
    /// Daily deaths of all causes per inhabitant by département: the scale of
    /// the form's plausibility warnings.
    pub death_rates: decompte_core::plausibility::Rates,
    /// Days before today after which a declared day gets a warning; `None`, never.
    pub old_day_after: Option<i64>,
    /// The hour of the day (local) by which the mairies declare.
    pub cutoff_hour: u32,
    /// The days « Relancer par courriel » may be about: today and the days
    /// before it, this many in all.
    pub reminder_days: u32,
    /// The most reminder e-mails a département's mairies get in one day.
    pub reminder_emails: u32,
    /// Sends the app's e-mails (the reminders to the mairies, the morning
    /// report); `None`: no SMTP configured.
    pub mailer: Option<crate::mail::Mailer>,
    /// Sign-in of State agents with ProConnect; `None`: access codes only.
    pub oidc: Option<std::sync::Arc<crate::oidc::Oidc>>,
    /// Who receives the morning report, by département (`--report-to`).
    pub report_recipients: Vec<(String, Vec<String>)>,
    /// The hour the morning report is e-mailed, local time.
    pub report_hour: u32,
    /// The demonstration (`serve --demo`, loopback only): the second-factor
    /// page shows the code a phone would show.
    pub demo: bool,
}

/// How failed logins are throttled, in fixed windows. Only failures count,
/// and a right code always passes.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed per client address (an IPv6 /64) in a window; past
    /// them, a wrong code is answered `429` until the window ends.
    pub max_failures: u32,
    pub window: Duration,
    /// Failures for one commune (from any client) in a window; past them, a
    /// wrong code for it is answered `429` with this `Retry-After`.
    pub commune_failures_before_throttle: u32,
    pub commune_retry_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures: decompte_config::defaults::LOGIN_FAILURES,
            window: Duration::from_secs(15 * 60),
            commune_failures_before_throttle: 20,
            commune_retry_after: Duration::from_secs(60),
        }
    }
}

impl AppConfig {
    /// How long a session of `role` lives without a request.
    pub fn idle_for(&self, role: decompte_core::Role) -> Duration {
        match role {
            decompte_core::Role::Prefecture | decompte_core::Role::National => self.idle_prefecture,
            decompte_core::Role::Commune => self.idle_commune,
        }
    }

    /// The app's configuration from the process options.
    pub fn from_options(
        options: &decompte_config::Options,
    ) -> Result<Self, decompte_config::ConfigError> {
        let mut config = Self::new(options.scope()?);
        config.rules = options.rules()?;
        config.publisher = options.publisher.clone();
        config.crisis = options.crisis.clone();
        config.state_brand = options.state_brand();
        config.site_url = options.site_url.clone().unwrap_or_else(|| "/".into());
        config.secure_cookies = options.secure_cookies();
        config.public_origin = options.public_origin();
        config.trusted_proxies = options.trusted_proxies()?;
        config.publish_every = Duration::from_secs(options.publish_every.max(1));
        config.hourly_release = options.small_counts.is_some();
        config.demo = options.demo;
        config.throttle.max_failures = options.login_failures.max(1);
        config.cutoff_hour = options.cutoff_hour;
        config.reminder_days = options.reminder_days.max(1);
        config.reminder_emails = options.reminder_emails;
        config.mailer = crate::mail::Mailer::from_options(options)?;
        config.report_recipients = options.report_recipients()?;
        config.oidc = crate::oidc::Oidc::from_options(options)?.map(std::sync::Arc::new);
        config.report_hour = options.report_hour;
        if config.mailer.is_none() && !config.report_recipients.is_empty() {
            return Err(decompte_config::ConfigError::ReportTo(
                "the report is e-mailed through DECOMPTE_SMTP_HOST, which is not set".into(),
            ));
        }
        config.old_day_after =
            (options.old_day_after > 0).then(|| i64::from(options.old_day_after));
        config.supervisor_code_days = options.supervisor_code_days;
        Ok(config)
    }

    /// A configuration for a scope with every other setting at its default.
    pub fn new(scope: Scope) -> Self {
        let death_rates = decompte_core::plausibility::Rates::from_yearly_deaths(
            &decompte_config::deaths_2019(),
            &scope,
        );
        Self {
            death_rates,
            old_day_after: Some(i64::from(decompte_config::defaults::OLD_DAY_AFTER)),
            cutoff_hour: decompte_config::defaults::CUTOFF_HOUR,
            reminder_days: decompte_config::defaults::REMINDER_DAYS,
            reminder_emails: decompte_config::defaults::REMINDER_EMAILS,
            scope,
            rules: Rules::default(),
            publisher: "Préfecture du Morbihan".into(),
            crisis: "Covid-19".into(),
            state_brand: true,
            site_url: "/".into(),
            secure_cookies: true,
            session_ttl: Duration::from_secs(8 * 3600),
            idle_prefecture: Duration::from_secs(30 * 60),
            idle_commune: Duration::from_secs(2 * 3600),
            public_origin: None,
            trusted_proxies: Vec::new(),
            throttle: ThrottlePolicy::default(),
            max_body_bytes: 16 * 1024,
            publish_every: Duration::from_secs(decompte_config::defaults::PUBLISH_EVERY),
            hourly_release: false,
            supervisor_code_days: decompte_config::defaults::SUPERVISOR_CODE_DAYS,
            mailer: None,
            report_recipients: Vec::new(),
            oidc: None,
            report_hour: decompte_config::defaults::REPORT_HOUR,
            demo: false,
        }
    }

    /// Whether `address` is one of the reverse proxies the deployment trusts.
    pub fn is_trusted_proxy(&self, address: std::net::IpAddr) -> bool {
        let address = match address {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }
}
