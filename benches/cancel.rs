//! Cancellation: how long it takes from the cancel call until every
//! cancelled task's future has been dropped and the cancelled group has been
//! waited for, against tokio, tokio-util's `CancellationToken` and smol.
//!
//! Every runtime runs two worker threads; the benchmark's own thread is the
//! one that spawns, cancels and waits (`block_on`). Setup (spawning, and
//! waiting until every task has parked and the workers have gone idle) is
//! outside the timed region (`iter_custom`).
//!
//! - `cancel_flat/<runtime>/<n>`: `n` tasks parked forever in one group.
//!   - `cancel_scope`: the scope body calls `cancel()` and returns; stop
//!     when the scope future has resolved.
//!   - `tokio_joinset`: `JoinSet::abort_all`, then drain the set.
//!   - `tokio_token`: each task selects on a clone of one
//!     `CancellationToken`; `cancel()`, then drain the `JoinSet`.
//!   - `smol`: drop the `async_executor::Task` handles; stop when every
//!     future has been dropped (the executor threads drop them).
//!   - `limit`: no runtime. One thread, a plain loop doing one atomic
//!     read-modify-write (a task's state word) and one drop of a boxed
//!     parked future per task: the least any runtime can do.
//! - `cancel_tree/<runtime>/<shape>`: a tree of groups, one parked task in
//!   each; cancel the root. `4x10` is depth 4 with fan-out 10 below the
//!   root (11,110 groups), `1000x1` a chain of 1,000. In `cancel_scope` a
//!   nested scope is opened by a task spawned into its parent (so the tree
//!   also holds one such task per scope); in `tokio_token` each group is a
//!   child token, with the same shape, and one task selecting on it.
//! - `cancel_linked/cancel_scope/100`: a chain of 100 linked scopes under a
//!   root scope that has one parked task; the innermost scope cancels
//!   itself, which must cancel the root through the links. The clock runs
//!   from that `cancel()` until the root scope has resolved.
//! - `cancel_empty/<runtime>/cancel`: cancel a scope that has no task (its
//!   body is parked) vs `CancellationToken::cancel` on a fresh token.
//! - `cancel_empty/<runtime>/create_end`: open a scope whose body returns
//!   at once and await it to its end, inside a running scope, vs create a
//!   child token of a live token and drop it.
//!
//! Every iteration checks that all parked futures were dropped.
#![allow(missing_docs)]

mod common;

use cancel_scope::runtime::Runtime;
use cancel_scope::{linked_scope, scope, CancelReason, Scope};
use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- flat

fn flat_cancel_scope(rt: &Runtime, n: usize) -> Duration {
    reset(n);
    let start = Cell::new(None);
    let start = &start;
    let out = rt.block_on(scope(|s| async move {
        for _ in 0..n {
            s.spawn(parked_task());
        }
        all_parked().await;
        quiesce();
        start.set(Some(Instant::now()));
        s.cancel();
    }));
    let elapsed = start.get().expect("the body ran").elapsed();
    assert!(out.is_err(), "the scope was cancelled");
    wait_dropped();
    elapsed
}

fn flat_tokio_joinset(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    reset(n);
    let elapsed = rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(parked_task());
        }
        all_parked().await;
        quiesce();
        let start = Instant::now();
        set.abort_all();
        while set.join_next().await.is_some() {}
        start.elapsed()
    });
    wait_dropped();
    elapsed
}

/// A parked task that also selects on `token`, the way a tokio task is
/// made cancellable.
fn token_task(token: CancellationToken) -> impl std::future::Future<Output = ()> + Send {
    let parked = parked_task();
    async move {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = parked => {}
        }
    }
}

fn flat_tokio_token(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    reset(n);
    let elapsed = rt.block_on(async {
        let token = CancellationToken::new();
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(token_task(token.clone()));
        }
        all_parked().await;
        quiesce();
        let start = Instant::now();
        token.cancel();
        while set.join_next().await.is_some() {}
        start.elapsed()
    });
    wait_dropped();
    elapsed
}

fn flat_smol(smol: &Smol, n: usize) -> Duration {
    reset(n);
    let tasks: Vec<_> = (0..n).map(|_| smol.spawn(parked_task())).collect();
    smol.block_on(all_parked());
    quiesce();
    let start = Instant::now();
    drop(tasks);
    wait_dropped();
    start.elapsed()
}

