//! [`Pace`]: how often a busy worker looks for due timers.
//!
//! A worker fires the timers that are due when it runs out of tasks,
//! before it parks. A worker that never runs out must look between two
//! tasks too, or a deadline waits for the work to end: a scope's deadline
//! over tasks that are always ready, a `sleep` behind busy tasks.
//!
//! A look reads the clock: some 30 instructions and 30 ns here, a large
//! part of a short poll (a `yield_now` round is about 160 ns). So a worker
//! looks once every `stride` tasks, and the stride follows how long tasks
//! take: it doubles, up to [`MAX_STRIDE`], while two looks come less than
//! half of [`LOOK_EVERY`] apart, and drops to one when they come more
//! than [`LOOK_EVERY`] apart. A due timer therefore waits about
//! [`LOOK_EVERY`] of polling at most, or one poll where polls are longer;
//! after a switch from short polls to long ones, [`MAX_STRIDE`] polls
//! once. While no timer is pending, a look is one atomic load and no clock
//! read.

use super::timers::{Timers, NONE_DUE};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The polling time a due timer may wait on a busy worker. Short against
/// the latency a deadline should have (BENCHMARKS.md, `cancel_latency`:
/// tasks that work 10 µs between yields see their deadline within two
/// such slices), long against a look's 30 ns.
const LOOK_EVERY: Duration = Duration::from_micros(20);

/// The most tasks between two looks: 64 polls of a few hundred
/// nanoseconds stay within [`LOOK_EVERY`], and a look costs less than one
/// instruction per task.
const MAX_STRIDE: u32 = 64;

/// A worker's pace of looks at the timers; owned by the worker's core.
#[derive(Debug)]
pub(crate) struct Pace {
    /// Tasks to run before the next look.
    countdown: Cell<u32>,
    /// Tasks between two looks.
    stride: Cell<u32>,
    /// When the last look read the clock.
    last: Cell<Option<Instant>>,
}

impl Pace {
    pub(crate) fn new() -> Pace {
        Pace {
            countdown: Cell::new(0),
            stride: Cell::new(1),
            last: Cell::new(None),
        }
    }

    /// Called by a busy worker between two tasks: fires the timers that are
    /// due, if it is time to look.
    #[inline]
    pub(crate) fn tick(&self, timers: &Timers) {
        let due = timers.next_due();
        if due == NONE_DUE {
            return;
        }
        let left = self.countdown.get();
        if left > 0 {
            self.countdown.set(left - 1);
            return;
        }
        self.look(timers, due);
    }

    /// Reads the clock, sets the next stride, and fires what is due.
    #[cold]
    #[inline(never)]
    fn look(&self, timers: &Timers, due: u64) {
        let now = Instant::now();
        let stride = match self.last.replace(Some(now)) {
            Some(last) => {
                let gap = now.saturating_duration_since(last);
                if gap > LOOK_EVERY {
                    1
                } else if gap < LOOK_EVERY / 2 {
                    (self.stride.get() * 2).min(MAX_STRIDE)
                } else {
                    self.stride.get()
                }
            }
            // The first look since the worker started.
            None => 1,
        };
        self.stride.set(stride);
        self.countdown.set(stride - 1);
        if timers.clock().nanos_at(now) >= due && !timers.fire_if_free() {
            // Another thread holds the timers: look again after the next
            // task.
            self.countdown.set(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::clock::Clock;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    fn counting_waker(fired: &Arc<AtomicUsize>) -> std::task::Waker {
        let fired = fired.clone();
        waker_fn::waker_fn(move || {
            fired.fetch_add(1, SeqCst);
        })
    }

    #[test]
    fn no_timer_no_look() {
        let timers = Timers::new(Clock::new(false));
        let pace = Pace::new();
        for _ in 0..1000 {
            pace.tick(&timers);
        }
        assert_eq!(pace.last.get(), None, "the clock was never read");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads the real clock: under Miri no tick is short enough for the stride to grow"
    )]
    fn a_due_timer_fires_at_the_first_look_and_the_stride_grows_on_short_ticks() {
        let timers = Timers::new(Clock::new(false));
        let fired = Arc::new(AtomicUsize::new(0));
        let far = Instant::now() + Duration::from_secs(3600);
        let _ = timers.insert(far, counting_waker(&fired));
        let pace = Pace::new();
        // Ticks far shorter than LOOK_EVERY: the stride doubles up to the
        // cap, the countdown in between.
        for _ in 0..10_000 {
            pace.tick(&timers);
        }
        assert_eq!(pace.stride.get(), MAX_STRIDE);
        let _ = timers.insert(Instant::now(), counting_waker(&fired));
        for _ in 0..MAX_STRIDE {
            pace.tick(&timers);
        }
        assert_eq!(fired.load(SeqCst), 1, "within one stride");
        assert_ne!(timers.next_due(), NONE_DUE, "the far timer is left");
    }

    #[test]
    fn a_long_gap_brings_the_stride_back_to_one() {
        let timers = Timers::new(Clock::new(false));
        let far = Instant::now() + Duration::from_secs(3600);
        let _ = timers.insert(far, waker_fn::waker_fn(|| {}));
        let pace = Pace::new();
        pace.stride.set(MAX_STRIDE);
        pace.last
            .set(Some(Instant::now() - LOOK_EVERY - Duration::from_micros(1)));
        pace.tick(&timers);
        assert_eq!(pace.stride.get(), 1);
    }
}
