//! Work stealing: an idle worker takes tasks from a busy one's queue.
//!
//! Each worker thread has its own run queue. A task spawned *from a task*
//! goes to the queue of the worker running the spawner: it is cheap (no
//! shared lock) and keeps related work together. If that were all, one
//! task spawning a thousand others would keep one core busy and leave the
//! others idle. So a worker whose own queue is empty **steals** a batch of
//! tasks from another worker's queue.
//!
//! This program starts a runtime with two workers
//! ([`Builder::worker_threads`]). One task, the spawner, spawns 400 small
//! CPU-bound tasks, all of which land on its own worker's queue; each task
//! reports which thread ran it ([`std::thread::current`]`().name()`: the
//! workers are named `cancel-scope-worker-<n>` unless
//! [`Builder::thread_name`] says otherwise). It then prints how many tasks
//! each worker ran: the ones that ran on the other worker were stolen.
//!
//! How many get stolen depends on the machine and its load: on a busy
//! machine the other worker may barely get a turn. The program reports
//! what happened; it does not expect a particular split.
//!
//! Run it with `cargo run --release --example work_stealing`.

use cancel_scope::runtime::Builder;
use cancel_scope::scope;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::thread;
use std::time::Instant;

/// How many tasks the spawner spawns.
const TASKS: usize = 400;

/// The name of the thread running the caller.
fn thread_name() -> String {
    thread::current().name().unwrap_or("(unnamed)").to_string()
}

/// A small piece of CPU-bound work (about a tenth of a millisecond in a
/// release build).
fn crunch(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..20_000 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = black_box(x);
    }
    x
}

fn main() {
    let rt = Builder::new()
        .worker_threads(2)
        .build()
        .expect("start the runtime");
    let start = Instant::now();

    let out = rt.block_on(scope(|s| async move {
        // The body runs on this (main) thread, so its spawns go to the
        // shared injector queue. The spawner is a task: it runs on a worker.
        let spawner = s.clone();
        s.spawn(async move {
            let home = thread_name();
            println!("spawner: running on {home}; spawning {TASKS} tasks onto its queue");
            let handles: Vec<_> = (0..TASKS as u64)
                .map(|i| {
                    spawner.spawn(async move {
                        let checksum = crunch(i);
                        (thread_name(), checksum)
                    })
                })
                .collect();
            let mut per_worker = BTreeMap::<String, usize>::new();
            for handle in handles {
                let (worker, _checksum) = handle.await.expect("no task is cancelled");
                *per_worker.entry(worker).or_default() += 1;
            }
            (home, per_worker)
        })
        .await
        .expect("the spawner is not cancelled")
    }));

    let (home, per_worker) = out.expect("the scope is not cancelled");
    println!("{TASKS} tasks ran in {:?}:", start.elapsed());
    for (worker, count) in &per_worker {
        let note = if *worker == home {
            "on the spawner's own worker"
        } else {
            "stolen from the spawner's queue"
        };
        println!("  {worker}: {count:>4} tasks ({note})");
    }
    let stolen: usize = per_worker
        .iter()
        .filter(|(worker, _)| **worker != home)
        .map(|(_, count)| count)
        .sum();
    if stolen == 0 {
        println!("no task was stolen this time: the other worker did not get a turn");
    } else {
        println!("{stolen} of {TASKS} tasks were stolen by the idle worker");
    }
}
