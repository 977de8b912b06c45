//! The pending timers of one runtime, in one ordered map keyed by deadline.
//!
//! A timer is just a [`Waker`] to call at an instant. Sleeps register their
//! task's waker; scope deadlines register a waker that cancels the scope.
//! Workers fire expired timers before they park, and every
//! [`GLOBAL_QUEUE_INTERVAL`](crate::queue::GLOBAL_QUEUE_INTERVAL) tasks
//! while busy. Wakers are always called after the map's lock is released.

use super::clock::Clock;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

/// A timer's key: its deadline, then a sequence number for ties.
pub(crate) type TimerKey = (Instant, u64);

pub(crate) struct Timers {
    clock: Clock,
    map: Mutex<TimerMap>,
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
        let waker = self.map.lock().entries.remove(&key);
        drop(waker);
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
        let expired = Self::take_expired(&mut self.map.lock(), self.clock.now());
        Self::wake_all(expired)
    }

    /// Like `fire_expired`, but skips if another thread holds the lock (a
    /// busy worker's periodic check must not queue behind another).
    pub(crate) fn fire_if_free(&self) {
        if let Some(mut map) = self.map.try_lock() {
            let expired = Self::take_expired(&mut map, self.clock.now());
            drop(map);
            Self::wake_all(expired);
        }
    }

    fn take_expired(map: &mut TimerMap, now: Instant) -> BTreeMap<TimerKey, Waker> {
        match map.entries.first_key_value() {
            Some((k, _)) if k.0 <= now => {
                let later = map.entries.split_off(&(now, u64::MAX));
                std::mem::replace(&mut map.entries, later)
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
        let entries = std::mem::take(&mut self.map.lock().entries);
        for (_, waker) in entries {
            // A waker is user code; a timer belongs to no scope.
            if let Some(panic) = crate::panic::drop_catching(waker) {
                crate::panic::drop_payload(panic);
            }
        }
    }
}
