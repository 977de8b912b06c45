//! The cancellation workloads, one function per runtime, each returning
//! the measured time of one iteration.
//!
//! The rules every runtime follows (BENCHMARKS.md states them per group):
//!
//! - Setup is outside the clock: every task is spawned and has been polled
//!   once and parked, and the workers have gone idle ([`quiesce`]).
//! - The clock starts just before the cancel call and stops at the later
//!   of two moments: the cancelling thread has returned from its cancel
//!   calls (for us: the scope future has resolved, which includes ending
//!   every scope), and the last counted future has been dropped (stamped by
//!   the thread that dropped it). A peer's clock therefore does not include
//!   the wake-up of the waiting thread; the `_idiomatic` entries, which
//!   await the group's end the way a user of that runtime would, do.
//! - Task outputs are never collected: our `JoinHandle`s and tokio's are
//!   dropped at spawn, smol's `Task`s are kept only where dropping them is
//!   the cancel. Handles that a peer must keep in order to cancel (tokio's
//!   `AbortHandle`s, smol's `Task`s) are released inside the clock.
//!
//! Every iteration checks that every counted future was dropped.

use crate::parked::{all_parked, quiesce, reset, wait_dropped, DropGuard};
use crate::{parked_task, BoxFuture, Smol, Window};
use cancel_scope::runtime::Runtime;
use cancel_scope::{linked_scope, scope, CancelReason, Scope};
use futures_lite::future::{or, poll_once};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Mutex;
use std::task::{Context, Waker};
use std::thread;
use std::time::{Duration, Instant};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

// ------------------------------------------------------------------ flat

/// `n` parked tasks in one scope; the body calls `cancel()` and returns;
/// the clock stops when the scope future has resolved.
pub fn flat_cancel_scope(rt: &Runtime, n: usize) -> Duration {
    reset(n, n);
    let window = Cell::new(None);
    let window = &window;
    rt.block_on(async move {
        let out = scope(|s| async move {
            for _ in 0..n {
                s.spawn(parked_task());
            }
            all_parked().await;
            quiesce();
            window.set(Some(Window::open()));
            s.cancel();
        })
        .await;
        let end = Instant::now();
        assert!(out.is_err(), "the scope was cancelled");
        let last = wait_dropped();
        window.get().expect("the body ran").close(end.max(last))
    })
}

/// `n` tasks spawned with `tokio::spawn`, each `JoinHandle` traded for its
/// `AbortHandle` at spawn; `abort()` and drop every handle.
pub fn flat_tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    reset(n, n);
    let handles: Vec<AbortHandle> = rt.block_on(async {
        let handles = (0..n)
            .map(|_| tokio::spawn(parked_task()).abort_handle())
            .collect();
        all_parked().await;
        handles
    });
    quiesce();
    let window = Window::open();
    for h in handles {
        h.abort();
    }
    let issued = Instant::now();
    let last = wait_dropped();
    window.close(issued.max(last))
}

/// A parked task that also waits on `token`, the way a tokio task is made
/// cancellable by a token: whichever ends first ends the task.
pub fn token_task(token: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
    or(token.cancelled_owned(), parked_task())
}

/// `n` tasks spawned with `tokio::spawn` (`JoinHandle` dropped), each
/// waiting on a clone of one `CancellationToken`; `cancel()` the token.
pub fn flat_tokio_token(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    reset(n, n);
    let token = CancellationToken::new();
    rt.block_on(async {
        for _ in 0..n {
            drop(tokio::spawn(token_task(token.clone())));
        }
        all_parked().await;
    });
    quiesce();
    let window = Window::open();
    token.cancel();
    let issued = Instant::now();
    let last = wait_dropped();
    window.close(issued.max(last))
}

/// `n` tasks spawned with `Executor::spawn`, their `Task`s kept; drop them
/// all (dropping a `Task` cancels it).
pub fn flat_smol(smol: &Smol, n: usize) -> Duration {
    reset(n, n);
    let tasks: Vec<_> = (0..n).map(|_| smol.spawn(parked_task())).collect();
    smol.block_on(all_parked());
    quiesce();
    let window = Window::open();
    drop(tasks);
    let issued = Instant::now();
    let last = wait_dropped();
    window.close(issued.max(last))
}

/// Idiomatic tokio: spawn into a `JoinSet`, `abort_all()`, then drain the
/// set with `join_next` (every output is a `JoinError`). The clock stops
/// when the drain ends, on the waiting thread.
pub fn flat_tokio_idiomatic(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    reset(n, n);
    rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(parked_task());
        }
        all_parked().await;
        quiesce();
        let window = Window::open();
        set.abort_all();
        while set.join_next().await.is_some() {}
        let end = Instant::now();
        let last = wait_dropped();
        window.close(end.max(last))
    })
}

