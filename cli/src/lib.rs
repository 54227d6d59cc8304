//! The `decompte` command as a library: configuration, assembling the app and
//! the publisher on the embedded default (SQLite and a local folder), the
//! demonstration data, CSV import and export. The binary in `main.rs` only
//! parses arguments and calls into this.
//!
//! Architecture invariant: this crate wires the others together and owns the
//! process (files, sockets, timers); it holds no domain rule of its own.

pub mod copy;
pub mod demo;
pub mod letters;
pub mod progress;
pub mod transfer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use decompte_app::{AppConfig, AppState};
use decompte_config::{CdnAddress, SiteAddress, StoreAddress};
use decompte_publish::{Cdn, FolderSink, InProcessTrigger, Publisher, Sink, SiteConfig};
use decompte_store::{PublisherLease, SqliteStore, Store};
use tower_http::services::{ServeDir, ServeFile};

pub use decompte_config::{referential, Options};

/// What the local binary says when an address needs AWS and it was built without.
#[cfg(not(feature = "aws"))]
pub const NO_AWS: &str = "this decompte was built without AWS support: build it with `cargo build \
    --release -p decompte --features aws` to use dynamodb://, s3:// or cloudfront:// addresses";

/// What a `postgres://` address gets from a binary built without PostgreSQL.
pub const NO_POSTGRES: &str = "this decompte was built without PostgreSQL support: build it with \
    `cargo build --release -p decompte --features postgres` to use a postgres:// address";

/// Opens the store of `--store`: SQLite in the data folder, or a DynamoDB
/// table (with the `aws` feature).
pub async fn open_store(options: &Options) -> anyhow::Result<Arc<dyn Store>> {
    open_store_at(options, &options.store).await
}

/// Opens the store at `address` (with the départements of `options`).
pub async fn open_store_at(
    options: &Options,
    address: &StoreAddress,
) -> anyhow::Result<Arc<dyn Store>> {
    let sqlite = |database: &std::path::Path| -> anyhow::Result<Arc<dyn Store>> {
        let store = SqliteStore::open(database)
            .with_context(|| format!("impossible d'ouvrir la base {}", database.display()))?;
        Ok(Arc::new(store))
    };
    match address {
        StoreAddress::Sqlite => sqlite(&options.data_dir.join("decompte.sqlite")),
        StoreAddress::SqliteFile(path) => sqlite(path),
        #[cfg(feature = "aws")]
        StoreAddress::DynamoDb(table) => Ok(Arc::new(
            decompte_aws::DynamoStore::connect(table, options.departements.clone()).await,
        )),
        #[cfg(not(feature = "aws"))]
        StoreAddress::DynamoDb(_) => anyhow::bail!(NO_AWS),
        #[cfg(feature = "postgres")]
        StoreAddress::Postgres(url) => {
            let store = decompte_store::PostgresStore::connect(url.expose())
                .await
                .with_context(|| format!("impossible d'ouvrir la base {}", url.redacted()))?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "postgres"))]
        StoreAddress::Postgres(_) => anyhow::bail!(NO_POSTGRES),
    }
}

/// The site folder of the data folder (`site/`, which `decompte serve`
/// serves), with the publisher's own files beside it (`publisher/`, never
/// served).
pub fn folder_sink(options: &Options) -> FolderSink {
    FolderSink::new(
        options.data_dir.join("site"),
        options.data_dir.join("publisher"),
    )
}

/// Opens the sink of `--site`: the site folder of the data folder, or an S3
/// bucket (with the `aws` feature).
pub async fn open_sink(options: &Options) -> anyhow::Result<Arc<dyn Sink>> {
    match &options.site {
        SiteAddress::Folder => Ok(Arc::new(folder_sink(options))),
        #[cfg(feature = "aws")]
        SiteAddress::S3(bucket) => Ok(Arc::new(decompte_aws::S3Sink::connect(bucket).await)),
        #[cfg(not(feature = "aws"))]
        SiteAddress::S3(_) => anyhow::bail!(NO_AWS),
    }
}

