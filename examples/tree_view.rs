//! Looking inside a running program: the live scope tree.
//!
//! Because every task belongs to a scope and scopes nest, a running
//! program *is* a tree, and the runtime can show it.
//! [`Runtime::scope_tree`] copies the tree scope by scope, each under its
//! own lock, from any thread, without stopping anything; the copy prints as an indented tree with
//! each scope's id, name, state, kind, deadline, live tasks and the line
//! that opened it. When a program hangs, this tells you what it is waiting
//! for. Each scope here is given a name (`.named("server")`), which the
//! tree shows beside its id.
//!
//! This program builds a small "server", every task parked on a
//! [`sync::Event`](cancel_scope::sync::Event):
//!
//! ```text
//! server                 root; its body and a listener task wait
//! ├── session            a linked scope: cancelling it would cancel server
//! │   └── request        a scope with a 30s deadline (`cancel_after`)
//! └── flush-on-exit      a shielded scope: cancelling server does not reach it
//! ```
//!
//! Another OS thread plays the part of a "dump the tree on SIGUSR1"
//! handler: once signalled, it prints `rt.scope_tree()` while the program
//! runs, cancels `server`, and prints the tree again. By then every task
//! under `server` has been dropped, except inside the shield: `server` is
//! `cancelling`, waiting for `flush-on-exit`, which is `detached` (the task
//! that awaited it was cancelled, so nobody will read its result) but still
//! runs its cleanup, which must not be cut short. Once it is done,
//! everything has ended and the tree is empty.
//!
//! Run it with `cargo run --example tree_view`.

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::{
    linked_scope, scope, shielded_scope, sync::Event, time::sleep, CancelHandle, Scope,
};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let rt = Builder::new()
        .worker_threads(2)
        .build()
        .expect("start the runtime");
    let (signal, signalled) = mpsc::channel::<CancelHandle>();

    let out = thread::scope(|threads| {
        // The "signal handler": waits for the signal, then dumps the tree.
        threads.spawn(|| dump_on_signal(&rt, signalled));
        rt.block_on(scope(|server| server_body(server, signal)).named("server"))
    });

    println!("server ended with: {:?}", out.map_err(|c| c.to_string()));
    println!("the tree after the run:\n{}", rt.scope_tree());
    println!("exited after {:?}", start.elapsed());
}

/// The root scope's body: opens the tree, raises the signal, and waits
/// (like a server's main loop) until it is cancelled.
async fn server_body(server: Scope, signal: mpsc::Sender<CancelHandle>) {
    println!("scope #{}: server", server.id());

    // listener: a plain task of `server`, waiting for connections.
    let accept = Event::new();
    server.spawn(accept.wait());

    // session: a linked scope with a task, and a nested scope with a
    // deadline and two tasks.
    let session_open = Event::new();
    server.spawn({
        let opened = session_open.clone();
        linked_scope(move |session| async move {
            println!("scope #{}: session [linked]", session.id());
            session.spawn(Event::new().wait()); // waits for the client
            let request = scope(move |request| async move {
                println!("scope #{}: request (30s deadline)", request.id());
                request.cancel_after(Duration::from_secs(30));
                request.spawn(Event::new().wait()); // waits for a database
                request.spawn(Event::new().wait()); // waits for a cache
                opened.set();
                Event::new().wait().await; // the handler waits for both
            });
            let _ = request.named("request").await;
        })
        .named("session")
    });
    session_open.wait().await;

    // flush-on-exit: a shield that, once `server` is cancelled, flushes.
    let flush_open = Event::new();
    server.spawn({
        let opened = flush_open.clone();
        let server = server.clone();
        shielded_scope(move |flush| async move {
            println!("scope #{}: flush-on-exit [shielded]", flush.id());
            opened.set();
            let why = server.cancelled().await;
            println!("flush-on-exit: server was cancelled ({why}); flushing");
            sleep(Duration::from_millis(50)).await;
            println!("flush-on-exit: flushed");
        })
        .named("flush-on-exit")
    });
    flush_open.wait().await;

    println!("server: everything is open; raising the signal");
    signal
        .send(server.cancel_handle())
        .expect("the dump thread is listening");
    Event::new().wait().await; // waits for a shutdown request
}

/// Waits for the "signal", prints the tree while the program runs, then
/// cancels the server and prints the tree again.
fn dump_on_signal(rt: &Runtime, signalled: mpsc::Receiver<CancelHandle>) {
    let Ok(server) = signalled.recv() else {
        return;
    };
    println!("\n[dump thread] the scope tree:\n{}", rt.scope_tree());
    println!("[dump thread] cancelling the server");
    server.cancel();
    println!(
        "\n[dump thread] the scope tree right after cancel():\n{}",
        rt.scope_tree()
    );
}
