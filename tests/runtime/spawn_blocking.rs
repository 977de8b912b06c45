//! `Scope::spawn_blocking`: closures on the blocking pool, as tasks of
//! their scope. The scope waits for them; a cancel claims a closure that
//! has not started (it never runs) and waits for one that runs, whose
//! value it then drops; a panic goes to the scope; the pool starts threads
//! on demand, never more than its maximum, and lets idle ones go; dropping
//! the runtime cancels queued closures and waits for running ones.

use crate::support::{
    cancel_reason, drive_until_waiting, expect_panic, hang_guard, runtime, wait_until, Clock,
    Counter, Slot,
};
use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::sync::Event;
use cancel_scope::{scope, CancelReason, JoinHandle};
use futures_lite::future;
use std::collections::HashSet;
use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

/// A runtime with one worker and a blocking pool of at most `max`
/// threads, each kept `keep_alive` once idle.
fn pool_runtime(max: usize, keep_alive: Duration) -> Runtime {
    let name = thread::current().name().unwrap_or("test").to_string();
    Builder::new()
        .worker_threads(1)
        .thread_name(name)
        .max_blocking_threads(max)
        .blocking_keep_alive(keep_alive)
        .build()
        .expect("start a runtime")
}

/// Polls `fut` once.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    future::poll_fn(|cx: &mut Context<'_>| match Pin::new(&mut *fut).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The closure runs on a blocking thread, not on a worker and not on the
/// caller: with one worker, a closure that waits for a task to unblock it
/// would otherwise never return.
#[test]
fn the_closure_runs_on_a_pool_thread_while_the_worker_runs_on() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let out = rt.block_on(scope(|s| async move {
        let (tx, rx) = mpsc::channel::<()>();
        let closure = s.spawn_blocking(move || {
            rx.recv().expect("the task sends");
            thread::current().name().map(str::to_string)
        });
        s.spawn(async move { tx.send(()).expect("the closure waits") });
        closure.await
    }));
    let name = out.unwrap().unwrap().expect("pool threads are named");
    assert!(name.contains("-blocking-"), "ran on {name}");
    assert_eq!(rt.live_tasks(), 0);
}

/// The scope does not end while its closure runs, even with the closure's
/// handle dropped and the body over: the closure is let go only once the
/// scope future, its body done, has been seen waiting.
#[test]
fn the_scope_waits_for_its_blocking_closure() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let go = Event::new();
    let finished = Arc::new(AtomicBool::new(false));
    let body_ended = AtomicBool::new(false);
    let fut = scope(|s| {
        let (go, finished, body_ended) = (go.clone(), finished.clone(), &body_ended);
        async move {
            drop(s.spawn_blocking(move || {
                future::block_on(go.wait());
                finished.store(true, SeqCst);
            }));
            body_ended.store(true, SeqCst);
            "body ended first"
        }
    });
    let out = drive_until_waiting(&rt, fut, &body_ended, &go);
    assert_eq!(out, Ok("body ended first"));
    assert!(go.is_set(), "the scope did not wait for its closure");
    assert!(finished.load(SeqCst), "the scope ended before its closure");
    assert_eq!(rt.live_tasks(), 0);
}

