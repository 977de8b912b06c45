//! Heap accounting: a counting global allocator shows that the heap goes
//! back to its starting size after large scopes end, whether they were
//! cancelled or completed.
//!
//! Six scenarios of 10,000 tasks on a two-worker runtime: cancel tasks
//! parked on an event; cancel tasks asleep for an hour (one timer each);
//! cancel 1,000 nested scopes of 10 parked tasks; drop a scope future
//! mid-run; complete joined tasks; complete detached tasks.
//!
//! The runtime is warmed up first by running every scenario twice, so
//! that structures that grow lazily and are kept for reuse (the run
//! queues' buffers, the per-thread records of the lock and epoch
//! libraries) are part of the baseline. Then three rounds of all six.
//! After each scenario, once the workers have dropped their last queue
//! references to cancelled tasks (waited for up to 5 s), the live blocks
//! may exceed the baseline by a small fixed slack ([`SLACK_BLOCKS`]: one
//! leaked allocation per 40 tasks would exceed it), and the live bytes by
//! at most the run queue capacity a burst may leave behind
//! ([`SLACK_BYTES`]). From the first round to the last the live blocks
//! may not grow by more than [`ROUND_SLACK_BLOCKS`]. Each scenario's peak
//! must exceed 64 bytes per task, which shows that the counter sees its
//! allocations.
//!
//! Everything runs in one test: the allocator counts every thread of the
//! process, so no other test may run beside it. It turns the runtime's
//! pools off (`CANCEL_SCOPE_NO_POOL`), so that every task and node is a
//! block the allocator counts. Under Miri a scenario has
//! 50 tasks and runs one round.

mod support;

use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{scope, CancelReason};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::{hang_guard, runtime, Clock};

/// Counts live heap bytes and blocks, then defers to the system allocator.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counters have no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, SeqCst);
            LIVE_BLOCKS.fetch_add(1, SeqCst);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, SeqCst);
            LIVE_BLOCKS.fetch_add(1, SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, SeqCst);
        LIVE_BLOCKS.fetch_sub(1, SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, SeqCst);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Tasks per scenario.
const TASKS: usize = if cfg!(miri) { 50 } else { 10_000 };

/// How many more blocks than at the baseline may be live after a
/// scenario: the few records the lock and epoch libraries keep per thread
/// and the injector's current block. Any per-task allocation that is not
/// freed shows here: the smallest leak caught is one block per 40 tasks.
const SLACK_BLOCKS: isize = 250;

/// How many more bytes than at the baseline may be live after a scenario.
///
/// A worker's run queue is a power-of-two ring buffer of 8-byte task
/// references that grows under a burst (here, tasks spawned by tasks land
/// in the spawning worker's queue) and shrinks only as its owner pops;
/// when other workers steal the burst, the grown buffer stays until its
/// owner's next pops. That is at most 16,384 references (128 KiB) per
/// worker for [`TASKS`] tasks, 256 KiB for two workers, kept for reuse
/// and not growing with use; the slack is twice that. A leak of 52 bytes per task or more exceeds
/// it in a single scenario; smaller per-task leaks are caught by the block
/// count, and slow growth by [`ROUND_SLACK_BLOCKS`].
const SLACK_BYTES: isize = 512 * 1024;

/// How many blocks may be added from the end of the first measured round
/// to the end of the last: a leak adds up round after round.
const ROUND_SLACK_BLOCKS: isize = 64;

fn live() -> (isize, isize) {
    (LIVE_BYTES.load(SeqCst), LIVE_BLOCKS.load(SeqCst))
}

/// Live bytes and blocks once the workers have settled: a scope ends when
/// its last task is released, but a worker queue may still hold a
/// reference to a task that was cancelled while queued (the worker drops
/// it when it pops it, at once, since the task is complete). So this
/// waits, up to [`SETTLE`], for the heap to come back within the slack;
/// a leak never does, and is reported with its size.
fn settled_live(base: (isize, isize)) -> (isize, isize) {
    let start = Instant::now();
    loop {
        let (bytes, blocks) = live();
        let within = bytes - base.0 <= SLACK_BYTES && blocks - base.1 <= SLACK_BLOCKS;
        if within || start.elapsed() > SETTLE {
            return (bytes, blocks);
        }
        thread::yield_now();
    }
}

/// How long [`settled_live`] waits for the workers to settle.
const SETTLE: Duration = Duration::from_secs(5);

/// The highest live byte count seen inside a scenario.
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn note_peak() {
    PEAK.fetch_max(LIVE_BYTES.load(SeqCst), SeqCst);
}

