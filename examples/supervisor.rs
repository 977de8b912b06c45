//! A server that survives a bad connection: supervision, per-task
//! cancellation, reasons, names and scope-locals.
//!
//! The server is a [`supervisor_scope`]: each connection is a named scope
//! run by a task of it, and a connection's panic stays with that task (its
//! handle gets the payload) instead of taking the server down. Every task
//! in a connection reads the connection's id from a [`ScopeLocal`] that the
//! connection's scope set, without passing it around. One connection
//! stalls, and is cancelled alone through its task's handle. At the end the
//! server is cancelled with a reason of its own, which every scope it
//! reaches reports.
//!
//! Run it with `cargo run --example supervisor`.

use cancel_scope::runtime::Builder;
use cancel_scope::time::sleep;
use cancel_scope::{scope, supervisor_scope, CancelReason, ScopeLocal};
use std::panic::resume_unwind;
use std::time::Duration;

/// The id of the connection a task works for.
static CONNECTION: ScopeLocal<u32> = ScopeLocal::new();

/// Handles one request of the current connection: reads its id from the
/// connection's scope.
async fn handle_request(n: u32) -> String {
    let id = CONNECTION.get().expect("runs inside a connection's scope");
    sleep(Duration::from_millis(5 * u64::from(n))).await;
    if id == 3 && n == 2 {
        panic!("connection {id}: malformed request {n}");
    }
    format!("connection {id}: request {n} answered")
}

/// One connection: a named scope that serves three requests as tasks.
async fn connection(id: u32) -> Result<Vec<String>, cancel_scope::Cancelled> {
    scope(move |conn| async move {
        if id == 4 {
            // This client never sends anything.
            std::future::pending::<()>().await;
        }
        let requests: Vec<_> = (1..=3).map(|n| conn.spawn(handle_request(n))).collect();
        let mut answers = Vec::new();
        for r in requests {
            answers.push(r.await.expect("a request of a healthy connection"));
        }
        answers
    })
    .named(format!("connection {id}"))
    .with_local(&CONNECTION, id)
    .await
}

fn main() {
    // A panic is reported where it is caught, below: keep the default
    // hook's backtrace out of the way.
    std::panic::set_hook(Box::new(|info| eprintln!("(a task panicked: {info})")));
    let rt = &Builder::new()
        .worker_threads(2)
        .build()
        .expect("start the runtime");
    let out = rt.block_on(
        supervisor_scope(|server| async move {
            let connections: Vec<_> = (1..=5)
                .map(|id| (id, server.spawn(connection(id))))
                .collect();
            sleep(Duration::from_millis(2)).await;
            println!("the server's tree while it serves:\n{}", rt.scope_tree());
            // Connection 4 stalls: give it a moment, then cancel it alone.
            sleep(Duration::from_millis(50)).await;
            connections[3].1.cancel();
            for (id, handle) in connections {
                match handle.await {
                    Ok(Ok(answers)) => {
                        println!("connection {id}: served {} requests", answers.len())
                    }
                    Ok(Err(cancelled)) => println!("connection {id}: its scope ended {cancelled}"),
                    Err(e) if e.reason() == &CancelReason::Panicked => {
                        let payload = e.take_panic().expect("the connection's panic");
                        match payload.downcast::<String>() {
                            Ok(message) => {
                                println!("connection {id} panicked: {message}; the others go on")
                            }
                            Err(other) => resume_unwind(other),
                        }
                    }
                    Err(e) => println!("connection {id}: {e}"),
                }
            }
            server.cancel_with("the server is shutting down");
            std::future::pending::<()>().await
        })
        .named("server"),
    );
    let why = out.unwrap_err();
    println!("server: {why}");
    assert!(why.cause().is_some());
}