/// Opens the CDN of `--cdn`, if any (CloudFront with the `aws` feature).
pub async fn open_cdn(options: &Options) -> anyhow::Result<Option<Arc<dyn Cdn>>> {
    match &options.cdn {
        CdnAddress::None => Ok(None),
        #[cfg(feature = "aws")]
        CdnAddress::CloudFront(distribution) => Ok(Some(Arc::new(
            decompte_aws::CloudFront::connect(distribution).await,
        ))),
        #[cfg(not(feature = "aws"))]
        CdnAddress::CloudFront(_) => anyhow::bail!(NO_AWS),
    }
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

/// The local app: the store, the publisher writing to the site folder, and the router state.
pub struct LocalApp {
    pub store: Arc<dyn Store>,
    pub publisher: Arc<Publisher>,
    pub state: AppState,
    pub site_dir: std::path::PathBuf,
    /// Whether the site is published to `site_dir` (else to object storage,
    /// served from there: `serve` then leads `/` to the login).
    site_is_local: bool,
    /// Notified at each report written, for the publication loop.
    written: Arc<tokio::sync::Notify>,
    /// Whether this process holds the publisher's lease (see
    /// [`LocalApp::take_lease`]): only then does it publish and send the
    /// morning report.
    leading: Arc<AtomicBool>,
}

impl LocalApp {
    /// Opens the store (SQLite under the data directory unless `--store` names
    /// a DynamoDB table) and the site folder under the data directory.
    pub async fn open(options: &Options) -> anyhow::Result<Self> {
        Self::open_with_clock(options, Arc::new(decompte_core::clock::SystemClock)).await
    }

    /// [`LocalApp::open`], going by `clock` (a test's).
    pub async fn open_with_clock(
        options: &Options,
        clock: Arc<dyn decompte_core::clock::Clock>,
    ) -> anyhow::Result<Self> {
        create_private_dir(&options.data_dir).with_context(|| {
            format!(
                "impossible de créer le dossier de données {}",
                options.data_dir.display()
            )
        })?;
        let store = open_store(options).await?;
        let sink = open_sink(options).await?;
        let cdn = open_cdn(options).await?;
        Self::assemble(options, store, sink, cdn, clock)
    }

    /// The app on a given store, publishing to the site folder of the data directory.
    pub fn with_store(options: &Options, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let sink = Arc::new(folder_sink(options));
        let mut app = Self::assemble(
            options,
            store,
            sink,
            None,
            Arc::new(decompte_core::clock::SystemClock),
        )?;
        app.site_is_local = true;
        Ok(app)
    }

    fn assemble(
        options: &Options,
        store: Arc<dyn Store>,
        sink: Arc<dyn Sink>,
        cdn: Option<Arc<dyn Cdn>>,
        clock: Arc<dyn decompte_core::clock::Clock>,
    ) -> anyhow::Result<Self> {
        let site_dir = options.data_dir.join("site");
        let app_config = AppConfig::from_options(options)?;
        let publisher = Arc::new(
            Publisher::new(Arc::clone(&store), sink, SiteConfig::from_options(options)?)
                .with_cdn(cdn)
                .with_clock(Arc::clone(&clock)),
        );
        let written = Arc::new(tokio::sync::Notify::new());
        let leading = Arc::new(AtomicBool::new(true));
        let trigger = Arc::new(InProcessTrigger::new(
            Arc::clone(&publisher),
            Arc::clone(&written),
            Arc::clone(&leading),
        ));
        let state = AppState::new(Arc::clone(&store), app_config, trigger).with_clock(clock);
        Ok(Self {
            store,
            publisher,
            state,
            site_dir,
            site_is_local: matches!(options.site, SiteAddress::Folder),
            written,
            leading,
        })
    }

    /// The router of `decompte serve`: the app, and the published site at
    /// `/` when it is published to the data folder.
    pub fn router(&self) -> axum::Router {
        if !self.site_is_local {
            return decompte_app::router(self.state.clone()).route(
                "/",
                axum::routing::get(|| async { axum::response::Redirect::to("/connexion") }),
            );
        }
        let site = axum::Router::new()
            .fallback_service(
                ServeDir::new(&self.site_dir)
                    .append_index_html_on_directories(true)
                    .not_found_service(ServeFile::new(self.site_dir.join("404.html"))),
            )
            .layer(axum::middleware::from_fn(site_headers))
            // As CloudFront does in front of the bucket.
            .layer(tower_http::compression::CompressionLayer::new());
        decompte_app::router(self.state.clone()).merge(site)
    }

    /// E-mails the morning report of the day before at `--report-hour`,
    /// each département on its own clock, if `--report-to` names someone.
    /// A report is due at the hour: a process started after it sends the
    /// next day's, never a second one of the same day; among replicas, the
    /// one that holds the publisher's lease sends it.
    pub fn spawn_report_timer(&self) {
        let config = &self.state.config;
        if config.mailer.is_none() || config.report_recipients.is_empty() {
            return;
        }
        // One timer per time zone.
        let mut by_zone: Vec<(decompte_core::time::Tz, Vec<String>)> = Vec::new();
        for (code, _) in &config.report_recipients {
            let zone = decompte_core::time::zone(code);
            match by_zone.iter_mut().find(|(z, _)| *z == zone) {
                Some((_, codes)) => codes.push(code.clone()),
                None => by_zone.push((zone, vec![code.clone()])),
            }
        }
        let hour = config.report_hour;
        for (zone, departements) in by_zone {
            let state = self.state.clone();
            let leading = Arc::clone(&self.leading);
            tokio::spawn(async move {
                loop {
                    let now = state.now();
                    let at = decompte_app::report::next_report_at(now, hour, zone);
                    let wait = (at - now).to_std().unwrap_or(Duration::from_secs(60));
                    tracing::info!(%at, ?departements, "next morning report");
                    tokio::time::sleep(wait).await;
                    if !leading.load(Ordering::SeqCst) {
                        tracing::info!(
                            ?departements,
                            "morning report left to the replica that publishes"
                        );
                        continue;
                    }
                    let yesterday =
                        at.with_timezone(&zone).date_naive() - chrono::Duration::days(1);
                    if let Err(error) = decompte_app::report::send_morning_reports(
                        &state,
                        yesterday,
                        Some(&departements),
                        state.now(),
                    )
                    .await
                    {
                        tracing::error!(%error, "morning report");
                    }
                }
            });
        }
    }

    /// Tries to take the publisher's lease among the replicas on this
    /// store; this process publishes while it holds it.
    pub async fn take_lease(&self) -> anyhow::Result<Option<PublisherLease>> {
        let lease = self.store.lease_publisher().await?;
        self.leading.store(lease.is_some(), Ordering::SeqCst);
        Ok(lease)
    }

    /// Publishes what changed while this process holds the publisher's
    /// lease (`lease`, or one it takes when the holder goes: tried every
    /// [`LEASE_RETRY`]). While it holds it: soon after a report is written
    /// here or by another replica (a burst of writes waits for its end, at
    /// most `WRITES_DEBOUNCE` twice over), at a publication another replica
    /// queued, and on a timer, for the day that changes at midnight; at
    /// once while data files lag the pages ([`Publisher::pending`]). Under
    /// a continuous stream of writes, the loop rests between publications
    /// (half as long as the last one took, at most `MAX_REST`), so that
    /// publishing leaves the cores a third of the time (its threads yield
    /// to the requests' meanwhile, [`decompte_publish::engine::render_in_background`]),
    /// and publishes the writes of its rest as soon as it ends (the rest
    /// gathered them).
    ///
    /// With `republish`, the loop begins with a publication of every page
    /// (while the app already answers and the site serves the last one):
    /// `serve` restarted, perhaps as a new version or with other settings.
    pub fn spawn_publish_timer(
        &self,
        every: Duration,
        lease: Option<PublisherLease>,
        republish: bool,
    ) {
        let publisher = Arc::clone(&self.publisher);
        let store = Arc::clone(&self.store);
        let written = Arc::clone(&self.written);
        let leading = Arc::clone(&self.leading);
        tokio::spawn(async move {
            if republish && lease.is_some() {
                let started = publisher.now();
                match publisher.publish(started).await {
                    Ok(outcome) => {
                        tracing::info!(
                            files_changed = outcome.files_changed(),
                            "the site is published again after the start"
                        );
                        publisher
                            .record("Démarrage du service", started, &outcome)
                            .await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "the publication after the start failed")
                    }
                }
            }
            let mut lease = lease;
            loop {
                let held = match lease.take() {
                    Some(held) => held,
                    None => match store.lease_publisher().await {
                        Ok(Some(held)) => {
                            tracing::info!("publisher's lease taken: this replica publishes");
                            // Another replica may have published since this one did.
                            publisher.forget().await;
                            held
                        }
                        Ok(None) => {
                            leading.store(false, Ordering::SeqCst);
                            tokio::time::sleep(LEASE_RETRY).await;
                            continue;
                        }
                        Err(error) => {
                            leading.store(false, Ordering::SeqCst);
                            tracing::warn!(%error, "cannot ask for the publisher's lease");
                            tokio::time::sleep(LEASE_RETRY).await;
                            continue;
                        }
                    },
                };
                leading.store(true, Ordering::SeqCst);
                publish_while_held(&publisher, store.as_ref(), &written, &held, every).await;
                leading.store(false, Ordering::SeqCst);
                tracing::warn!("publisher's lease lost: this replica stops publishing");
            }
        });
    }
}

