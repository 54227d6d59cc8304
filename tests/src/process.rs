//! Real components started for the tests: each through a small shell
//! watchdog that stops it when this test process ends, even without running
//! destructors, with its output in a log file that a failing test shows.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port free at this instant. Another process may take it before
/// the child binds it: start children with [`start_listening`], which tries
/// another port when that happens.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts a program that listens on a port it is told (`start(port)`), and
/// waits until it does. A port is only known free when it is chosen; if
/// another process takes it first, the child dies on "address in use" (or
/// the port answers for someone else while the child dies): then another
/// port is tried, three times at most.
pub fn start_listening(
    within: Duration,
    hint: &str,
    start: impl Fn(u16) -> Guarded,
) -> (u16, Guarded) {
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let process = start(port);
        let started = Instant::now();
        while started.elapsed() < within && process.is_running() {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Still ours a moment later: the port was not someone else's.
                std::thread::sleep(Duration::from_millis(300));
                if process.is_running() {
                    return (port, process);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        last = process.log_text();
        if process.is_running() {
            panic!(
                "{} did not listen on port {port} within {} s: {hint}\n{last}",
                process.what,
                within.as_secs()
            );
        }
    }
    panic!("could not start a program on a free port three times: {hint}\n{last}")
}

/// A started program.
pub struct Guarded {
    what: String,
    watchdog: Child,
    /// The program's own process id.
    pub pid: u32,
    pub log: PathBuf,
}

impl Guarded {
    /// Starts `program args…` with `envs`, its output to `log`. `hint` tells
    /// what to do if it cannot start.
    pub fn start(
        what: &str,
        program: &str,
        args: &[&str],
        envs: &[(&str, String)],
        log: &Path,
        hint: &str,
    ) -> Self {
        let script = format!(
            "\"$0\" \"$@\" >'{log}' 2>&1 & child=$!; echo $child; \
             while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.2; done; \
             kill $child 2>/dev/null; wait $child",
            log = log.display(),
            parent = std::process::id(),
        );
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({e}): {hint}"));
        let mut line = String::new();
        if let Some(out) = watchdog.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("cannot start {what}: {hint}"));
        Self {
            what: what.to_owned(),
            watchdog,
            pid,
            log: log.to_owned(),
        }
    }

    /// Waits until the program listens on `port`; fails with its log otherwise.
    pub fn wait_for_port(&self, port: u16, within: Duration, hint: &str) {
        self.wait_until(&format!("listen on port {port}"), within, hint, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Waits until its log contains `needle`; returns how long that took.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> Duration {
        self.wait_until(&format!("log `{needle}`"), within, "see its log", || {
            self.log_text().contains(needle)
        })
    }

    /// Waits until `done`; fails with the program's log if it takes longer than
    /// `within` or the program ends. Returns how long it took.
    fn wait_until(
        &self,
        what: &str,
        within: Duration,
        hint: &str,
        done: impl Fn() -> bool,
    ) -> Duration {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < within && self.is_running(),
                "{} did not {what} within {} s: {hint}\n{}",
                self.what,
                within.as_secs(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        started.elapsed()
    }

    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The program's peak resident memory so far (`VmHWM`), in kibibytes.
    pub fn peak_memory_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops the program and its watchdog.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        // The program may have ended already (killed by the test): quietly.
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}
