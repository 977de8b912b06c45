//! Tasks: a spawned future, its state word, its waker and its `JoinHandle`.
//!
//! A task is one allocation, a `Cell` holding a header (`raw.rs`: the
//! state word of `state.rs`, flags and reference count, and the table of
//! functions that know the task's types), a scheduler `S`, the slot where
//! the output waits for the [`JoinHandle`], and the future. Queues and the
//! scope tree hold it as a `TaskRef`, a thin pointer to the header. The
//! task knows nothing of scopes or of the runtime: it reaches both through
//! the small `Schedule` trait.
//!
//! # Who may touch which field, and when
//!
//! - **Rule "one owner of the future".** `future` is read or written only by
//!   the thread that claimed it: the runner that moved the state word to
//!   `RUNNING`, until it clears `RUNNING`; or the canceller that moved an idle
//!   task to `COMPLETE`, until it has dropped the future. The state word's
//!   `AcqRel` transitions order one owner's accesses before the next owner's.
//! - **Rule "output through the join slot".** `join` is behind its own mutex;
//!   whoever sets `COMPLETE` writes the output there (only if `JOIN_HANDLE`
//!   was set), and the `JoinHandle` takes it. An output sits in the slot only
//!   while the handle holds its reference: the handle's drop clears
//!   `JOIN_HANDLE` and takes an output already there, and a completer that
//!   comes later stores none. So a task is never freed with an output in it:
//!   an output is dropped by its handle, or never, if the handle is forgotten
//!   (its reference then keeps the task's memory for good). The borrowing
//!   scopes rely on this (`scope/borrowed/`).
//! - **Rule "scheduler fixed at spawn".** `scheduler` is immutable after
//!   spawn.
//! - Wakes follow rule "push before release", defined in `state.rs`: a
//!   waker pushes an idle task through `scheduler` while it holds
//!   `PUSHING`, and `release` waits for it. A runner requeues a task it
//!   polled itself.
//! - **Rule "every reference counts".** Every `TaskRef`, waker and
//!   `JoinHandle` owns one count of the state word; the one that drops the
//!   count to zero frees the allocation (`dealloc`), after every other
//!   holder's last access (the count's `AcqRel` decrements order them).
//!
//! # Public items
//!
//! [`JoinHandle`], [`TaskCancelHandle`], `yield_now()` and [`YieldNow`],
//! and the budget's `unconstrained()`, [`Unconstrained`],
//! `consume_budget()` and [`ConsumeBudget`] are the only public items here.

pub(crate) mod budget;
mod join;
mod list;
#[cfg(all(test, cancel_scope_loom))]
mod loom_models;
mod raw;
pub(crate) mod state;
mod yield_now;

pub use budget::{consume_budget, unconstrained, ConsumeBudget, Unconstrained};
pub use join::{JoinHandle, TaskCancelHandle};
pub(crate) use list::{TaskId, TaskList};
pub(crate) use raw::TaskRef;
pub use yield_now::{yield_now, YieldNow};

use crate::cancelled::{CancelReason, Cancelled};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Mutex;
use crate::panic::Panic;
use crate::pool;
use raw::{Header, Vtable};
use state::{Snapshot, StateWord, ToCancelled, ToIdle, ToRunning, JOIN_HANDLE, PUSHING};
use std::alloc::Layout;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// How a task reaches whoever owns it.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Pushes a task that a waker made runnable; on a worker it runs next. The
    /// task may be claimed by a canceller during the push, but it is not
    /// released until the push returns (rule "push before release" in
    /// `state.rs`), so the owner may reach its own state here. A task woken
    /// while it was being polled is not pushed here: [`TaskRef::run`] hands it
    /// back to its runner.
    fn schedule(&self, task: TaskRef);
    /// Runs `poll`, a poll of the task `task`, with the task's context
    /// installed (its current scope).
    fn enter<R>(&self, task: TaskId, poll: impl FnOnce() -> R) -> R;
    /// The value a `JoinHandle` of a cancelled task resolves to.
    fn cancelled(&self) -> Cancelled;
    /// The runner finished the task (output ready, cancelled, or panicked);
    /// the owner unlists it by `id` from its [`TaskList`]. Not called when
    /// [`TaskRef::cancel`] returns [`Cancel::Dropped`]: then the canceller
    /// does the accounting. `ended` says how the run ended.
    fn release(&self, id: TaskId, ended: Ended, panic: Option<Panic>);
    /// Whether a panic of the task's poll stays with the task (its handle
    /// gets the payload) instead of going to `release`.
    fn keeps_panics(&self) -> bool {
        false
    }
}

