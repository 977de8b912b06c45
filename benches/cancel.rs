//! Cancellation benchmarks: ours against tokio (abort handles), tokio-util's
//! `CancellationToken`, smol, and a `limit` with no runtime at all. The
//! workloads are in `src/cancel.rs`; this file only times them.
//!
//! - `cancel_flat/<runtime>/{100,10000}`: `n` parked tasks in one group,
//!   cancelled together. From the cancel call until the group has ended
//!   and every future has been dropped.
//! - `cancel_tree/<runtime>/{4x6,1000x1}`: a tree of groups of shape
//!   `<fanout>x<depth>` (4x6: 5,461 groups; 1000x1: 1,001), each holding
//!   one parked task and its child groups, each group below the root
//!   opened by a host task in its parent; cancel the root.
//! - `cancel_linked/cancel_scope/100`: a chain of 100 linked scopes whose
//!   innermost cancels itself and, through the links, the root, which has
//!   one parked task. No peer has linked cancellation.
//! - `scope_empty/<runtime>/{cancel,create_end,create_cancel_end}`: a
//!   scope with no task against a child `CancellationToken`: `cancel()` on
//!   an open one; open and end one; open, cancel and end one.
//!
//! Every runtime has two worker threads; setup (spawning, every task
//! polled once, workers idle) is outside the clock (`iter_custom`).
#![allow(missing_docs)]

use cancel_scope_bench::cancel::*;
use cancel_scope_bench::{cancel_scope_rt, tokio_rt, Smol};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
};
use std::time::Duration;

/// Modest times, so that a full run takes minutes: 0.5 s of warm-up and
/// `secs` of measured time per benchmark. Setup is not measured, so a
/// benchmark takes several times this on the wall clock.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, secs: f64, samples: usize) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs_f64(secs));
}

/// Runs `f` `iters` times and adds up the measured times.
fn sum(iters: u64, mut f: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| f()).sum()
}

fn cancel_flat(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let smol = Smol::new();
    let mut group = c.benchmark_group("cancel_flat");
    configure(&mut group, 1.0, 20);
    for n in [100usize, 10_000] {
        let mut entry = |name: &str, f: &dyn Fn() -> Duration| {
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| sum(iters, f))
            });
        };
        entry("cancel_scope", &|| flat_cancel_scope(&ours, n));
        entry("tokio", &|| flat_tokio(&tokio, n));
        entry("tokio_token", &|| flat_tokio_token(&tokio, n));
        entry("smol", &|| flat_smol(&smol, n));
        entry("limit", &|| flat_limit(n));
        entry("tokio_idiomatic", &|| flat_tokio_idiomatic(&tokio, n));
        entry("tokio_token_idiomatic", &|| {
            flat_tokio_token_idiomatic(&tokio, n)
        });
    }
    group.finish();
}

fn cancel_tree(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let smol = Smol::new();
    let mut group = c.benchmark_group("cancel_tree");
    configure(&mut group, 1.0, 15);
    let shapes = [
        Shape {
            fanout: 4,
            depth: 6,
        },
        Shape {
            fanout: 1000,
            depth: 1,
        },
    ];
    for shape in shapes {
        let mut entry = |name: &str, f: &dyn Fn() -> Duration| {
            group.bench_function(BenchmarkId::new(name, shape.name()), |b| {
                b.iter_custom(|iters| sum(iters, f))
            });
        };
        entry("cancel_scope", &|| tree_cancel_scope(&ours, shape));
        entry("tokio", &|| tree_tokio(&tokio, shape));
        entry("tokio_token", &|| tree_tokio_token(&tokio, shape));
        entry("smol", &|| tree_smol(&smol, shape));
    }
    group.finish();
}

fn cancel_linked(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let mut group = c.benchmark_group("cancel_linked");
    configure(&mut group, 1.0, 20);
    let levels = 100usize;
    group.bench_function(BenchmarkId::new("cancel_scope", levels), |b| {
        b.iter_custom(|iters| sum(iters, || linked_cancel_scope(&ours, levels)))
    });
    group.finish();
}

/// Scopes (or tokens) per call in `scope_empty`: `iters` is split into
/// calls of at most this many.
const BATCH: u64 = 1000;

/// Runs `f(k)` over batches of `k` that add up to `iters`.
fn batched(iters: u64, f: impl Fn(usize) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(BATCH);
        left -= k;
        total += f(k as usize);
    }
    total
}

/// One `scope_empty` call: `k` scopes (or tokens), their measured time.
type Batch<'a> = dyn Fn(usize) -> Duration + 'a;

fn scope_empty(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let mut group = c.benchmark_group("scope_empty");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let entries: [(&str, &str, &Batch); 6] = [
        ("cancel_scope", "cancel", &|k| {
            empty_cancel_cancel_scope(&ours, k)
        }),
        ("tokio_token", "cancel", &empty_cancel_tokio_token),
        ("cancel_scope", "create_end", &|k| {
            empty_create_end_cancel_scope(&ours, k)
        }),
        ("tokio_token", "create_end", &empty_create_end_tokio_token),
        ("cancel_scope", "create_cancel_end", &|k| {
            empty_create_cancel_end_cancel_scope(&ours, k)
        }),
        (
            "tokio_token",
            "create_cancel_end",
            &empty_create_cancel_end_tokio_token,
        ),
    ];
    for (runtime, what, f) in entries {
        group.bench_function(BenchmarkId::new(runtime, what), |b| {
            b.iter_custom(|iters| batched(iters, f))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    cancel_flat,
    cancel_tree,
    cancel_linked,
    scope_empty
);
criterion_main!(benches);
