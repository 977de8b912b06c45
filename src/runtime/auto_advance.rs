//! Jumping a paused clock once nothing of the runtime can run.
//!
//! With `Builder::start_paused`, time stands still while anything can run
//! and jumps to the next timer when nothing can. "Nothing can run" spans
//! the whole runtime: every worker asleep (`idle/`), no queued task, no
//! blocking closure running or queued (`blocking_pool.rs`), and every
//! `block_on` parked without a pending wake (its state word,
//! `block_on.rs`, registered here while it runs). The last thread to go
//! idle sees that and jumps the clock ([`Shared::auto_advance`]).
//!
//! When workers drive async-io's reactor, a jump also waits for the
//! reactor to deliver what was ready (`worker/reactor.rs`); the count of
//! [`wakings`](Shared::wakings) lets such a jump notice that a thread left
//! idleness while it waited.

use super::blocking_pool::OnIdle;
use super::{block_on, queue, Shared};
use crate::trace::EventKind;
use parking_lot::Mutex;
use slab::Slab;
use std::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Weak};

/// What a paused clock watches besides the workers and the queues, and
/// the lock that makes each jump one step.
pub(super) struct AutoAdvance {
    /// The state words of the `block_on` calls running on this runtime
    /// (the paused clock must not jump while one is polling or woken).
    block_ons: Mutex<Slab<Arc<AtomicU8>>>,
    /// Held across the whole check-advance-fire of `auto_advance`, so two
    /// idle threads cannot both advance past the same timers.
    advancing: Mutex<()>,
    /// With a paused clock: how many times a thread of the runtime left
    /// idleness (a napping worker woke, a `block_on` started or resumed).
    /// A jump that first waited for reactor rounds checks that none did
    /// meanwhile (`worker/reactor.rs`).
    wakings: AtomicU64,
}

/// Keeps a `block_on` state word registered; see `Shared::register_block_on`.
pub(crate) struct BlockOnRegistration<'a> {
    shared: &'a Shared,
    key: usize,
}

impl Drop for BlockOnRegistration<'_> {
    fn drop(&mut self) {
        let state = self.shared.advance.block_ons.lock().remove(self.key);
        drop(state);
    }
}

impl AutoAdvance {
    pub(super) fn new() -> AutoAdvance {
        AutoAdvance {
            block_ons: Mutex::new(Slab::new()),
            advancing: Mutex::new(()),
            wakings: AtomicU64::new(0),
        }
    }
}

/// What the blocking pool calls when it falls idle, with a paused clock:
/// wake a sleeping worker, which checks whether the clock may jump now
/// (`blocking_pool.rs`, "The paused clock"). It holds the runtime weakly,
/// so that an idle pool thread never keeps a dropped runtime's state
/// alive.
pub(super) fn on_blocking_pool_idle(runtime: Weak<Shared>) -> OnIdle {
    Box::new(move || {
        if let Some(shared) = runtime.upgrade() {
            shared.idle.notify_timer();
        }
    })
}

impl Shared {
    /// Registers a `block_on` state word until the guard drops.
    pub(crate) fn register_block_on(&self, state: Arc<AtomicU8>) -> BlockOnRegistration<'_> {
        self.left_idleness();
        let key = self.advance.block_ons.lock().insert(state);
        BlockOnRegistration { shared: self, key }
    }

    /// A thread of the runtime leaves idleness (see `wakings`): a napping
    /// worker woke, or a `block_on` starts or resumes. Counted only with a
    /// paused clock, before the thread does anything.
    pub(crate) fn left_idleness(&self) {
        if self.timers.clock().is_paused() {
            self.advance.wakings.fetch_add(1, SeqCst);
        }
    }

    /// How many times a thread of the runtime left idleness so far.
    pub(crate) fn wakings(&self) -> u64 {
        self.advance.wakings.load(SeqCst)
    }

    /// Whether nothing of the runtime can run: every worker asleep, every
    /// `block_on` parked without a pending wake, no queued task, no
    /// blocking closure running or queued.
    pub(crate) fn everyone_idle(&self) -> bool {
        fence(SeqCst);
        self.idle.num_sleeping() == self.workers
            && !queue::any_work(&self.injector, &self.stealers)
            && self
                .advance
                .block_ons
                .lock()
                .iter()
                .all(|(_, s)| s.load(SeqCst) == block_on::PARKED)
            && !self.blocking.is_busy()
    }

    /// With a paused clock: if nothing can run (every worker asleep, every
    /// `block_on` parked without a pending wake, no queued task, no
    /// blocking closure running or queued), jumps the clock to the next
    /// timer and fires it. Returns whether it advanced.
    ///
    /// Called by a worker after it counted itself asleep, and by `block_on`
    /// after it marked itself parked. Each side writes its own state, then
    /// (SeqCst) reads the other's, so the last one to go idle sees everyone
    /// idle. A thread that fires a timer and wakes a `block_on` marks it
    /// `WOKEN` before it can get here itself, so the clock waits for that
    /// `block_on` to poll.
    ///
    /// Workers that drive async-io's reactor call it only after the
    /// reactor delivered what was ready (`worker/reactor.rs`); `block_on`
    /// goes through [`auto_advance_or_defer`](Shared::auto_advance_or_defer).
    pub(crate) fn auto_advance(&self) -> bool {
        self.auto_advance_unless_woken(None)
    }

    /// [`auto_advance`](Shared::auto_advance) that also gives up if a
    /// thread of the runtime left idleness since [`wakings`] read
    /// `since`.
    ///
    /// [`wakings`]: Shared::wakings
    pub(crate) fn auto_advance_unless_woken(&self, since: Option<u64>) -> bool {
        if !self.timers.clock().is_paused() {
            return false;
        }
        let _advancing = self.advance.advancing.lock();
        if !self.everyone_idle() || since.is_some_and(|g| self.wakings() != g) {
            return false;
        }
        let Some(next) = self.timers.next_deadline() else {
            return false;
        };
        let by = next.saturating_duration_since(self.timers.now());
        self.timers.clock().advance_to(next);
        self.record(|| EventKind::ClockJumped { by });
        self.timers.fire_expired();
        true
    }

    /// [`auto_advance`](Shared::auto_advance) for a `block_on` that went
    /// idle. When workers drive async-io's reactor, the clock jumps only
    /// once the reactor has delivered the events that were ready, which a
    /// worker makes sure of before it jumps it: wake a sleeping worker
    /// instead, which falls asleep again and tries (if none sleeps, the
    /// last worker to fall asleep will).
    pub(crate) fn auto_advance_or_defer(&self) -> bool {
        if !self.workers_drive_io() {
            return self.auto_advance();
        }
        if self.timers.clock().is_paused() {
            self.idle.notify_timer();
        }
        false
    }
}