/// How a task's run ended, as its owner learns it in
/// [`Schedule::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Its future returned `Ready`: it ran to completion, even if a cancel
    /// came during that last poll.
    Completed,
    /// Its future was dropped unfinished, by a cancel.
    Cancelled,
    /// Its poll panicked.
    Panicked,
}

/// The outcome of [`TaskRef::cancel`].
#[must_use]
pub(crate) enum Cancel {
    /// The caller dropped the future; `Schedule::release` is not called, so
    /// the caller accounts for the task. Carries a panic from the future's
    /// `Drop`, if any.
    Dropped(Option<Panic>),
    /// A runner owns the future and will drop it and call `release`.
    Deferred,
    /// The task had already completed.
    AlreadyComplete,
}

/// How a task ended, for [`Cell::complete`].
enum End<T> {
    Ready(T),
    Cancelled,
    /// With the payload, if it goes to the handle (`keeps_panics`).
    Panicked(Option<Panic>),
}

/// One spawned future and everything needed to run and join it. The
/// header comes first (`repr(C)`), so a pointer to the cell is a pointer to
/// its header.
#[repr(C)]
struct Cell<F: Future, S> {
    header: Header,
    /// Rule "scheduler fixed at spawn".
    scheduler: S,
    /// Rule "output through the join slot". Dropped by `dealloc` only when it
    /// holds something (a waker; never an output, by rule "output through the
    /// join slot"): most tasks end with it empty, and skipping its drop glue
    /// is worth it on the cancel path.
    join: ManuallyDrop<Mutex<join::JoinSlot<F::Output>>>,
    /// Rule "one owner of the future".
    future: UnsafeCell<Option<F>>,
}

/// Allocates a task in the `SCHEDULED | JOIN_HANDLE` state with two
/// references: the returned `TaskRef`, which the caller pushes to a run
/// queue (or drops, if its owner refuses the task), and the `JoinHandle`.
#[inline(always)]
pub(crate) fn new<F, S>(future: F, scheduler: S) -> (TaskRef, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: a `'static` future and output borrow nothing that could end.
    unsafe { new_borrowing(future, scheduler) }
}

/// [`new`] for a future, and an output, that may borrow.
///
/// # Safety
///
/// What `future` and its output borrow stays valid for every use the task
/// makes of them. The task drops its future before it calls
/// [`Schedule::release`], or a canceller drops it before [`TaskRef::cancel`]
/// returns [`Cancel::Dropped`] (rule "one owner of the future"); a task its
/// owner never listed drops it with its last reference. It drops an output
/// only through the `JoinHandle` (rule "output through the join slot"). So the
/// caller keeps the borrows alive until the owner has counted the task gone,
/// or, if the task was never listed, until the references of `new_borrowing`
/// are dropped; and the handle must not outlive them either. The borrowing
/// scopes (`scope/borrowed/`) are this function's only callers.
pub(crate) unsafe fn new_borrowing<F, S>(
    future: F,
    scheduler: S,
) -> (TaskRef, JoinHandle<F::Output>)
where
    F: Future + Send,
    F::Output: Send,
    S: Schedule,
{
    // From this thread's pool if the cell fits a class (a constant for
    // each task type), else from the global allocator. The cell is built
    // where it will live (`Cell::write_new`): it is not moved after.
    let pooled = match Cell::<F, S>::CLASS {
        Some(class) if pool::ENABLED => pool::alloc(class),
        _ => None,
    };
    let cell = match pooled {
        Some(chunk) => {
            let cell = chunk.cast::<Cell<F, S>>();
            // SAFETY: the chunk is ours, and its class fits the cell's
            // size and alignment (`class_of`).
            unsafe { Cell::write_new(cell, &Cell::<F, S>::VTABLE_POOLED, scheduler, future) };
            cell
        }
        None => {
            let layout = Layout::new::<Cell<F, S>>();
            // SAFETY: a cell is never zero-sized (it starts with a header).
            let memory = unsafe { std::alloc::alloc(layout) };
            let Some(cell) = NonNull::new(memory.cast::<Cell<F, S>>()) else {
                std::alloc::handle_alloc_error(layout);
            };
            // SAFETY: the memory is ours, with the cell's layout.
            unsafe { Cell::write_new(cell, &Cell::<F, S>::VTABLE, scheduler, future) };
            cell
        }
    };
    let header = cell.cast::<Header>();
    // SAFETY: `header` starts the new allocation, whose count is two: this
    // reference and the handle's. The join slot lives as long as the
    // allocation, which the handle's reference keeps.
    unsafe {
        let slot = NonNull::from(&*cell.as_ref().join);
        (TaskRef::from_raw(header), JoinHandle::new(header, slot))
    }
}