/// The publication loop of [`LocalApp::spawn_publish_timer`], until `lease`
/// is lost. Its first round publishes at once (what changed while another
/// replica held the lease).
async fn publish_while_held(
    publisher: &Publisher,
    store: &dyn Store,
    written: &tokio::sync::Notify,
    lease: &PublisherLease,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    if !lease.is_shared() {
        // Alone on its store, the process published at its start already.
        ticker.tick().await;
    }
    let (mut rested, mut due) = (false, false);
    loop {
        if !due {
            tokio::select! {
                _ = ticker.tick() => {}
                () = written.notified() => if !rested { debounce(written, lease).await },
                () = lease.changed() => if !rested { debounce(written, lease).await },
                () = lease.lost() => return,
            }
        }
        rested = false;
        if lease.is_shared() {
            match publisher.run_queued().await {
                Ok(0) => {}
                Ok(ran) => tracing::info!(ran, "publications queued by other replicas run"),
                Err(error) => tracing::warn!(%error, "cannot read the queued publications"),
            }
        }
        let started = tokio::time::Instant::now();
        match publisher.publish_if_changed(publisher.now()).await {
            Ok(Some(outcome)) => {
                tracing::info!(
                    files_changed = outcome.files_changed(),
                    "scheduled publication"
                );
                tokio::time::sleep((started.elapsed() / 2).min(MAX_REST)).await;
                rested = true;
                due = publisher.pending().await;
            }
            Ok(None) => {
                tracing::debug!("scheduled publication: no new report");
                due = false;
            }
            Err(error) => {
                tracing::error!(%error, "scheduled publication failed");
                due = false;
            }
        }
        if let Err(error) = store.purge_expired(publisher.now()).await {
            tracing::warn!(%error, "could not purge expired records");
        }
    }
}

