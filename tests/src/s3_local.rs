//! An S3 server on loopback: moto's server mode (PyPI `moto[server]`, installed
//! by `scripts/tools.sh`), one per test binary, a bucket per test. A test that
//! cannot start it fails and says why.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use decompte_publish::{S3Config, S3Sink};

pub struct MotoServer {
    pub endpoint: String,
    /// The watchdog shell; it stops the server when this process ends.
    _watchdog: std::process::Child,
}

impl MotoServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port for moto");
        // A shell watchdog stops the server when this test process ends.
        let script = format!(
            "moto_server -H 127.0.0.1 -p {port} & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.5; done; kill $moto 2>/dev/null; wait $moto",
            parent = std::process::id(),
        );
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server ({e}): run ./scripts/test.sh, which installs moto[server]"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on port {port} within 30 s: run ./scripts/test.sh, which installs moto[server]"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: watchdog,
        }
    }

    /// The server shared by every test of this process.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: decompte_store::aws::Endpoint {
                url: Some(self.endpoint.clone()),
                // moto reads the region from the host name, us-east-1 on loopback.
                region: Some("us-east-1".into()),
                static_credentials: Some(("local".into(), "local".into())),
            },
        }
    }

    /// A sink on a new, empty bucket.
    pub async fn fresh_sink(&self, prefix: &str) -> S3Sink {
        static BUCKETS: AtomicU32 = AtomicU32::new(0);
        let bucket = format!(
            "decompte-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::SeqCst)
        );
        let sink = S3Sink::connect(&self.config(&bucket, prefix)).await;
        sink.create_bucket_if_missing()
            .await
            .unwrap_or_else(|e| panic!("cannot create bucket {bucket} on moto: {e}"));
        sink
    }
}