/// `TASKS` tasks parked on an event, then the scope is cancelled.
fn cancel_parked(rt: &Runtime) {
    let out = rt.block_on(scope(|s| async move {
        let forever = Event::new();
        let parked = Arc::new(AtomicUsize::new(0));
        let all = Event::new();
        for _ in 0..TASKS {
            let (forever, parked, all) = (forever.clone(), parked.clone(), all.clone());
            s.spawn(async move {
                if parked.fetch_add(1, SeqCst) + 1 == TASKS {
                    all.set();
                }
                forever.wait().await;
            });
        }
        all.wait().await;
        note_peak();
        s.cancel();
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
}

/// `TASKS` tasks asleep for an hour (one timer each), then cancelled.
fn cancel_sleeping(rt: &Runtime) {
    let out = rt.block_on(scope(|s| async move {
        let asleep = Arc::new(AtomicUsize::new(0));
        for _ in 0..TASKS {
            let asleep = asleep.clone();
            s.spawn(async move {
                let mut nap = Box::pin(sleep(Duration::from_secs(3600)));
                let _ = futures_lite::future::poll_once(&mut nap).await;
                asleep.fetch_add(1, SeqCst);
                nap.await;
            });
        }
        while asleep.load(SeqCst) < TASKS {
            yield_now().await;
        }
        note_peak();
        s.cancel();
    }));
    assert!(out.is_err());
    assert_eq!(rt.pending_timers(), 0);
}

/// `TASKS / 10` nested scopes of 10 parked tasks each, cancelled from the
/// top.
fn cancel_nested(rt: &Runtime) {
    let out = rt.block_on(scope(|s| async move {
        let parked = Arc::new(AtomicUsize::new(0));
        for _ in 0..TASKS / 10 {
            let parked = parked.clone();
            s.spawn(scope(move |inner| async move {
                for _ in 0..10 {
                    let parked = parked.clone();
                    inner.spawn(async move {
                        parked.fetch_add(1, SeqCst);
                        std::future::pending::<()>().await
                    });
                }
                std::future::pending::<()>().await
            }));
        }
        while parked.load(SeqCst) < TASKS {
            yield_now().await;
        }
        note_peak();
        s.cancel();
    }));
    assert!(out.is_err());
}

/// `TASKS` parked tasks whose scope future loses a race and is dropped.
fn drop_scope_future(rt: &Runtime) {
    let parked = Arc::new(AtomicUsize::new(0));
    let p = parked.clone();
    let winner = rt.block_on(futures_lite::future::or(
        async move {
            let _ = scope(|s| async move {
                for _ in 0..TASKS {
                    let p = p.clone();
                    s.spawn(async move {
                        p.fetch_add(1, SeqCst);
                        std::future::pending::<()>().await
                    });
                }
                std::future::pending::<()>().await
            })
            .await;
            "scope"
        },
        async move {
            while parked.load(SeqCst) < TASKS {
                yield_now().await;
            }
            note_peak();
            "other"
        },
    ));
    assert_eq!(winner, "other");
}

/// `TASKS` tasks joined through their handles.
fn complete_joined(rt: &Runtime) {
    let out = rt.block_on(scope(|s| async move {
        let handles: Vec<_> = (0..TASKS).map(|i| s.spawn(async move { i })).collect();
        note_peak();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    }));
    assert_eq!(out, Ok(TASKS * (TASKS - 1) / 2));
}

/// `TASKS` detached tasks that wait for a signal, yield once and end.
fn complete_detached(rt: &Runtime) {
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let out = rt.block_on(scope(|s| async move {
        let go = Event::new();
        for _ in 0..TASKS {
            let (d, go) = (d.clone(), go.clone());
            drop(s.spawn(async move {
                go.wait().await;
                yield_now().await;
                d.fetch_add(1, SeqCst);
            }));
        }
        note_peak();
        go.set();
    }));
    assert!(out.is_ok());
    assert_eq!(done.load(SeqCst), TASKS);
}

type Scenario = (&'static str, fn(&Runtime));

const SCENARIOS: [Scenario; 6] = [
    ("cancel parked", cancel_parked),
    ("cancel sleeping", cancel_sleeping),
    ("cancel nested scopes", cancel_nested),
    ("drop scope future", drop_scope_future),
    ("complete joined", complete_joined),
    ("complete detached", complete_detached),
];

#[test]
fn heap_returns_to_its_baseline_after_large_scopes() {
    // Every task and node a block of its own, so that the counter sees
    // each (the pools are checked by their own tests, and by the burst of
    // the memory benchmark). Set before the runtime's first allocation.
    std::env::set_var("CANCEL_SCOPE_NO_POOL", "1");
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    // Warm-up: every scenario twice.
    for _ in 0..2 {
        for (_, run) in SCENARIOS {
            run(&rt);
        }
    }
    let (base_bytes, base_blocks) = live();
    println!("baseline: {base_bytes} bytes in {base_blocks} blocks");
    let rounds = if cfg!(miri) { 1 } else { 3 };
    let mut after_first_round = 0;
    for round in 0..rounds {
        for (name, run) in SCENARIOS {
            PEAK.store(0, SeqCst);
            run(&rt);
            // A dropped scope future leaves its node to the runner of a
            // task that was running at the cancel: it may leave the
            // tree just after `block_on` returned.
            let start = Instant::now();
            while (rt.live_tasks(), rt.live_scopes()) != (0, 0) && start.elapsed() < SETTLE {
                thread::yield_now();
            }
            assert_eq!(rt.live_tasks(), 0);
            assert_eq!(rt.live_scopes(), 0);
            let (bytes, blocks) = settled_live((base_bytes, base_blocks));
            let peak = PEAK.load(SeqCst) - base_bytes;
            println!(
                "round {round}, {name}: peak +{peak} bytes, after: {:+} bytes, {:+} blocks",
                bytes - base_bytes,
                blocks - base_blocks
            );
            // The counter sees the scenario's allocations at all.
            assert!(
                peak > (TASKS * 64) as isize,
                "{name}: the heap grew by only {peak} bytes during the scenario"
            );
            assert!(
                bytes - base_bytes <= SLACK_BYTES,
                "{name} (round {round}): {} bytes still live above the baseline",
                bytes - base_bytes
            );
            assert!(
                blocks - base_blocks <= SLACK_BLOCKS,
                "{name} (round {round}): {} blocks still live above the baseline",
                blocks - base_blocks
            );
        }
        let (_, blocks) = settled_live((base_bytes, base_blocks));
        if round == 0 {
            after_first_round = blocks;
        }
        assert!(
            blocks - after_first_round <= ROUND_SLACK_BLOCKS,
            "round {round}: {} more blocks live than after the first round",
            blocks - after_first_round
        );
    }
}
