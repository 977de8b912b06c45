//! The runtime's clock: real time, or a paused virtual clock that jumps to
//! the next timer when every task is idle.
//!
//! A paused clock starts at the instant the runtime was built and moves
//! only when [`Clock::advance_to`] is called. The runtime calls it when no
//! worker has work and no `block_on` is polling (see
//! `Shared::auto_advance`), so a test full of long sleeps runs instantly
//! and always in the same order.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

/// Real or virtual time.
pub(crate) struct Clock {
    base: Instant,
    paused: bool,
    /// Virtual nanoseconds since `base` (paused clocks only).
    offset_nanos: AtomicU64,
}

impl Clock {
    pub(crate) fn new(paused: bool) -> Clock {
        Clock {
            base: Instant::now(),
            paused,
            offset_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn now(&self) -> Instant {
        if self.paused {
            self.base + Duration::from_nanos(self.offset_nanos.load(Acquire))
        } else {
            Instant::now()
        }
    }

    /// `t` as nanoseconds since the clock's start (0 for an earlier
    /// instant; `u64::MAX - 1` at most, some 580 years on).
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        let nanos = t.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).min(u64::MAX - 1)
    }

    /// The clock's time in [`nanos`](Clock::nanos), given the real time
    /// `real` (which a paused clock ignores).
    pub(crate) fn nanos_at(&self, real: Instant) -> u64 {
        if self.paused {
            self.offset_nanos.load(Acquire)
        } else {
            self.nanos(real)
        }
    }

    /// Moves a paused clock forward to `t` (never backward).
    pub(crate) fn advance_to(&self, t: Instant) {
        debug_assert!(self.paused);
        let nanos = t.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_max(nanos, AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_clock_moves_only_forward_and_only_when_told() {
        let clock = Clock::new(true);
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance_to(t0 + Duration::from_secs(5));
        assert_eq!(clock.now(), t0 + Duration::from_secs(5));
        clock.advance_to(t0 + Duration::from_secs(1));
        assert_eq!(clock.now(), t0 + Duration::from_secs(5));
    }

    #[test]
    fn real_clock_follows_instant_now() {
        let clock = Clock::new(false);
        let before = Instant::now();
        assert!(clock.now() >= before);
    }
}
