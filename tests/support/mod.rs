//! The pieces every test helper module shares: a hang guard, panic
//! messages, and a drop counter. Included by `tests/common`,
//! `tests/toolkit_common` and `tests/reliability_common`, which add what
//! their own tests need.

#![allow(dead_code)]

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// Runs `f` on its own thread and fails the caller if `f` has not returned
/// within `limit`: a deadlock becomes a failure (the bound measures no
/// speed). A panic in `f` is resumed on the caller.
pub fn hang_guard_for<T, F>(what: &str, limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("guarded {what}"))
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(());
            out
        })
        .expect("spawn a guarded thread");
    match rx.recv_timeout(limit) {
        Ok(()) => match handle.join().expect("the guarded thread catches panics") {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(_) => panic!("{what} did not finish within {limit:?}: it hangs"),
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f`, which must panic; returns the panic's message.
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, but the call returned"),
        Err(payload) => panic_message(&*payload),
    }
}

/// Counts drops of whatever holds it.
#[derive(Debug)]
pub struct DropCount(pub Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}
