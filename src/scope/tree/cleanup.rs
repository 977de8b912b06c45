//! Cleanups bound to a scope (`Scope::defer`): registered while the scope
//! runs, run in a phase of their own once it has drained.
//!
//! Registering one publishes the scope (a scope whose cleanups are still
//! to run must keep its parent waiting: invariant 2) and sets `DEFERRED`
//! in its life word, under its lock, by a compare-and-swap that refuses a
//! scope already drained, cleaning or retired: so a registration either
//! comes before the drain, whose maker then sees `DEFERRED`, or is refused.
//!
//! The drain's maker begins the *cleanup phase* ([`NodeRef::begin_cleanups`]):
//! under the scope's lock it opens the phase's own scope, a shielded child
//! (the scope's cancel, and its ancestors', do not reach the cleanups;
//! only a shutdown does), takes the cleanups, reads how the scope ended
//! ([`ScopeEnd`]), and turns the scope `Cleaning` with the phase's scope
//! counted as its child, in one change of the life word. From then on the
//! scope refuses tasks and cleanups. The scope layer runs the cleanups as
//! one task of the phase's scope (`scope/defer.rs`), newest first, each in
//! a scope of its own below it; the phase's scope has no future, so it
//! leaves the tree when that task ends, and its leaving finishes the scope.
//!
//! A cleanup's panic is kept in the scope ([`NodeRef::keep_cleanup_panic`]):
//! the first panic of the scope wins, and the scope's own work ended
//! before its cleanups began, so a panic of its body or tasks wins over a
//! cleanup's. The scope future resumes it; if that future was dropped, the
//! panic goes to the nearest open ancestor instead, as every panic of user
//! code with no future to resume it does (`panic.rs`).

use super::children::link_first;
use super::life::{Body, INTERRUPTED, PANICKED};
use super::{Guarded, Kind, NodeRef};
use crate::cancelled::CancelReason;
use crate::panic::Panic;
use crate::scope::ScopeEnd;
use crate::trace::ScopeKind;
use std::future::Future;
use std::pin::Pin;

/// The scope a cleanup runs in, ready to be polled (the scope layer's
/// scope future, boxed, its result ignored).
pub(crate) type CleanupFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A registered cleanup: given how the scope ended, it makes the scope it
/// runs in.
pub(crate) type Cleanup = Box<dyn FnOnce(ScopeEnd) -> CleanupFuture + Send>;

impl NodeRef {
    /// Registers `cleanup`, or hands it back if the scope is already
    /// finishing (drained, cleaning or retired).
    pub(crate) fn defer(&self, cleanup: Cleanup) -> Result<(), Cleanup> {
        self.publish();
        let mut st = self.state.lock();
        if !self.life.defer() {
            return Err(cleanup);
        }
        st.owned().cleanups.push(cleanup);
        Ok(())
    }

    /// Notes that a `try_scope`'s error was recorded, so that its cleanups
    /// are told `Failed`.
    pub(crate) fn note_failure(&self) {
        self.state.lock().owned().failed = true;
    }

    /// Begins the cleanup phase (the module docs), for the maker of the
    /// drain, with no lock held.
    pub(super) fn begin_cleanups(&self) {
        let phase = self.open_owned_child(Kind::Shielded, "cleanups", false);
        let (cleanups, end) = {
            let mut st = self.state.lock();
            // Invariant 5: the parent's lock, then the child's.
            let _phase_st = phase.state.lock();
            let cleanups = std::mem::take(&mut st.owned().cleanups);
            let end = self.ending(&st);
            // Recorded before it joins the tree, as every opening is.
            if self.shared().records() {
                phase.record_open(ScopeKind::Cleanups);
            }
            self.life.begin_cleanups();
            let published = phase.life.publish();
            debug_assert!(published, "a new node publishes");
            // Shielded: only a shutdown reaches the cleanups.
            if self.shared().is_shutdown() {
                phase.cancelled.claim(&CancelReason::Shutdown, None);
            }
            phase.cancelled.published();
            // SAFETY: rule "siblings under the parent's lock": we hold this
            // node's lock; the phase's node is alive and in no list.
            unsafe { link_first(&mut st.first_child, phase.as_ptr()) };
            (cleanups, end)
        };
        crate::scope::run_cleanups(phase, self.clone(), end, cleanups);
    }

    /// How the scope ended, for its cleanups (under its lock, once it
    /// drained: nothing of it changes that any more).
    fn ending(&self, st: &Guarded) -> ScopeEnd {
        let life = self.life.load();
        if life.has(PANICKED) {
            return ScopeEnd::Panicked;
        }
        let failed = st
            .rare
            .as_ref()
            .and_then(|r| r.owned.as_ref())
            .is_some_and(|o| o.failed);
        if failed {
            return ScopeEnd::Failed;
        }
        if !self.cancelled.is_set() {
            return ScopeEnd::Completed { cancel: None };
        }
        let cancelled = self.cancel_value_locked(st);
        // The scope's result rule (`waiters.rs`): `Err` only if the cancel
        // cut something short; a dropped future's body was.
        if life.has(INTERRUPTED) || life.body() == Body::Dropped {
            ScopeEnd::Cancelled(cancelled)
        } else {
            ScopeEnd::Completed {
                cancel: Some(cancelled),
            }
        }
    }

    /// Keeps a cleanup's panic: in this scope, which its cleanup phase
    /// holds open, if its future is there to resume it (the first panic of
    /// the scope wins); else in the nearest open ancestor.
    pub(crate) fn keep_cleanup_panic(&self, panic: Panic) {
        if self.life.load().body() == Body::Dropped {
            return self.pass_panic_up(panic);
        }
        let mut after = super::AfterUnlock::default();
        self.store_panic(&mut self.state.lock(), panic, &mut after);
        // Only payloads: `store_panic` leaves no waker to drop.
        if let Some(panic) = after.run() {
            crate::panic::drop_payload(panic);
        }
    }
}
