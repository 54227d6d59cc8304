//! The kill test: `decompte serve` on SQLite, killed with SIGKILL at random
//! moments during a stream of API writes, 100 times in a row, and restarted.
//! Every write answered 201 or 200 must be in the store afterwards with its
//! exact version and nothing half-written; a write left unanswered by a kill
//! is sent again, with its `Idempotency-Key`, after the restart, and never
//! creates a second version.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use decompte_core::CommuneCode;
use decompte_store::{Reports, SqliteStore};

const KILLS: usize = 100;
/// Communes written to, in turn (Morbihan, the default département).
const COMMUNES: [&str; 8] = [
    "56260", "56121", "56007", "56034", "56083", "56098", "56162", "56178",
];

/// A small xorshift: the test prints its seed, so a failure can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One write: a first report (version 1) or a correction of the current one.
#[derive(Clone, Debug)]
struct Declaration {
    key: (String, NaiveDate),
    version: u32,
    idempotency_key: String,
}

impl Declaration {
    fn body(&self) -> String {
        // The hospital count is the version: what each version holds is known.
        let mut body = serde_json::json!({
            // The version is the count: a small commune's 5 is confirmed in advance.
            "confirm": true,
            "commune": self.key.0,
            "date": self.key.1.to_string(),
            "counts": {"hopital": self.version, "ehpad": 0, "esms": 0, "domicile": 0, "autre": 0},
        });
        if self.version > 1 {
            body["replaces_version"] = (self.version - 1).into();
        }
        body.to_string()
    }
}

/// The prefecture's access code and its second factor's secret.
struct Prefecture {
    code: String,
    totp_secret: String,
}

/// Sends `write`; `None` if the server died before answering.
fn send(port: u16, prefecture: &Prefecture, write: &Declaration) -> Option<(u16, String)> {
    let body = write.body();
    let totp = decompte_app::second_factor::code_at(&prefecture.totp_secret, chrono::Utc::now())?;
    let request = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nX-TOTP: {totp}\r\nContent-Type: application/json\r\n\
         Idempotency-Key: {}\r\nContent-Length: {}\r\n\r\n{body}",
        prefecture.code,
        write.idempotency_key,
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    Some((status, answer))
}

fn start(data_dir: &Path, port: u16) -> std::process::Child {
    let server = Command::new(env!("CARGO_BIN_EXE_decompte"))
        .arg("--data-dir")
        .arg(data_dir)
        // Days of 2020, years ago: no warning to confirm for an old day.
        .args(["--old-day-after", "0"])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start decompte serve");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 30, "serve did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    server
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issued = Command::new(env!("CARGO_BIN_EXE_decompte"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "credentials",
            "issue",
            "--role",
            "prefecture",
            "--second-factor",
            "--json",
        ])
        .output()
        .expect("issue a code");
    assert!(issued.status.success());
    let issued = serde_json::from_slice::<serde_json::Value>(&issued.stdout).expect("json");
    let text = |name: &str| issued[name].as_str().expect(name).to_owned();
    let code = Prefecture {
        code: text("access_code"),
        totp_secret: text("totp_secret"),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let first_day = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");

    // What the server acknowledged: the current version of each key.
    let mut acknowledged: BTreeMap<(String, NaiveDate), u32> = BTreeMap::new();
    let mut answered = 0usize;
    let mut retried = 0usize;
    // Retries whose first send had landed: answered from the idempotency record.
    let mut replayed = 0usize;
    let mut pending: Option<Declaration> = None;
    let mut next = 0usize;
    for _ in 0..KILLS {
        let server = start(dir.path(), port);
        let delay = Duration::from_millis(20 + random.below(280));
        let killer = std::thread::spawn(move || {
            let mut server = server;
            std::thread::sleep(delay);
            server.kill().expect("SIGKILL");
            server.wait().expect("reap");
        });
        loop {
            let is_retry = pending.is_some();
            let write = match pending.take() {
                Some(write) => {
                    retried += 1;
                    write
                }
                None => {
                    next += 1;
                    // One write in three corrects an acknowledged report.
                    let correct = next.is_multiple_of(3) && !acknowledged.is_empty();
                    let key = if correct {
                        let index = random.below(acknowledged.len() as u64) as usize;
                        acknowledged.keys().nth(index).cloned().expect("a key")
                    } else {
                        let n = acknowledged.len();
                        (
                            COMMUNES[n % COMMUNES.len()].to_owned(),
                            first_day + chrono::Duration::days((n / COMMUNES.len()) as i64),
                        )
                    };
                    Declaration {
                        version: acknowledged.get(&key).map_or(1, |v| v + 1),
                        key,
                        idempotency_key: format!("kill-{seed}-{next}"),
                    }
                }
            };
            match send(port, &code, &write) {
                Some((status, answer)) => {
                    assert!(
                        status == 201 || status == 200,
                        "{write:?} answered {status}: {answer}"
                    );
                    assert!(
                        answer.contains(&format!("\"version\":{}", write.version)),
                        "{write:?}: {answer}"
                    );
                    acknowledged.insert(write.key.clone(), write.version);
                    answered += 1;
                    if is_retry && status == 200 {
                        replayed += 1;
                    }
                }
                None => {
                    // Killed before answering: sent again after the restart.
                    pending = Some(write);
                    break;
                }
            }
        }
        killer.join().expect("the killer");
    }
    if let Some(write) = pending.take() {
        let mut server = start(dir.path(), port);
        let answer = send(port, &code, &write);
        server.kill().expect("SIGKILL");
        server.wait().expect("reap");
        let (status, answer) = answer.expect("an answer after the last restart");
        assert!(
            status == 201 || status == 200,
            "{write:?} answered {status}: {answer}"
        );
        acknowledged.insert(write.key.clone(), write.version);
        answered += 1;
        retried += 1;
        replayed += usize::from(status == 200);
    }

    // Every acknowledged version is there, whole, and no other.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = SqliteStore::open(&dir.path().join("decompte.sqlite")).expect("database");
    let mut versions = 0;
    runtime.block_on(async {
        for ((commune, date), version) in &acknowledged {
            let commune = CommuneCode::parse(commune).expect("commune");
            let history = store.history(&commune, *date).await.expect("history");
            let found: Vec<(u32, u32)> = history
                .iter()
                .map(|r| (r.version, r.counts.get("hopital").copied().unwrap_or(0)))
                .collect();
            let expected: Vec<(u32, u32)> = (1..=*version).map(|v| (v, v)).collect();
            assert_eq!(
                found, expected,
                "{commune} {date}: acknowledged up to version {version}"
            );
            versions += found.len();
        }
    });
    println!(
        "{KILLS} kills: {answered} acknowledged writes checked (0 lost), {retried} unanswered \
         writes sent again with their Idempotency-Key ({replayed} of them had landed and were \
         answered from their record), {versions} versions in the store"
    );
    assert!(answered > KILLS, "too few writes to prove anything");
}
