//! CPU-heavy work through `spawn_blocking`, with a cooperative cancel.
//!
//! - `Scope::spawn_blocking` runs a closure on the runtime's blocking pool,
//!   never on a worker: the runtime here has one worker, and a ticker task
//!   keeps ticking on it while two closures keep the pool's two threads
//!   busy.
//! - The closures are tasks of their scope: the scope does not end while
//!   one runs. A deadline cancels the scope; a closure cannot be stopped
//!   from outside, so each one checks a `CancelHandle` it captured between
//!   chunks of work and returns early. Its handle then says
//!   `Err(Cancelled)` (what it returned is dropped).
//! - The pool runs at most two closures at once here
//!   (`Builder::max_blocking_threads(2)`); the others wait in a queue. A
//!   closure still waiting when its scope is cancelled never runs.
//!
//! The jobs count primes. Job 1 is small and ends at once; jobs 2 to 4
//! would run for hours. Jobs 1 and 2 start; job 3 starts when job 1 ends;
//! job 4 waits for a thread until the deadline.
//!
//! Run with `cargo run --example blocking`.

use cancel_scope::move_on_after;
use cancel_scope::runtime::Builder;
use cancel_scope::time::sleep;
use cancel_scope::{CancelHandle, JoinHandle};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The deadline for all the work.
const DEADLINE: Duration = Duration::from_millis(300);
/// Numbers tested between two looks at the cancel handle.
const CHUNK: u64 = 500;

/// Milliseconds since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", t0.elapsed().as_millis())
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// Counts the primes below `limit`, a chunk at a time, returning early if
/// `cancel` says the scope was cancelled.
fn count_primes(job: usize, limit: u64, cancel: CancelHandle, t0: Instant) -> u64 {
    let mut count = 0;
    let mut next = 2;
    while next < limit {
        if cancel.is_cancelled() {
            println!(
                "{} job {job}: cancelled; stopping after the numbers below {next}",
                at(t0)
            );
            return count;
        }
        let end = (next + CHUNK).min(limit);
        count += (next..end).filter(|&n| is_prime(n)).count() as u64;
        next = end;
    }
    println!("{} job {job}: done", at(t0));
    count
}

fn main() {
    let rt = Builder::new()
        .worker_threads(1)
        .max_blocking_threads(2)
        .build()
        .expect("start the runtime");
    let t0 = Instant::now();
    let limits = [20_000, u64::MAX, u64::MAX, u64::MAX];
    let started: Vec<_> = limits
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let mut jobs: Vec<JoinHandle<u64>> = Vec::new();

    let out = rt.block_on(move_on_after(DEADLINE, |s| {
        let (jobs, started) = (&mut jobs, &started);
        async move {
            for (i, &limit) in limits.iter().enumerate() {
                let (job, cancel, started) = (i + 1, s.cancel_handle(), started[i].clone());
                jobs.push(s.spawn_blocking(move || {
                    started.store(true, SeqCst);
                    println!("{} job {job}: started on a blocking thread", at(t0));
                    count_primes(job, limit, cancel, t0)
                }));
            }
            // The worker is free: this task ticks while the closures run.
            s.spawn(async move {
                for tick in 1.. {
                    sleep(Duration::from_millis(100)).await;
                    println!("{} ticker: tick {tick} (the worker is free)", at(t0));
                }
            });
            std::future::pending::<()>().await
        }
    }));
    println!(
        "{} the scope ended: {}",
        at(t0),
        out.expect_err("the deadline ends the scope")
    );

    for (i, job) in jobs.into_iter().enumerate() {
        let outcome = match rt.block_on(job) {
            Ok(primes) => format!("{primes} primes"),
            Err(cancelled) if started[i].load(SeqCst) => {
                format!("stopped early, result dropped ({cancelled})")
            }
            Err(cancelled) => format!("never started ({cancelled})"),
        };
        println!("job {}: {outcome}", i + 1);
    }
    assert_eq!(rt.live_tasks(), 0, "no closure outlived its scope");
}
