//! A scope's concurrency limit: at most `max` of its tasks have started
//! and not ended; the others wait in the scope, in spawn order, never
//! polled, until a slot frees.
//!
//! A limited scope keeps a [`Limit`] in its node's rare part, under the
//! node's lock like the rest of its state. Its words:
//!
//! - a task *holds a slot* from the moment it is started (handed to a run
//!   queue or the blocking pool) until it is released; so does a [`Slot`]
//!   handed out to a `slot()` waiter until it is spent on a spawn or
//!   given back. `held` counts both, and never exceeds `max`;
//! - a *queued* task was spawned while every slot was held: it is counted
//!   live in the life word (it keeps the scope open, and a cancel reaches
//!   it), but it sits in the limit's queue instead of the node's task
//!   list, and no run queue has it;
//! - a *waiter* is a `slot()` future waiting for a slot, in the order it
//!   began waiting; a waiter that was *granted* a slot holds it (counted
//!   in `held`) until its future takes it.
//!
//! **Rule "queued before waiters".** A freed slot goes to the first live
//! queued task, else to the first waiter, else back to the pool of free
//! slots. Queued tasks were accepted by the scope already; a waiter has
//! not committed anything yet (an accept loop that waits before it
//! accepts). So `held < max` only while nothing is queued and nobody
//! waits, and a spawn, `try_spawn` or `slot()` that finds a free slot
//! takes it without looking further.
//!
//! **Which list a task is on, and who knows it.** A started task is on the
//! node's task list; a queued one is in the queue. Each task of a limited
//! scope carries a [`SlotCell`] in its binding that says which, written
//! and read only under the node's lock: by the spawn or the handoff that
//! starts it, and by its release. A queued task cancelled through its
//! handle is released (its cell says queued): it leaves its entry behind,
//! which the next handoff skips (its task is `COMPLETE`) and drops. So
//! every operation is O(1), or amortized O(1) for the skipped entries.
//!
//! **The cancel walk.** A cancel takes the queue with the task list
//! (invariant 4: from the mark on, both are the walk's), and the walk
//! cancels its queued tasks with the others: never polled, each claimed
//! and dropped once, by the walk or by a handle's cancel that claimed it
//! first. The walk wakes every waiter, which then finds the scope
//! cancelled. A cancelled scope starts nothing: a release after the mark
//! only gives its slot up.
//!
//! [`Slot`]: crate::Slot

use super::life::Phase;
use super::{AfterUnlock, Guarded, Node, NodeRef, Rare};
use crate::cancelled::{CancelReason, Cancelled};
use crate::loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use crate::task::{TaskId, TaskList, TaskRef};
use slab::Slab;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::task::Waker;

/// Whether a limited scope's task holds a slot (started) or waits in the
/// queue; kept in the task's binding, written and read only under the
/// node's lock (see the module docs).
#[derive(Default)]
pub(crate) struct SlotCell(AtomicBool);

impl SlotCell {
    fn started(&self) -> bool {
        self.0.load(Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Relaxed);
    }
}

/// A limited scope's slots, queue and waiters (the module docs).
pub(crate) struct Limit {
    max: usize,
    /// Slots held: by started tasks not yet released, and by slots handed
    /// out and not yet spent or given back.
    held: usize,
    /// Queued tasks not yet started, released or taken by a walk (the
    /// queue may hold more entries: those of released tasks).
    queued: usize,
    queue: VecDeque<Queued>,
    waiters: Slab<Waiter>,
    /// Waiters not yet granted, in the order they began: a key and its
    /// ticket (a key reused by a later waiter has another ticket).
    order: VecDeque<(usize, u64)>,
    next_ticket: u64,
}

/// A task in the queue: the list reference, and where its cell is (inside
/// the task, alive while `task` is).
struct Queued {
    task: TaskRef,
    cell: NonNull<SlotCell>,
}

// SAFETY: the cell pointer is into the task that `task` keeps alive, and
// it is followed only under the node's lock.
unsafe impl Send for Queued {}

struct Waiter {
    waker: Option<Waker>,
    ticket: u64,
    granted: bool,
}

/// Where a spawn into a limited scope put its task.
#[must_use]
pub(crate) enum Admitted {
    /// It holds a slot and is on the task list: the caller runs it.
    Started,
    /// It waits in the queue: nobody runs it yet.
    Queued,
}

/// Why [`NodeRef::try_admit`] refused.
pub(crate) enum Refusal {
    /// Every slot is held.
    Full,
    /// The scope is cancelled, or has ended.
    Closed(Cancelled),
}

