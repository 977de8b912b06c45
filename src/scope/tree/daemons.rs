//! Daemons (`Scope::spawn_daemon`): tasks a scope does not wait for on
//! their own account, stopped once the rest of its work has ended.
//!
//! A scope's daemons are the tasks of one child scope of its own, its
//! *daemons' scope* (kind [`Kind::Daemons`]), made at the first daemon and
//! kept until the scope drains. That child is an ordinary child for
//! everything but the count: a cancel of the scope reaches it (and its
//! daemons), the tree view and the timeline show it, scope-locals are read
//! through it, its tasks' panics go where a task's go (below). But the
//! parent counts it in its life word's `DAEMONS` flag, not in its
//! children, so the parent drains without it, and the drain's maker
//! stops it ([`NodeRef::stop_daemons`]): cancels it with
//! `CancelReason::DaemonStopped` and gives up its tree reference (the
//! parent held it, as a scope future holds its scope's). It leaves the
//! tree once its last daemon is dropped, and its leaving
//! (`LifeWord::daemons_left`) finishes the parent or begins its cleanups.
//!
//! Stopping the daemons interrupts nothing of the parent's: the daemons'
//! scope has its own `INTERRUPTED` flag, so a scope whose only cancelled
//! work was its daemons ends `Ok`.
//!
//! **Daemon work.** Work started from inside a daemon's poll is daemon
//! work, or the scope would wait for it forever: a scope the daemon opens
//! is a child of the daemons' scope (it is the current scope of the
//! daemon's poll), and a task it spawns into the parent through the
//! parent's `Scope` goes to the daemons' scope instead
//! ([`NodeRef::daemons_polling_here`]; the spawn looks only if the
//! parent has daemons).
//!
//! **Panics.** A daemon's panic goes to the parent, which stores it and is
//! cancelled, as by any task's panic (`tasks.rs`); a panic kept in the
//! daemons' scope (a daemon's drop) goes to the parent when the daemons'
//! scope leaves, before the parent can finish.

use super::children::link_first;
use super::life::{Phase, DAEMONS, PANICKED};
use super::{AfterUnlock, Guarded, Kind, Links, Node, NodeRef};
use crate::cancelled::{CancelReason, Cancelled};
use crate::panic::Panic;
use crate::runtime::context;
use crate::trace::ScopeKind;

impl NodeRef {
    /// The scope's daemons' scope, made with the first daemon; or why the
    /// scope takes no daemon (it is cancelled, finishing or over), as a
    /// spawn would be refused.
    pub(crate) fn daemons(&self) -> Result<NodeRef, Cancelled> {
        // As a spawn does (`add_task`, `handlers.rs`).
        let publishing = self.life.load().phase() == Phase::Unpublished;
        self.publish();
        let mut st = self.state.lock();
        if let Some(cancelled) = self.refusal(&st, publishing) {
            return Err(cancelled);
        }
        // Sets `DAEMONS` if it is not (a new daemons' scope follows).
        if !self.life.add_daemons() {
            return Err(Cancelled::new(CancelReason::ScopeEnded));
        }
        if let Some(owned) = st.rare.as_ref().and_then(|r| r.owned.as_ref()) {
            if let Some(daemons) = &owned.daemons {
                return Ok(daemons.clone());
            }
        }
        let daemons = self.open_owned_child(Kind::Daemons, "daemons", self.supervises);
        self.link_daemons(&mut st, &daemons);
        st.owned().daemons = Some(daemons.clone());
        Ok(daemons)
    }

    /// Publishes the new daemons' scope as this scope's child, counted in
    /// `DAEMONS` (set by the caller), under this scope's lock `st`.
    fn link_daemons(&self, st: &mut Guarded, daemons: &NodeRef) {
        // Invariant 5: the parent's lock, then the child's.
        let _daemons_st = daemons.state.lock();
        if self.shared().records() {
            daemons.record_open(ScopeKind::Daemons);
        }
        let published = daemons.life.publish();
        debug_assert!(published, "a new node publishes");
        // The parent is not cancelled (the caller looked); a shutdown that
        // began may not have reached it yet.
        if self.shared().is_shutdown() {
            daemons.cancelled.claim(&CancelReason::Shutdown, None);
        }
        daemons.cancelled.published();
        // SAFETY: rule "siblings under the parent's lock": we hold this
        // node's lock; the daemons' node is alive and in no list.
        unsafe { link_first(&mut st.first_child, daemons.as_ptr()) };
    }

    /// Stops the daemons: the drain's first step (`owned.rs`).
    pub(super) fn stop_daemons(&self) {
        let daemons = self
            .state
            .lock()
            .owned()
            .daemons
            .take()
            .expect("a scope with `DAEMONS` holds its daemons' scope");
        daemons.cancel(CancelReason::DaemonStopped, Links::Ignore);
        // It has no future: the parent's reference stood for one.
        daemons.future_dropped();
    }

    /// Whether the scope has a daemons' scope (one load).
    #[inline]
    pub(crate) fn has_daemons(&self) -> bool {
        self.life.load().has(DAEMONS)
    }

    /// The daemons' scope of this scope, if the scope being polled on this
    /// thread is in it: a daemon (or a task, or a scope, it started) is
    /// spawning into this scope. Only a scope with daemons asks.
    #[cold]
    #[inline(never)]
    pub(crate) fn daemons_polling_here(&self) -> Option<NodeRef> {
        context::with_current_scope(|current| {
            let mut at = current?;
            loop {
                if at == self.as_ptr() {
                    return None;
                }
                // SAFETY: `with_current_scope` keeps the current node alive
                // while its closure runs, and with it its ancestors (each
                // holds its parent).
                let node = unsafe { at.as_ref() };
                let parent = node.parent.as_ref()?;
                if NodeRef::ptr_eq(parent, self) {
                    // SAFETY: alive, as above; `at` is the current-scope
                    // pointer or a parent's `as_ptr`, both made by rule
                    // "pointers from the box".
                    return (node.kind == Kind::Daemons).then(|| unsafe { NodeRef::clone_raw(at) });
                }
                at = parent.as_ptr();
            }
        })
    }
}

impl Node {
    /// The daemons' scope is leaving the tree, retired (`leave_tree`): a
    /// panic it kept goes to its parent, which cannot have finished (the
    /// `DAEMONS` flag holds it until the leaving). No lock is held.
    pub(super) fn hand_panic_to_parent(&self) {
        let panic: Option<Panic> = {
            let mut st = self.state.lock();
            if self.life.load().has(PANICKED) {
                self.life.clear(PANICKED);
                st.rare.as_mut().and_then(|r| r.panic.take())
            } else {
                None
            }
        };
        let (Some(panic), Some(parent)) = (panic, &self.parent) else {
            return;
        };
        let mut after = AfterUnlock::default();
        parent.store_panic(&mut parent.state.lock(), panic, &mut after);
        // Only payloads: `store_panic` leaves no waker to drop.
        if let Some(panic) = after.run() {
            crate::panic::drop_payload(panic);
        }
    }
}
