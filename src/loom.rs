//! The facade that `loom` replaces.
//!
//! Code whose interleavings are model-checked (the task state word) takes
//! its atomics from here: `std` normally, `loom` when built with
//! `RUSTFLAGS="--cfg cancel_scope_loom"`. The loom models themselves live next to the
//! code they check (`task/loom_models.rs`).

#[cfg(not(cancel_scope_loom))]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
    }
}

#[cfg(cancel_scope_loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use ::loom::sync::atomic::{AtomicUsize, Ordering};
    }
}