/// What a waiter found when polled.
pub(crate) enum SlotWait {
    /// A slot is its (counted in `held`, where the scope is limited).
    Granted,
    /// Registered under this key.
    Waiting(usize),
    /// The scope is cancelled, or has ended: no slot will come.
    Closed(Cancelled),
}

/// A task made under the node's lock by [`NodeRef::try_admit`]'s caller.
pub(crate) struct Made<R> {
    pub(crate) task: TaskRef,
    /// Its cell, if it is a limited scope's task.
    pub(crate) cell: Option<NonNull<SlotCell>>,
    pub(crate) handle: R,
}

impl Limit {
    pub(crate) fn new(max: usize) -> Limit {
        Limit {
            max,
            held: 0,
            queued: 0,
            queue: VecDeque::new(),
            waiters: Slab::new(),
            order: VecDeque::new(),
            next_ticket: 0,
        }
    }

    /// The limit, and the tasks queued now (the tree view).
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.max, self.queued)
    }

    fn has_free_slot(&self) -> bool {
        self.held < self.max
    }

    /// A slot was freed (a started task released, a slot given back) in a
    /// scope that is not cancelled: hands it on by rule "queued before
    /// waiters". Returns the task to start, which the caller has listed
    /// nowhere else: it is on `tasks` now, and the returned reference is
    /// for its run queue. Entries of released tasks are dropped through
    /// `after`.
    fn hand_on(&mut self, tasks: &mut TaskList, after: &mut AfterUnlock) -> Option<TaskRef> {
        let mut skipped = TaskList::default();
        let started = loop {
            let Some(next) = self.queue.pop_front() else {
                break None;
            };
            if next.task.is_complete() {
                // Cancelled through its handle: its release (before or
                // after this) counts it; the entry goes.
                skipped.push(next.task);
                continue;
            }
            // SAFETY: the cell is inside the task `next.task` keeps alive,
            // and we hold the node's lock.
            unsafe { next.cell.as_ref() }.start();
            self.queued -= 1;
            let run = next.task.clone();
            tasks.push(next.task);
            break Some(run);
        };
        if !skipped.is_empty() {
            after.drop_tasks(skipped);
        }
        if started.is_some() {
            return started;
        }
        while let Some((key, ticket)) = self.order.pop_front() {
            match self.waiters.get_mut(key) {
                Some(w) if w.ticket == ticket && !w.granted => {
                    w.granted = true;
                    if let Some(waker) = w.waker.take() {
                        after.wake(waker);
                    }
                    return None;
                }
                _ => {} // gone, and its key maybe reused
            }
        }
        self.held -= 1;
        None
    }

    /// The walk takes the queue onto the list it cancels (invariant 4),
    /// and wakes every waiter, which will find the scope cancelled.
    fn take_for_walk(&mut self, tasks: &mut TaskList, after: &mut AfterUnlock) {
        for queued in self.queue.drain(..) {
            tasks.push(queued.task);
        }
        self.queued = 0;
        self.order.clear();
        for (_, waiter) in self.waiters.iter_mut() {
            if let Some(waker) = waiter.waker.take() {
                after.wake(waker);
            }
        }
    }

    /// A finished node is retired: its queue holds only entries of
    /// released tasks (all its tasks ended), and its waiters learn that no
    /// slot will come.
    fn retire(&mut self, after: &mut AfterUnlock) {
        let mut ended = TaskList::default();
        for queued in self.queue.drain(..) {
            ended.push(queued.task);
        }
        if !ended.is_empty() {
            after.drop_tasks(ended);
        }
        for (_, waiter) in self.waiters.iter_mut() {
            if let Some(waker) = waiter.waker.take() {
                after.wake(waker);
            }
        }
    }

    /// The wakers it still holds, to drop as the node is freed.
    pub(super) fn into_wakers(self) -> impl Iterator<Item = Waker> {
        self.waiters.into_iter().filter_map(|(_, w)| w.waker)
    }
}

impl Guarded {
    /// The node's limit, if the scope has one.
    pub(super) fn limit(&mut self) -> Option<&mut Limit> {
        self.rare.as_mut().and_then(|r| r.limit.as_deref_mut())
    }
}

impl NodeRef {
    /// Gives a node just opened with a limit its state: its rare part
    /// holds the limit from the start. Nobody else has the node yet (the
    /// lock is uncontended).
    #[cold]
    #[inline(never)]
    pub(super) fn set_limit(&self, max: usize) {
        self.state.lock().rare().limit = Some(Box::new(Limit::new(max)));
    }
}