/// Idiomatic tokio with a token: tasks in a `JoinSet`, each waiting on a
/// clone of one token; `cancel()`, then drain the set.
pub fn flat_tokio_token_idiomatic(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    reset(n, n);
    rt.block_on(async {
        let token = CancellationToken::new();
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(token_task(token.clone()));
        }
        all_parked().await;
        quiesce();
        let window = Window::open();
        token.cancel();
        while set.join_next().await.is_some() {}
        let end = Instant::now();
        let last = wait_dropped();
        window.close(end.max(last))
    })
}

pin_project_lite::pin_project! {
    /// What a runtime must keep per task at the very least: a state word
    /// and the future, in one allocation.
    pub struct LimitCell<F> {
        state: AtomicUsize,
        #[pin]
        future: F,
    }
}

/// `limit`'s setup: `n` cells holding a parked task each, allocated one by
/// one on this thread, as a spawn does, listed in a `Vec`, and polled once
/// on another thread, as a worker does.
pub fn limit_cells(n: usize) -> Vec<Pin<Box<LimitCell<impl Future<Output = ()> + Send>>>> {
    let mut cells: Vec<_> = (0..n)
        .map(|_| {
            Box::pin(LimitCell {
                state: AtomicUsize::new(0),
                future: parked_task(),
            })
        })
        .collect();
    thread::scope(|sc| {
        sc.spawn(|| {
            let mut cx = Context::from_waker(Waker::noop());
            for cell in &mut cells {
                let polled = cell.as_mut().project().future.poll(&mut cx);
                assert!(polled.is_pending());
            }
        });
    });
    cells
}

/// No runtime: after [`limit_cells`], on this thread, one atomic
/// read-modify-write on each cell's state and the drop of the cell (its
/// future and its allocation), then the list freed.
pub fn flat_limit(n: usize) -> Duration {
    reset(n, n);
    let cells = limit_cells(n);
    quiesce();
    let window = Window::open();
    for cell in cells {
        cell.state.fetch_or(1, AcqRel);
        drop(cell);
    }
    let end = Instant::now();
    let last = wait_dropped();
    window.close(end.max(last))
}

// ------------------------------------------------------------------ tree

/// A tree of groups: the root group, and `depth` levels below it with
/// `fanout` child groups per group. Every group holds exactly one parked
/// task and its child groups; every group below the root is opened by a
/// host task spawned into its parent group, which stays parked inside
/// the group. So a tree has `groups()` parked tasks and `hosts()` host
/// tasks, for every runtime.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Child groups per group.
    pub fanout: usize,
    /// Levels below the root.
    pub depth: usize,
}

impl Shape {
    /// Groups, the root included.
    pub fn groups(self) -> usize {
        (0..=self.depth).map(|l| self.fanout.pow(l as u32)).sum()
    }

    /// Host tasks: one per group below the root.
    pub fn hosts(self) -> usize {
        self.groups() - 1
    }

    /// `<fanout>x<depth>`.
    pub fn name(self) -> String {
        format!("{}x{}", self.fanout, self.depth)
    }

    /// Parses `<fanout>x<depth>`.
    pub fn parse(s: &str) -> Option<Shape> {
        let (f, d) = s.split_once('x')?;
        Some(Shape {
            fanout: f.parse().ok()?,
            depth: d.parse().ok()?,
        })
    }

    fn children(self, levels_below: usize) -> usize {
        if levels_below > 0 {
            self.fanout
        } else {
            0
        }
    }
}

/// Our group: a host task that opens a scope, spawns the parked task and
/// the child groups' hosts into it, and returns; the scope then waits for
/// its tasks.
fn ours_group(shape: Shape, levels_below: usize) -> BoxFuture {
    let guard = DropGuard::new();
    Box::pin(async move {
        let _guard = guard;
        let _ = scope(move |s| async move {
            s.spawn(parked_task());
            for _ in 0..shape.children(levels_below) {
                s.spawn(ours_group(shape, levels_below - 1));
            }
        })
        .await;
    })
}

/// The root scope holds the root's parked task and hosts; its body cancels
/// it; the clock stops when it has resolved.
pub fn tree_cancel_scope(rt: &Runtime, shape: Shape) -> Duration {
    reset(shape.groups(), shape.groups() + shape.hosts());
    let window = Cell::new(None);
    let window = &window;
    let elapsed = rt.block_on(async move {
        let out = scope(|s| async move {
            s.spawn(parked_task());
            for _ in 0..shape.children(shape.depth) {
                s.spawn(ours_group(shape, shape.depth - 1));
            }
            all_parked().await;
            quiesce();
            window.set(Some(Window::open()));
            s.cancel();
        })
        .await;
        let end = Instant::now();
        assert!(out.is_err(), "the scope was cancelled");
        let last = wait_dropped();
        window.get().expect("the body ran").close(end.max(last))
    });
    assert_eq!(rt.live_scopes(), 0);
    elapsed
}