fn flat_limit(n: usize) -> Duration {
    /// What a runtime must keep per task at the very least: a state word
    /// and the boxed future.
    struct Slot {
        state: AtomicUsize,
        future: BoxFuture,
    }
    reset(n);
    let mut slots: Vec<Slot> = (0..n)
        .map(|_| Slot {
            state: AtomicUsize::new(0),
            future: Box::pin(parked_task()),
        })
        .collect();
    for slot in &mut slots {
        assert!(poll_once_by_hand(slot.future.as_mut()).is_pending());
    }
    let start = Instant::now();
    for slot in slots.drain(..) {
        slot.state.fetch_or(1, AcqRel);
        drop(slot.future);
    }
    let elapsed = start.elapsed();
    assert_eq!(DROPPED.load(SeqCst), n);
    elapsed
}

fn cancel_flat(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let smol = Smol::new();
    let mut group = c.benchmark_group("cancel_flat");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for n in [1usize, 100, 10_000] {
        group.bench_with_input(BenchmarkId::new("cancel_scope", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| flat_cancel_scope(&ours, n)).sum())
        });
        group.bench_with_input(BenchmarkId::new("tokio_joinset", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| flat_tokio_joinset(&tokio, n)).sum())
        });
        group.bench_with_input(BenchmarkId::new("tokio_token", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| flat_tokio_token(&tokio, n)).sum())
        });
        group.bench_with_input(BenchmarkId::new("smol", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| flat_smol(&smol, n)).sum())
        });
        group.bench_with_input(BenchmarkId::new("limit", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| flat_limit(n)).sum())
        });
    }
    group.finish();
}

// ---------------------------------------------------------------- tree

/// A tree shape: `depth` levels of groups below the root, `fanout`
/// children per group.
#[derive(Clone, Copy)]
struct Shape {
    depth: usize,
    fanout: usize,
}

impl Shape {
    /// Groups below the root, one parked task each.
    fn groups(self) -> usize {
        (1..=self.depth).map(|l| self.fanout.pow(l as u32)).sum()
    }

    fn name(self) -> String {
        format!("{}x{}", self.depth, self.fanout)
    }
}

/// A task that opens a scope holding one parked task and, above the leaf
/// level, `fanout` tasks that open the next level.
fn subtree(levels: usize, fanout: usize) -> BoxFuture {
    Box::pin(async move {
        let _ = scope(move |s| async move {
            s.spawn(parked_task());
            if levels > 1 {
                for _ in 0..fanout {
                    s.spawn(subtree(levels - 1, fanout));
                }
            }
        })
        .await;
    })
}

fn tree_cancel_scope(rt: &Runtime, shape: Shape) -> Duration {
    reset(shape.groups());
    let start = Cell::new(None);
    let start = &start;
    let out = rt.block_on(scope(|s| async move {
        for _ in 0..shape.fanout {
            s.spawn(subtree(shape.depth, shape.fanout));
        }
        all_parked().await;
        quiesce();
        start.set(Some(Instant::now()));
        s.cancel();
    }));
    let elapsed = start.get().expect("the body ran").elapsed();
    assert!(out.is_err(), "the scope was cancelled");
    wait_dropped();
    assert_eq!(rt.live_scopes(), 0);
    elapsed
}

/// Adds `fanout` child tokens under `parent`, each with one task selecting
/// on it, and recurses `levels - 1` more levels.
fn token_subtree(parent: &CancellationToken, levels: usize, fanout: usize, set: &mut JoinSet<()>) {
    for _ in 0..fanout {
        let child = parent.child_token();
        set.spawn(token_task(child.clone()));
        if levels > 1 {
            token_subtree(&child, levels - 1, fanout, set);
        }
    }
}

fn tree_tokio_token(rt: &tokio::runtime::Runtime, shape: Shape) -> Duration {
    reset(shape.groups());
    let elapsed = rt.block_on(async {
        let root = CancellationToken::new();
        let mut set = JoinSet::new();
        token_subtree(&root, shape.depth, shape.fanout, &mut set);
        all_parked().await;
        quiesce();
        let start = Instant::now();
        root.cancel();
        while set.join_next().await.is_some() {}
        start.elapsed()
    });
    wait_dropped();
    elapsed
}

fn cancel_tree(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let tokio = tokio_rt();
    let mut group = c.benchmark_group("cancel_tree");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    let shapes = [
        Shape {
            depth: 4,
            fanout: 10,
        },
        Shape {
            depth: 1000,
            fanout: 1,
        },
    ];
    for shape in shapes {
        let name = shape.name();
        group.bench_with_input(BenchmarkId::new("cancel_scope", &name), &shape, |b, &sh| {
            b.iter_custom(|iters| (0..iters).map(|_| tree_cancel_scope(&ours, sh)).sum())
        });
        group.bench_with_input(BenchmarkId::new("tokio_token", &name), &shape, |b, &sh| {
            b.iter_custom(|iters| (0..iters).map(|_| tree_tokio_token(&tokio, sh)).sum())
        });
    }
    group.finish();
}

