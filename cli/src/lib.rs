//! The `decompte` command as a library: configuration, assembling the app and
//! the publisher on the embedded default (SQLite and a local folder), the
//! demonstration data, CSV import and export. The binary in `main.rs` only
//! parses arguments and calls into this.
//!
//! Architecture invariant: this crate wires the others together and owns the
//! process (files, sockets, timers); it holds no domain rule of its own.

pub mod demo;
pub mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use decompte_ingest::{AppConfig, AppState, PublishTrigger};
use decompte_publish::{Cdn, FolderSink, Publisher, Sink, SiteConfig};
use decompte_store::{Publication, Store, StoreError};
use tower_http::services::{ServeDir, ServeFile};

pub use decompte_config::{referential, Settings};

/// Opens the store named by `--store` (see [`decompte_store::open`]).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    decompte_store::open(
        settings.store.as_deref(),
        &settings.data_dir,
        settings.departements.clone(),
    )
    .await
    .map_err(anyhow::Error::msg)
}

/// Creates the data folder, owner-only (0700) when it is new: it holds the
/// database of credentials and sessions, hashed as they are.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Starts publications in this process.
pub struct InProcessTrigger {
    publisher: Arc<Publisher>,
}

impl InProcessTrigger {
    pub fn new(publisher: Arc<Publisher>) -> Self {
        Self { publisher }
    }
}

#[async_trait]
impl PublishTrigger for InProcessTrigger {
    async fn trigger(&self, requested_by: &str, reason: &str) -> Result<Publication, StoreError> {
        let publication = self
            .publisher
            .request(requested_by, reason, Publication::new_id(), Utc::now())
            .await?;
        let publisher = Arc::clone(&self.publisher);
        let queued = publication.clone();
        tokio::spawn(async move {
            publisher.run_recorded(queued).await;
        });
        Ok(publication)
    }
}

/// The local app: the store, the publisher writing to the site folder, and the router state.
pub struct LocalApp {
    pub store: Arc<dyn Store>,
    pub publisher: Arc<Publisher>,
    pub state: AppState,
    pub site_dir: std::path::PathBuf,
}

impl LocalApp {
    /// Opens the store (SQLite under the data directory unless `--store` names
    /// a DynamoDB table) and the site folder under the data directory.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        create_private_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let store = open_store(settings).await?;
        let sink =
            decompte_publish::open_sink(settings.site.as_deref(), settings.data_dir.join("site"))
                .await
                .map_err(anyhow::Error::msg)?;
        let cdn = decompte_publish::open_cdn(settings.cdn.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
        Self::assemble(settings, store, sink, cdn)
    }

    /// The app on a given store, publishing to the site folder of the data directory.
    pub fn with_store(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let sink = Arc::new(FolderSink::new(settings.data_dir.join("site")));
        Self::assemble(settings, store, sink, None)
    }

    fn assemble(
        settings: &Settings,
        store: Arc<dyn Store>,
        sink: Arc<dyn Sink>,
        cdn: Option<Arc<dyn Cdn>>,
    ) -> anyhow::Result<Self> {
        let site_dir = settings.data_dir.join("site");
        let app_config = AppConfig::from_settings(settings)?;
        let publisher = Arc::new(
            Publisher::new(
                Arc::clone(&store),
                sink,
                SiteConfig::from_settings(settings)?,
            )
            .with_cdn(cdn),
        );
        let trigger = Arc::new(InProcessTrigger::new(Arc::clone(&publisher)));
        let state = AppState::new(Arc::clone(&store), app_config, trigger);
        Ok(Self {
            store,
            publisher,
            state,
            site_dir,
        })
    }

    /// The router of `decompte serve`: the app, and the published site at `/`.
    pub fn router(&self) -> axum::Router {
        let site = axum::Router::new()
            .fallback_service(
                ServeDir::new(&self.site_dir)
                    .append_index_html_on_directories(true)
                    .not_found_service(ServeFile::new(self.site_dir.join("404.html"))),
            )
            .layer(axum::middleware::from_fn(site_headers));
        decompte_ingest::router(self.state.clone()).merge(site)
    }

    /// Publishes on a timer until the process ends.
    pub fn spawn_publish_timer(&self, every: Duration) {
        let publisher = Arc::clone(&self.publisher);
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match publisher.publish_if_changed(Utc::now()).await {
                    Ok(Some(outcome)) => tracing::info!(
                        files_changed = outcome.files_changed(),
                        "scheduled publication"
                    ),
                    Ok(None) => tracing::debug!("scheduled publication: no new report"),
                    Err(error) => tracing::error!(%error, "scheduled publication failed"),
                }
                if let Err(error) = store.purge_expired(Utc::now()).await {
                    tracing::warn!(%error, "could not purge expired records");
                }
            }
        });
    }
}

/// Headers of the published site: fingerprinted assets are cached for a year,
/// pages and data for a minute (they change with every publication).
async fn site_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let immutable = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    );
    response
}

/// Serves the router on `listen` until Ctrl-C.
pub async fn serve(router: axum::Router, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen}: is another program using this port? Choose another with --listen")
    })?;
    serve_on(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Serves the router on a bound listener until `shutdown` completes. The peer
/// address reaches the handlers, for login throttling.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the server stopped")
}
