//! A small tree of scopes, and who ends when.
//!
//! ```text
//! root
//! ├── a        cancelled by root while its children wait forever
//! │   ├── a1   one task waiting on an event that is never set
//! │   └── a2   the same
//! └── b        its body ends at once, but it has a child
//!     └── b1   one task that works for 40ms
//! ```
//!
//! Two rules of structured concurrency show in the timeline it prints:
//!
//! 1. **A scope ends only after its children.** `b`'s body returns at
//!    once, yet `b` ends only once `b1` has; `root` ends after `b`.
//!    Nothing started inside a scope is still running when it ends.
//! 2. **Cancellation flows down, never up or sideways.** Cancelling `a`
//!    stops `a1` and `a2` (their waiting tasks are dropped, which is how a
//!    Rust future is cancelled), but `root` and `b` carry on as if nothing
//!    happened. (A [`linked_scope`](cancel_scope::linked_scope) would also
//!    cancel its parent; see the `linked` example.) `a1` and `a2` print no
//!    `ended` line: the tasks of `a` that awaited them were cancelled too,
//!    and a dropped future never sees a result. `a` itself ends only after
//!    their tasks are gone.
//!
//! Before cancelling, it prints the live scope tree
//! ([`runtime::scope_tree`]); the `tree_view` example shows more of it.
//!
//! Run it with `cargo run --example nested_scopes`.

use cancel_scope::{runtime, scope, sync::Event, time::sleep, CancelHandle, Cancelled};
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Prints one timeline line: time since the start, who, what.
fn say(who: &str, what: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    println!("[{ms:>4}ms] {who:<4} {what}");
}

/// How a scope ended, in words.
fn ended<T: Debug>(out: &Result<T, Cancelled>) -> String {
    match out {
        Ok(value) => format!("ended: Ok({value:?})"),
        Err(cancelled) => format!("ended: Err({cancelled})"),
    }
}

/// Says `what` when the future holding it is dropped: a cancelled task's
/// future (or scope body) is dropped, never polled to its end.
struct OnDrop(&'static str, &'static str);

impl Drop for OnDrop {
    fn drop(&mut self) {
        say(self.0, self.1);
    }
}

fn main() {
    say("main", "opening root");
    let out = runtime::block_on(scope(|root| async move {
        say(
            "root",
            &format!("opened as scope #{}; opening a and b", root.id()),
        );
        let a_handle = Arc::new(OnceLock::new());
        let a_ready = Event::new();
        let b_ready = Event::new();
        root.spawn(open_a(a_handle.clone(), a_ready.clone()));
        root.spawn(open_b(b_ready.clone()));
        a_ready.wait().await;
        b_ready.wait().await;

        println!("\nthe scope tree now:\n{}", runtime::scope_tree());
        say("root", "cancelling a");
        if let Some(a) = a_handle.get() {
            a.cancel();
        }
        say("root", "body done; root now waits for its children");
        "root's body value"
    }));
    say("root", &ended(&out));
    assert!(out.is_ok(), "cancelling a did not reach root");
}

/// Scope `a`: opens `a1` and `a2`, then waits forever until it is
/// cancelled. Its handle goes to `slot` so that root can cancel it.
async fn open_a(slot: Arc<OnceLock<CancelHandle>>, ready: Event) {
    let out = scope(|a| async move {
        say(
            "a",
            &format!("opened as scope #{}; opening a1 and a2", a.id()),
        );
        let _ = slot.set(a.cancel_handle());
        let (a1_ready, a2_ready) = (Event::new(), Event::new());
        a.spawn(leaf("a1", a1_ready.clone()));
        a.spawn(leaf("a2", a2_ready.clone()));
        a1_ready.wait().await;
        a2_ready.wait().await;
        say("a", "body waits forever (until cancelled)");
        let _dropped = OnDrop("a", "body dropped at its await (cancelled)");
        ready.set();
        Event::new().wait().await;
    })
    .await;
    say("a", &ended(&out));
}

/// A leaf scope whose only task waits for an event that is never set.
async fn leaf(name: &'static str, ready: Event) {
    let _ = scope(|s| async move {
        say(
            name,
            &format!("opened as scope #{}; its task waits forever", s.id()),
        );
        s.spawn(async move {
            let _dropped = OnDrop(name, "its waiting task was dropped (cancelled)");
            ready.set();
            Event::new().wait().await;
        });
    })
    .await;
    unreachable!("a leaf only ends by cancellation, which drops this future");
}

/// Scope `b`: opens `b1` and ends its body at once.
async fn open_b(ready: Event) {
    let out = scope(|b| async move {
        say("b", &format!("opened as scope #{}; opening b1", b.id()));
        b.spawn(async move {
            let out = scope(|b1| async move {
                say(
                    "b1",
                    &format!("opened as scope #{}; its task works for 40ms", b1.id()),
                );
                b1.spawn(async {
                    sleep(Duration::from_millis(40)).await;
                    say("b1", "its task is done");
                });
                ready.set();
            })
            .await;
            say("b1", &ended(&out));
        });
        say("b", "body done; b now waits for b1");
    })
    .await;
    say("b", &ended(&out));
}
