//! Waiting for short, exact durations.
//!
//! tokio's timer has a 1 ms resolution: `sleep(300µs)` lasts until the next
//! millisecond tick. Holds, think times and simulated round trips are often
//! shorter than that, so [`sleep`] sleeps on the timer for whole milliseconds
//! and then yields in a loop until the deadline. The yielding costs CPU only
//! for the sub-millisecond remainder.

use std::time::{Duration, Instant};

/// Wait until `deadline`.
pub async fn sleep_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > Duration::from_millis(2) {
            tokio::time::sleep_until((deadline - Duration::from_millis(1)).into()).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Wait for `d` (returns at once when zero).
pub async fn sleep(d: Duration) {
    if !d.is_zero() {
        sleep_until(Instant::now() + d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_at_least_as_long_as_asked() {
        for us in [0u64, 150, 900, 2500] {
            let t = Instant::now();
            sleep(Duration::from_micros(us)).await;
            assert!(t.elapsed() >= Duration::from_micros(us));
        }
    }
}
