//! The facade that `loom` replaces.
//!
//! Code whose interleavings are model-checked (the task state word, the
//! scope tree's lock) takes its atomics and that lock from here: `std` normally, `loom` when built with
//! `RUSTFLAGS="--cfg cancel_scope_loom"`. The loom models themselves live
//! next to the code they check (`task/loom_models.rs`,
//! `scope/loom_models.rs`).

#[cfg(not(cancel_scope_loom))]
pub(crate) mod sync {
    pub(crate) use parking_lot::Mutex;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
    }
}

#[cfg(cancel_scope_loom)]
pub(crate) mod sync {
    /// loom's mutex behind parking_lot's `lock()` signature.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(::loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(::loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> ::loom::sync::MutexGuard<'_, T> {
            self.0.lock().expect("a model thread panicked")
        }
    }

    pub(crate) mod atomic {
        pub(crate) use ::loom::sync::atomic::{AtomicUsize, Ordering};
    }
}
