//! The facade that `loom` replaces.
//!
//! Code whose interleavings are model-checked takes its atomics, locks and
//! shared cells from here: `std` and `parking_lot` normally, `loom` when
//! built with `RUSTFLAGS="--cfg cancel_scope_loom"`. That is the task
//! (its state word, future cell and join slot), the LIFO slot, the sleep
//! protocol (`runtime/idle/`) and the scope tree. The loom models themselves
//! live next to the code they check (`task/loom_models.rs`,
//! `scope/loom_models.rs`, and a `loom_models` module at the end of
//! `runtime/lifo_slot.rs` and of `runtime/idle/`).
//!
//! loom cannot see inside crossbeam-deque (its atomics are std's, so a
//! task handed over through it would look unsynchronised to loom): under
//! the model, `deque` is a plain queue behind loom's mutex with the same
//! methods.
//!
//! The two builds offer the same surface: parking_lot's `lock()` (no
//! poisoning), parking_lot's `Condvar::wait(&mut guard)`, and loom's
//! closure-based `UnsafeCell` (`with`, `with_mut`), which in the normal
//! build compiles to a plain pointer access.

#[cfg(not(cancel_scope_loom))]
pub(crate) mod sync {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{
            fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };
    }
}

#[cfg(cancel_scope_loom)]
pub(crate) mod sync {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// loom's mutex behind parking_lot's `lock()` signature.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(::loom::sync::Mutex<T>);

    /// loom's guard, held in an `Option` so that [`Condvar::wait`] can
    /// hand it to loom by value and take it back.
    pub(crate) struct MutexGuard<'a, T>(Option<::loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(::loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("a model thread panicked")))
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().expect("a model thread panicked")
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Mutex<T> {
            Mutex::new(T::default())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.0.as_ref().expect("held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("held")
        }
    }

    /// loom's condition variable behind parking_lot's signatures. loom
    /// has no time: a wait with a deadline waits like one without, so
    /// the models never rely on a timeout.
    #[derive(Debug)]
    pub(crate) struct Condvar(::loom::sync::Condvar);

    /// What a timed wait returned.
    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(::loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard.0.take().expect("held");
            guard.0 = Some(self.0.wait(held).expect("a model thread panicked"));
        }

        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    pub(crate) mod atomic {
        pub(crate) use ::loom::sync::atomic::{
            fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };
    }
}

/// Giving up the core in a wait loop: loom's yield, which lets the model
/// run another thread, or the OS's; and which thread this is (loom's
/// threads share the OS's).
pub(crate) mod thread {
    #[cfg(cancel_scope_loom)]
    pub(crate) use ::loom::thread::{yield_now, ThreadId};
    #[cfg(not(cancel_scope_loom))]
    pub(crate) use std::thread::{yield_now, ThreadId};

    /// The id of the calling thread.
    pub(crate) fn current_id() -> ThreadId {
        #[cfg(cancel_scope_loom)]
        return ::loom::thread::current().id();
        #[cfg(not(cancel_scope_loom))]
        return std::thread::current().id();
    }
}

/// A cell whose accesses loom can check: loom's own under the model, a
/// thin wrapper over `std::cell::UnsafeCell` otherwise.
pub(crate) mod cell {
    #[cfg(cancel_scope_loom)]
    pub(crate) use ::loom::cell::UnsafeCell;

    #[cfg(not(cancel_scope_loom))]
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[cfg(not(cancel_scope_loom))]
    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared pointer to the value. The caller
        /// guarantees no write happens meanwhile.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with an exclusive pointer to the value. The caller
        /// guarantees no other access happens meanwhile.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// The run queues: crossbeam-deque, or a locked stand-in under loom.
#[cfg(not(cancel_scope_loom))]
pub(crate) mod deque {
    pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};
}

/// The run queues: crossbeam-deque, or a locked stand-in under loom.
#[cfg(cancel_scope_loom)]
pub(crate) mod deque {
    use super::sync::Mutex;
    use std::collections::VecDeque;
    use std::sync::Arc;

    pub(crate) use crossbeam_deque::Steal;

    type Queue<T> = Arc<Mutex<VecDeque<T>>>;

    /// A FIFO queue any thread may push to and steal from.
    pub(crate) struct Injector<T>(Queue<T>);

    /// A worker's own queue (FIFO).
    pub(crate) struct Worker<T>(Queue<T>);

    /// Another worker's view of a [`Worker`] queue.
    pub(crate) struct Stealer<T>(Queue<T>);

    fn steal<T>(queue: &Queue<T>) -> Steal<T> {
        queue
            .lock()
            .pop_front()
            .map_or(Steal::Empty, Steal::Success)
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Injector<T> {
            Injector(Arc::default())
        }

        pub(crate) fn push(&self, task: T) {
            self.0.lock().push_back(task);
        }

        pub(crate) fn steal(&self) -> Steal<T> {
            steal(&self.0)
        }

        pub(crate) fn steal_batch_and_pop(&self, _dest: &Worker<T>) -> Steal<T> {
            steal(&self.0)
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
    }

    impl<T> Worker<T> {
        pub(crate) fn new_fifo() -> Worker<T> {
            Worker(Arc::default())
        }

        pub(crate) fn push(&self, task: T) {
            self.0.lock().push_back(task);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.0.lock().len()
        }

        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal_batch_and_pop(&self, _dest: &Worker<T>) -> Steal<T> {
            steal(&self.0)
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
    }
}
