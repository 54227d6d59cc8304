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
    /// Where the public site is: `/` when served with the app, the CDN's address otherwise.
    pub site_url: String,
    /// Secure cookies with the `__Host-` prefix. Off only for plain-http loopback.
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a proxy you trust).
    pub trust_forwarded_for: bool,
    pub throttle: ThrottlePolicy,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How often the site is republished on its own, for the prefecture page.
    pub publish_every: Duration,
}

/// How failed logins are throttled, in fixed windows.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed per client address before `429`.
    pub max_failures: u32,
    pub window: Duration,
    /// Failures for one commune (from any client) after which each further
    /// failed attempt for it is answered only after `commune_delay`.
    pub commune_failures_before_delay: u32,
    pub commune_delay: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
            commune_failures_before_delay: 20,
            commune_delay: Duration::from_secs(1),
        }
    }
}

impl AppConfig {
    /// The app's configuration from the process options.
    pub fn from_settings(settings: &decompte_config::Settings) -> anyhow::Result<Self> {
        let mut config = Self::new(settings.scope()?);
        config.rules = settings.rules()?;
        config.publisher = settings.publisher.clone();
        config.crisis = settings.crisis.clone();
        config.site_url = settings.site_url.clone().unwrap_or_else(|| "/".into());
        config.secure_cookies = settings.secure_cookies();
        config.trust_forwarded_for = settings.trust_forwarded_for;
        config.publish_every = Duration::from_secs(settings.publish_every.max(1));
        Ok(config)
    }

    /// A configuration for a scope with every other setting at its default.
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            rules: Rules::default(),
            publisher: "Préfecture du Morbihan".into(),
            crisis: "Covid-19".into(),
            site_url: "/".into(),
            secure_cookies: true,
            session_ttl: Duration::from_secs(8 * 3600),
            trust_forwarded_for: false,
            throttle: ThrottlePolicy::default(),
            max_body_bytes: 16 * 1024,
            publish_every: Duration::from_secs(300),
        }
    }
}
