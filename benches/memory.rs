//! Memory per parked task: spawn 100,000 tasks that park forever and
//! report the bytes each costs, for every runtime of the cancellation
//! benchmarks side by side: ours, tokio, tokio with a `CancellationToken`
//! (each task waiting on a clone of one token), smol, and `limit` (a state
//! word and the future in one box, listed in a `Vec`).
//!
//! Two numbers per runtime, both growths measured from just before the
//! spawns to when every task has been polled once and parked:
//!
//! - **RSS**: resident set size from `/proc/self/statm` (resident pages
//!   times the page size), divided by the task count. This is what the
//!   process really costs, allocator slack and queue buffers included.
//! - **heap**: live bytes counted by a wrapper around the system allocator,
//!   divided by the task count. Exact, and not blurred by pages.
//!
//! RSS counts what the allocator keeps beside the bytes asked for (glibc's
//! chunk headers and rounding, and the slack of over-aligned blocks:
//! tokio's task cells are aligned to 128 bytes); heap counts only the
//! bytes asked for. Both are shown because they answer different
//! questions: what the process costs, and what the runtime asks for.
//!
//! Each runtime is measured in a fresh process (this binary runs itself
//! again with `MEMORY_PER_TASK_RUNTIME` set), so no runtime's freed memory
//! lowers another's growth. Every runtime has two worker threads; the task
//! is the same future everywhere, its `JoinHandle` dropped (detached).
//!
//! A second table, **burst**: after a warm-up (10,000 parked tasks spawned
//! and cancelled, twice), the RSS; then a burst of 1,000,000 parked tasks
//! (its peak RSS); then, once the burst is cancelled and the threads have
//! parked (so that each pool has filed what other threads freed to it), the
//! RSS again. Pools give memory back: the last figure should be within
//! twice the first.
//!
//! Not a criterion benchmark: it prints a table and writes `memory.json`
//! beside criterion's results. `cargo bench -p cancel-scope-bench --bench
//! memory` runs it alone; with a filter argument, `cargo bench` runs it only
//! if the filter is a substring of `memory`.
#![allow(missing_docs)]

use cancel_scope_bench::{cancel, parked, Smol};
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::time::Duration;

/// Tasks spawned per measurement.
const TASKS: usize = 100_000;
const RUNTIMES: [&str; 5] = ["cancel_scope", "tokio", "tokio_token", "smol", "limit"];
const CHILD_ENV: &str = "MEMORY_PER_TASK_RUNTIME";
/// Tasks of the burst.
const BURST: usize = 1_000_000;
/// Runtimes measured in the burst table.
const BURST_RUNTIMES: [&str; 2] = ["cancel_scope", "smol"];

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from this allocator, that is
        // from `System`, with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            LIVE.fetch_add(new_size, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The page size, from the first `KernelPageSize` line of
/// `/proc/self/smaps` (4 KiB if that cannot be read).
fn page_size() -> usize {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

/// Resident bytes, from `/proc/self/statm`.
fn rss(page: usize) -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let resident: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm has a resident field");
    resident * page
}

/// A snapshot of (RSS, live heap bytes).
#[derive(Clone, Copy)]
struct Snapshot {
    rss: usize,
    heap: usize,
}

fn snapshot(page: usize) -> Snapshot {
    Snapshot {
        rss: rss(page),
        heap: LIVE.load(SeqCst),
    }
}

/// Waits until every task has parked, lets the workers go idle, and takes
/// the snapshot.
fn settled(page: usize) -> Snapshot {
    while parked::parked() < TASKS {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    snapshot(page)
}

/// Measures one runtime in this process; returns (before, after).
fn measure(runtime: &str) -> (Snapshot, Snapshot) {
    let page = page_size();
    parked::reset(TASKS, TASKS);
    match runtime {
        "cancel_scope" => {
            let rt = cancel_scope_bench::cancel_scope_rt();
            // Warm the runtime and the allocator's thread caches.
            let _ = rt.block_on(cancel_scope::scope(|s| async move {
                for _ in 0..1000 {
                    s.spawn(async {});
                }
            }));
            let mut out = None;
            let out_ref = &mut out;
            let _ = rt.block_on(cancel_scope::scope(|s| async move {
                let before = snapshot(page);
                for _ in 0..TASKS {
                    s.spawn(cancel_scope_bench::parked_task());
                }
                *out_ref = Some((before, settled(page)));
                s.cancel();
            }));
            out.expect("measured")
        }
        "tokio" => {
            let rt = cancel_scope_bench::tokio_rt();
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..1000 {
                    set.spawn(async {});
                }
                while set.join_next().await.is_some() {}
                let before = snapshot(page);
                for _ in 0..TASKS {
                    drop(tokio::spawn(cancel_scope_bench::parked_task()));
                }
                (before, settled(page))
            })
        }
        "smol" => {
            let smol = Smol::new();
            smol.block_on(async {
                let warm: Vec<_> = (0..1000).map(|_| smol.spawn(async {})).collect();
                for t in warm {
                    t.await;
                }
            });
            let before = snapshot(page);
            for _ in 0..TASKS {
                smol.spawn(cancel_scope_bench::parked_task()).detach();
            }
            (before, settled(page))
        }
        "tokio_token" => {
            let rt = cancel_scope_bench::tokio_rt();
            let token = tokio_util::sync::CancellationToken::new();
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..1000 {
                    set.spawn(async {});
                }
                while set.join_next().await.is_some() {}
                let before = snapshot(page);
                for _ in 0..TASKS {
                    drop(tokio::spawn(cancel::token_task(token.clone())));
                }
                (before, settled(page))
            })
        }
        "limit" => {
            let before = snapshot(page);
            let cells = cancel::limit_cells(TASKS);
            let after = settled(page);
            std::mem::forget(cells);
            (before, after)
        }
        other => panic!("unknown runtime {other:?}"),
    }
}