/// The scheduler of `task`, for an owner that keeps per-task state in it (rule
/// "scheduler fixed at spawn": immutable, but for what it keeps in atomics).
/// The reference is valid while the caller holds `task`, or another reference
/// to it.
///
/// # Safety
///
/// `task` was made by [`new`] with future type `F` and scheduler `S`.
pub(crate) unsafe fn scheduler_of<F: Future + 'static, S: 'static>(task: &TaskRef) -> &S {
    // SAFETY: the caller's contract: the header starts a `Cell<F, S>`
    // (`repr(C)`), alive while `task` is.
    unsafe { &task.header_ptr().cast::<Cell<F, S>>().as_ref().scheduler }
}

impl<F, S> Cell<F, S>
where
    F: Future + Send,
    F::Output: Send,
    S: Schedule,
{
    /// The table of a cell from the global allocator.
    const VTABLE: Vtable = Vtable {
        run: Self::run,
        cancel: Self::cancel,
        cancel_one: Self::cancel_one,
        schedule: Self::schedule,
        dealloc: Self::dealloc_boxed,
    };

    /// The table of a cell from a pool: it differs only in how the memory
    /// goes back.
    const VTABLE_POOLED: Vtable = Vtable {
        dealloc: Self::dealloc_pooled,
        ..Self::VTABLE
    };

    /// The pools' class for this cell, if it fits one.
    const CLASS: Option<usize> = pool::class_of(Layout::new::<Self>());

    /// Writes a new cell at `at`, field by field.
    ///
    /// # Safety
    ///
    /// `at` is memory the caller owns, sized and aligned for a cell.
    #[inline(always)]
    unsafe fn write_new(at: NonNull<Self>, vtable: &'static Vtable, scheduler: S, future: F) {
        let at = at.as_ptr();
        // SAFETY: the caller's contract; each field is written once.
        unsafe {
            std::ptr::addr_of_mut!((*at).header).write(Header::new(StateWord::new(), vtable));
            std::ptr::addr_of_mut!((*at).scheduler).write(scheduler);
            std::ptr::addr_of_mut!((*at).join)
                .write(ManuallyDrop::new(Mutex::new(join::JoinSlot::new())));
            std::ptr::addr_of_mut!((*at).future).write(UnsafeCell::new(Some(future)));
        }
    }

    /// # Safety
    ///
    /// `header` starts a live `Cell<F, S>` (the vtable it holds says so).
    unsafe fn from_header<'a>(header: NonNull<Header>) -> &'a Self {
        // SAFETY: the caller's contract; `repr(C)` puts the header first.
        unsafe { header.cast::<Self>().as_ref() }
    }

    /// The vtable's `run`: takes the queue's reference, and hands it back
    /// if the task is to be queued again.
    unsafe fn run(header: NonNull<Header>) -> bool {
        // SAFETY: the vtable is this type's, and the queue's reference keeps
        // the cell alive until `drop_ref` at the end.
        let this = unsafe { Self::from_header(header) };
        if this.run_once(header) {
            return true;
        }
        // SAFETY: the reference `run` took over; `this` is not used after.
        unsafe { raw::drop_ref(header) };
        false
    }

    /// Returns true if the task was woken during its poll: its runner
    /// queues it again (`TaskRef::run`).
    fn run_once(&self, header: NonNull<Header>) -> bool {
        match self.header.state.transition_to_running() {
            ToRunning::Dead => return false,
            ToRunning::Cancel => {
                let panic = self.complete(End::Cancelled);
                self.release(header, Ended::Cancelled, panic);
                return false;
            }
            ToRunning::Poll => {}
        }
        match self.poll_future(header) {
            None => {}
            Some(Poll::Ready(output)) => {
                let panic = self.complete(End::Ready(output));
                self.release(header, Ended::Completed, panic);
            }
            Some(Poll::Pending) => match self.header.state.transition_to_idle() {
                ToIdle::Idle => {}
                ToIdle::Reschedule => return true,
                ToIdle::Cancel => {
                    let panic = self.complete(End::Cancelled);
                    self.release(header, Ended::Cancelled, panic);
                }
            },
        }
        false
    }

    /// The vtable's `cancel`.
    unsafe fn cancel(header: NonNull<Header>) -> Cancel {
        // SAFETY: the vtable is this type's, and the caller holds a
        // reference.
        let this = unsafe { Self::from_header(header) };
        match this.header.state.transition_to_cancelled() {
            ToCancelled::Claimed(prev) => {
                // Rule "push before release": the caller releases the task on
                // our return, so a push in progress must be done by then (and
                // no new one starts on a `COMPLETE` task).
                if prev.has(PUSHING) {
                    this.header.state.wait_for_push();
                }
                let panic = this.drop_future();
                Cancel::Dropped(this.deliver(prev, End::Cancelled, panic))
            }
            ToCancelled::Deferred => Cancel::Deferred,
            ToCancelled::AlreadyComplete => Cancel::AlreadyComplete,
        }
    }

    /// The vtable's `cancel_one`: this task alone is cancelled; an idle one
    /// is claimed, dropped and released here (its owner unlists it), a
    /// running one is left to its runner.
    unsafe fn cancel_one(header: NonNull<Header>) {
        // SAFETY: the vtable is this type's, and the caller holds a
        // reference, which outlives the release below.
        let this = unsafe { Self::from_header(header) };
        if let ToCancelled::Claimed(prev) = this.header.state.transition_to_cancelled() {
            let panic = this.drop_future();
            let panic = this.deliver(prev, End::Cancelled, panic);
            this.release(header, Ended::Cancelled, panic);
        }
    }

    /// The vtable's `schedule`: takes the waker's new reference.
    unsafe fn schedule(header: NonNull<Header>) {
        // SAFETY: the vtable is this type's, and the new reference keeps it
        // alive; it goes to the queue.
        unsafe {
            let this = Self::from_header(header);
            this.scheduler.schedule(TaskRef::from_raw(header));
        }
    }

    /// The vtable's `dealloc` for a boxed cell: the count is zero.
    unsafe fn dealloc_boxed(header: NonNull<Header>) {
        let cell = header.cast::<Self>();
        // SAFETY: rule "every reference counts": the last reference; the cell
        // came from the global allocator with its layout in `new` (this table
        // is a boxed cell's).
        unsafe {
            Self::drop_fields(cell);
            std::alloc::dealloc(cell.as_ptr().cast(), Layout::new::<Self>());
        }
    }

    /// The vtable's `dealloc` for a pooled cell: the count is zero.
    unsafe fn dealloc_pooled(header: NonNull<Header>) {
        let cell = header.cast::<Self>();
        // SAFETY: rule "every reference counts": the last reference; the cell
        // came from `pool::alloc` in `new` (this table is a pooled cell's).
        unsafe {
            Self::drop_fields(cell);
            pool::free(cell.cast());
        }
    }

    /// Drops what the cell still holds, leaving its memory to the caller.
    ///
    /// # Safety
    ///
    /// Rule "every reference counts": the count is zero, so nobody else can
    /// reach the cell; it is not used afterwards but to free its memory.
    unsafe fn drop_fields(cell: NonNull<Self>) {
        // SAFETY: the caller's contract: the cell is ours alone.
        let this = unsafe { &mut *cell.as_ptr() };
        // A task is only freed after COMPLETE, except when its owner refused
        // it and it never ran: then the future is dropped here, unpolled.
        // SAFETY: we own the cell now.
        let held = this.future.with(|f| unsafe { (*f).is_some() });
        debug_assert!(
            !held || !this.header.state.load().has(state::COMPLETE),
            "a COMPLETE task still holds its future"
        );
        debug_assert!(
            !this.join.get_mut().holds_output(),
            "rule \"output through the join slot\""
        );
        if !this.join.get_mut().is_empty() {
            // SAFETY: dropped once, here; `drop_in_place` below skips it.
            unsafe { ManuallyDrop::drop(&mut this.join) };
        }
        // SAFETY: each field is dropped once (the join slot, behind
        // `ManuallyDrop`, only above).
        unsafe { std::ptr::drop_in_place(cell.as_ptr()) };
    }

    /// Hands the finished task to its owner, once no waker is pushing it (rule
    /// "push before release" in `state.rs`). `header` is the runner's pointer
    /// to this task: the owner unlists the task by this id, and the list's
    /// reference it gets back may be the last.
    fn release(&self, header: NonNull<Header>, ended: Ended, panic: Option<Panic>) {
        self.header.state.wait_for_push();
        self.scheduler.release(TaskId::new(header), ended, panic);
    }

    /// Drops the future (the caller runs it under rule "one owner of the
    /// future"), sets `COMPLETE` and hands the output to a waiting
    /// `JoinHandle`.
    fn complete(&self, end: End<F::Output>) -> Option<Panic> {
        let panic = self.drop_future();
        let prev = self.header.state.transition_to_complete();
        self.deliver(prev, end, panic)
    }

    /// Drops the future in place, catching a panic from its `Drop`.
    fn drop_future(&self) -> Option<Panic> {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: rule "one owner of the future"; the caller owns the
            // future (it holds RUNNING, or claimed the idle task). An
            // assignment drops the old value where it lies and only then
            // writes `None`, so the pinned future is dropped in place, never
            // moved (`Option::take` would move it out first). If that drop
            // panics, the slot still ends up `None`: rustc compiles an
            // assignment to an initialised place as drop-and-replace, and
            // writes the new value on the unwinding path too. So nothing drops
            // the future twice.
            self.future.with_mut(|future| unsafe { *future = None });
        }))
        .err()
    }

    /// Hands the output to the `JoinHandle`, if the word before `COMPLETE`
    /// (`prev`) says one wants it. The output of a stopped task is only
    /// built then. Returns `panic`, or else a panic of the handle's waker.
    #[inline(always)]
    fn deliver(&self, prev: Snapshot, end: End<F::Output>, panic: Option<Panic>) -> Option<Panic> {
        // Inline, so that the common case (nobody joins: no output to
        // build) drops a known `end` for free.
        if !prev.has(JOIN_HANDLE) {
            if let End::Panicked(Some(payload)) = end {
                // A kept payload nobody will take (`keeps_panics`, no
                // handle): dropped without unwinding into the runner.
                crate::panic::drop_payload(payload);
            }
            return panic;
        }
        self.deliver_to_handle(end, panic)
    }

    fn deliver_to_handle(&self, end: End<F::Output>, panic: Option<Panic>) -> Option<Panic> {
        let output = match end {
            End::Ready(value) => Ok(value),
            End::Cancelled => Err(self.scheduler.cancelled()),
            End::Panicked(Some(payload)) => Err(Cancelled::panicked(payload)),
            End::Panicked(None) => Err(Cancelled::new(CancelReason::Panicked)),
        };
        let (waker, orphan) = {
            let mut slot = self.join.lock();
            let waker = slot.put(output);
            // Rule "output through the join slot": a handle dropped since our
            // transition to `COMPLETE` looked for the output before it was
            // here. Its `JOIN_HANDLE` clear came before its look under this
            // lock, so it is seen now: the output is taken back, not left for
            // whoever frees the task.
            let orphan = if self.header.state.load().has(JOIN_HANDLE) {
                None
            } else {
                slot.take_back()
            };
            (waker, orphan)
        };
        let mut first = panic;
        if let Some(orphan) = orphan {
            orphan_dropped(&mut first, orphan);
        }
        // A panicking `JoinHandle` waker counts as this task's panic: it
        // goes to the task's scope, not into the worker.
        if let Some(wake_panic) = waker.and_then(crate::panic::wake_catching) {
            crate::panic::keep_first(&mut first, wake_panic);
        }
        first
    }

    fn poll_future(&self, header: NonNull<Header>) -> Option<Poll<F::Output>> {
        // A waker that borrows the runner's reference instead of taking
        // one: saves an increment and a decrement on every poll.
        // SAFETY: the waker lives only in this frame, where the runner's
        // reference keeps the task alive, and is never dropped; a clone the
        // future takes is a real reference.
        let waker = unsafe { raw::borrowed_waker(header) };
        let mut cx = Context::from_waker(&waker);
        // The poll's budget, and the state word its leaves look at for a
        // cancel of this task alone (`budget.rs`).
        let result = budget::poll_task(&self.header.state, || {
            self.scheduler.enter(TaskId::new(header), || {
                catch_unwind(AssertUnwindSafe(|| {
                    self.future.with_mut(|slot| {
                        // SAFETY: rule "one owner of the future"; this runner
                        // moved the state to RUNNING.
                        let slot = unsafe { &mut *slot };
                        let future = slot.as_mut().expect("a RUNNING task has its future");
                        // SAFETY: the future lives in the task's allocation
                        // and never moves: `complete` and `dealloc` drop it
                        // in place.
                        unsafe { Pin::new_unchecked(future) }.poll(&mut cx)
                    })
                }))
            })
        });
        match result {
            Ok(poll) => Some(poll),
            Err(panic) => {
                // The payload goes to the handle, or to the scope.
                let (kept, passed) = if self.scheduler.keeps_panics() {
                    (Some(panic), None)
                } else {
                    (None, Some(panic))
                };
                // The poll's panic goes on; one from the future's drop
                // after it is only dropped.
                if let Some(drop_panic) = self.complete(End::Panicked(kept)) {
                    crate::panic::drop_payload(drop_panic);
                }
                self.release(header, Ended::Panicked, passed);
                None
            }
        }
    }
}

