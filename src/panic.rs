//! A panic's payload as the runtime carries it, and how the runtime drops
//! and calls user code that may panic outside any task's poll.
//!
//! The policy, in one place:
//!
//! - A waker the runtime calls outside any poll (a timer, a cancel walk)
//!   is woken under `catch_unwind` ([`wake_catching`]); a panic there is
//!   contained ([`wake_contained`]) or handed to a scope by the caller.
//! - A user value the runtime drops (a waker, a scope-local, a cause given
//!   to `cancel_with`) is dropped under `catch_unwind` ([`drop_catching`]);
//!   the caller hands the panic to the nearest scope still open.
//! - A payload the runtime drops ([`drop_payload`]) whose own `Drop`
//!   panics is **leaked**: the second payload is forgotten. std aborts the
//!   process in that case; a runtime that only carries a payload for its
//!   user must not take down the thread it runs on for it.
//! - A panic in the runtime's own code on a worker or blocking thread is a
//!   bug after which none of its state can be trusted: the process aborts
//!   ([`abort_internal_error`]).
//!
//! All of it is below everything else: tasks, scopes, `Cancelled` values
//! and the timers hand payloads around, and none of them need to know of
//! each other for it.

use std::any::Any;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;

/// A panic's payload: what `catch_unwind` returns and `resume_unwind`
/// takes.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Aborts the process after a panic in the runtime's own code on one of
/// its threads (`thread` names which). The message goes to the process's
/// stderr directly, past any output capture the thread inherited (a
/// test's), which the abort would throw away.
pub(crate) fn abort_internal_error(thread: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "cancel-scope: {thread} hit an internal error; aborting"
    );
    std::process::abort()
}

/// Wakes `waker`, catching a panic from it. A waker is user code; when the
/// runtime calls one outside any task's poll (a timer, a cancel walk) there
/// is nobody to hand its panic to, and letting it unwind would lose the
/// wakes after it or take down a worker, so callers contain it.
pub(crate) fn wake_catching(waker: Waker) -> Option<Panic> {
    catch_unwind(AssertUnwindSafe(|| waker.wake())).err()
}

/// Wakes `waker`, and drops a panic from it: for the runtime's own wakes
/// that no scope owns (a timer firing).
pub(crate) fn wake_contained(waker: Waker) {
    if let Some(panic) = wake_catching(waker) {
        drop_payload(panic);
    }
}

/// Drops `value`, which may run user code, catching a panic from its
/// `Drop`; the caller hands the payload on.
pub(crate) fn drop_catching<T>(value: T) -> Option<Panic> {
    catch_unwind(AssertUnwindSafe(move || drop(value))).err()
}

/// Drops a payload the runtime carried and nobody took. If the payload's
/// own `Drop` panics, that second payload is leaked (module docs).
pub(crate) fn drop_payload(panic: Panic) {
    if let Some(again) = drop_catching(panic) {
        std::mem::forget(again);
    }
}

/// Keeps `panic` in `first` if it is the first one; drops it otherwise.
pub(crate) fn keep_first(first: &mut Option<Panic>, panic: Panic) {
    match first {
        None => *first = Some(panic),
        Some(_) => drop_payload(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
            panic!("a payload that panics again");
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "leaks the second payload on purpose, which Miri reports"
    )]
    fn a_payload_whose_drop_panics_is_dropped_once_and_its_panic_leaked() {
        let payload: Panic = Box::new(PanicsOnDrop);
        drop_payload(payload); // must not unwind
        assert_eq!(DROPS.load(SeqCst), 1);
    }

    #[test]
    fn drop_catching_returns_the_drop_s_panic() {
        struct Loud;
        impl Drop for Loud {
            fn drop(&mut self) {
                panic!("loud");
            }
        }
        let panic = drop_catching(Loud).expect("the drop panicked");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"loud"));
        assert!(drop_catching(5).is_none());
    }
}
