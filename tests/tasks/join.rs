//! `JoinHandle`: the task's output, detaching by dropping the handle (the
//! task runs on and its scope waits for it), refused spawns, cancelled
//! tasks, and exactly-once delivery or drop of every output.

use crate::support::{
    drive_until_waiting, expect_panic, hang_guard, runtime, Clock, Counter, OnDrop, Probes,
};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::{scope, CancelReason, JoinHandle, Scope};
use futures_lite::future;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;

/// Handles resolve to their task's output, in whatever order they are
/// awaited, from the body or from another task.
#[test]
fn handles_return_task_outputs() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(scope(|s| async move {
        let a = s.spawn(async { 1u8 });
        let b = s.spawn(async {
            yield_now().await;
            String::from("two")
        });
        let c = s.spawn(async { vec![3u32; 3] });
        // Awaited from another task of the same scope.
        let d = s.spawn(async move { c.await.unwrap().iter().sum::<u32>() });
        let b = b.await.unwrap();
        let a = a.await.unwrap();
        (a, b, d.await.unwrap())
    }));
    assert_eq!(out, Ok((1, "two".to_string(), 9)));
    assert_eq!(rt.live_tasks(), 0);
}

/// A thousand handles, each with its own output.
#[test]
fn many_handles() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(scope(|s| async move {
        let handles: Vec<_> = (0..1000u64)
            .map(|i| s.spawn(async move { i * i }))
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    }));
    assert_eq!(out, Ok((0..1000u64).map(|i| i * i).sum()));
}

/// Dropping a handle detaches it: the task still runs to its end, and the
/// scope does not end before it. The task is let go only once the scope
/// future, its body done, has been seen waiting.
#[test]
fn dropped_handle_detaches_and_the_scope_waits() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let go = Event::new();
    let finished = Arc::new(AtomicBool::new(false));
    let body_ended = AtomicBool::new(false);
    let fut = scope(|s| {
        let (go, finished, body_ended) = (go.clone(), finished.clone(), &body_ended);
        async move {
            let handle = s.spawn(async move {
                go.wait().await;
                yield_now().await;
                finished.store(true, SeqCst);
            });
            drop(handle);
            body_ended.store(true, SeqCst);
            "body ended first"
        }
    });
    let out = drive_until_waiting(&rt, fut, &body_ended, &go);
    assert_eq!(out, Ok("body ended first"));
    assert!(go.is_set(), "the scope did not wait for its detached task");
    assert!(
        finished.load(SeqCst),
        "the scope ended before its detached task"
    );
    assert_eq!(rt.live_tasks(), 0);
}

/// A handle kept after its scope ended still yields the output.
#[test]
fn handle_outlives_its_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (tx, rx) = mpsc::channel::<JoinHandle<&'static str>>();
    let out = rt.block_on(scope(|s| async move {
        tx.send(s.spawn(async { "kept" })).unwrap();
    }));
    assert_eq!(out, Ok(()));
    let handle = rx.recv().unwrap();
    assert_eq!(future::block_on(handle), Ok("kept"));
}

/// A handle can be sent to another scope, on another thread, and awaited
/// there.
#[test]
fn handle_awaited_from_another_scope() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, 2));
    let (tx, rx) = mpsc::channel::<JoinHandle<u32>>();
    let release = Event::new();
    let other = {
        let (rt, release) = (rt.clone(), release.clone());
        thread::spawn(move || {
            rt.block_on(scope(|s| async move {
                let handle = rx.recv().unwrap();
                let out = s.spawn(handle).await.unwrap();
                release.set();
                out
            }))
        })
    };
    let out = rt.block_on(scope(|s| async move {
        let gate = Event::new();
        let opener = gate.clone();
        tx.send(s.spawn(async move {
            gate.wait().await;
            42
        }))
        .unwrap();
        opener.set();
        release.wait().await;
    }));
    assert_eq!(out, Ok(()));
    assert_eq!(other.join().unwrap(), Ok(Ok(42)));
}

/// A handle being awaited (here from a thread outside the runtime) is
/// woken with `Err` when its task's scope is cancelled.
#[test]
fn waiting_handle_is_woken_by_cancel() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (tx, rx) = mpsc::channel::<JoinHandle<()>>();
    let (registered_tx, registered_rx) = mpsc::channel::<()>();
    let waiter = thread::spawn(move || {
        let mut handle = rx.recv().unwrap();
        let mut first = true;
        future::block_on(std::future::poll_fn(move |cx| {
            let polled = Pin::new(&mut handle).poll(cx);
            if polled.is_pending() && first {
                first = false;
                registered_tx.send(()).unwrap();
            }
            polled
        }))
    });
    let out = rt.block_on(scope(|s| async move {
        tx.send(s.spawn(std::future::pending::<()>())).unwrap();
        // The waiter is now blocked on the handle.
        registered_rx.recv().unwrap();
        s.cancel();
    }));
    assert!(out.is_err());
    let joined = waiter.join().unwrap();
    assert_eq!(joined.unwrap_err().reason(), &CancelReason::Explicit);
}

