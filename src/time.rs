//! Timers: [`sleep`], driven by the runtime's workers.
//!
//! Each runtime keeps its pending timers in one ordered map, keyed by
//! deadline. Workers fire the expired ones before they park, and every
//! [`GLOBAL_QUEUE_INTERVAL`](crate::queue::GLOBAL_QUEUE_INTERVAL) tasks
//! while busy; a parking worker sleeps no longer than the next deadline.
//! A [`Sleep`] that is dropped (for example because its task was cancelled)
//! removes its entry, so cancelled sleeps free their timer at once.

use crate::runtime::Shared;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Waits until `duration` has passed.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, time::sleep};
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// runtime::block_on(sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, time::sleep_until};
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(5);
/// runtime::block_on(sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<(Arc<Shared>, TimerKey)>,
}

/// A timer's key: its deadline, then a sequence number for ties.
pub(crate) type TimerKey = (Instant, u64);

/// The pending timers of one runtime.
pub(crate) struct Timers {
    inner: Mutex<TimerMap>,
}

struct TimerMap {
    entries: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            inner: Mutex::new(TimerMap {
                entries: BTreeMap::new(),
                next_seq: 0,
            }),
        }
    }

    /// Adds a timer; returns its key and whether it is now the earliest.
    fn insert(&self, deadline: Instant, waker: Waker) -> (TimerKey, bool) {
        let mut map = self.inner.lock();
        let key = (deadline, map.next_seq);
        map.next_seq += 1;
        let earliest = map
            .entries
            .first_key_value()
            .map_or(true, |(k, _)| key < *k);
        map.entries.insert(key, waker);
        (key, earliest)
    }

    /// Refreshes a timer's waker; false if it already fired.
    fn update(&self, key: TimerKey, waker: &Waker) -> bool {
        let old = {
            let mut map = self.inner.lock();
            match map.entries.get_mut(&key) {
                Some(w) if w.will_wake(waker) => return true,
                Some(w) => std::mem::replace(w, waker.clone()),
                None => return false,
            }
        };
        drop(old);
        true
    }

    fn remove(&self, key: TimerKey) {
        let waker = self.inner.lock().entries.remove(&key);
        drop(waker);
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.inner
            .lock()
            .entries
            .first_key_value()
            .map(|(k, _)| k.0)
    }

    /// Wakes every expired timer; returns whether any fired.
    pub(crate) fn fire_expired(&self) -> bool {
        let expired = {
            let mut map = self.inner.lock();
            Self::take_expired(&mut map)
        };
        let fired = !expired.is_empty();
        for (_, waker) in expired {
            waker.wake();
        }
        fired
    }

    /// Like `fire_expired`, but skips if another thread holds the lock (a
    /// busy worker's periodic check must not queue behind another).
    pub(crate) fn fire_if_free(&self) {
        let expired = match self.inner.try_lock() {
            Some(mut map) => Self::take_expired(&mut map),
            None => return,
        };
        for (_, waker) in expired {
            waker.wake();
        }
    }

    fn take_expired(map: &mut TimerMap) -> BTreeMap<TimerKey, Waker> {
        let now = Instant::now();
        match map.entries.first_key_value() {
            Some((k, _)) if k.0 <= now => {
                let later = map.entries.split_off(&(now, u64::MAX));
                std::mem::replace(&mut map.entries, later)
            }
            _ => BTreeMap::new(),
        }
    }

    /// Drops every timer (shutdown).
    pub(crate) fn clear(&self) {
        let entries = std::mem::take(&mut self.inner.lock().entries);
        drop(entries);
    }
}

impl Sleep {
    /// The instant this sleep ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::time::sleep_until;
    /// use std::time::Instant;
    ///
    /// let t = Instant::now();
    /// assert_eq!(sleep_until(t).deadline(), t);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some((shared, key)) = self.entry.take() {
                shared.timers.remove(key);
            }
            return Poll::Ready(());
        }
        match &self.entry {
            Some((shared, key)) => {
                if !shared.timers.update(*key, cx.waker()) {
                    // Fired, but our clock read came first: look again soon.
                    cx.waker().wake_by_ref();
                }
            }
            None => {
                let shared = crate::context::current_runtime();
                let (key, earliest) = shared.timers.insert(self.deadline, cx.waker().clone());
                if earliest {
                    shared.idle.notify_timer();
                }
                self.entry = Some((shared, key));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((shared, key)) = self.entry.take() {
            shared.timers.remove(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}