/// A tokio group: the `AbortHandle`s of its tasks, aborted when the group
/// is dropped.
struct AbortOnDrop(Vec<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// tokio's structured group without tokens: the host holds the
/// `AbortHandle`s of the parked task and the child hosts and stays parked;
/// aborting the host drops its future and with it the group, which aborts
/// the children.
fn tokio_group(shape: Shape, levels_below: usize) -> BoxFuture {
    let guard = DropGuard::new();
    Box::pin(async move {
        let _guard = guard;
        let children = shape.children(levels_below);
        let mut group = AbortOnDrop(Vec::with_capacity(1 + children));
        group.0.push(tokio::spawn(parked_task()).abort_handle());
        for _ in 0..children {
            group
                .0
                .push(tokio::spawn(tokio_group(shape, levels_below - 1)).abort_handle());
        }
        std::future::pending::<()>().await;
    })
}

/// The root group is held by the benchmark thread; dropping it aborts the
/// root's tasks, and the aborts cascade down the hosts.
pub fn tree_tokio(rt: &tokio::runtime::Runtime, shape: Shape) -> Duration {
    reset(shape.groups(), shape.groups() + shape.hosts());
    let root = rt.block_on(async {
        let children = shape.children(shape.depth);
        let mut root = AbortOnDrop(Vec::with_capacity(1 + children));
        root.0.push(tokio::spawn(parked_task()).abort_handle());
        for _ in 0..children {
            root.0
                .push(tokio::spawn(tokio_group(shape, shape.depth - 1)).abort_handle());
        }
        all_parked().await;
        root
    });
    quiesce();
    let window = Window::open();
    drop(root);
    let issued = Instant::now();
    let last = wait_dropped();
    window.close(issued.max(last))
}

/// A token group: the host makes a child token of its parent's, spawns the
/// parked task (waiting on the token) and the child hosts, and waits on
/// the token.
fn token_group(parent: CancellationToken, shape: Shape, levels_below: usize) -> BoxFuture {
    let guard = DropGuard::new();
    Box::pin(async move {
        let _guard = guard;
        let token = parent.child_token();
        drop(parent);
        drop(tokio::spawn(token_task(token.clone())));
        for _ in 0..shape.children(levels_below) {
            drop(tokio::spawn(token_group(
                token.clone(),
                shape,
                levels_below - 1,
            )));
        }
        token.cancelled().await;
    })
}

/// The root token is held by the benchmark thread; `cancel()` it.
pub fn tree_tokio_token(rt: &tokio::runtime::Runtime, shape: Shape) -> Duration {
    reset(shape.groups(), shape.groups() + shape.hosts());
    let root = CancellationToken::new();
    rt.block_on(async {
        drop(tokio::spawn(token_task(root.clone())));
        for _ in 0..shape.children(shape.depth) {
            drop(tokio::spawn(token_group(
                root.clone(),
                shape,
                shape.depth - 1,
            )));
        }
        all_parked().await;
    });
    quiesce();
    let window = Window::open();
    root.cancel();
    let issued = Instant::now();
    let last = wait_dropped();
    window.close(issued.max(last))
}

/// A smol group: the host holds the `Task`s of the parked task and the
/// child hosts and stays parked; dropping the host's future drops the
/// `Task`s, which cancels them.
fn smol_group(
    ex: &'static async_executor::Executor<'static>,
    shape: Shape,
    levels: usize,
) -> BoxFuture {
    let guard = DropGuard::new();
    Box::pin(async move {
        let _guard = guard;
        let children = shape.children(levels);
        let mut group = Vec::with_capacity(1 + children);
        group.push(ex.spawn(parked_task()));
        for _ in 0..children {
            group.push(ex.spawn(smol_group(ex, shape, levels - 1)));
        }
        std::future::pending::<()>().await;
    })
}

/// The root group's `Task`s are held by the benchmark thread; drop them.
pub fn tree_smol(smol: &Smol, shape: Shape) -> Duration {
    reset(shape.groups(), shape.groups() + shape.hosts());
    let children = shape.children(shape.depth);
    let mut root = Vec::with_capacity(1 + children);
    root.push(smol.spawn(parked_task()));
    for _ in 0..children {
        root.push(smol.spawn(smol_group(smol.ex, shape, shape.depth - 1)));
    }
    smol.block_on(all_parked());
    quiesce();
    let window = Window::open();
    drop(root);
    let issued = Instant::now();
    let last = wait_dropped();
    window.close(issued.max(last))
}

// ------------------------------------------------------------------ linked

/// The clock's start, set by the innermost linked scope.
static LINK_WINDOW: Mutex<Option<Window>> = Mutex::new(None);

/// `levels` linked scopes, each opened by the body of the one around it;
/// the innermost cancels itself.
fn linked_chain(levels: usize) -> BoxFuture {
    Box::pin(async move {
        let _ = linked_scope(move |s| async move {
            if levels == 1 {
                *LINK_WINDOW.lock().unwrap() = Some(Window::open());
                s.cancel();
            } else {
                linked_chain(levels - 1).await;
            }
        })
        .await;
    })
}

/// A chain of `levels` linked scopes under a root scope that has one
/// parked task; the innermost cancels itself, which must cancel the root
/// through the links. From that `cancel()` until the root has resolved.
pub fn linked_cancel_scope(rt: &Runtime, levels: usize) -> Duration {
    reset(1, 1);
    rt.block_on(async {
        let out = scope(|s| async move {
            s.spawn(parked_task());
            all_parked().await;
            quiesce();
            linked_chain(levels).await;
        })
        .await;
        let end = Instant::now();
        let cancelled = out.expect_err("the links cancelled the root");
        assert_eq!(cancelled.reason(), &CancelReason::LinkedChild);
        let last = wait_dropped();
        let window = LINK_WINDOW.lock().unwrap().take().expect("the chain ran");
        window.close(end.max(last))
    })
}

// ------------------------------------------------------------------ empty

/// `k` empty scopes open inside a running scope, each body parked and its
/// future polled once (so its waker is registered); the clock covers only
/// `cancel()` on each. Their ends are awaited after the clock.
pub fn empty_cancel_cancel_scope(rt: &Runtime, k: usize) -> Duration {
    let out = rt.block_on(scope(|_| async move {
        let handles: RefCell<Vec<Scope>> = RefCell::new(Vec::with_capacity(k));
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
            assert!(poll_once(s).await.is_none());
        }
        let handles = handles.take();
        let window = Window::open();
        for h in &handles {
            h.cancel();
        }
        let elapsed = window.close(Instant::now());
        for s in scopes {
            assert!(s.await.is_err());
        }
        elapsed
    }));
    out.expect("the outer scope was not cancelled")
}

