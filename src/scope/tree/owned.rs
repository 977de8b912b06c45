//! What a scope owns beyond its tasks and children, and what its drain
//! does with it.
//!
//! A scope may own cleanups to run once its work is over (`cleanup.rs`),
//! cancel handlers to call when it is cancelled (`handlers.rs`), daemons
//! it stops rather than waits for (`daemons.rs`), and tasks not yet ready
//! (`Scope::spawn_ready`, counted for the tree view). All of it lives in
//! one [`Owned`], in the node's out-of-line rare part, made at the first
//! use: a scope that uses none of it has no `Owned`, and its life word
//! none of the flags `DAEMONS`, `DEFERRED` and `HANDLING` (`life.rs`).
//!
//! # The drain
//!
//! The life word separates a scope's *drain* (its body, tasks and children
//! have ended) from its *finish* (nothing it owns holds it any more). For a
//! scope that owns nothing they are one change. Otherwise the change that
//! drains it returns `Change::Drained`, and its maker (whoever it is: the
//! scope future, a task's release, a cancel walk, a child leaving) calls
//! [`NodeRef::drained`] once its locks are released, which acts in this
//! order:
//!
//! 1. **Daemons first.** If the scope has daemons, their scope is
//!    cancelled (reason `DaemonStopped`) and given up; it leaves the tree
//!    once its last daemon is dropped, and its leaving is the next change
//!    (`LifeWord::daemons_left`): it finishes the scope, or drains it
//!    again for step 2.
//! 2. **Then cleanups.** If cleanups are registered, the cleanup phase
//!    begins (`cleanup.rs`): a child scope of its own runs them, and its
//!    leaving finishes the scope.
//!
//! Cancel handlers hold the finish, not the drain: a walk running them
//! sets `HANDLING`, and clearing it may be the change that finishes the
//! scope. So a scope's future completes, or its node retires, only once
//! its daemons were dropped, its cleanups ran and its running handlers
//! returned.

use super::cleanup::Cleanup;
use super::handlers::Handlers;
use super::life::DAEMONS;
use super::{Info, Kind, Node, NodeRef, Options, Place};
use crate::panic::{drop_catching, keep_first, Panic};
use std::sync::Arc;

/// What a scope owns beyond its tasks and children; see the module docs.
#[derive(Default)]
pub(crate) struct Owned {
    /// Registered cleanups, oldest first; taken whole when the cleanup
    /// phase begins.
    pub(super) cleanups: Vec<Cleanup>,
    /// Cancel handlers, by the key their guards hold.
    pub(super) handlers: Handlers,
    /// The daemons' scope, once the first daemon was spawned: the tree
    /// reference of that scope (it has no future of its own), given up
    /// when the drain stops it.
    pub(super) daemons: Option<NodeRef>,
    /// Tasks spawned with `spawn_ready` that have not said they are ready.
    pub(super) not_ready: usize,
    /// A `try_scope`'s error was recorded: its cleanups are told
    /// `Failed`.
    pub(super) failed: bool,
}

impl Owned {
    /// How many cleanups wait for the scope's end, cancel handlers for a
    /// cancel, and tasks to be ready (the tree view).
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        (self.cleanups.len(), self.handlers.waiting(), self.not_ready)
    }

    /// Drops what the scope still held when its node is freed (cleanups
    /// and handlers that never ran), catching a panic of each; returns the
    /// first.
    pub(super) fn drop_user_values(self) -> Option<Panic> {
        let Owned {
            cleanups,
            handlers,
            daemons,
            ..
        } = self;
        let mut caught = None;
        for cleanup in cleanups {
            if let Some(panic) = drop_catching(cleanup) {
                keep_first(&mut caught, panic);
            }
        }
        if let Some(panic) = handlers.drop_user_values() {
            keep_first(&mut caught, panic);
        }
        drop(daemons);
        caught
    }
}

impl NodeRef {
    /// Opens the hidden child scope that runs what this scope owns (its
    /// daemons, its cleanups), named `name` in the tree view and located
    /// where this scope is; not recorded: the timeline shows it by kind.
    pub(super) fn open_owned_child(&self, kind: Kind, name: &str, supervises: bool) -> NodeRef {
        let options = Options {
            supervises,
            limit: None,
            info: Some(Box::new(Info {
                name: Some(Arc::from(name)),
                locals: Vec::new(),
            })),
        };
        Node::open_unrecorded(Place::Under(self.as_ptr()), kind, self.location, options)
    }

    /// Counts a task of `spawn_ready` that starts (`+1`), or that said it
    /// is ready or ended before (`-1`), for the tree view.
    pub(crate) fn count_not_ready(&self, change: isize) {
        let mut st = self.state.lock();
        let owned = st.owned();
        owned.not_ready = owned.not_ready.wrapping_add_signed(change);
    }

    /// The maker of a `Change::Drained` acts on what the scope owns (the
    /// module docs' steps), with no lock held.
    #[cold]
    pub(super) fn drained(&self) {
        if self.life.load().has(DAEMONS) {
            self.stop_daemons();
        } else {
            self.begin_cleanups();
        }
    }
}
