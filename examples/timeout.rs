//! Deadlines, `timeout` and `move_on_after`.
//!
//! Four ways to bound how long something may take:
//!
//! 1. `Scope::cancel_after` gives a scope a deadline. When it passes, the
//!    scope is cancelled exactly as by `cancel()`: every task and nested
//!    scope stops, and the scope ends with `Err(Cancelled)` whose reason is
//!    `Deadline { after }`.
//! 2. Calling `cancel_after` (or `cancel_at`) again moves the deadline,
//!    earlier or later: a watchdog that pushes it back on every sign of
//!    progress.
//! 3. `time::timeout(d, future)` bounds one future: `Ok(output)`, or
//!    `Err(Elapsed)` and the future is dropped.
//! 4. `move_on_after(d, |s| ...)` is a scope with a deadline: the
//!    block gives up when time is up and the code after it moves on.
//!
//! The runtime is built with a paused clock (`start_paused(true)`): time
//! jumps straight to the next timer whenever every task is idle, so the
//! seconds below take no real time, and the printed times are exact.
//!
//! Run with `cargo run --example timeout`.

use cancel_scope::move_on_after;
use cancel_scope::runtime::Builder;
use cancel_scope::time::{self, sleep, timeout};
use cancel_scope::{scope, CancelReason};
use std::time::{Duration, Instant};

/// The virtual time since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>5}ms]", (time::now() - t0).as_millis())
}

async fn demo() {
    let t0 = time::now();

    println!("1. A scope with a 3s deadline and jobs of 1s, 2s and 5s");
    let out = scope(|s| async move {
        s.cancel_after(Duration::from_secs(3));
        for secs in [1, 2, 5] {
            s.spawn(async move {
                sleep(Duration::from_secs(secs)).await;
                println!("{}    job of {secs}s done", at(t0));
            });
        }
    })
    .await;
    match out {
        Ok(()) => println!("{}    all jobs done", at(t0)),
        Err(cancelled) => {
            assert!(matches!(cancelled.reason(), CancelReason::Deadline { .. }));
            println!("{}    scope ended: {cancelled}", at(t0));
        }
    }

    println!("\n2. A watchdog: each heartbeat moves the 1s deadline back");
    let t1 = time::now();
    let out = scope(|s| async move {
        s.cancel_after(Duration::from_secs(1));
        let watchdog = s.clone();
        s.spawn(async move {
            for beat in 1..=3 {
                sleep(Duration::from_millis(800)).await;
                watchdog.cancel_after(Duration::from_secs(1));
                let deadline = watchdog.deadline().unwrap() - t0;
                println!(
                    "{}    heartbeat {beat}: deadline moved to {}ms",
                    at(t0),
                    deadline.as_millis()
                );
            }
            println!("{}    heartbeats stop", at(t0));
        });
        std::future::pending::<()>().await
    })
    .await;
    println!(
        "{}    scope ended after {:?}: {}",
        at(t0),
        time::now() - t1,
        out.unwrap_err()
    );

    println!("\n3. timeout around single operations");
    let fast = timeout(Duration::from_millis(500), async {
        sleep(Duration::from_millis(100)).await;
        "response"
    })
    .await;
    println!("{}    fast call: {fast:?}", at(t0));
    let slow = timeout(Duration::from_millis(500), async {
        sleep(Duration::from_secs(60)).await;
        "response"
    })
    .await;
    match slow {
        Ok(v) => println!("{}    slow call: {v}", at(t0)),
        Err(elapsed) => println!("{}    slow call gave up: {elapsed}", at(t0)),
    }

    println!("\n4. move_on_after: refresh a cache, or move on with stale data");
    let cached = "stale data";
    let refreshed = move_on_after(Duration::from_secs(1), |s| async move {
        let parts = s.spawn(async {
            sleep(Duration::from_secs(5)).await; // the backend is slow today
            "fresh data"
        });
        parts.await.unwrap()
    })
    .await;
    let data = refreshed.unwrap_or_else(|cancelled| {
        println!("{}    refresh abandoned: {cancelled}", at(t0));
        cached
    });
    println!("{}    using {data}", at(t0));
}

fn main() {
    // A paused clock; one worker keeps the printed order of events that
    // happen at the same instant the same on every run.
    let rt = Builder::new()
        .start_paused(true)
        .worker_threads(1)
        .build()
        .expect("start the runtime");
    let real = Instant::now();
    // The demo runs as a task of the runtime; `block_on` waits for it.
    rt.block_on(scope(|s| async move { s.spawn(demo()).await }))
        .expect("the demo's scope is not cancelled")
        .expect("the demo task is not cancelled");
    println!("\n(real time taken: {:?})", real.elapsed());
}
