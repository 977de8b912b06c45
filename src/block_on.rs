//! Driving a future on the calling thread.

use crate::runtime::Shared;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;

/// Polls `future` on this thread until it is ready, parking in between.
/// The waker sets a flag and unparks this thread; the flag makes spurious
/// unparks (which `thread::park` allows) harmless.
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    assert!(
        !crate::worker::is_worker_thread(),
        "cancel_scope: `block_on` called from a runtime worker thread; \
         blocking a worker can deadlock the runtime. `.await` the future instead."
    );
    let woken = Arc::new(AtomicBool::new(false));
    let waker = {
        let woken = woken.clone();
        let thread = thread::current();
        waker_fn::waker_fn(move || {
            woken.store(true, Release);
            thread.unpark();
        })
    };
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    crate::context::enter_runtime(shared, || loop {
        if let Poll::Ready(output) = shared.busy_block_on(|| future.as_mut().poll(&mut cx)) {
            return output;
        }
        while !woken.swap(false, Acquire) {
            // With a paused clock, we may be the last to go idle.
            if !shared.auto_advance() {
                thread::park();
            }
        }
    })
}
