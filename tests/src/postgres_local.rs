//! A PostgreSQL server on loopback for the tests: Debian's `postgresql`
//! (installed by `scripts/tools.sh`), a cluster made by `initdb` in a
//! temporary folder and run as the `postgres` user (PostgreSQL refuses
//! root), one database per test. A test that cannot start it fails and
//! says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use decompte_store::PostgresStore;

use crate::process::{start_listening, Guarded};

const HINT: &str = "run ./scripts/tools.sh, which installs postgresql (Debian)";

/// The user the server runs as.
const USER: &str = "postgres";

pub struct PostgresLocal {
    pub port: u16,
    _folder: tempfile::TempDir,
    process: Guarded,
}

/// The folder of PostgreSQL's programs (`/usr/lib/postgresql/VERSION/bin`).
fn programs() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed under {}: {HINT}",
            root.display()
        )
    })
}

/// The uid and gid of `user`.
fn ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .unwrap_or_else(|e| panic!("id {flag} {user}: {e}"));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no user `{user}`: {HINT}"))
    };
    (id("-u"), id("-g"))
}

/// A temporary folder the server's user owns.
fn owned_folder() -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let (uid, gid) = ids(USER);
    std::os::unix::fs::chown(folder.path(), Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", folder.path().display()));
    folder
}

/// `program args…` as [`USER`] (`setpriv`, which execs: the process is the
/// program itself, and a signal to it reaches PostgreSQL).
fn as_user(program: &Path) -> Vec<String> {
    vec![
        format!("--reuid={USER}"),
        format!("--regid={USER}"),
        "--clear-groups".into(),
        program.display().to_string(),
    ]
}

impl PostgresLocal {
    /// Makes a cluster in a temporary folder and starts it on a free port.
    pub fn start() -> Self {
        let bin = programs();
        let folder = owned_folder();
        let data = folder.path().join("data");
        let init = Command::new("setpriv")
            .args(as_user(&bin.join("initdb")))
            .args(["-D", &data.display().to_string()])
            .args(["-U", "decompte", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale=C.UTF-8"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb ({e}): {HINT}"));
        assert!(
            init.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        Self::run(folder, &[])
    }

    /// A hot standby of `primary`, streaming from it (`pg_basebackup -R`),
    /// started on a free port. The primary waits for it at each commit once
    /// [`PostgresLocal::make_synchronous`] was called.
    pub fn standby_of(primary: &PostgresLocal) -> Self {
        let bin = programs();
        let folder = owned_folder();
        let data = folder.path().join("data");
        let copied = Command::new("setpriv")
            .args(as_user(&bin.join("pg_basebackup")))
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            .args(["-U", "decompte", "-D", &data.display().to_string()])
            .args(["-R", "-X", "stream", "--no-sync", "--checkpoint=fast"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run pg_basebackup ({e}): {HINT}"));
        assert!(
            copied.status.success(),
            "pg_basebackup failed: {}{}",
            String::from_utf8_lossy(&copied.stdout),
            String::from_utf8_lossy(&copied.stderr)
        );
        let standby = Self::run(folder, &["hot_standby=on"]);
        standby.process.wait_for_log(
            "started streaming WAL from primary",
            Duration::from_secs(30),
        );
        standby
    }

    /// Runs the cluster of `folder` on a free port, with `settings` (`name=value`).
    fn run(folder: tempfile::TempDir, settings: &[&str]) -> Self {
        let bin = programs();
        let data = folder.path().join("data");
        let sockets = folder.path().display().to_string();
        let data_text = data.display().to_string();
        let postgres = as_user(&bin.join("postgres"));
        let (port, process) = start_listening(Duration::from_secs(30), HINT, |port| {
            let port = port.to_string();
            let mut args: Vec<&str> = postgres.iter().map(String::as_str).collect();
            args.extend(["-D", &data_text, "-p", &port, "-k", &sockets]);
            args.extend([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ]);
            // A test cluster: nothing to keep after a crash of the machine.
            args.extend(["-c", "fsync=off", "-c", "full_page_writes=off"]);
            for setting in settings {
                args.extend(["-c", setting]);
            }
            Guarded::start(
                "PostgreSQL",
                "setpriv",
                &args,
                &[],
                &std::env::temp_dir().join(format!(
                    "decompte-postgres-{}-{port}.log",
                    std::process::id()
                )),
                HINT,
            )
        });
        // "… accept connections", or "… accept read-only connections" for a standby.
        process.wait_for_log(
            "database system is ready to accept",
            Duration::from_secs(30),
        );
        Self {
            port,
            _folder: folder,
            process,
        }
    }

    /// Runs each statement of `statements` on the `postgres` database of
    /// this server, one after the other (`ALTER SYSTEM` refuses a transaction).
    pub async fn execute(&self, statements: &[&str]) {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL on {}: {e}", self.port));
        let driver = tokio::spawn(connection);
        for sql in statements {
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        drop(client);
        let _ = driver.await;
    }

    /// From now on, a commit on this primary waits until a standby has it.
    pub async fn make_synchronous(&self) {
        self.execute(&[
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "ALTER SYSTEM SET synchronous_commit = 'on'",
            "SELECT pg_reload_conf()",
        ])
        .await;
    }

    /// Promotes this standby to primary; returns once it accepts writes.
    pub async fn promote(&self) {
        self.execute(&["SELECT pg_promote(true, 60)"]).await;
    }

    /// Kills the server at once (SIGKILL to the postmaster and every one of
    /// its processes): what a lost machine does.
    pub fn kill(self) {
        let pid = self.process.pid.to_string();
        // Frozen first, so that it starts no new process meanwhile.
        let _ = Command::new("kill").args(["-STOP", &pid]).status();
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        while self.process.is_running() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
    }

    /// The server shared by every test of this process.
    pub fn shared() -> &'static PostgresLocal {
        static SHARED: OnceLock<PostgresLocal> = OnceLock::new();
        SHARED.get_or_init(PostgresLocal::start)
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://decompte@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// A new, empty database of its own, and the store on it.
    pub async fn fresh_store(&self) -> PostgresStore {
        let url = self.fresh_database().await;
        PostgresStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open the store on {url}: {e}"))
    }

    /// A new, empty database with the store opened on it, and a client of
    /// the test's own beside it (its connection runs until the client is
    /// dropped): the database's URL, the store, the client.
    pub async fn fresh_store_and_client(&self) -> (String, PostgresStore, tokio_postgres::Client) {
        let url = self.fresh_database().await;
        let store = PostgresStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open the store on {url}: {e}"));
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL: {e}"));
        tokio::spawn(connection);
        (url, store, client)
    }

    /// A new, empty database of its own: its URL.
    pub async fn fresh_database(&self) -> String {
        static DATABASES: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "decompte_test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        );
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL: {e}"));
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        drop(client);
        let _ = driver.await;
        self.url(&name)
    }

    /// Stops the server at once, its sessions cut (PostgreSQL's fast
    /// shutdown: SIGINT; SIGTERM would wait for every client to leave).
    pub fn stop(self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.process.pid.to_string()])
            .status();
        let stopped = std::time::Instant::now();
        while self.process.is_running() && stopped.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process.stop();
    }
}
