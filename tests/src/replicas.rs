//! Several `decompte serve` processes on one PostgreSQL database behind
//! HAProxy (Debian's, installed by `scripts/tools.sh`), as a self-hosted
//! deployment runs them: the tests kill and restart the processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{start_listening, Guarded};

const HINT: &str = "run ./scripts/test.sh, which builds decompte and installs haproxy (Debian)";

/// The `decompte` binary `cargo test --workspace` built beside the tests
/// (with the features the tests' crate asks for: PostgreSQL among them).
pub fn decompte_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("decompte"))
        .expect("the target folder");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (./scripts/test.sh), which \
         builds it",
        binary.display()
    );
    binary
}

/// One `decompte serve` process.
pub struct Replica {
    pub name: String,
    pub port: u16,
    pub process: Guarded,
}

/// How replicas are started: the same store, data folder and address.
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    pub store: String,
    pub data_dir: PathBuf,
    /// The load balancer's address, which users (and cookies) know.
    pub public_url: String,
    /// More settings, as environment variables (`DECOMPTE_PUBLISHER`).
    pub env: Vec<(String, String)>,
}

impl ReplicaSettings {
    /// Replicas on `store` sharing a new data folder (returned with them:
    /// it lives as long as they need it), known at the address of a load
    /// balancer whose port is chosen now, since the replicas must know it
    /// (their cookies' address) before it can start in front of them.
    pub fn shared(store: &str) -> (Self, tempfile::TempDir, u16) {
        let data = tempfile::tempdir().expect("a data folder");
        let public_port = crate::process::free_port();
        let settings = Self {
            store: store.to_owned(),
            data_dir: data.path().to_owned(),
            public_url: format!("http://127.0.0.1:{public_port}"),
            env: Vec::new(),
        };
        (settings, data, public_port)
    }
}

impl Replica {
    /// Starts `decompte serve` named `name` (for its log); returns once it
    /// listens (after its first publication, if it holds the lease).
    pub fn start(name: &str, settings: &ReplicaSettings) -> Self {
        Self::start_on(name, settings, None)
    }

    /// The same, on `port` (a replica restarted where the load balancer
    /// expects it), or on a free port.
    pub fn start_on(name: &str, settings: &ReplicaSettings, port: Option<u16>) -> Self {
        let binary = decompte_binary().display().to_string();
        let data_dir = settings.data_dir.display().to_string();
        let launch = |port: u16| {
            let listen = format!("127.0.0.1:{port}");
            let mut env: Vec<(&str, String)> = vec![
                ("DECOMPTE_STORE", settings.store.clone()),
                ("DECOMPTE_DATA_DIR", data_dir.clone()),
                ("DECOMPTE_PUBLIC_URL", settings.public_url.clone()),
                ("DECOMPTE_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
                ("DECOMPTE_OLD_DAY_AFTER", "0".to_owned()),
                ("DECOMPTE_PUBLISH_EVERY", "3600".to_owned()),
                // Twice the load balancer's time to notice (two checks 500 ms apart).
                ("DECOMPTE_DRAIN_SECONDS", "2".to_owned()),
                ("RUST_LOG", "info".to_owned()),
            ];
            env.extend(settings.env.iter().map(|(k, v)| (k.as_str(), v.clone())));
            Guarded::start(
                &format!("decompte serve ({name})"),
                &binary,
                &["serve", "--listen", &listen],
                &env,
                &std::env::temp_dir().join(format!(
                    "decompte-{}-replica-{name}-{port}.log",
                    std::process::id()
                )),
                HINT,
            )
        };
        let (port, process) = match port {
            None => start_listening(Duration::from_secs(120), HINT, launch),
            Some(port) => {
                let process = launch(port);
                wait_listening(port, &process, Duration::from_secs(120));
                (port, process)
            }
        };
        Self {
            name: name.to_owned(),
            port,
            process,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the process at once (SIGKILL): no goodbye to the database.
    pub fn kill(self) -> u16 {
        let _ = Command::new("kill")
            .args(["-KILL", &self.process.pid.to_string()])
            .status();
        let port = self.port;
        while self.process.is_running() {
            std::thread::sleep(Duration::from_millis(20));
        }
        port
    }

    /// Asks the process to stop (SIGTERM, what Kubernetes sends) and waits
    /// for it to end.
    pub fn terminate(self) -> u16 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.process.pid.to_string()])
            .status();
        let port = self.port;
        let asked = std::time::Instant::now();
        while self.process.is_running() {
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "{} did not stop within 30 s of SIGTERM: {}",
                self.name,
                self.process.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        port
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}

fn wait_listening(port: u16, process: &Guarded, within: Duration) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            process.is_running() && started.elapsed() < within,
            "the process did not listen on {port}: {}",
            process.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// HAProxy in front of replicas: round robin, each replica checked on
/// `/readyz` twice a second, a request that could not reach one sent to
/// another.
pub struct LoadBalancer {
    pub port: u16,
    _folder: tempfile::TempDir,
    _process: Guarded,
}

impl LoadBalancer {
    /// Starts HAProxy on `port` in front of `backends`.
    pub fn start_on(port: u16, backends: &[u16]) -> Self {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let config = folder.path().join("haproxy.cfg");
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(n, port)| format!("    server r{n} 127.0.0.1:{port} check\n"))
            .collect();
        let launch = |port: u16| {
            let text = format!(
                "global\n    maxconn 2000\n\
                 defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    \
                 timeout server 30s\n    retries 3\n    option redispatch 1\n    \
                 option forwardfor\n\
                 frontend web\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
                 backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n    \
                 http-check expect status 200\n    \
                 default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1\n\
                 {servers}"
            );
            std::fs::write(&config, text).expect("the configuration of HAProxy");
            Guarded::start(
                "HAProxy",
                "haproxy",
                &["-db", "-f", &config.display().to_string()],
                &[],
                &std::env::temp_dir().join(format!(
                    "decompte-{}-haproxy-{port}.log",
                    std::process::id()
                )),
                HINT,
            )
        };
        let process = launch(port);
        wait_listening(port, &process, Duration::from_secs(20));
        Self {
            port,
            _folder: folder,
            _process: process,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