/// With one blocking thread busy, a second closure waits in the queue; a
/// cancel then drops it before `cancel()` returns, and it never runs: its
/// handle resolves to `Err(Cancelled)`, and the scope too (the cancel cut
/// the queued closure short). The running closure returns, and its handle
/// gives its value.
#[test]
fn a_closure_cancelled_before_it_starts_never_runs() {
    let _hang = hang_guard();
    let rt = pool_runtime(1, Duration::from_secs(60));
    let ran = Arc::new(AtomicBool::new(false));
    let closure_drops = Counter::new();
    let handles: Slot<(JoinHandle<&str>, JoinHandle<&str>)> = Slot::new();
    let out = rt.block_on(scope(|s| {
        let (ran, closure_drops, handles) = (ran.clone(), closure_drops.clone(), handles.clone());
        async move {
            let (started_tx, started_rx) = mpsc::channel();
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let first = s.spawn_blocking(move || {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
                "first"
            });
            let guard = closure_drops.on_drop();
            let second = s.spawn_blocking(move || {
                let _guard = guard;
                ran.store(true, SeqCst);
                "second"
            });
            started_rx.recv().unwrap(); // the only thread runs `first`
            s.cancel();
            assert_eq!(closure_drops.get(), 1, "cancel dropped the queued closure");
            gate_tx.send(()).unwrap();
            handles.put((first, second));
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert!(!ran.load(SeqCst), "a cancelled queued closure ran");
    let (first, second) = handles.take();
    assert_eq!(future::block_on(first), Ok("first"));
    assert_eq!(cancel_reason(second), CancelReason::Explicit);
    assert_eq!(rt.live_tasks(), 0);
}

/// A closure running when its scope is cancelled: the scope waits for it
/// (it is let go only once the scope future has been seen waiting after
/// the cancel); it sees the cancel through the `CancelHandle` it captured
/// and returns. It ran to completion, so its handle gives its value, and
/// the cancel interrupted nothing of the scope: the scope ends `Ok`.
#[test]
fn a_running_closure_is_waited_for_and_keeps_its_value() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let go = Event::new();
    let started = Event::new();
    let cancelled = AtomicBool::new(false);
    let finished = Arc::new(AtomicBool::new(false));
    let value_drops = Counter::new();
    let handle: Slot<JoinHandle<crate::support::OnDrop>> = Slot::new();
    let fut = scope(|s| {
        let (go, started, cancelled) = (go.clone(), started.clone(), &cancelled);
        let (finished, value_drops, handle) =
            (finished.clone(), value_drops.clone(), handle.clone());
        async move {
            let cancel = s.cancel_handle();
            let ready = started.clone();
            handle.put(s.spawn_blocking(move || {
                ready.set();
                while !cancel.is_cancelled() {
                    thread::yield_now();
                }
                future::block_on(go.wait());
                finished.store(true, SeqCst);
                value_drops.on_drop()
            }));
            started.wait().await;
            s.cancel();
            cancelled.store(true, SeqCst);
        }
    });
    let out = drive_until_waiting(&rt, fut, &cancelled, &go);
    assert_eq!(out, Ok(()));
    assert!(
        go.is_set(),
        "the scope did not wait for its running closure"
    );
    assert!(finished.load(SeqCst), "the scope ended before its closure");
    assert_eq!(value_drops.get(), 0, "the value waits in the handle");
    let value = future::block_on(handle.take()).expect("the closure's value");
    drop(value);
    assert_eq!(value_drops.get(), 1);
    assert_eq!(rt.live_tasks(), 0);
}

/// A closure whose scope is not cancelled: its value reaches the handle,
/// which may be awaited after the scope has ended.
#[test]
fn a_closure_value_waits_in_its_handle_after_the_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let handle: Slot<JoinHandle<u32>> = Slot::new();
    let out = rt.block_on(scope(|s| {
        let handle = handle.clone();
        async move {
            let h = s.spawn_blocking(|| 7);
            // Not awaited here: the scope waits for the closure.
            handle.put(h);
        }
    }));
    assert_eq!(out, Ok(()));
    assert_eq!(future::block_on(handle.take()), Ok(7));
}

/// A closure's panic goes to its scope, as a task's does: the scope
/// cancels its other tasks (here one that would wait forever) and resumes
/// the panic.
#[test]
fn a_panic_in_a_closure_goes_to_its_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            s.spawn(pending::<()>());
            s.spawn_blocking(|| panic!("blocking boom"));
            pending::<()>().await
        }))
    });
    assert_eq!(message, "blocking boom");
    assert_eq!(rt.live_tasks(), 0);
}