/// Lets a burst of declarations (here or on other replicas) end, up to a point.
async fn debounce(written: &tokio::sync::Notify, lease: &PublisherLease) {
    let deadline = tokio::time::Instant::now() + WRITES_DEBOUNCE * 2;
    let more = || {
        tokio::time::timeout(WRITES_DEBOUNCE, async {
            tokio::select! {
                () = written.notified() => {}
                () = lease.changed() => {}
            }
        })
    };
    while more().await.is_ok() && tokio::time::Instant::now() < deadline {}
}

/// How often a replica that does not publish tries to take the lease.
const LEASE_RETRY: Duration = Duration::from_secs(2);
/// How long the publication loop waits for more writes after one.
const WRITES_DEBOUNCE: Duration = Duration::from_millis(500);
/// The longest rest of the publication loop after a publication.
const MAX_REST: Duration = Duration::from_secs(2);

/// Headers of the published site, as `decompte_publish::headers` defines
/// them for every place the site is served from.
async fn site_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderName, HeaderValue};
    use decompte_publish::headers;
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let mut response = next.run(request).await;
    let response_headers = response.headers_mut();
    response_headers.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static(headers::cache_control(&path)),
    );
    for (name, value) in headers::SECURITY {
        response_headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// Limits of `decompte serve` against slow or greedy clients: a client that
/// trickles its headers (slowloris) or its body is cut off, a request that
/// takes too long is answered `408`, and connections beyond the cap wait in
/// the kernel's queue instead of exhausting the process.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time for a client to send a request's headers, also while a kept-alive
    /// connection waits for its next request.
    pub header_timeout: Duration,
    /// Time for a request's body to arrive.
    pub body_timeout: Duration,
    /// Time for a whole request, answer included.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Serves the app on `listen` until Ctrl-C or SIGTERM; after SIGTERM,
/// says it is stopping on `/readyz` for `drain` before it stops accepting.
pub async fn serve_app(app: &LocalApp, listen: SocketAddr, drain: Duration) -> anyhow::Result<()> {
    let stopping = Arc::clone(&app.state.stopping);
    let listener = bind(listen).await?;
    serve_on(listener, app.router(), async move {
        stop_asked().await;
        if !drain.is_zero() {
            stopping.store(true, Ordering::SeqCst);
            tracing::info!(
                ?drain,
                "stopping: /readyz turns the load balancer away first"
            );
            tokio::time::sleep(drain).await;
        }
    })
    .await
}

async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "impossible d'écouter sur {listen} : un autre programme utilise-t-il ce port ? \
            Choisissez-en un autre avec --listen"
            )
        })
}

/// Serves the router on `listen` until Ctrl-C.
pub async fn serve(router: axum::Router, listen: SocketAddr) -> anyhow::Result<()> {
    serve_on(bind(listen).await?, router, stop_asked()).await
}

/// Completes at Ctrl-C or SIGTERM (what a process manager or Kubernetes
/// sends before it stops a replica): the server then stops accepting,
/// finishes the requests it has, and exits.
async fn stop_asked() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(terminate) => terminate,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping: no new connection, finishing the requests in progress");
}

/// Serves the router on a bound listener until `shutdown` completes, with
/// the default [`ServeLimits`]. The peer address reaches the handlers, for
/// login throttling.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(listener, router, ServeLimits::default(), shutdown).await
}

/// Serves the router on a bound listener within `limits` until `shutdown`
/// completes; then lets the requests in flight end (10 s at most).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let router = router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_timeout,
        ));
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.context("connection \
                limit closed")?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    Ok(())
}