/// Every output is dropped exactly once: taken by an await, dropped by the
/// task when the handle was gone (never polled, or polled and left
/// waiting), or dropped with the handle that kept it.
#[test]
fn outputs_are_dropped_exactly_once() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let awaited = Counter::new();
    let detached_early = Counter::new();
    let detached_late = Counter::new();
    let detached_waiting = Counter::new();
    let kept = Counter::new();
    let (kept_tx, kept_rx) = mpsc::channel::<JoinHandle<OnDrop>>();
    let out = rt.block_on(scope(|s| {
        let (awaited, early, late, waiting, kept) = (
            awaited.clone(),
            detached_early.clone(),
            detached_late.clone(),
            detached_waiting.clone(),
            kept.clone(),
        );
        let rt = &rt;
        async move {
            // Awaited: the output moves to the awaiting code.
            let v = s.spawn(async move { awaited.on_drop() }).await;
            drop(v);
            // Detached before the task ends: the task drops its output.
            let gate = Event::new();
            let opener = gate.clone();
            drop(s.spawn(async move {
                gate.wait().await;
                early.on_drop()
            }));
            opener.set();
            // Polled once (its waker left in the slot), then detached
            // before the task ends: the task drops its output.
            let gate = Event::new();
            let opener = gate.clone();
            let mut h = s.spawn(async move {
                gate.wait().await;
                waiting.on_drop()
            });
            assert!(future::poll_once(&mut h).await.is_none());
            drop(h);
            opener.set();
            // Detached after the task ended: the handle drops the
            // stored output.
            let h = s.spawn(async move { late.on_drop() });
            while rt.live_tasks() != 0 {
                yield_now().await;
            }
            drop(h);
            // Kept beyond the scope.
            kept_tx
                .send(s.spawn(async move { kept.on_drop() }))
                .unwrap();
        }
    }));
    assert!(out.is_ok());
    assert_eq!(awaited.get(), 1);
    assert_eq!(detached_early.get(), 1);
    assert_eq!(detached_late.get(), 1);
    assert_eq!(detached_waiting.get(), 1);
    let h = kept_rx.recv().unwrap();
    assert_eq!(kept.get(), 0, "the output waits in the kept handle");
    drop(h);
    assert_eq!(kept.get(), 1);
}

/// Spawning through a `Scope` clone that outlived its scope is refused:
/// the future is dropped unpolled and the handle yields `ScopeEnded`.
#[test]
fn spawn_into_ended_scope_is_refused() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (tx, rx) = mpsc::channel::<Scope>();
    let out = rt.block_on(scope(|s| async move {
        tx.send(s.clone()).unwrap();
    }));
    assert_eq!(out, Ok(()));
    let old = rx.recv().unwrap();
    let probes = Probes::new(2);
    let h = old.spawn(probes.wrap(0, async { 1 }));
    assert_eq!(probes[0].drops(), 1);
    assert_eq!(
        future::block_on(h).unwrap_err().reason(),
        &CancelReason::ScopeEnded
    );
    // Also from inside another scope on the same runtime.
    let out = rt.block_on(scope(|_| {
        let probes = probes.clone();
        async move { old.spawn(probes.wrap(1, async { 2 })).await }
    }));
    assert_eq!(
        out.unwrap().unwrap_err().reason(),
        &CancelReason::ScopeEnded
    );
    assert_eq!(probes.total_polls(), 0);
    probes.assert_each_dropped_once();
    assert_eq!(rt.live_tasks(), 0);
}

/// Polling a handle again after it returned its output panics.
#[test]
fn handle_polled_after_completion_panics() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let (tx, rx) = mpsc::channel::<JoinHandle<u8>>();
    let _ = rt.block_on(scope(|s| async move {
        tx.send(s.spawn(async { 7 })).unwrap();
    }));
    let mut done = rx.recv().unwrap();
    assert_eq!(future::block_on(&mut done), Ok(7));
    let msg = expect_panic(|| future::block_on(future::poll_once(&mut done)));
    assert!(msg.contains("after it completed"), "{msg}");
}

/// A refused handle, too, panics when polled a second time.
#[test]
fn refused_handle_polled_twice_panics() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let (tx, rx) = mpsc::channel::<Scope>();
    let _ = rt.block_on(scope(|s| async move { tx.send(s).unwrap() }));
    let mut h = rx.recv().unwrap().spawn(async { 1 });
    assert!(future::block_on(&mut h).is_err());
    let msg = expect_panic(|| future::block_on(future::poll_once(&mut h)));
    assert!(msg.contains("after it completed"), "{msg}");
    assert!(format!("{h:?}").contains("JoinHandle"));
}
