//! Thread-local context: which scope is being polled on this thread, and
//! which runtime this thread belongs to.
//!
//! A scope opened while a task or scope body is being polled becomes a child
//! of that task's (or body's) scope; this module is how it finds out.
//!
//! A runtime's own threads also publish where their current scope is kept
//! ([`ScopeCell`]), so that a shutdown that gives up waiting can name the
//! scope each thread still left running is in (`roster.rs`).
//!
//! The current scope's cell is an `AtomicPtr` written `Relaxed` by its own
//! thread, so that the roster can read which scope a thread is in (under
//! its lock, rule "a seat names a live cell") at no cost on the poll path.

use crate::runtime::Shared;
use crate::scope::tree::Node;
use crate::task::budget;
use std::cell::RefCell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};
use std::sync::Arc;

/// Where a thread keeps its current scope. Atomic so that another thread
/// may read the address in it (never follow it: see `roster.rs`); written
/// and read with `Relaxed`, which costs what a plain `Cell` does.
pub(crate) type ScopeCell = AtomicPtr<Node>;

thread_local! {
    /// The scope whose task or body this thread is polling, or null.
    ///
    /// Rule: non-null only while an [`enter_scope`] call is on this thread's
    /// stack, whose caller keeps the node alive for the call's whole duration
    /// (the scope future's `Arc`, or rule "binding followed while live" for a
    /// task's binding), so the pointee is alive whenever the pointer is set.
    /// Only this thread follows the pointer. It has no destructor, so `with`
    /// works even during thread teardown.
    static CURRENT_SCOPE: ScopeCell = const { AtomicPtr::new(ptr::null_mut()) };
    /// The runtime of this thread: a worker's own, or the one `block_on` runs.
    /// Like every runtime-internal thread-local that has a destructor, it
    /// is reached with `try_with`: a runtime may be used, or dropped, by
    /// another thread-local's destructor after this one is gone.
    static CURRENT_RUNTIME: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// Runs `f` with the node at `scope` (a pointer made by the tree's rule
/// "pointers from the box") as the current scope, and as the one whose cancel
/// the runtime's futures polled in `f` obey (`task/budget.rs`). The caller
/// keeps the node alive until this returns: a scope future holds its `Arc`; a
/// task's binding is followed only while the task is live in the node (rule
/// "binding followed while live").
pub(crate) fn enter_scope<R>(scope: NonNull<Node>, f: impl FnOnce() -> R) -> R {
    struct Restore(*mut Node);
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            CURRENT_SCOPE.with(|c| c.store(self.0, Relaxed));
        }
    }
    // A load and a store, not a `swap`: only this thread writes the cell.
    let prev = CURRENT_SCOPE.with(|c| {
        let prev = c.load(Relaxed);
        c.store(scope.as_ptr(), Relaxed);
        prev
    });
    let _restore = Restore(prev);
    // SAFETY: the caller keeps the node alive until we return.
    budget::enter_scope(unsafe { scope.as_ref() }, f)
}

/// Runs `f` with the scope being polled on this thread, if any: a pointer to a
/// node that stays alive while `f` runs (by the rule on `CURRENT_SCOPE`, the
/// `enter_scope` call on this thread's stack keeps it alive for longer than
/// this call), made by the tree's rule "pointers from the box". `f` must not
/// keep it.
pub(crate) fn with_current_scope<R>(f: impl FnOnce(Option<NonNull<Node>>) -> R) -> R {
    f(NonNull::new(CURRENT_SCOPE.with(|c| c.load(Relaxed))))
}

/// The address of this thread's [`ScopeCell`], valid until the thread
/// exits (the cell has no destructor).
pub(crate) fn this_thread_scope_cell() -> *const ScopeCell {
    CURRENT_SCOPE.with(|c| c as *const ScopeCell)
}

/// Runs `f` with `shared` as this thread's runtime.
pub(crate) fn enter_runtime<R>(shared: &Arc<Shared>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Shared>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = CURRENT_RUNTIME.try_with(|c| *c.borrow_mut() = prev);
        }
    }
    // Fails only during thread teardown (a runtime used from another
    // thread-local's destructor): then `f` runs without it, and work it
    // starts goes to the current scope's runtime or the default one.
    let Ok(prev) = CURRENT_RUNTIME.try_with(|c| c.borrow_mut().replace(shared.clone())) else {
        return f();
    };
    let _restore = Restore(prev);
    f()
}

/// The runtime this thread is in: the current scope's, else the one this
/// thread is a worker of or runs a `block_on` of; `None` outside any.
pub(crate) fn runtime_of_this_thread() -> Option<Arc<Shared>> {
    // SAFETY: see `with_current_scope`: the node is alive during the call.
    let shared = with_current_scope(|scope| scope.map(|n| unsafe { n.as_ref() }.shared_arc()));
    shared.or_else(|| {
        CURRENT_RUNTIME
            .try_with(|c| c.borrow().clone())
            .ok()
            .flatten()
    })
}

/// The runtime that work started on this thread should use: the current
/// scope's, else this thread's, else the process-wide default.
pub(crate) fn current_runtime() -> Arc<Shared> {
    runtime_of_this_thread().unwrap_or_else(|| crate::runtime::default_runtime().shared().clone())
}

/// Whether this thread is a worker of `shared`'s runtime or runs one of
/// its `block_on`s (and so will go idle through the runtime, where a
/// paused clock is looked at).
pub(crate) fn is_in_runtime(shared: &Shared) -> bool {
    CURRENT_RUNTIME
        .try_with(|c| c.borrow().as_ref().is_some_and(|s| ptr::eq(&**s, shared)))
        .unwrap_or(false)
}