/// 10,000 closures on a pool of at most 4 threads: the first 4 are held
/// until all 4 run at once (so the pool does start 4), and no closure ever
/// runs beside 4 others or on a fifth thread.
#[test]
fn the_pool_stays_within_its_maximum_under_ten_thousand_submissions() {
    const MAX: usize = 4;
    const CLOSURES: usize = 10_000;
    let _hang = hang_guard();
    let rt = pool_runtime(MAX, Duration::from_secs(600));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let gate = Arc::new(Barrier::new(MAX));
    let out = rt.block_on(scope(|s| {
        let (running, peak, threads) = (running.clone(), peak.clone(), threads.clone());
        async move {
            let handles: Vec<_> = (0..CLOSURES)
                .map(|i| {
                    let (running, peak, threads, gate) =
                        (running.clone(), peak.clone(), threads.clone(), gate.clone());
                    s.spawn_blocking(move || {
                        let now = running.fetch_add(1, SeqCst) + 1;
                        peak.fetch_max(now, SeqCst);
                        threads.lock().unwrap().insert(thread::current().id());
                        if i < MAX {
                            gate.wait(); // MAX closures run at once
                        }
                        running.fetch_sub(1, SeqCst);
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.expect("no closure is cancelled");
            }
            sum
        }
    }));
    assert_eq!(out, Ok((0..CLOSURES).sum()));
    assert_eq!(peak.load(SeqCst), MAX, "closures running at once");
    assert_eq!(threads.lock().unwrap().len(), MAX, "threads used");
    assert_eq!(rt.blocking_threads(), MAX);
}

/// A fresh runtime has no blocking thread; closures that must run at once
/// start as many; once idle for the keep-alive, they exit.
#[test]
fn threads_start_on_demand_and_idle_ones_exit_after_the_keep_alive() {
    const AT_ONCE: usize = 3;
    let _hang = hang_guard();
    let rt = pool_runtime(8, Duration::from_millis(20));
    assert_eq!(rt.blocking_threads(), 0, "no thread before it is needed");
    let all_running = Arc::new(Barrier::new(AT_ONCE + 1));
    let out = rt.block_on(scope(|s| {
        let all_running = all_running.clone();
        async move {
            let handles: Vec<_> = (0..AT_ONCE)
                .map(|_| {
                    let all_running = all_running.clone();
                    s.spawn_blocking(move || {
                        all_running.wait();
                    })
                })
                .collect();
            all_running.wait(); // every closure runs at once
            for h in handles {
                h.await.unwrap();
            }
        }
    }));
    assert_eq!(out, Ok(()));
    assert!(rt.blocking_threads() <= AT_ONCE);
    wait_until("idle blocking threads to exit", || {
        rt.blocking_threads() == 0
    });
}

/// Dropping the runtime: a closure still queued is cancelled and never
/// runs; a running one sees its scope cancelled (reason `Shutdown`) and
/// the drop waits for it to return.
#[test]
fn dropping_the_runtime_cancels_queued_closures_and_waits_for_running_ones() {
    let _hang = hang_guard();
    let rt = pool_runtime(1, Duration::from_secs(600));
    let started = Event::new();
    let finished = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicBool::new(false));
    let queued_drops = Counter::new();
    let handles: Slot<(JoinHandle<()>, JoinHandle<()>)> = Slot::new();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let watcher: Slot<cancel_scope::CancelHandle> = Slot::new();
    let mut fut = Box::pin(scope(|s| {
        let (started, finished, ran) = (started.clone(), finished.clone(), ran.clone());
        let (queued_drops, handles, watcher) =
            (queued_drops.clone(), handles.clone(), watcher.clone());
        async move {
            let cancel = s.cancel_handle();
            watcher.put(cancel.clone());
            let running = s.spawn_blocking(move || {
                started.set();
                while !cancel.is_cancelled() {
                    thread::yield_now();
                }
                gate_rx.recv().unwrap();
                finished.store(true, SeqCst);
            });
            let guard = queued_drops.on_drop();
            let queued = s.spawn_blocking(move || {
                let _guard = guard;
                ran.store(true, SeqCst);
            });
            handles.put((running, queued));
            pending::<()>().await
        }
    }));
    rt.block_on(async {
        assert!(poll_once(&mut fut).await.is_none());
        started.wait().await;
    });
    // Lets the running closure go once the drop has cancelled its scope.
    let cancel = watcher.take();
    let opener = thread::spawn(move || {
        wait_until("the drop to cancel the scope", || cancel.is_cancelled());
        gate_tx.send(()).unwrap();
    });
    drop(rt);
    assert!(
        finished.load(SeqCst),
        "the drop did not wait for the running closure"
    );
    assert!(!ran.load(SeqCst), "a queued closure ran during shutdown");
    assert_eq!(queued_drops.get(), 1, "the queued closure was dropped");
    opener.join().unwrap();
    let (running, queued) = handles.take();
    // The running closure returned: it keeps its value.
    assert_eq!(future::block_on(running), Ok(()));
    assert_eq!(cancel_reason(queued), CancelReason::Shutdown);
    let out = future::block_on(fut);
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
}

/// A closure spawned into a scope that is already cancelled never runs,
/// and its handle says why.
#[test]
fn a_cancelled_scope_refuses_a_closure() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let ran = Arc::new(AtomicBool::new(false));
    let handle: Slot<JoinHandle<()>> = Slot::new();
    let out = rt.block_on(scope(|s| {
        let (ran, handle) = (ran.clone(), handle.clone());
        async move {
            s.cancel();
            handle.put(s.spawn_blocking(move || ran.store(true, SeqCst)));
        }
    }));
    // The body returned; a refused closure is not one cut short.
    assert_eq!(out, Ok(()));
    assert!(!ran.load(SeqCst));
    assert_eq!(cancel_reason(handle.take()), CancelReason::Explicit);
    assert_eq!(rt.blocking_threads(), 0, "no thread was started for it");
}
