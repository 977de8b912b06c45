//! Where parallel drop starts to pay: a scope of parked tasks whose futures
//! each spend a set time in `Drop` is cancelled, with parallel drop off and
//! on (`Builder::parallel_drop`), on the benchmarks' two workers.
//!
//! ```text
//! parallel_drop [TASKS] [CANCELS]
//! ```
//!
//! For each amount of work per drop (none, 1 µs, 5 µs) and each setting it
//! prints the time `cancel()` takes per task: the median of `CANCELS`
//! cancels (default 21) of `TASKS` tasks (default 10,000), taken in three
//! interleaved rounds, of which the median is shown. A drop's work is a
//! spin on the clock, so it costs the same on any thread.

use cancel_scope::runtime::Runtime;
use cancel_scope::scope;
use cancel_scope::task::yield_now;
use cancel_scope_bench::runtimes::{cancel_scope_rt, cancel_scope_rt_for_counting};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spends `self.0` in its `Drop`.
struct SlowDrop(Duration);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let start = Instant::now();
        while start.elapsed() < self.0 {
            std::hint::spin_loop();
        }
    }
}

/// Time per task of one `cancel()` of `tasks` parked tasks.
fn one_cancel(rt: &Runtime, tasks: usize, work: Duration) -> f64 {
    let parked = Arc::new(AtomicUsize::new(0));
    // The body cancels its own scope, so its scope ends in `Err` and the
    // body's value is lost: the time comes out through this cell.
    let took_ns = Arc::new(AtomicU64::new(0));
    let out = rt.block_on(scope(|s| {
        let took_ns = took_ns.clone();
        async move {
            for _ in 0..tasks {
                let parked = parked.clone();
                s.spawn(async move {
                    // A small heap payload beside the slow part, as a real
                    // future would hold.
                    let _held = (Box::new([0u64; 4]), SlowDrop(work));
                    parked.fetch_add(1, Relaxed);
                    // Let go of the shared count now, so that the timed
                    // drops touch nothing that other drops touch.
                    drop(parked);
                    std::future::pending::<()>().await;
                });
            }
            while parked.load(Relaxed) < tasks {
                yield_now().await;
            }
            // Let the workers fall idle, as they are when a big cancel
            // comes.
            std::thread::sleep(Duration::from_micros(500));
            let start = Instant::now();
            s.cancel();
            took_ns.store(start.elapsed().as_nanos() as u64, Relaxed);
        }
    }));
    assert!(out.is_err(), "the body cancelled its scope");
    took_ns.load(Relaxed) as f64 / tasks as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map_or(10_000, |a| a.parse().expect("TASKS"));
    let cancels: usize = args.next().map_or(21, |a| a.parse().expect("CANCELS"));
    // Parallel drop off, then on (the default); the benchmarks' workers.
    let runtimes = [cancel_scope_rt_for_counting(), cancel_scope_rt()];
    println!("| work in each `Drop` | one thread | shared |");
    println!("|---|---:|---:|");
    for work_ns in [0u64, 1_000, 5_000] {
        let work = Duration::from_nanos(work_ns);
        let mut rounds = [Vec::new(), Vec::new()];
        for _ in 0..3 {
            for (i, rt) in runtimes.iter().enumerate() {
                let per_task = (0..cancels).map(|_| one_cancel(rt, tasks, work)).collect();
                rounds[i].push(median(per_task));
            }
        }
        let [off, on] = rounds.map(median);
        println!("| {work_ns} ns | {off:.0} ns | {on:.0} ns |");
    }
}
