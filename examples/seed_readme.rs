//! The seed's first example: four tasks sleeping 1 to 4 seconds, cancelled
//! as a group. The block ends at once, without a panic or an error
//! propagating: the scope's output says it was cancelled.
//!
//! Python original:
//!
//! ```text
//! async with cancel_scope(asyncio.TaskGroup()) as tg:
//!     for secs in (1, 2, 3, 4):
//!         tg.create_task(asyncio.sleep(secs))
//!     cancel_group(tg)
//! ```

use cancel_scope::{runtime, scope, time::sleep};
use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let out = runtime::block_on(scope(|s| async move {
        for secs in 1..=4 {
            s.spawn(async move {
                sleep(Duration::from_secs(secs)).await;
                println!("task sleeping {secs}s finished (this line must not print)");
            });
        }
        println!("spawned 4 tasks sleeping 1s, 2s, 3s and 4s; cancelling the scope");
        s.cancel();
    }));
    let elapsed = start.elapsed();
    match &out {
        Ok(()) => println!("scope finished normally"),
        Err(cancelled) => println!("scope ended with Err: {cancelled}"),
    }
    println!("the block took {elapsed:?} (the longest task would have slept 4s)");
    assert!(out.is_err(), "the scope was cancelled");
    assert!(
        elapsed < Duration::from_secs(1),
        "cancel stopped the sleeps"
    );
}
