//! A countdown latch: how a peer runtime waits for a group of detached
//! tasks, the wait a scope does for its tasks written by hand.
//!
//! Each task owns a [`Done`]; its drop, when the task's future ends,
//! counts down, and the last one wakes the waiter. The latches are statics
//! (one per spawning thread of the contended workload), so a task holds a
//! plain `&'static` reference and no reference count.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// A countdown with one waiter.
#[derive(Debug)]
pub struct Latch {
    left: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

/// One latch per spawning thread of a workload.
pub static LATCHES: [Latch; 2] = [Latch::new(), Latch::new()];

impl Latch {
    const fn new() -> Latch {
        Latch {
            left: AtomicUsize::new(0),
            waker: Mutex::new(None),
        }
    }

    /// Expects `n` count-downs.
    pub fn arm(&self, n: usize) {
        *self.waker.lock().unwrap() = None;
        self.left.store(n, SeqCst);
    }

    /// Counts down once (a [`Done`] does it when dropped).
    pub fn count_down(&self) {
        if self.left.fetch_sub(1, AcqRel) == 1 {
            let waker = self.waker.lock().unwrap().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Resolves once every count-down has happened.
    pub fn wait(&'static self) -> impl Future<Output = ()> {
        futures_lite::future::poll_fn(move |cx| {
            if self.left.load(Acquire) == 0 {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            // Checked again after registering: the last count-down either
            // saw our waker or happened before this load.
            if self.left.load(Acquire) == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Counts its latch down when dropped.
#[derive(Debug)]
pub struct Done(pub &'static Latch);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.count_down();
    }
}

/// `future`, counting `latch` down when it ends (or is dropped).
pub fn counted<F: Future>(latch: &'static Latch, future: F) -> impl Future<Output = F::Output> {
    let done = Done(latch);
    async move {
        let _done = done;
        future.await
    }
}
