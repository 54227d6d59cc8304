//! The time the app and the publisher go by: the system's in production,
//! one a test sets (to the cut-off hour, across Paris midnight or the
//! summer-time change) and which then runs at the system's pace.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from. Nothing else in the app or the publisher reads
/// the system's time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock set to an instant that then runs at the system's pace (a test
/// goes on waiting for real things: a publication, a session's idle time).
#[derive(Debug)]
pub struct SetClock {
    offset: Mutex<Duration>,
}

impl SetClock {
    /// A clock that reads `at` now.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self {
            offset: Mutex::new(at - Utc::now()),
        }
    }

    /// Reads `at` from now on.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut offset) = self.offset.lock() {
            *offset = at - Utc::now();
        }
    }

    /// Moves on by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut offset) = self.offset.lock() {
            *offset += by;
        }
    }
}

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self.offset.lock().map(|o| *o).unwrap_or_default();
        Utc::now() + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_set_clock_reads_its_instant_then_runs() {
        let at = Utc
            .with_ymd_and_hms(2020, 3, 29, 0, 59, 0)
            .single()
            .expect("instant");
        let clock = SetClock::at(at);
        let read = clock.now();
        assert!(read >= at && read - at < Duration::seconds(5), "{read}");
        clock.advance(Duration::hours(2));
        assert!(clock.now() - at >= Duration::hours(2));
        clock.set(at);
        assert!(clock.now() - at < Duration::seconds(5));
        assert!((SystemClock.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
