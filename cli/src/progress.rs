//! Progress of long command-line work (demonstration seeding, import): a bar
//! with its rate and the time left on a terminal (indicatif), and a plain line
//! every few seconds otherwise (a log, CI), so that neither is flooded.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    what: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Progress of `total` units of `what` ("déclarations", "jours").
    pub fn new(what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {msg} · {per_sec} · reste {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what);
            bar
        });
        let now = Instant::now();
        Self {
            what,
            total,
            bar,
            started: now,
            last_line: now,
        }
    }

    /// `done` units are done.
    pub fn set(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let finished = done >= self.total;
                if finished || self.last_line.elapsed() >= LINE_EVERY {
                    self.last_line = Instant::now();
                    eprintln!("{}", self.line(done));
                }
            }
        }
    }

    /// Ends the bar (a plain line has already said the end).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
    }

    fn line(&self, done: u64) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{done}/{} {} ({:.0} par seconde)",
            self.total,
            self.what,
            done as f64 / seconds
        )
    }
}

/// A full publication, showing the files written as they are.
pub async fn publish(
    publisher: &decompte_publish::Publisher,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<decompte_publish::Outcome, decompte_publish::PublishError> {
    let progress = std::sync::Mutex::new(None::<Progress>);
    let report = |done: usize, total: usize| {
        if let Ok(mut progress) = progress.lock() {
            progress
                .get_or_insert_with(|| Progress::new("départements publiés", total as u64))
                .set(done as u64);
        }
    };
    let outcome = publisher.publish_reporting(now, &report).await;
    if let Some(progress) = progress.into_inner().ok().flatten() {
        progress.finish();
    }
    outcome
}
