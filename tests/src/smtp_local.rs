//! An SMTP server on loopback: aiosmtpd (PyPI, installed by
//! `scripts/tools.sh`) with a handler that writes each message it accepts,
//! decoded, to a file the test reads back (`tests/smtp/recorder.py`). One
//! server per test. A test that cannot start it fails and says why.

use std::path::PathBuf;
use std::time::Duration;

use crate::process::{start_listening, Guarded};

pub struct SmtpServer {
    pub port: u16,
    messages: PathBuf,
    _folder: tempfile::TempDir,
    _process: Guarded,
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Each attached file: its name, its type, its bytes.
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

impl SmtpServer {
    pub fn start() -> Self {
        let hint = "run ./scripts/test.sh, which installs aiosmtpd";
        let folder = tempfile::tempdir().expect("a folder for the SMTP server");
        let messages = folder.path().join("messages.jsonl");
        let handlers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp");
        let (port, process) = start_listening(Duration::from_secs(20), hint, |port| {
            Guarded::start(
                "aiosmtpd",
                "python3",
                &[
                    "-m",
                    "aiosmtpd",
                    "-n",
                    "-u",
                    "-l",
                    &format!("127.0.0.1:{port}"),
                    "-c",
                    "recorder.JsonLines",
                    &messages.display().to_string(),
                ],
                &[("PYTHONPATH", handlers.display().to_string())],
                &folder.path().join(format!("aiosmtpd-{port}.log")),
                hint,
            )
        });
        Self {
            port,
            messages,
            _folder: folder,
            _process: process,
        }
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Mail> {
        let text = std::fs::read_to_string(&self.messages).unwrap_or_default();
        text.lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("unreadable message ({e}): {line}"));
                let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
                Mail {
                    rcpt_tos: value["rcpt_tos"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    from: text("from"),
                    to: text("to"),
                    subject: text("subject"),
                    body: text("body"),
                    attachments: value["attachments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let field = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
                            let bytes = base64::Engine::decode(
                                &base64::engine::general_purpose::STANDARD,
                                field("base64"),
                            )
                            .expect("an attachment in base64");
                            (field("filename"), field("content_type"), bytes)
                        })
                        .collect(),
                }
            })
            .collect()
    }
}
