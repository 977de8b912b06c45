//! Spawning and scheduling workloads, one function per runtime, each
//! returning the measured time of one iteration: what everyday task
//! traffic costs, so that fast cancellation is not bought with slow
//! spawning or waking.
//!
//! Equal work for every runtime: the clock starts before the group is
//! made and stops on the spawning thread once it has seen the group end.
//! Our tasks go into a scope, which waits for them; a peer's tasks are
//! detached (`JoinHandle` dropped, `Task::detach`) and each counts down a
//! [`Latch`] when its future ends, which the spawning thread awaits: the
//! same wait, written by hand. Outputs are `()` and never collected. The
//! `_idiomatic` entries collect every output instead (tokio's `JoinSet`
//! drained, every smol `Task` awaited).

use crate::latch::{counted, Latch, LATCHES};
use crate::{Smol, Window};
use cancel_scope::runtime::Runtime;
use cancel_scope::scope;
use std::future::Future;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

// ------------------------------------------------------------ spawn_join

/// Spawn `n` tasks that return at once into a scope; the scope waits.
pub fn spawn_join_cancel_scope(rt: &Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        spawn_into_scope(n).await;
        window.close(Instant::now())
    })
}

/// [`spawn_join_cancel_scope`] through a borrowing call
/// (`Runtime::scoped`): the same `n` tasks, spawned from the calling
/// thread as there, by the borrowing `spawn`; the call waits. Not in the
/// criterion groups: `count cancel_scope_scoped spawn_join N` compares the
/// two spawn paths.
pub fn spawn_join_cancel_scope_scoped(rt: &Runtime, n: usize) -> Duration {
    let window = Window::open();
    rt.scoped(|s| {
        for _ in 0..n {
            s.spawn(async {});
        }
        async {}
    })
    .expect("not cancelled");
    window.close(Instant::now())
}

async fn spawn_into_scope(n: usize) {
    scope(|s| async move {
        for _ in 0..n {
            s.spawn(async {});
        }
    })
    .await
    .expect("not cancelled");
}

/// `tokio::spawn` `n` counted tasks, handles dropped; await the latch.
pub fn spawn_join_tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        spawn_tokio_counted(&LATCHES[0], n).await;
        window.close(Instant::now())
    })
}

async fn spawn_tokio_counted(latch: &'static Latch, n: usize) {
    latch.arm(n);
    for _ in 0..n {
        drop(tokio::spawn(counted(latch, async {})));
    }
    latch.wait().await;
}

/// `Executor::spawn` `n` counted tasks, detached; await the latch.
pub fn spawn_join_smol(smol: &Smol, n: usize) -> Duration {
    smol.block_on(async {
        let window = Window::open();
        spawn_smol_counted(smol, &LATCHES[0], n).await;
        window.close(Instant::now())
    })
}

async fn spawn_smol_counted(smol: &Smol, latch: &'static Latch, n: usize) {
    latch.arm(n);
    for _ in 0..n {
        smol.spawn(counted(latch, async {})).detach();
    }
    latch.wait().await;
}

/// Idiomatic tokio: spawn into a `JoinSet`, drain it, check each output.
pub fn spawn_join_tokio_idiomatic(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(async {});
        }
        while let Some(r) = set.join_next().await {
            r.expect("the task ran");
        }
        window.close(Instant::now())
    })
}

/// Idiomatic smol: keep every `Task`, await each.
pub fn spawn_join_smol_idiomatic(smol: &Smol, n: usize) -> Duration {
    smol.block_on(async {
        let window = Window::open();
        let tasks: Vec<_> = (0..n).map(|_| smol.spawn(async {})).collect();
        for t in tasks {
            t.await;
        }
        window.close(Instant::now())
    })
}

// ------------------------------------------------- spawn_join_contended

/// Runs `work(0)` on this thread and `work(1)` on another, started
/// together at a barrier; the time from the first start to the last end.
fn two_at_once(work: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let run = |i: usize| {
        barrier.wait();
        let start = Instant::now();
        work(i);
        (start, Instant::now())
    };
    let (a, b) = thread::scope(|sc| {
        let other = sc.spawn(|| run(1));
        let mine = run(0);
        (mine, other.join().expect("the other spawner"))
    });
    a.1.max(b.1) - a.0.min(b.0)
}

