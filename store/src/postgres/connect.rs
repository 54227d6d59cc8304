//! From libpq's URL to a pool of connections: the hosts tried in order
//! (`target_session_attrs=read-write` keeps the primary), TLS by rustls
//! with the system's roots or `sslrootcert`, the password never logged.

use std::str::FromStr;

use crate::{Result, StoreError};

/// How many connections one process keeps open at most.
const POOL_SIZE: usize = 16;

/// What decompte reads of the URL before tokio-postgres does.
#[derive(Debug, PartialEq, Eq)]
struct Address {
    /// The URL without the parameters tokio-postgres does not know.
    url: String,
    /// `sslmode=disable`: no TLS (loopback only, say).
    tls: bool,
    /// `sslrootcert=PATH`: the certificate authority to trust instead of the system's.
    root: Option<String>,
}

fn invalid(why: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("the PostgreSQL address: {why}"))
}

/// Reads the URL: libpq's `sslmode` values `verify-full` and `verify-ca`
/// become `require` for tokio-postgres (rustls always verifies the server's
/// certificate and name), `sslrootcert` is read here.
fn address(url: &str) -> Result<Address> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut tls = true;
    let mut root = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => match value {
                "disable" => {
                    tls = false;
                    kept.push("sslmode=disable".to_owned());
                }
                "require" | "verify-ca" | "verify-full" => kept.push("sslmode=require".to_owned()),
                other => {
                    return Err(invalid(format!(
                        "sslmode={other}: use verify-full (or disable on loopback)"
                    )))
                }
            },
            "sslrootcert" => root = Some(value.to_owned()),
            _ => kept.push(pair.to_owned()),
        }
    }
    if tls && !kept.iter().any(|p| p.starts_with("sslmode=")) {
        kept.push("sslmode=require".to_owned());
    }
    Ok(Address {
        url: format!("{base}?{}", kept.join("&")),
        tls,
        root,
    })
}

/// The rustls configuration: the system's roots, or those of `root`.
fn tls(root: Option<&str>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| invalid(format!("{path}: {e}")))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| invalid(format!("{path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("{path}: {e}")))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system root rustls cannot read is left out.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How decompte reaches its database: the URL read, the password and TLS
/// set. Opens the pool, and single connections of their own (the
/// publisher's lease).
pub(super) struct Connector {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Connector {
    pub(super) fn new(url: &str) -> Result<Self> {
        let address = address(url)?;
        let mut config =
            tokio_postgres::Config::from_str(&address.url).map_err(|e| invalid(e.to_string()))?;
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            } else if let Ok(file) = std::env::var("DECOMPTE_STORE_PASSWORD_FILE") {
                let password =
                    std::fs::read_to_string(&file).map_err(|e| invalid(format!("{file}: {e}")))?;
                config.password(password.trim_end_matches(['\r', '\n']));
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("decompte");
        }
        // Short statements by key or by range: compiling them (JIT) costs
        // more than it saves, and so do parallel workers — each read of a
        // département would start two processes and funnel their rows
        // through a third, twice the server's work for a publication, all
        // its rows going to one client anyway.
        if config.get_options().is_none() {
            config.options("-c jit=off -c max_parallel_workers_per_gather=0");
        }
        config.connect_timeout(std::time::Duration::from_secs(5));
        // A server that vanished without closing (a failed host, a cut
        // network) is noticed within a minute rather than hours.
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(15));
        config.keepalives_interval(std::time::Duration::from_secs(5));
        config.keepalives_retries(3);
        let tls = if address.tls {
            Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls(address
                .root
                .as_deref())?))
        } else {
            None
        };
        Ok(Self { config, tls })
    }

    /// The pool of connections.
    pub(super) fn pool(&self) -> Result<deadpool_postgres::Pool> {
        let manager_config = deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let manager = match &self.tls {
            Some(connector) => deadpool_postgres::Manager::from_config(
                self.config.clone(),
                connector.clone(),
                manager_config,
            ),
            None => deadpool_postgres::Manager::from_config(
                self.config.clone(),
                tokio_postgres::NoTls,
                manager_config,
            ),
        };
        deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| invalid(e.to_string()))
    }

    /// A connection of its own, outside the pool, driven on a task that
    /// calls `notified` at each notification the server sends (`LISTEN`)
    /// and ends when the connection does.
    pub(super) async fn connect_listening(
        &self,
        notified: impl Fn() + Send + 'static,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
        use tokio_postgres::error::Error;
        let (client, driver) = match &self.tls {
            Some(connector) => {
                let (client, connection) = self
                    .config
                    .connect(connector.clone())
                    .await
                    .map_err(super::unavailable)?;
                (client, tokio::spawn(drive(connection, notified)))
            }
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e: Error| super::unavailable(e))?;
                (client, tokio::spawn(drive(connection, notified)))
            }
        };
        Ok((client, driver))
    }
}

/// Drives `connection` until it ends, calling `notified` at each notification.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notified: impl Fn() + Send + 'static,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => notified(),
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::warn!(%error, "the publisher's connection to PostgreSQL broke");
                return;
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_s_url_is_read_for_tokio_postgres() {
        let read = address(
            "postgres://decompte@db1:5432,db2:5432/decompte?target_session_attrs=read-write&\
             sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .expect("valid");
        assert_eq!(
            read.url,
            "postgres://decompte@db1:5432,db2:5432/decompte?target_session_attrs=read-write&\
             sslmode=require"
        );
        assert!(read.tls);
        assert_eq!(read.root.as_deref(), Some("/etc/ca.pem"));
        let loopback = address("postgres://u@127.0.0.1:5432/d?sslmode=disable").expect("valid");
        assert!(!loopback.tls);
        let plain = address("postgres://u@db/d").expect("valid");
        assert_eq!(plain.url, "postgres://u@db/d?sslmode=require");
        assert!(address("postgres://u@db/d?sslmode=prefer").is_err());
        assert!(tokio_postgres::Config::from_str(&read.url).is_ok());
    }
}
