//! Cancelling a scope of parked tasks.
//!
//! `cancel_flat/cancel_scope/<n>`: `n` tasks are spawned into one scope and
//! each parks forever after its first poll; once all are parked, the clock
//! starts, the body calls `cancel()`, and the clock stops when the scope
//! future has resolved, that is, when every task's future has been dropped.
#![allow(missing_docs)]

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::{scope, task::yield_now};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKERS: usize = 2;

fn cancel_parked(rt: &Runtime, n: usize) -> Duration {
    let parked = Arc::new(AtomicUsize::new(0));
    let start = std::cell::Cell::new(None);
    let start_ref = &start;
    let out = rt.block_on(scope(|s| async move {
        for _ in 0..n {
            let parked = parked.clone();
            s.spawn(async move {
                parked.fetch_add(1, Relaxed);
                std::future::pending::<()>().await
            });
        }
        while parked.load(Acquire) < n {
            yield_now().await;
        }
        start_ref.set(Some(Instant::now()));
        s.cancel();
    }));
    let elapsed = start.get().expect("the body ran").elapsed();
    assert!(out.is_err(), "the scope was cancelled");
    elapsed
}

fn cancel_flat(c: &mut Criterion) {
    let rt = Builder::new().worker_threads(WORKERS).build().unwrap();
    let mut group = c.benchmark_group("cancel_flat");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for n in [1usize, 100, 10_000] {
        group.bench_with_input(BenchmarkId::new("cancel_scope", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| cancel_parked(&rt, n)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, cancel_flat);
criterion_main!(benches);
