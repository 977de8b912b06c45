//! The `limit` workloads: a fan-out of `n` short tasks, at most
//! [`RUNNING`] running at once, one function per runtime, each returning
//! the measured time of one iteration.
//!
//! - ours: a scope opened with `limit(RUNNING)`; the body spawns every
//!   task at once (a task past the limit waits in the scope, unpolled) and
//!   the scope waits for them all.
//! - tokio: a `JoinSet` and a `Semaphore` of `RUNNING` permits; the
//!   spawner acquires a permit before each spawn (back-pressure: the
//!   peers' cheapest correct form), the task drops it when it ends, and
//!   the spawner reaps finished tasks as it goes (`try_join_next`) and
//!   drains the set at the end.
//! - smol: an `Executor` and an `async_lock::Semaphore`, the spawner
//!   acquiring a permit before each spawn, each task detached and counting
//!   down a [`Latch`] the spawner awaits (the wait a scope does, by hand).
//!
//! A task is one `yield_now` (it is polled twice), so that tasks are
//! still running while the spawner spawns and the limit binds.

use crate::latch::{counted, LATCHES};
use crate::{Smol, Window};
use cancel_scope::runtime::Runtime;
use cancel_scope::scope;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks running at once.
pub const RUNNING: usize = 16;

/// Ours: `n` spawns into a scope limited to [`RUNNING`].
pub fn limit_cancel_scope(rt: &Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        scope(|s| async move {
            for _ in 0..n {
                s.spawn(cancel_scope::task::yield_now());
            }
        })
        .limit(RUNNING)
        .await
        .expect("not cancelled");
        window.close(Instant::now())
    })
}

/// tokio: a permit before each spawn into a `JoinSet`.
pub fn limit_tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let window = Window::open();
        let permits = Arc::new(tokio::sync::Semaphore::new(RUNNING));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let permit = permits.clone().acquire_owned().await.expect("open");
            set.spawn(async move {
                tokio::task::yield_now().await;
                drop(permit);
            });
            while let Some(done) = set.try_join_next() {
                done.expect("the task ran");
            }
        }
        while let Some(done) = set.join_next().await {
            done.expect("the task ran");
        }
        window.close(Instant::now())
    })
}

/// smol: a permit before each detached spawn; a latch for the end.
pub fn limit_smol(smol: &Smol, n: usize) -> Duration {
    smol.block_on(async {
        let window = Window::open();
        let latch = &LATCHES[0];
        latch.arm(n);
        let permits = Arc::new(async_lock::Semaphore::new(RUNNING));
        for _ in 0..n {
            let permit = permits.acquire_arc().await;
            smol.spawn(counted(latch, async move {
                futures_lite::future::yield_now().await;
                drop(permit);
            }))
            .detach();
        }
        latch.wait().await;
        window.close(Instant::now())
    })
}
