//! An OpenID provider on loopback standing in for ProConnect: the certified
//! `oidc-provider` (npm, installed by `scripts/tools.sh` in `tests/oidc`),
//! with one client, `decompte`, and its development login page, where the
//! login typed is the agent's e-mail address. A test that cannot start it
//! fails and says why.

use std::time::Duration;

use crate::process::{free_port, Guarded};

pub struct OidcProvider {
    pub issuer: String,
    _process: Guarded,
}

/// The client the provider knows.
pub const CLIENT_ID: &str = "decompte";
pub const CLIENT_SECRET: &str = "secret-de-test-du-fournisseur";

impl OidcProvider {
    /// The port the provider will listen on, chosen before the app starts
    /// (the app is configured with the issuer, the provider with the app's
    /// address).
    pub fn port() -> u16 {
        free_port()
    }

    /// Starts the provider on `port`, sending the browser back to `redirect_uri`.
    pub fn start(port: u16, redirect_uri: &str) -> Self {
        let hint = "run ./scripts/tools.sh, which installs oidc-provider in tests/oidc";
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            folder.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is missing: {hint}"
        );
        let script = folder.join("provider.mjs");
        let process = Guarded::start(
            "oidc-provider",
            "node",
            &[
                &script.display().to_string(),
                &port.to_string(),
                redirect_uri,
            ],
            &[],
            &std::env::temp_dir().join(format!("decompte-oidc-{}-{port}.log", std::process::id())),
            hint,
        );
        process.wait_for_port(port, Duration::from_secs(20), hint);
        Self {
            issuer: format!("http://127.0.0.1:{port}"),
            _process: process,
        }
    }
}