// ---------------------------------------------------------------- linked

/// When the innermost linked scope called `cancel()`.
static LINK_START: Mutex<Option<Instant>> = Mutex::new(None);

/// `levels` linked scopes, each opened by the body of the one around it;
/// the innermost cancels itself.
fn linked_chain(levels: usize) -> BoxFuture {
    Box::pin(async move {
        let _ = linked_scope(move |s| async move {
            if levels == 1 {
                *LINK_START.lock().unwrap() = Some(Instant::now());
                s.cancel();
            } else {
                linked_chain(levels - 1).await;
            }
        })
        .await;
    })
}

fn linked_cancel_scope(rt: &Runtime, levels: usize) -> Duration {
    reset(1);
    let out = rt.block_on(scope(|s| async move {
        s.spawn(parked_task());
        all_parked().await;
        quiesce();
        linked_chain(levels).await;
    }));
    let start = LINK_START.lock().unwrap().take().expect("the chain ran");
    let elapsed = start.elapsed();
    let cancelled = out.expect_err("the links cancelled the root");
    assert_eq!(cancelled.reason(), &CancelReason::LinkedChild);
    wait_dropped();
    elapsed
}

fn cancel_linked(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let mut group = c.benchmark_group("cancel_linked");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let levels = 100usize;
    group.bench_with_input(
        BenchmarkId::new("cancel_scope", levels),
        &levels,
        |b, &l| b.iter_custom(|iters| (0..iters).map(|_| linked_cancel_scope(&ours, l)).sum()),
    );
    group.finish();
}

// ---------------------------------------------------------------- empty

/// Scopes opened and cancelled per batch in `cancel_empty/*/cancel`.
const BATCH: u64 = 1000;

/// Cancels `iters` scopes that have no task, `BATCH` open at a time.
fn empty_cancel_cancel_scope(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let k = left.min(BATCH);
            left -= k;
            let handles: RefCell<Vec<Scope>> = RefCell::new(Vec::new());
            let handles = &handles;
            let mut scopes: Vec<_> = (0..k)
                .map(|_| {
                    scope(move |s| {
                        handles.borrow_mut().push(s);
                        std::future::pending::<()>()
                    })
                })
                .collect();
            for s in &mut scopes {
                assert!(futures_lite::future::poll_once(s).await.is_none());
            }
            let handles = handles.take();
            let start = Instant::now();
            for h in &handles {
                h.cancel();
            }
            total += start.elapsed();
            for s in scopes {
                assert!(s.await.is_err());
            }
        }
        total
    })
}

fn empty_cancel_tokio_token(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(BATCH);
        left -= k;
        let tokens: Vec<_> = (0..k).map(|_| CancellationToken::new()).collect();
        let start = Instant::now();
        for t in &tokens {
            t.cancel();
        }
        total += start.elapsed();
        assert!(tokens.iter().all(|t| t.is_cancelled()));
    }
    total
}

fn empty_create_end_cancel_scope(rt: &Runtime, iters: u64) -> Duration {
    let out = rt.block_on(scope(|_| async move {
        let start = Instant::now();
        for _ in 0..iters {
            let inner = scope(|_| async {}).await;
            black_box(inner).expect("not cancelled");
        }
        start.elapsed()
    }));
    out.expect("not cancelled")
}

fn empty_create_end_tokio_token(iters: u64) -> Duration {
    let parent = CancellationToken::new();
    let start = Instant::now();
    for _ in 0..iters {
        drop(black_box(parent.child_token()));
    }
    start.elapsed()
}

fn cancel_empty(c: &mut Criterion) {
    let ours = cancel_scope_rt();
    let mut group = c.benchmark_group("cancel_empty");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("cancel_scope", "cancel"), |b| {
        b.iter_custom(|iters| empty_cancel_cancel_scope(&ours, iters))
    });
    group.bench_function(BenchmarkId::new("tokio_token", "cancel"), |b| {
        b.iter_custom(empty_cancel_tokio_token)
    });
    group.bench_function(BenchmarkId::new("cancel_scope", "create_end"), |b| {
        b.iter_custom(|iters| empty_create_end_cancel_scope(&ours, iters))
    });
    group.bench_function(BenchmarkId::new("tokio_token", "create_end"), |b| {
        b.iter_custom(empty_create_end_tokio_token)
    });
    group.finish();
}

criterion_group!(
    benches,
    cancel_flat,
    cancel_tree,
    cancel_linked,
    cancel_empty
);
criterion_main!(benches);
