//! A task seen without its types: [`Header`], [`TaskRef`] and the waker.
//!
//! Every task allocation starts with a [`Header`]: the state word (flags
//! and reference count) and a table of the functions that know the task's
//! types. Run queues, the scope tree and wakers hold a task as a thin
//! pointer to that header; the table does the rest. One allocation, one
//! counter, an 8-byte handle.

use super::state::{StateWord, ToNotified};
use super::Cancel;
use crate::loom::cell::UnsafeCell;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// The start of every task allocation.
pub(crate) struct Header {
    pub(super) state: StateWord,
    pub(super) vtable: &'static Vtable,
    /// The task's place in its owner's list (`list.rs`, rule "links belong to
    /// the list's holder"); never touched by the task itself.
    pub(super) links: UnsafeCell<Links>,
}

/// A task's place in its owner's [`TaskList`](super::TaskList); only the
/// list touches it (rule "links belong to the list's holder" in `list.rs`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Links {
    pub(super) prev: Option<NonNull<Header>>,
    pub(super) next: Option<NonNull<Header>>,
}

/// What knows a task's types.
pub(super) struct Vtable {
    /// Runs the task once; takes the caller's reference, and gives it back
    /// (returns true) if the task was woken during its poll.
    pub(super) run: unsafe fn(NonNull<Header>) -> bool,
    /// `TaskRef::cancel`; see [`Cancel`].
    pub(super) cancel: unsafe fn(NonNull<Header>) -> Cancel,
    /// Cancels this task alone, doing its owner's accounting.
    pub(super) cancel_one: unsafe fn(NonNull<Header>),
    /// Queues the task after a wake; takes the caller's reference.
    pub(super) schedule: unsafe fn(NonNull<Header>),
    /// Drops what the task still holds and frees it (the count is zero).
    pub(super) dealloc: unsafe fn(NonNull<Header>),
}

