//! `try_scope`: the first error cancels the siblings.
//!
//! A page is assembled from three backend calls made concurrently. If any
//! of them fails, the page cannot be built, so there is no point in
//! waiting for the others: the first `Err` cancels the scope, the other
//! calls stop at once, and the scope resolves to that error once they have
//! all ended.
//!
//! In a plain `scope` a task's `Err` is just a value (the caller decides
//! what it means); a `try_scope` makes the scope itself fail fast. Its result has two layers:
//!
//! - `Ok(Ok(value))`: the body and every task succeeded;
//! - `Ok(Err(error))`: the first error, from a task or from the body;
//! - `Err(Cancelled)`: the scope was cancelled for another reason (from
//!   outside, or by a deadline).
//!
//! The calls are simulated with sleeps on a paused clock, so the program
//! runs at once and prints an exact timeline.
//!
//! Run with `cargo run --example first_error`.

use cancel_scope::runtime::Builder;
use cancel_scope::time::{self, sleep};
use cancel_scope::{scope, try_scope, Cancelled};
use std::time::{Duration, Instant};

/// The virtual time since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", (time::now() - t0).as_millis())
}

/// Prints when a call is dropped before it finished (it was cancelled).
struct Call {
    name: &'static str,
    t0: Instant,
    done: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            println!("{}   {:<16} cancelled", at(self.t0), self.name);
        }
    }
}

/// A simulated backend call: answers after `latency`, or fails.
async fn call(
    name: &'static str,
    latency: Duration,
    fails: bool,
    t0: Instant,
) -> Result<String, String> {
    let mut me = Call {
        name,
        t0,
        done: false,
    };
    println!("{}   {name:<16} started", at(t0));
    sleep(latency).await;
    me.done = true;
    if fails {
        println!("{}   {name:<16} failed", at(t0));
        Err(format!("{name} returned 503"))
    } else {
        println!("{}   {name:<16} answered", at(t0));
        Ok(format!("<{name}>"))
    }
}

/// Builds the page from three concurrent calls; `orders_fail` decides
/// whether the orders service is down.
async fn build_page(orders_fail: bool) -> Result<Result<String, String>, Cancelled> {
    let t0 = time::now();
    let ms = Duration::from_millis;
    try_scope(|s| async move {
        let profile = s.spawn(call("profile", ms(200), false, t0));
        let orders = s.spawn(call("orders", ms(300), orders_fail, t0));
        let recs = s.spawn(call("recommendations", ms(2000), false, t0));
        // If a call fails, this body is cancelled as well: it never sees
        // the error here, the scope reports it.
        let page = format!(
            "{} {} {}",
            profile.await.unwrap(),
            orders.await.unwrap(),
            recs.await.unwrap()
        );
        println!("{}   page assembled", at(t0));
        Ok(page)
    })
    .await
}

async fn demo() {
    println!("With every backend up:");
    let t0 = time::now();
    match build_page(false).await {
        Ok(Ok(page)) => println!("{} => page: {page}", at(t0)),
        Ok(Err(error)) => println!("{} => failed: {error}", at(t0)),
        Err(cancelled) => println!("{} => {cancelled}", at(t0)),
    }

    println!("\nWith the orders service down:");
    let t0 = time::now();
    match build_page(true).await {
        Ok(Ok(page)) => println!("{} => page: {page}", at(t0)),
        Ok(Err(error)) => println!("{} => failed fast: {error}", at(t0)),
        Err(cancelled) => println!("{} => {cancelled}", at(t0)),
    }
}

fn main() {
    // A paused clock; one worker keeps the printed order of events that
    // happen at the same instant the same on every run.
    let rt = Builder::new()
        .start_paused(true)
        .worker_threads(1)
        .build()
        .expect("start the runtime");
    // The demo runs as a task of the runtime; `block_on` waits for it.
    rt.block_on(scope(|s| async move { s.spawn(demo()).await }))
        .expect("the demo's scope is not cancelled")
        .expect("the demo task is not cancelled");
}