/// `k` child tokens of a live token, each with one waiter (its
/// `cancelled()` future polled once, as a scope's future is); the clock
/// covers only `cancel()` on each.
pub fn empty_cancel_tokio_token(k: usize) -> Duration {
    futures_lite::future::block_on(async {
        let parent = CancellationToken::new();
        let tokens: Vec<_> = (0..k).map(|_| parent.child_token()).collect();
        let mut waits: Vec<_> = tokens.iter().map(|t| Box::pin(t.cancelled())).collect();
        for w in &mut waits {
            assert!(poll_once(w.as_mut()).await.is_none());
        }
        let window = Window::open();
        for t in &tokens {
            t.cancel();
        }
        let elapsed = window.close(Instant::now());
        for w in waits {
            w.await;
        }
        elapsed
    })
}

/// `k` times, inside a running scope: open a scope whose body returns at
/// once and await its end.
pub fn empty_create_end_cancel_scope(rt: &Runtime, k: usize) -> Duration {
    let out = rt.block_on(scope(|_| async move {
        let window = Window::open();
        for _ in 0..k {
            let inner = scope(|_| async {}).await;
            black_box(inner).expect("not cancelled");
        }
        window.close(Instant::now())
    }));
    out.expect("the outer scope was not cancelled")
}

/// `k` times: make a child token of a live token and drop it.
pub fn empty_create_end_tokio_token(k: usize) -> Duration {
    let parent = CancellationToken::new();
    let window = Window::open();
    for _ in 0..k {
        drop(black_box(parent.child_token()));
    }
    window.close(Instant::now())
}

/// `k` times, inside a running scope: open a scope whose body cancels it
/// and returns, and await its end: what a `timeout` or `move_on_after`
/// whose deadline passes as the body finishes costs, less the timer. The
/// cancel interrupts nothing (the body returns without awaiting, and the
/// scope has no task), so the scope ends `Ok(())`.
pub fn empty_create_cancel_end_cancel_scope(rt: &Runtime, k: usize) -> Duration {
    let out = rt.block_on(scope(|_| async move {
        let window = Window::open();
        for _ in 0..k {
            let inner = scope(|s| async move { s.cancel() }).await;
            black_box(inner).expect("the cancel interrupted nothing");
        }
        window.close(Instant::now())
    }));
    out.expect("the outer scope was not cancelled")
}

/// `k` times: make a child token of a live token, cancel it, drop it.
pub fn empty_create_cancel_end_tokio_token(k: usize) -> Duration {
    let parent = CancellationToken::new();
    let window = Window::open();
    for _ in 0..k {
        let token = parent.child_token();
        token.cancel();
        drop(black_box(token));
    }
    window.close(Instant::now())
}