/// An owned reference to a task, as run queues and the scope tree hold it.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a task is shared between threads by design: its future is touched
// only by the thread rule "one owner of the future" names, its join slot is
// behind a lock, its scheduler is `Sync`, and the count is atomic.
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`; `&TaskRef` only allows `cancel` and cloning.
unsafe impl Sync for TaskRef {}

impl Header {
    pub(super) fn new(state: StateWord, vtable: &'static Vtable) -> Header {
        Header {
            state,
            vtable,
            links: UnsafeCell::new(Links::default()),
        }
    }
}

impl TaskRef {
    /// Takes over a reference the caller owns.
    ///
    /// # Safety
    ///
    /// `header` starts a live task allocation, and the caller gives up one
    /// of its counted references.
    pub(super) unsafe fn from_raw(header: NonNull<Header>) -> TaskRef {
        TaskRef(header)
    }

    fn header(&self) -> &Header {
        // SAFETY: we hold a counted reference, so the task is allocated.
        unsafe { self.0.as_ref() }
    }

    /// The header's address; the reference stays ours.
    pub(super) fn header_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// Gives up the reference as a pointer, still counted.
    pub(super) fn into_raw(self) -> NonNull<Header> {
        std::mem::ManuallyDrop::new(self).0
    }

    /// Runs the task once (called by the thread that popped it from a run
    /// queue). Returns the task if it was woken during its poll (it yielded,
    /// or a wake raced the poll): the caller queues it again, behind the
    /// tasks already waiting. The runner does this push, not the task's
    /// owner, because it holds the runtime alive and the task's node may
    /// not be (rule "push before release" in `state.rs`).
    #[must_use = "a task returned by `run` must be queued again"]
    pub(crate) fn run(self) -> Option<TaskRef> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the header is live (our reference), and `run` takes that
        // reference over; when it returns true it hands it back.
        let requeue = unsafe { (this.header().vtable.run)(this.0) };
        requeue.then(|| TaskRef(this.0))
    }

    /// The task's identity.
    pub(crate) fn id(&self) -> super::TaskId {
        super::TaskId::new(self.0)
    }

    /// Cancels this task alone (`JoinHandle::cancel`).
    pub(super) fn cancel_one(&self) {
        // SAFETY: the header is live (our reference).
        unsafe { (self.header().vtable.cancel_one)(self.0) }
    }

    /// Whether the task's future is gone (`COMPLETE`).
    pub(crate) fn is_complete(&self) -> bool {
        self.header().state.load().has(super::state::COMPLETE)
    }

    /// Hands the task to its scheduler to run, as a wake does: for an
    /// owner that held a spawned task back and now starts it (a limited
    /// scope's queue). Takes this reference, which goes to the run queue.
    /// The caller keeps the owner alive through the push (the "push before release" rule's
    /// concern: a canceller may claim and release the task meanwhile).
    pub(crate) fn schedule(self) {
        let header = self.into_raw();
        // SAFETY: the header is live (the reference we gave up), which
        // `schedule` takes over.
        unsafe { (header.as_ref().vtable.schedule)(header) }
    }

    /// Requests cancellation; see [`Cancel`].
    pub(crate) fn cancel(&self) -> Cancel {
        // SAFETY: the header is live (our reference).
        unsafe { (self.header().vtable.cancel)(self.0) }
    }

    /// Whether `self` and `other` are the same task.
    #[cfg(all(test, cancel_scope_loom))]
    pub(crate) fn ptr_eq(&self, other: &TaskRef) -> bool {
        self.0 == other.0
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        self.header().state.ref_inc();
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: we give up our counted reference.
        unsafe { drop_ref(self.0) }
    }
}

impl std::fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TaskRef")
            .field(&self.header().state.load())
            .finish()
    }
}

/// Gives up one counted reference; frees the task if it was the last.
///
/// # Safety
///
/// The caller owns a counted reference to the live task at `header`, and
/// does not use it afterwards.
pub(super) unsafe fn drop_ref(header: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the header alive until the
    // decrement; if it was the last, nobody else can reach the task.
    unsafe {
        let h = header.as_ref();
        if h.state.ref_dec() {
            (h.vtable.dealloc)(header);
        }
    }
}

/// Wakes the task at `header`: queues it if it was idle.
///
/// # Safety
///
/// `header` is live for the duration of the call (the caller holds a
/// reference, which it keeps).
unsafe fn wake_by_ref(header: NonNull<Header>) {
    // SAFETY: the caller keeps the task alive.
    let h = unsafe { header.as_ref() };
    if h.state.transition_to_notified() == ToNotified::Submit {
        // Rule "push before release": `PUSHING` is set until this guard drops,
        // after the push (or while unwinding from a panicking one).
        let _pushing = Pushing(&h.state);
        // SAFETY: the header is live, and the reference `Submit` took goes
        // to the queue through `schedule`.
        unsafe { (h.vtable.schedule)(header) };
    }
}

/// Clears `PUSHING` when dropped (rule "push before release").
struct Pushing<'a>(&'a StateWord);

impl Drop for Pushing<'_> {
    fn drop(&mut self) {
        self.0.finish_push();
    }
}

/// A waker whose data pointer is the task's header, holding a reference.
static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| {
        // SAFETY: a waker holds a reference, so the task is live; the clone
        // takes one more.
        let header = unsafe { NonNull::new_unchecked(data as *mut Header).as_ref() };
        header.state.ref_inc();
        RawWaker::new(data, &WAKER_VTABLE)
    },
    |data| {
        // SAFETY: the waker's reference keeps the task live through the
        // wake, and is then given up.
        unsafe {
            let header = NonNull::new_unchecked(data as *mut Header);
            wake_by_ref(header);
            drop_ref(header);
        }
    },
    |data| {
        // SAFETY: the waker's reference keeps the task live.
        unsafe { wake_by_ref(NonNull::new_unchecked(data as *mut Header)) }
    },
    |data| {
        // SAFETY: the waker gives up its reference.
        unsafe { drop_ref(NonNull::new_unchecked(data as *mut Header)) }
    },
);

/// A waker for the task at `header` that borrows a reference instead of
/// holding one: for the duration of a poll, whose runner holds one.
///
/// # Safety
///
/// The returned waker must not be dropped (its drop would give up a
/// reference it does not hold), and must not outlive the caller's
/// reference. Clones taken from it are real wakers.
pub(super) unsafe fn borrowed_waker(header: NonNull<Header>) -> std::mem::ManuallyDrop<Waker> {
    let raw = RawWaker::new(header.as_ptr() as *const (), &WAKER_VTABLE);
    // SAFETY: `WAKER_VTABLE` keeps the `RawWaker` contract for a data
    // pointer that is a live header (the caller's reference keeps it so).
    std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}
