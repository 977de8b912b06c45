//! Short names for durations.

use std::time::Duration;

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
