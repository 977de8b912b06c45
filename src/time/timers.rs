//! The pending timers of one runtime, in one ordered map keyed by deadline.
//!
//! A timer is just a [`Waker`] to call at an instant. Sleeps register their
//! task's waker; scope deadlines register a waker that cancels the scope.
//! Workers fire expired timers before they park, and while busy, between
//! two tasks, as often as their [`Pace`](super::pace::Pace) says. Wakers
//! are always called after the map's lock is released.
//!
//! The earliest deadline is also kept outside the lock (`next_due`), so
//! that a busy worker's look costs one load while no timer is pending.

use super::clock::Clock;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::task::Waker;
use std::time::Instant;

/// A timer's key: its deadline, then a sequence number for ties.
pub(crate) type TimerKey = (Instant, u64);

/// [`Timers::next_due`] when no timer is pending.
pub(crate) const NONE_DUE: u64 = u64::MAX;

pub(crate) struct Timers {
    clock: Clock,
    map: Mutex<TimerMap>,
    /// The earliest deadline in the map, in the clock's nanoseconds
    /// ([`Clock::nanos`]), or [`NONE_DUE`]. Written under the map's lock
    /// whenever the earliest entry changes; read without it, where a stale
    /// value only makes a busy worker look a tick early or late.
    next_due: AtomicU64,
}

struct TimerMap {
    entries: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn new(clock: Clock) -> Timers {
        Timers {
            clock,
            map: Mutex::new(TimerMap {
                entries: BTreeMap::new(),
                next_seq: 0,
            }),
            next_due: AtomicU64::new(NONE_DUE),
        }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Adds a timer; returns its key and whether it is now the earliest
    /// (the caller then tells the sleepers: `Shared::timer_set`).
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> (TimerKey, bool) {
        let mut map = self.map.lock();
        let key = (deadline, map.next_seq);
        map.next_seq += 1;
        let earliest = map
            .entries
            .first_key_value()
            .map_or(true, |(k, _)| key < *k);
        map.entries.insert(key, waker);
        if earliest {
            self.next_due.store(self.clock.nanos(deadline), Release);
        }
        (key, earliest)
    }

    /// Refreshes a timer's waker; false if it already fired.
    pub(crate) fn update(&self, key: TimerKey, waker: &Waker) -> bool {
        let old = {
            let mut map = self.map.lock();
            match map.entries.get_mut(&key) {
                Some(w) if w.will_wake(waker) => return true,
                Some(w) => std::mem::replace(w, waker.clone()),
                None => return false,
            }
        };
        drop(old);
        true
    }

    pub(crate) fn remove(&self, key: TimerKey) {
        let waker = {
            let mut map = self.map.lock();
            let waker = map.entries.remove(&key);
            self.publish_due(&map);
            waker
        };
        drop(waker);
    }

    /// The earliest pending deadline in the clock's nanoseconds
    /// ([`Clock::nanos`]), or [`NONE_DUE`]; read without the lock, so it
    /// may be a moment out of date.
    #[inline]
    pub(crate) fn next_due(&self) -> u64 {
        self.next_due.load(Acquire)
    }

    /// Stores the map's earliest deadline in `next_due`; under the lock.
    fn publish_due(&self, map: &TimerMap) {
        let due = map
            .entries
            .first_key_value()
            .map_or(NONE_DUE, |(k, _)| self.clock.nanos(k.0));
        self.next_due.store(due, Release);
    }

    /// Pending timers.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().entries.len()
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.lock().entries.first_key_value().map(|(k, _)| k.0)
    }

    /// Wakes every expired timer; returns whether any fired.
    pub(crate) fn fire_expired(&self) -> bool {
        let expired = self.take_expired(&mut self.map.lock(), self.clock.now());
        Self::wake_all(expired)
    }

    /// Like `fire_expired`, but skips if another thread holds the lock (a
    /// busy worker's look must not queue behind another); returns false
    /// then.
    pub(crate) fn fire_if_free(&self) -> bool {
        let Some(mut map) = self.map.try_lock() else {
            return false;
        };
        let expired = self.take_expired(&mut map, self.clock.now());
        drop(map);
        Self::wake_all(expired);
        true
    }

    fn take_expired(&self, map: &mut TimerMap, now: Instant) -> BTreeMap<TimerKey, Waker> {
        match map.entries.first_key_value() {
            Some((k, _)) if k.0 <= now => {
                let later = map.entries.split_off(&(now, u64::MAX));
                let expired = std::mem::replace(&mut map.entries, later);
                self.publish_due(map);
                expired
            }
            _ => BTreeMap::new(),
        }
    }

    fn wake_all(expired: BTreeMap<TimerKey, Waker>) -> bool {
        let fired = !expired.is_empty();
        for (_, waker) in expired {
            // Contained: a timer belongs to no scope.
            crate::panic::wake_contained(waker);
        }
        fired
    }

    /// Drops every timer (shutdown).
    pub(crate) fn clear(&self) {
        let entries = {
            let mut map = self.map.lock();
            self.next_due.store(NONE_DUE, Release);
            std::mem::take(&mut map.entries)
        };
        for (_, waker) in entries {
            // A waker is user code; a timer belongs to no scope.
            if let Some(panic) = crate::panic::drop_catching(waker) {
                crate::panic::drop_payload(panic);
            }
        }
    }
}