impl Rare {
    /// The walk's part (under the node's lock): see [`Limit::take_for_walk`].
    pub(super) fn take_limit_for_walk(&mut self, tasks: &mut TaskList, after: &mut AfterUnlock) {
        if let Some(limit) = self.limit.as_deref_mut() {
            limit.take_for_walk(tasks, after);
        }
    }

    /// Retiring's part (under the node's lock): see [`Limit::retire`].
    pub(super) fn retire_limit(&mut self, after: &mut AfterUnlock) {
        if let Some(limit) = self.limit.as_deref_mut() {
            limit.retire(after);
        }
    }
}

impl Node {
    /// Whether the scope was opened with a limit (fixed at open).
    #[inline]
    pub(crate) fn is_limited(&self) -> bool {
        self.limited
    }

    /// A limited scope's task was released (the caller holds the lock,
    /// `st`): unlists it from where its cell says it is (unless the scope
    /// is cancelled: invariant 4), and hands its slot on if it held one.
    /// Returns the list's reference to drop, and a task to start once the
    /// lock is released.
    pub(super) fn release_slot(
        &self,
        st: &mut Guarded,
        id: TaskId,
        cell: &SlotCell,
        cancelled: bool,
        after: &mut Option<AfterUnlock>,
    ) -> (Option<TaskRef>, Option<TaskRef>) {
        let started = cell.started();
        let Guarded { tasks, rare, .. } = st;
        let limit = rare
            .as_mut()
            .and_then(|r| r.limit.as_deref_mut())
            .expect("a limited scope keeps its limit");
        if cancelled {
            // The walk took both lists; nothing starts any more.
            if started {
                limit.held -= 1;
            }
            return (None, None);
        }
        if !started {
            // Cancelled through its handle while queued: its entry stays
            // behind, for a handoff or the walk to drop.
            limit.queued -= 1;
            return (None, None);
        }
        // SAFETY: a started task of a scope not cancelled is on the list.
        let unlisted = unsafe { tasks.remove(id) };
        let start = limit.hand_on(tasks, after.get_or_insert_with(AfterUnlock::default));
        (Some(unlisted), start)
    }
}

impl NodeRef {
    /// [`add_task`](NodeRef::add_task) for a limited scope: the task
    /// starts if a slot is free, else waits in the queue. `cell` is the
    /// task's (inside `task`).
    pub(crate) fn add_limited_task(
        &self,
        task: TaskRef,
        cell: NonNull<SlotCell>,
    ) -> Result<Admitted, (Cancelled, TaskRef)> {
        let mut st = match self.admit() {
            Ok(st) => st,
            Err(cancelled) => return Err((cancelled, task)),
        };
        let Guarded { tasks, rare, .. } = &mut *st;
        let limit = rare
            .as_mut()
            .and_then(|r| r.limit.as_deref_mut())
            .expect("a limited scope keeps its limit");
        if limit.has_free_slot() {
            limit.held += 1;
            // SAFETY: the cell is inside `task`, alive; we hold the lock.
            unsafe { cell.as_ref() }.start();
            tasks.push(task);
            Ok(Admitted::Started)
        } else {
            limit.queued += 1;
            limit.queue.push_back(Queued { task, cell });
            Ok(Admitted::Queued)
        }
    }

    /// Lists a task only if it starts now: for `try_spawn`. Under the
    /// node's lock, refuses if the scope is cancelled or ended, or (when
    /// limited) has no free slot, handing `value` back; else makes the
    /// task with `make(value)`, counts and lists it (taking a slot), and
    /// returns it with the reference for the run queue. No user code runs
    /// in `make`: it moves the future into a new task.
    pub(crate) fn try_admit<V, R>(
        &self,
        value: V,
        make: impl FnOnce(V) -> Made<R>,
    ) -> Result<(TaskRef, R), (Refusal, V)> {
        let publishing = self.life.load().phase() == Phase::Unpublished;
        self.publish();
        let mut st = self.state.lock();
        if let Some(cancelled) = self.refusal(&st, publishing) {
            return Err((Refusal::Closed(cancelled), value));
        }
        if st.limit().is_some_and(|l| !l.has_free_slot()) {
            return Err((Refusal::Full, value));
        }
        if !self.life.add_task() {
            let ended = Cancelled::new(CancelReason::ScopeEnded);
            return Err((Refusal::Closed(ended), value));
        }
        let made = make(value);
        if let Some(limit) = st.limit() {
            limit.held += 1;
        }
        if let Some(cell) = made.cell {
            // SAFETY: the cell is inside the new task, alive; we hold the
            // lock.
            unsafe { cell.as_ref() }.start();
        }
        st.tasks.push(made.task.clone());
        Ok((made.task, made.handle))
    }

