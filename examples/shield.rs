//! Cleanup in a shielded scope, while everything around it is cancelled.
//!
//! Cancelling a task drops its future, and Rust has no async `Drop`: a
//! destructor cannot `.await`, so it cannot say goodbye to a peer or flush
//! a buffer over the network. A `shielded_scope` is where such cleanup can
//! run: the cancellation of enclosing scopes does not reach inside it, its
//! body runs as a task of its own (so it goes on even if the future that
//! opened it is dropped), and the enclosing scope waits for it before it
//! ends.
//!
//! The story: a server scope handles three connections until it is shut
//! down (here by a deadline, standing in for a shutdown signal). Each
//! connection keeps a shielded "closer" that waits for the server's
//! cancellation (`Scope::cancelled()`), then sends a goodbye frame and
//! flushes. The shield's own deadline still works, and bounds the cleanup:
//! one peer is stuck, and its closer gives up after 500ms rather than
//! holding the shutdown forever. A fourth connection has only a `Drop`
//! impl, which can do nothing asynchronous.
//!
//! The clock is paused, so the program runs at once and the timeline is
//! exact.
//!
//! Run with `cargo run --example shield`.

use cancel_scope::runtime::Builder;
use cancel_scope::time::{self, sleep};
use cancel_scope::{scope, shielded_scope, Scope};
use std::time::{Duration, Instant};

/// The virtual time since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", (time::now() - t0).as_millis())
}

/// Serves one connection until the server is cancelled.
async fn serve(id: u32, t0: Instant) {
    let mut n = 0;
    loop {
        sleep(Duration::from_millis(300)).await;
        n += 1;
        println!("{}   conn {id}: request {n} served", at(t0));
    }
}

/// Spawns the shielded closer of connection `id`: waits for `server` to be
/// cancelled, then closes the connection properly, taking `goodbye`.
fn spawn_closer(server: &Scope, id: u32, goodbye: Duration, t0: Instant) {
    let watched = server.clone();
    server.spawn(shielded_scope(move |closer| async move {
        let why = watched.cancelled().await;
        // Bound the cleanup: a stuck peer must not hold the shutdown.
        closer.cancel_after(Duration::from_millis(500));
        println!(
            "{}   conn {id}: closer woke ({why}), saying goodbye",
            at(t0)
        );
        let mut cut_off = CutOff {
            id,
            t0,
            armed: true,
        };
        sleep(goodbye).await; // send the goodbye frame, flush, await the ack
        cut_off.armed = false;
        println!("{}   conn {id}: closed cleanly", at(t0));
    }));
}

/// Reports a closer stopped by its own deadline before it finished.
struct CutOff {
    id: u32,
    t0: Instant,
    armed: bool,
}

impl Drop for CutOff {
    fn drop(&mut self) {
        if self.armed {
            println!(
                "{}   conn {}: closer cut off by its own deadline",
                at(self.t0),
                self.id
            );
        }
    }
}

/// A connection whose only cleanup is a destructor.
struct DropOnly {
    t0: Instant,
}

impl Drop for DropOnly {
    fn drop(&mut self) {
        println!(
            "{}   conn 4: dropped; a destructor cannot await, no goodbye sent",
            at(self.t0)
        );
    }
}

async fn demo() {
    let t0 = time::now();
    let out = scope(|server| async move {
        server.cancel_after(Duration::from_secs(1)); // the shutdown signal
        for (id, goodbye) in [(1, 100), (2, 250), (3, 5000)] {
            server.spawn(serve(id, t0));
            spawn_closer(&server, id, Duration::from_millis(goodbye), t0);
        }
        server.spawn(async move {
            let _conn = DropOnly { t0 };
            serve(4, t0).await
        });
        std::future::pending::<()>().await
    })
    .await;
    let err = out.expect_err("the server runs until it is shut down");
    println!("{}   server scope ended: {err}", at(t0));
    println!("        (it waited for every closer, and no longer than their deadlines)");
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
