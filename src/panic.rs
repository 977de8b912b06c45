//! A panic's payload as the runtime carries it, and the one place a waker
//! the runtime calls may panic.
//!
//! Both are below everything else: tasks, scopes, `Cancelled` values and
//! the timers hand payloads around, and none of them need to know of
//! each other for it.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;

/// A panic's payload: what `catch_unwind` returns and `resume_unwind`
/// takes.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Wakes `waker`, catching a panic from it. A waker is user code; when the
/// runtime calls one outside any task's poll (a timer, a cancel walk) there
/// is nobody to hand its panic to, and letting it unwind would lose the
/// wakes after it or take down a worker, so callers contain it.
pub(crate) fn wake_catching(waker: Waker) -> Option<Panic> {
    catch_unwind(AssertUnwindSafe(|| waker.wake())).err()
}