/// Drops an output whose handle went away while it was delivered; a panic
/// of its `Drop` counts as the task's (kept in `first` if it is the first).
#[cold]
#[inline(never)]
fn orphan_dropped<T>(first: &mut Option<Panic>, orphan: T) {
    if let Some(panic) = crate::panic::drop_catching(orphan) {
        crate::panic::keep_first(first, panic);
    }
}

/// Tasks for the unit tests and loom models of code that only moves task
/// references around (queues, the LIFO slot).
#[cfg(test)]
pub(crate) mod testing {
    use super::{Cancelled, Panic, Schedule, TaskRef};
    use crate::cancelled::CancelReason;

    /// A scheduler that queues nothing and owns no task: the tests hold
    /// the references, and hand them to whatever they test.
    pub(crate) struct Unscheduled;

    impl Schedule for Unscheduled {
        fn schedule(&self, task: TaskRef) {
            drop(task);
        }

        fn enter<R>(&self, _task: super::TaskId, poll: impl FnOnce() -> R) -> R {
            poll()
        }

        fn cancelled(&self) -> Cancelled {
            Cancelled::new(CancelReason::Explicit)
        }

        fn release(&self, _id: super::TaskId, _ended: super::Ended, panic: Option<Panic>) {
            drop(panic);
        }
    }

    /// A task whose future holds `held` and never completes; its handle is
    /// dropped, so the returned reference is the only one.
    pub(crate) fn holding<T: Send + 'static>(held: T) -> TaskRef {
        let (task, handle) = super::new(
            async move {
                let _held = held;
                std::future::pending::<()>().await
            },
            Unscheduled,
        );
        drop(handle);
        task
    }

    /// Whether two references are to the same task.
    #[cfg(cancel_scope_loom)]
    pub(crate) fn same(a: &TaskRef, b: &TaskRef) -> bool {
        a.ptr_eq(b)
    }
}