/// RSS after a warm-up, at the peak of a burst of parked tasks, and once
/// the burst is cancelled and the threads have parked.
fn burst(runtime: &str) -> (usize, usize, usize) {
    let page = page_size();
    let settle = || std::thread::sleep(Duration::from_millis(200));
    match runtime {
        "cancel_scope" => {
            let rt = cancel_scope_bench::cancel_scope_rt();
            let round = |n: usize| {
                parked::reset(n, n);
                let mut peak = 0;
                let peak_ref = &mut peak;
                let _ = rt.block_on(cancel_scope::scope(|s| async move {
                    for _ in 0..n {
                        s.spawn(cancel_scope_bench::parked_task());
                    }
                    while parked::parked() < n {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    *peak_ref = rss(page);
                    s.cancel();
                }));
                // Park this thread and give the workers a turn: each thread
                // files what others freed to its pool as it parks.
                for _ in 0..3 {
                    let _ = rt.block_on(cancel_scope::scope(|s| async move {
                        for _ in 0..8 {
                            s.spawn(cancel_scope::task::yield_now());
                        }
                        cancel_scope::time::sleep(Duration::from_millis(20)).await;
                    }));
                }
                settle();
                peak
            };
            round(10_000);
            round(10_000);
            let warm = rss(page);
            let peak = round(BURST);
            (warm, peak, rss(page))
        }
        "smol" => {
            let smol = Smol::new();
            let round = |n: usize| {
                parked::reset(n, n);
                let tasks: Vec<_> = (0..n)
                    .map(|_| smol.spawn(cancel_scope_bench::parked_task()))
                    .collect();
                while parked::parked() < n {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let peak = rss(page);
                drop(tasks); // cancels them
                settle();
                peak
            };
            round(10_000);
            round(10_000);
            let warm = rss(page);
            let peak = round(BURST);
            (warm, peak, rss(page))
        }
        other => panic!("no burst for {other:?}"),
    }
}

fn per_task(before: usize, after: usize) -> f64 {
    (after as f64 - before as f64) / TASKS as f64
}

fn main() {
    if let Ok(runtime) = std::env::var(CHILD_ENV) {
        if let Some(runtime) = runtime.strip_prefix("burst:") {
            let (warm, peak, after) = burst(runtime);
            println!("{runtime} {warm} {peak} {after}");
            std::process::exit(0);
        }
        let (before, after) = measure(&runtime);
        println!(
            "{} {:.1} {:.1}",
            runtime,
            per_task(before.rss, after.rss),
            per_task(before.heap, after.heap)
        );
        // Skip tearing down 100,000 tasks: the numbers are out.
        std::process::exit(0);
    }
    // `cargo bench` passes `--bench` and any filter; honour a filter.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !"memory".contains(f.as_str())) {
        return;
    }
    let exe = std::env::current_exe().expect("own executable");
    println!(
        "memory per parked task ({TASKS} tasks, {} workers)",
        cancel_scope_bench::WORKERS
    );
    println!(
        "{:<14} {:>12} {:>12}",
        "runtime", "RSS B/task", "heap B/task"
    );
    let mut json = Vec::new();
    for runtime in RUNTIMES {
        let out = Command::new(&exe)
            .env(CHILD_ENV, runtime)
            .output()
            .expect("run the measuring process");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{runtime}: {stderr}");
        let line = String::from_utf8(out.stdout).expect("utf-8");
        let fields: Vec<&str> = line.split_whitespace().collect();
        println!("{:<14} {:>12} {:>12}", fields[0], fields[1], fields[2]);
        json.push(format!(
            "\"{}\": {{\"rss\": {}, \"heap\": {}}}",
            fields[0], fields[1], fields[2]
        ));
    }
    println!();
    println!("burst: {BURST} parked tasks, RSS in MiB");
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10}",
        "runtime", "warm", "peak", "after", "after/warm"
    );
    let mut bursts = Vec::new();
    for runtime in BURST_RUNTIMES {
        let out = Command::new(&exe)
            .env(CHILD_ENV, format!("burst:{runtime}"))
            .output()
            .expect("run the measuring process");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "burst {runtime}: {stderr}");
        let line = String::from_utf8(out.stdout).expect("utf-8");
        let f: Vec<&str> = line.split_whitespace().collect();
        let mib = |v: &str| v.parse::<f64>().expect("a number") / (1024.0 * 1024.0);
        let (warm, peak, after) = (mib(f[1]), mib(f[2]), mib(f[3]));
        println!(
            "{:<14} {warm:>10.1} {peak:>10.1} {after:>10.1} {:>10.2}",
            f[0],
            after / warm
        );
        bursts.push(format!(
            "\"{}\": {{\"warm\": {warm:.1}, \"peak\": {peak:.1}, \"after\": {after:.1}}}",
            f[0]
        ));
    }
    // Beside criterion's results, for `benches/report.py`.
    let json = format!(
        "{{\"tasks\": {TASKS}, \"runtimes\": {{{}}}, \"burst_tasks\": {BURST}, \"burst\": {{{}}}}}\n",
        json.join(", "),
        bursts.join(", ")
    );
    let dir = cancel_scope_bench::criterion_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("memory.json"), json);
    }
}
