//! Cancel handlers (`Scope::on_cancel`): closures run once, with no lock
//! held, when the scope is cancelled.
//!
//! A handler is registered under the scope's lock, after publishing the
//! scope (a cancel must reach it through the tree: invariant 2). If the
//! scope is cancelled already, it is not registered but run at once, on
//! the registering thread. Otherwise it waits in a slot of the scope's
//! [`Handlers`], under the key its guard holds.
//!
//! **Rule "handlers before the end".** The walk that marked a scope takes its
//! waiting handlers under the scope's lock, in step 1 of its expansion (they
//! are *claimed*, for this thread, and `HANDLING` holds the scope open), and
//! runs them in step 2, before it drops the scope's tasks and wakes its
//! future: so a task that registered a handler is still alive when the handler
//! runs, and the scope cannot finish before its handlers returned. A
//! registration sees the mark under the same lock, so it either comes before
//! the walk's step 1 (and the walk claims it) or sees the scope cancelled (and
//! runs it at once): a handler runs exactly once. Each handler is taken out of
//! its slot under the lock just before it runs, and its slot says when it
//! returned.
//!
//! Dropping the guard removes a handler that has not run, so it never
//! will. If the handler is running, or claimed, on another thread, the
//! drop waits for it to return (a condition variable of the scope's); on
//! the thread that runs it (a handler dropping its own guard, or a guard
//! dropped by a future the handler drops) it does not wait, which would
//! never end: a claimed handler not yet started is then removed, and a
//! running one's slot is freed when it returns.
//!
//! A handler's panic goes to the scope, like a task's: the scope is
//! cancelled already, and resumes it at its end.

use super::after_unlock::AfterUnlock;
use super::life::Phase;
use super::tasks::Settled;
use super::{Guarded, Node, NodeRef};
use crate::cancelled::Cancelled;
use crate::loom::sync::Condvar;
use crate::loom::thread::{current_id, ThreadId};
use crate::panic::{drop_catching, keep_first, Panic};
use slab::Slab;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A cancel handler: called once with the scope's cancellation.
pub(crate) type Handler = Box<dyn FnOnce(&Cancelled) + Send>;

/// A scope's cancel handlers, by key.
#[derive(Default)]
pub(super) struct Handlers {
    slots: Slab<Slot>,
    /// Notified when a claimed handler returns; made by the first guard
    /// that waits for one.
    returned: Option<Arc<Condvar>>,
}

/// Where one handler is.
enum Slot {
    /// Registered; no cancel has come.
    Waiting(Handler),
    /// Taken by the walk on this thread, which will run it.
    Claimed(Handler, ThreadId),
    /// Running on this thread; `guard_gone` if its guard was dropped
    /// meanwhile on that same thread (then the runner frees the slot).
    Running { on: ThreadId, guard_gone: bool },
    /// It ran; the guard frees the slot.
    Returned,
}

/// The handlers a walk claimed, carried from its step 1 to its step 2 in
/// the node's [`AfterUnlock`].
pub(crate) struct Claimed {
    node: NodeRef,
    keys: Vec<usize>,
    /// Whether `HANDLING` holds the scope open until they returned.
    held: bool,
}

impl Handlers {
    /// How many handlers wait for a cancel (the tree view).
    pub(super) fn waiting(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Waiting(_)))
            .count()
    }

    /// Drops the handlers that never ran, as the node is freed; returns
    /// the first panic of their drops.
    pub(super) fn drop_user_values(self) -> Option<Panic> {
        let mut caught = None;
        for (_, slot) in self.slots {
            if let Some(panic) = drop_catching(slot) {
                keep_first(&mut caught, panic);
            }
        }
        caught
    }
}

impl NodeRef {
    /// Registers `handler` for this scope's cancellation; returns its key,
    /// or `None` if it ran at once (the scope is cancelled) or never will
    /// (the scope ended uncancelled: it is dropped).
    pub(crate) fn on_cancel(&self, handler: Handler) -> Option<usize> {
        // As a spawn does (`add_task`): a registration that published the
        // scope looks at the mark with a read-modify-write, so either it
        // sees an unpublished cancel's mark, or that cancel sees the
        // publication and walks the scope.
        let publishing = self.life.load().phase() == Phase::Unpublished;
        self.publish();
        let mut st = self.state.lock();
        if let Some(value) = self.refusal(&st, publishing) {
            drop(st);
            self.run_handler(handler, &value);
            return None;
        }
        if self.life.load().phase() == Phase::Removed {
            drop(st);
            if let Some(panic) = drop_catching(handler) {
                self.pass_panic(panic);
            }
            return None;
        }
        let slots = &mut st.owned().handlers.slots;
        Some(slots.insert(Slot::Waiting(handler)))
    }

