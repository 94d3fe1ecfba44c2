//! The clock, passed in: the server reads the system's, tests set their own,
//! so timers (scale-in delays, health thresholds, boot times) can be tested
//! deterministically.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// `now` as epoch milliseconds.
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn at_ms(ms: i64) -> ManualClock {
        ManualClock {
            now: Mutex::new(DateTime::from_timestamp_millis(ms).expect("a valid time")),
        }
    }

    pub fn advance_ms(&self, ms: i64) {
        let mut now = self.now.lock().unwrap();
        *now += chrono::Duration::milliseconds(ms);
    }

    pub fn set_ms(&self, ms: i64) {
        *self.now.lock().unwrap() = DateTime::from_timestamp_millis(ms).expect("a valid time");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
}

/// Milliseconds since the epoch as AWS's Query services write times:
/// ISO 8601 in UTC with milliseconds (`2026-12-07T06:00:00.123Z`).
pub fn iso_time(millis: i64) -> String {
    let t: chrono::DateTime<chrono::Utc> =
        chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at_ms(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance_ms(250);
        assert_eq!(c.now_ms(), 1_250);
        c.set_ms(5);
        assert_eq!(c.now_ms(), 5);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
