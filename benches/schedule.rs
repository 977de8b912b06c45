//! Spawning and scheduling, against tokio and smol: what everyday task
//! traffic costs, so that fast cancellation is not bought with slow
//! spawning or waking.
//!
//! Every runtime runs two worker threads; the benchmark's own thread spawns
//! and waits (`block_on`). The clock covers spawning and waiting for the end.
//!
//! - `spawn_join/<runtime>/<n>`: spawn `n` tasks that return at once and
//!   wait for all of them. `cancel_scope`: into one scope, which waits for
//!   its tasks; `tokio_joinset`: into a `JoinSet`, then drain it; `smol`:
//!   `Executor::spawn`, then await every `Task`.
//! - `pingpong/<runtime>/10000`: two tasks pass a number back and forth
//!   10,000 times over two `async_channel::bounded(1)` channels.
//! - `yield_many/<runtime>/10000`: one task yields 10,000 times (each
//!   runtime's own `yield_now`).
//!
//! In `pingpong` and `yield_many` the tokio tasks are also spawned into a
//! `JoinSet` and drained, hence the `tokio_joinset` name; our tasks go into
//! a scope, smol's are awaited through their `Task` handles.
#![allow(missing_docs)]

mod common;

use cancel_scope::runtime::Runtime;
use cancel_scope::scope;
use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

// ---------------------------------------------------------------- spawn_join

fn spawn_join_cancel_scope(rt: &Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        scope(|s| async move {
            for _ in 0..n {
                s.spawn(async {});
            }
        })
        .await
        .expect("not cancelled");
        start.elapsed()
    })
}

fn spawn_join_tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(async {});
        }
        while let Some(r) = set.join_next().await {
            r.expect("the task ran");
        }
        start.elapsed()
    })
}

fn spawn_join_smol(smol: &Smol, n: usize) -> Duration {
    smol.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..n).map(|_| smol.spawn(async {})).collect();
        for t in tasks {
            t.await;
        }
        start.elapsed()
    })
}

fn spawn_join(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let smol = Smol::new();
    let mut group = c.benchmark_group("spawn_join");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for n in [100usize, 10_000] {
        group.bench_with_input(BenchmarkId::new("cancel_scope", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| spawn_join_cancel_scope(&ours, n)).sum())
        });
        group.bench_with_input(BenchmarkId::new("tokio_joinset", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| spawn_join_tokio(&tokio, n)).sum())
        });
        group.bench_with_input(BenchmarkId::new("smol", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| spawn_join_smol(&smol, n)).sum())
        });
    }
    group.finish();
}

// ---------------------------------------------------------------- pingpong

/// Round trips in `pingpong`, yields in `yield_many`.
const ROUNDS: usize = 10_000;

/// The two sides of a ping-pong over two `bounded(1)` channels.
fn players() -> (
    impl Future<Output = ()> + Send,
    impl Future<Output = ()> + Send,
) {
    let (ping_tx, ping_rx) = async_channel::bounded::<usize>(1);
    let (pong_tx, pong_rx) = async_channel::bounded::<usize>(1);
    let ping = async move {
        for i in 0..ROUNDS {
            ping_tx.send(i).await.expect("pong is alive");
            let back = pong_rx.recv().await.expect("pong is alive");
            assert_eq!(back, i);
        }
    };
    let pong = async move {
        for _ in 0..ROUNDS {
            let v = ping_rx.recv().await.expect("ping is alive");
            pong_tx.send(v).await.expect("ping is alive");
        }
    };
    (ping, pong)
}

fn pingpong_cancel_scope(rt: &Runtime) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        scope(|s| async move {
            let (ping, pong) = players();
            s.spawn(ping);
            s.spawn(pong);
        })
        .await
        .expect("not cancelled");
        start.elapsed()
    })
}

fn pingpong_tokio(rt: &tokio::runtime::Runtime) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let (ping, pong) = players();
        let mut set = JoinSet::new();
        set.spawn(ping);
        set.spawn(pong);
        while let Some(r) = set.join_next().await {
            r.expect("the task ran");
        }
        start.elapsed()
    })
}

fn pingpong_smol(smol: &Smol) -> Duration {
    smol.block_on(async {
        let start = Instant::now();
        let (ping, pong) = players();
        let ping = smol.spawn(ping);
        let pong = smol.spawn(pong);
        ping.await;
        pong.await;
        start.elapsed()
    })
}

// ---------------------------------------------------------------- yield_many

fn yield_cancel_scope(rt: &Runtime) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        scope(|s| async move {
            s.spawn(async {
                for _ in 0..ROUNDS {
                    cancel_scope::task::yield_now().await;
                }
            });
        })
        .await
        .expect("not cancelled");
        start.elapsed()
    })
}

fn yield_tokio(rt: &tokio::runtime::Runtime) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let mut set = JoinSet::new();
        set.spawn(async {
            for _ in 0..ROUNDS {
                tokio::task::yield_now().await;
            }
        });
        while let Some(r) = set.join_next().await {
            r.expect("the task ran");
        }
        start.elapsed()
    })
}

fn yield_smol(smol: &Smol) -> Duration {
    smol.block_on(async {
        let start = Instant::now();
        smol.spawn(async {
            for _ in 0..ROUNDS {
                futures_lite::future::yield_now().await;
            }
        })
        .await;
        start.elapsed()
    })
}

fn messaging(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let smol = Smol::new();
    for name in ["pingpong", "yield_many"] {
        let ping = name == "pingpong";
        let mut group = c.benchmark_group(name);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(4));
        group.bench_function(BenchmarkId::new("cancel_scope", ROUNDS), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| match ping {
                        true => pingpong_cancel_scope(&ours),
                        false => yield_cancel_scope(&ours),
                    })
                    .sum()
            })
        });
        group.bench_function(BenchmarkId::new("tokio_joinset", ROUNDS), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| match ping {
                        true => pingpong_tokio(&tokio),
                        false => yield_tokio(&tokio),
                    })
                    .sum()
            })
        });
        group.bench_function(BenchmarkId::new("smol", ROUNDS), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| match ping {
                        true => pingpong_smol(&smol),
                        false => yield_smol(&smol),
                    })
                    .sum()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, spawn_join, messaging);
criterion_main!(benches);