    /// Lists a task that a granted slot pays for (`Slot::spawn`): the
    /// slot becomes the task's. Refused like a spawn if the scope is
    /// cancelled or ended; then the slot is given back.
    pub(crate) fn add_task_with_slot(
        &self,
        task: TaskRef,
        cell: NonNull<SlotCell>,
    ) -> Result<(), (Cancelled, TaskRef)> {
        match self.admit() {
            Ok(mut st) => {
                // SAFETY: the cell is inside `task`, alive; we hold the
                // lock.
                unsafe { cell.as_ref() }.start();
                st.tasks.push(task);
                Ok(())
            }
            Err(cancelled) => {
                // The guard is gone: giving the slot back takes the lock.
                self.give_back_slot();
                Err((cancelled, task))
            }
        }
    }

    /// A waiter for a slot looks (`key`: its registration, if any): a slot
    /// is granted now or was granted, or it registers `waker`; or it
    /// learns that the scope is cancelled or ended. A scope without a
    /// limit grants at once (it counts nothing).
    pub(crate) fn poll_slot(&self, key: Option<usize>, waker: &Waker) -> SlotWait {
        if !self.cancelled.is_set() && self.is_cancelled() {
            self.adopt_ancestors_cancel();
        }
        // Waiting needs the node in the tree, where a cancel reaches it.
        if key.is_none() && self.is_limited() {
            self.publish();
        }
        let mut granted_late = false;
        let wait = self.with(|st, after| {
            let closed = if self.cancelled.is_set() {
                Some(self.cancel_value_locked(st))
            } else if self.life.load().phase() == Phase::Removed || self.life.load().is_finished() {
                Some(Cancelled::new(CancelReason::ScopeEnded))
            } else {
                None
            };
            let Some(limit) = st.limit() else {
                return match closed {
                    Some(cancelled) => SlotWait::Closed(cancelled),
                    None => SlotWait::Granted,
                };
            };
            if let Some(key) = key {
                let waiter = limit.waiters.get_mut(key).expect("our registration");
                if waiter.granted {
                    limit.waiters.remove(key);
                    if closed.is_some() {
                        // Held for us, but no spawn will be let in.
                        granted_late = true;
                    } else {
                        return SlotWait::Granted;
                    }
                } else if closed.is_none() {
                    match &mut waiter.waker {
                        Some(w) if w.will_wake(waker) => {}
                        slot => {
                            if let Some(old) = slot.replace(waker.clone()) {
                                after.drop_waker(old);
                            }
                        }
                    }
                    return SlotWait::Waiting(key);
                } else if let Some(old) = limit.waiters.remove(key).waker {
                    after.drop_waker(old);
                }
            }
            if let Some(cancelled) = closed {
                return SlotWait::Closed(cancelled);
            }
            if limit.has_free_slot() {
                limit.held += 1;
                return SlotWait::Granted;
            }
            let ticket = limit.next_ticket;
            limit.next_ticket += 1;
            let key = limit.waiters.insert(Waiter {
                waker: Some(waker.clone()),
                ticket,
                granted: false,
            });
            limit.order.push_back((key, ticket));
            SlotWait::Waiting(key)
        });
        if granted_late {
            self.give_back_slot();
        }
        wait
    }

    /// A waiter registered under `key` goes away (its future was dropped):
    /// a slot granted to it meanwhile is handed on.
    pub(crate) fn forget_slot_waiter(&self, key: usize) {
        let granted = self.with(|st, after| {
            let limit = st.limit()?;
            let waiter = limit.waiters.try_remove(key)?;
            if let Some(waker) = waiter.waker {
                after.drop_waker(waker);
            }
            Some(waiter.granted)
        });
        if granted == Some(true) {
            self.give_back_slot();
        }
    }

    /// A slot held outside any task (a `Slot`, a granted waiter) is given
    /// back: handed on, unless the scope is cancelled (then nothing
    /// starts). The caller holds a reference to the node, which keeps it
    /// alive while the task it starts is pushed.
    pub(crate) fn give_back_slot(&self) {
        let start = self.with(|st, after| {
            let cancelled = self.cancelled.is_set();
            let Guarded { tasks, rare, .. } = st;
            let limit = rare.as_mut().and_then(|r| r.limit.as_deref_mut())?;
            if cancelled {
                limit.held -= 1;
                return None;
            }
            limit.hand_on(tasks, after)
        });
        if let Some(task) = start {
            task.schedule();
        }
    }
}
