//! Short names for durations, and the virtual time a future takes.

use cancel_scope::time;
use std::future::Future;
use std::time::Duration;

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Awaits `fut` and returns its output with the time it took on the
/// runtime's clock (exactly, on a paused clock).
pub async fn timed<F: Future>(fut: F) -> (F::Output, Duration) {
    let t0 = time::now();
    let out = fut.await;
    (out, time::now() - t0)
}