    /// The guard of the handler under `key` was dropped (the module docs).
    pub(crate) fn forget_cancel_handler(&self, key: usize) {
        let me = current_id();
        let mut st = self.state.lock();
        loop {
            let handlers = &mut st.owned().handlers;
            let wait = match handlers.slots.get_mut(key) {
                None => return,
                Some(Slot::Running { on, guard_gone }) if *on == me => {
                    *guard_gone = true;
                    return;
                }
                Some(Slot::Claimed(_, on)) if *on != me => true,
                Some(Slot::Running { .. }) => true,
                Some(Slot::Waiting(_) | Slot::Claimed(..) | Slot::Returned) => false,
            };
            if !wait {
                let slot = handlers.slots.remove(key);
                drop(st);
                if let Some(panic) = drop_catching(slot) {
                    self.pass_panic(panic);
                }
                return;
            }
            let returned = handlers
                .returned
                .get_or_insert_with(|| Arc::new(Condvar::new()))
                .clone();
            returned.wait(&mut st);
        }
    }

    /// Runs `handler` now, with no lock held; its panic goes to the scope.
    fn run_handler(&self, handler: Handler, value: &Cancelled) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler(value))) {
            self.pass_panic(panic);
        }
    }
}

/// Step 1 of a walk's expansion (`cancel.rs`), under the node's lock:
/// claims the waiting handlers for this thread, holds the scope open
/// until they return, and leaves them to step 2 in `after`.
pub(super) fn claim(node: &NodeRef, st: &mut Guarded, after: &mut AfterUnlock) {
    let Some(owned) = st.rare.as_mut().and_then(|r| r.owned.as_deref_mut()) else {
        return;
    };
    let me = current_id();
    let mut keys = Vec::new();
    for (key, slot) in owned.handlers.slots.iter_mut() {
        if let Slot::Waiting(_) = slot {
            let Slot::Waiting(handler) = std::mem::replace(slot, Slot::Returned) else {
                unreachable!()
            };
            *slot = Slot::Claimed(handler, me);
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return;
    }
    let held = node.life.hold_for_handlers();
    after.run_handlers(Box::new(Claimed {
        node: node.clone(),
        keys,
        held,
    }));
}

impl Claimed {
    /// Step 2 (rule "handlers before the end"): runs the claimed handlers one
    /// by one, with no lock held, then lets the scope finish. `after` is the
    /// walk's, for what a retiring node leaves.
    pub(super) fn run(self) {
        let Claimed { node, keys, held } = self;
        let value = node.cancel_value();
        let me = current_id();
        let mut caught = None;
        for key in keys {
            let handler = {
                let mut st = node.state.lock();
                let slots = &mut st.owned().handlers.slots;
                match slots.get_mut(key) {
                    Some(slot @ Slot::Claimed(..)) => {
                        let running = Slot::Running {
                            on: me,
                            guard_gone: false,
                        };
                        match std::mem::replace(slot, running) {
                            Slot::Claimed(handler, _) => handler,
                            _ => unreachable!(),
                        }
                    }
                    // Its guard was dropped on this thread before it ran.
                    _ => continue,
                }
            };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler(&value))) {
                keep_first(&mut caught, panic);
            }
            let mut st = node.state.lock();
            let handlers = &mut st.owned().handlers;
            if let Some(Slot::Running { guard_gone, .. }) = handlers.slots.get(key) {
                if *guard_gone {
                    handlers.slots.remove(key);
                } else {
                    handlers.slots[key] = Slot::Returned;
                }
            }
            if let Some(returned) = &handlers.returned {
                returned.notify_all();
            }
        }
        // To the scope, which is held open (or finished already): it is
        // cancelled, and resumes the panic at its end.
        if let Some(panic) = caught {
            node.pass_panic(panic);
        }
        if held {
            node.handlers_returned();
        }
    }
}

impl NodeRef {
    /// The walk's handlers returned: clears `HANDLING`, and settles the
    /// scope if that finished it (invariant 8).
    fn handlers_returned(&self) {
        if self.life.handlers_done() != super::life::Change::Finished {
            return;
        }
        let mut after = None;
        let settled = self.settle(&mut self.state.lock(), &mut after);
        if let Some(panic) = after.and_then(AfterUnlock::run) {
            self.pass_panic(panic);
        }
        match settled {
            Settled::Wake(waker) => crate::panic::wake_contained(waker),
            Settled::Leave => {
                // SAFETY: the future left its count behind; retiring hands
                // it to us (`settle`).
                Node::leave_tree(unsafe { NodeRef::from_raw(self.as_ptr()) });
            }
            Settled::Done | Settled::Drained(_) => {}
        }
    }
}
