//! Spawning and scheduling benchmarks: ours against tokio and smol, with
//! equal work (our tasks in a scope that waits for them; the peers' tasks
//! detached, each counting down a latch the spawner awaits). The workloads
//! are in `src/schedule.rs`; this file only times them.
//!
//! - `spawn_join/<runtime>/{100,10000}`: spawn `n` tasks that return at
//!   once and wait for the group to end. `tokio_idiomatic` drains a
//!   `JoinSet`; `smol_idiomatic` awaits every `Task`.
//! - `spawn_join_contended/<runtime>/10000`: two threads at once, each
//!   spawning 10,000 tasks into its own group of the same runtime and
//!   waiting for it; from the first start to the last end.
//! - `pingpong/<runtime>/10000`: two tasks pass a number back and forth
//!   10,000 times over two `async_channel::bounded(1)` channels.
//! - `yield_many/<runtime>/10000`: one task yields 10,000 times (each
//!   runtime's own `yield_now`).
//! - `limit/<runtime>/10000`: a fan-out of 10,000 short tasks (one yield
//!   each), at most 16 running at once: ours a scope with `limit(16)`,
//!   the peers a semaphore whose permit the spawner acquires before each
//!   spawn (`src/limit.rs`).
//!
//! Every runtime has two worker threads; the clock starts before the
//! group is made and stops when the spawning thread has seen it end.
#![allow(missing_docs)]

use cancel_scope_bench::limit::{limit_cancel_scope, limit_smol, limit_tokio};
use cancel_scope_bench::schedule::*;
use cancel_scope_bench::{cancel_scope_rt, tokio_rt, Smol};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::time::Duration;

/// Round trips in `pingpong`, yields in `yield_many`.
const ROUNDS: usize = 10_000;

/// Runs `f` `iters` times and adds up the measured times.
fn sum(iters: u64, f: &dyn Fn() -> Duration) -> Duration {
    (0..iters).map(|_| f()).sum()
}

fn schedule(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let smol = Smol::new();
    let mut bench = |group: &str, size: usize, entries: &[(&str, &dyn Fn() -> Duration)]| {
        let mut g = c.benchmark_group(group);
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, f) in entries {
            g.bench_function(BenchmarkId::new(*name, size), |b| {
                b.iter_custom(|iters| sum(iters, *f))
            });
        }
        g.finish();
    };
    for n in [100usize, 10_000] {
        bench(
            "spawn_join",
            n,
            &[
                ("cancel_scope", &|| spawn_join_cancel_scope(&ours, n)),
                ("tokio", &|| spawn_join_tokio(&tokio, n)),
                ("smol", &|| spawn_join_smol(&smol, n)),
                ("tokio_idiomatic", &|| spawn_join_tokio_idiomatic(&tokio, n)),
                ("smol_idiomatic", &|| spawn_join_smol_idiomatic(&smol, n)),
            ],
        );
    }
    let n = 10_000;
    bench(
        "spawn_join_contended",
        n,
        &[
            ("cancel_scope", &|| contended_cancel_scope(&ours, n)),
            ("tokio", &|| contended_tokio(&tokio, n)),
            ("smol", &|| contended_smol(&smol, n)),
        ],
    );
    bench(
        "pingpong",
        ROUNDS,
        &[
            ("cancel_scope", &|| pingpong_cancel_scope(&ours, ROUNDS)),
            ("tokio", &|| pingpong_tokio(&tokio, ROUNDS)),
            ("smol", &|| pingpong_smol(&smol, ROUNDS)),
        ],
    );
    bench(
        "limit",
        n,
        &[
            ("cancel_scope", &|| limit_cancel_scope(&ours, n)),
            ("tokio", &|| limit_tokio(&tokio, n)),
            ("smol", &|| limit_smol(&smol, n)),
        ],
    );
    bench(
        "yield_many",
        ROUNDS,
        &[
            ("cancel_scope", &|| yield_cancel_scope(&ours, ROUNDS)),
            ("tokio", &|| yield_tokio(&tokio, ROUNDS)),
            ("smol", &|| yield_smol(&smol, ROUNDS)),
        ],
    );
}

criterion_group!(benches, schedule);
criterion_main!(benches);