/// Two threads, each spawning `n` tasks into its own scope of one runtime.
pub fn contended_cancel_scope(rt: &Runtime, n: usize) -> Duration {
    two_at_once(|_| rt.block_on(spawn_into_scope(n)))
}

/// Two threads, each spawning `n` counted tasks into one tokio runtime and
/// awaiting its own latch.
pub fn contended_tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    two_at_once(|i| rt.block_on(spawn_tokio_counted(&LATCHES[i], n)))
}

/// Two threads, each spawning `n` counted tasks into one smol executor and
/// awaiting its own latch.
pub fn contended_smol(smol: &Smol, n: usize) -> Duration {
    two_at_once(|i| smol.block_on(spawn_smol_counted(smol, &LATCHES[i], n)))
}

// ------------------------------------------------------------- pingpong

/// The two sides of a ping-pong of `rounds` round trips over two
/// `async_channel::bounded(1)` channels.
fn players(
    rounds: usize,
) -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let (ping_tx, ping_rx) = async_channel::bounded::<usize>(1);
    let (pong_tx, pong_rx) = async_channel::bounded::<usize>(1);
    let ping = async move {
        for i in 0..rounds {
            ping_tx.send(i).await.expect("pong is alive");
            let back = pong_rx.recv().await.expect("pong is alive");
            assert_eq!(back, i);
        }
    };
    let pong = async move {
        for _ in 0..rounds {
            let v = ping_rx.recv().await.expect("ping is alive");
            pong_tx.send(v).await.expect("ping is alive");
        }
    };
    (ping, pong)
}

/// The two players as tasks of one scope.
pub fn pingpong_cancel_scope(rt: &Runtime, rounds: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        scope(|s| async move {
            let (ping, pong) = players(rounds);
            s.spawn(ping);
            s.spawn(pong);
        })
        .await
        .expect("not cancelled");
        window.close(Instant::now())
    })
}

/// The two players as counted tokio tasks.
pub fn pingpong_tokio(rt: &tokio::runtime::Runtime, rounds: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        let latch = &LATCHES[0];
        latch.arm(2);
        let (ping, pong) = players(rounds);
        drop(tokio::spawn(counted(latch, ping)));
        drop(tokio::spawn(counted(latch, pong)));
        latch.wait().await;
        window.close(Instant::now())
    })
}

/// The two players as counted smol tasks.
pub fn pingpong_smol(smol: &Smol, rounds: usize) -> Duration {
    smol.block_on(async {
        let window = Window::open();
        let latch = &LATCHES[0];
        latch.arm(2);
        let (ping, pong) = players(rounds);
        smol.spawn(counted(latch, ping)).detach();
        smol.spawn(counted(latch, pong)).detach();
        latch.wait().await;
        window.close(Instant::now())
    })
}

// ------------------------------------------------------------ yield_many

/// One task of a scope yields `rounds` times (our `yield_now`).
pub fn yield_cancel_scope(rt: &Runtime, rounds: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        scope(|s| async move {
            s.spawn(async move {
                for _ in 0..rounds {
                    cancel_scope::task::yield_now().await;
                }
            });
        })
        .await
        .expect("not cancelled");
        window.close(Instant::now())
    })
}

/// One counted tokio task yields `rounds` times (`tokio::task::yield_now`).
pub fn yield_tokio(rt: &tokio::runtime::Runtime, rounds: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        let latch = &LATCHES[0];
        latch.arm(1);
        drop(tokio::spawn(counted(latch, async move {
            for _ in 0..rounds {
                tokio::task::yield_now().await;
            }
        })));
        latch.wait().await;
        window.close(Instant::now())
    })
}

/// One counted smol task yields `rounds` times (`futures_lite`'s
/// `yield_now`, which smol re-exports).
pub fn yield_smol(smol: &Smol, rounds: usize) -> Duration {
    smol.block_on(async {
        let window = Window::open();
        let latch = &LATCHES[0];
        latch.arm(1);
        smol.spawn(counted(latch, async move {
            for _ in 0..rounds {
                futures_lite::future::yield_now().await;
            }
        }))
        .detach();
        latch.wait().await;
        window.close(Instant::now())
    })
}
