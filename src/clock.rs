//! One monotonic clock for the whole run, in microseconds since the start.
//!
//! Every node lives in this process, so one `Instant` orders every event
//! exactly; the oracle depends on that.

use std::time::{Duration, Instant};

/// Microseconds since the run started, from one shared monotonic origin.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// The instant this clock counts from.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Microseconds since the origin.
    pub fn now_us(&self) -> u64 {
        self.us_of(Instant::now())
    }

    /// Microseconds from the origin to `t` (0 if `t` is earlier).
    pub fn us_of(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `us` microseconds after the origin.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.origin + Duration::from_micros(us)
    }
}
