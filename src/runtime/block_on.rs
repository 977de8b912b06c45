//! Driving a future on the calling thread.
//!
//! The thread polls the future, then parks until its waker fires. Its
//! state word (`RUNNING`, `PARKED`, `WOKEN`) is registered with the
//! runtime while `block_on` runs, so a paused clock can tell a `block_on`
//! that is idle from one that was woken and has not polled yet (see
//! `Shared::auto_advance`).
//!
//! It is the runtime's `block_on`, not async-io's: it never waits in the
//! reactor. Called on a worker thread (of any runtime), it panics with a
//! clear message, since blocking a worker could deadlock its runtime. Its
//! poll starts with no cancel and a fresh budget.

use crate::runtime::Shared;
use crate::task::budget;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;

/// Polling, or about to poll.
pub(crate) const RUNNING: u8 = 0;
/// Parked (or about to park) with no wake pending.
pub(crate) const PARKED: u8 = 1;
/// Woken, and not yet polled since.
pub(crate) const WOKEN: u8 = 2;

/// Polls `future` on this thread until it is ready, parking in between.
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    assert!(
        !crate::runtime::worker::is_worker_thread(),
        "cancel_scope: `block_on` called from a runtime worker thread; \
         blocking a worker can deadlock the runtime. `.await` the future instead."
    );
    let state = Arc::new(AtomicU8::new(RUNNING));
    let waker = {
        let state = state.clone();
        let thread = thread::current();
        waker_fn::waker_fn(move || {
            if state.swap(WOKEN, SeqCst) == PARKED {
                thread.unpark();
            }
        })
    };
    let _registered = shared.register_block_on(state.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    crate::runtime::context::enter_runtime(shared, || loop {
        // A fresh budget each poll; nothing cancelled, whatever the thread
        // was polling when it called us (`task/budget.rs`).
        if let Poll::Ready(output) = budget::poll_root(|| future.as_mut().poll(&mut cx)) {
            return output;
        }
        // A wake during the poll makes this fail: poll again at once.
        if state
            .compare_exchange(RUNNING, PARKED, SeqCst, SeqCst)
            .is_err()
        {
            state.store(RUNNING, SeqCst);
            continue;
        }
        // Tasks this thread spawned that workers freed: their memory goes
        // back while the thread waits.
        crate::pool::drain();
        // `thread::park` may return spuriously: only a wake counts.
        while state.load(SeqCst) != WOKEN {
            // With a paused clock, we may be the last to go idle.
            if !shared.auto_advance_or_defer() {
                thread::park();
            }
        }
        shared.left_idleness();
        state.store(RUNNING, SeqCst);
    })
}
