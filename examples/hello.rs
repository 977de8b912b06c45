//! Hello, structured concurrency: one runtime call, one scope, two tasks.
//!
//! - [`runtime::block_on`] runs a future on the calling thread until it is
//!   done, while the runtime's worker threads run the tasks it spawns.
//! - [`scope`] opens a scope. Its body gets a [`Scope`](cancel_scope::Scope)
//!   handle, and every task spawned through that handle belongs to the
//!   scope: the scope does not end before all of them have ended, so no
//!   task can outlive the block that started it.
//! - [`Scope::spawn`](cancel_scope::Scope::spawn) returns a
//!   [`JoinHandle`](cancel_scope::JoinHandle). Awaiting it gives
//!   `Ok(output)`, or `Err(Cancelled)` if the task was cancelled first.
//! - The scope itself resolves to `Ok(body's output)`, or `Err(Cancelled)`
//!   if it was cancelled. Cancellation is a value, not a panic.
//!
//! Run it with `cargo run --example hello`.

use cancel_scope::{runtime, scope, time::sleep};
use std::time::Duration;

fn main() {
    let out = runtime::block_on(scope(|s| async move {
        println!("scope: spawning two tasks");
        let greeter = s.spawn(async {
            sleep(Duration::from_millis(20)).await;
            println!("task 1: hello");
            "hello"
        });
        let counter = s.spawn(async {
            let sum: u64 = (1..=100).sum();
            println!("task 2: 1 + 2 + ... + 100 = {sum}");
            sum
        });
        println!("scope: both tasks are running; awaiting their join handles");
        let word = greeter.await.expect("task 1 was not cancelled");
        let sum = counter.await.expect("task 2 was not cancelled");
        format!("{word}, world ({sum})")
    }));
    match out {
        Ok(message) => println!("scope ended with Ok: {message}"),
        Err(cancelled) => println!("scope ended with Err: {cancelled}"),
    }
}
