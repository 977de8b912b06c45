//! `CancelHandle` (and kept `Scope` clones): cancelling from other threads,
//! and handles that outlive their scope. Once a scope has ended, its
//! handle cancels nothing, in any scope opened after it.

use crate::support::{arrive_and_park, hang_guard, runtime, Clock, Countdown, Probes};
use cancel_scope::sync::Event;
use cancel_scope::{linked_scope, scope, CancelHandle, CancelReason, Cancelled, JoinHandle, Scope};
use futures_lite::future;
use std::sync::{mpsc, Arc};
use std::thread;

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

/// The handles can cross threads.
#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<CancelHandle>();
    assert_send_sync::<Scope>();
    assert_send_sync::<Cancelled>();
    assert_send::<JoinHandle<u8>>();
}

/// A handle sent to another thread cancels the scope; the scope's parked
/// tasks are dropped and the handle reports the cancel.
#[test]
fn cancel_handle_from_another_thread() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 8;
    let probes = Probes::new(N);
    let parked = Countdown::new(N);
    let (tx, rx) = mpsc::channel::<CancelHandle>();
    let canceller = {
        let (probes, parked) = (probes.clone(), parked.clone());
        thread::spawn(move || {
            let handle = rx.recv().unwrap();
            let copy = handle.clone();
            assert!(!copy.is_cancelled());
            future::block_on(parked.wait());
            handle.cancel();
            probes.raise_fence();
            assert!(copy.is_cancelled(), "clones share the scope");
            copy.cancel();
        })
    };
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            for i in 0..N {
                s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
            }
            tx.send(s.cancel_handle()).unwrap();
            std::future::pending::<()>().await
        }
    }));
    canceller.join().unwrap();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(rt.live_tasks(), 0);
}

/// A handle kept after its scope ended does nothing when used, in a scope
/// opened after it: the new scope, its tasks and its body run to
/// completion.
#[test]
fn stale_handle_cancels_nothing_in_a_later_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (tx, rx) = mpsc::channel::<(CancelHandle, Scope)>();
    let out = rt.block_on(scope(|s| async move {
        tx.send((s.cancel_handle(), s.clone())).unwrap();
        "first"
    }));
    assert_eq!(out, Ok("first"));
    let (old_handle, old_scope) = rx.recv().unwrap();
    assert!(!old_handle.is_cancelled());
    assert_eq!(rt.live_scopes(), 0, "the scope has ended");
    let probes = Probes::new(1);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            let go = Event::new();
            let waiter = go.clone();
            let task = s.spawn(probes.wrap(0, async move {
                waiter.wait().await;
                "task ran on"
            }));
            old_handle.cancel();
            old_scope.cancel();
            assert!(!s.is_cancelled(), "a stale handle cancelled a new scope");
            assert!(!old_handle.is_cancelled());
            go.set();
            (task.await.unwrap(), "second")
        }
    }));
    assert_eq!(out, Ok(("task ran on", "second")));
    assert_eq!(probes[0].completions(), 1);
}

/// The same with many handles at once: handles of ten nested scopes that
/// ended, used while ten new nested scopes are open.
#[test]
fn stale_handles_of_nested_scopes_after_slot_reuse() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const K: usize = 10;
    let out = rt.block_on(scope(|root| async move {
        // Open K nested scopes at once, keep their handles, let them end.
        let (tx, rx) = async_channel::unbounded::<CancelHandle>();
        let first: Vec<_> = (0..K)
            .map(|_| {
                let tx = tx.clone();
                root.spawn(scope(move |s| async move {
                    tx.send(s.cancel_handle()).await.unwrap();
                }))
            })
            .collect();
        for h in first {
            assert_eq!(h.await.unwrap(), Ok(()));
        }
        let stale: Vec<CancelHandle> = (0..K).map(|_| rx.try_recv().unwrap()).collect();
        // K new nested scopes, alive while the stale handles fire.
        let ready = Countdown::new(K);
        let go = Event::new();
        let second: Vec<_> = (0..K)
            .map(|i| {
                let (ready, go) = (ready.clone(), go.clone());
                root.spawn(scope(move |s| async move {
                    ready.arrive();
                    go.wait().await;
                    assert!(!s.is_cancelled());
                    s.spawn(async move { i }).await.unwrap()
                }))
            })
            .collect();
        ready.wait().await;
        for h in &stale {
            h.cancel();
        }
        go.set();
        let mut sum = 0;
        for h in second {
            sum += h
                .await
                .unwrap()
                .expect("a new scope was cancelled by a stale handle");
        }
        sum
    }));
    assert_eq!(out, Ok((0..K).sum()));
    assert_eq!(rt.live_scopes(), 0);
}

/// A scope that was cancelled keeps saying so through its handle after it
/// ended; cancelling it again does nothing to a scope opened after it.
#[test]
fn handle_of_a_cancelled_scope_after_it_ended() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let (tx, rx) = mpsc::channel::<CancelHandle>();
    let out = rt.block_on(scope(|s| async move {
        tx.send(s.cancel_handle()).unwrap();
        s.cancel();
    }));
    // The body returned: the cancel interrupted nothing, but the handle
    // still says the scope was cancelled.
    assert!(out.is_ok());
    let handle = rx.recv().unwrap();
    assert!(handle.is_cancelled());
    let debug = format!("{handle:?}");
    assert!(
        debug.contains("CancelHandle") && debug.contains("cancelled: true"),
        "{debug}"
    );
    let out = rt.block_on(scope(|s| async move {
        handle.cancel();
        assert!(handle.is_cancelled());
        let t = s.spawn(async { 1 });
        (s.is_cancelled(), t.await)
    }));
    assert_eq!(out, Ok((false, Ok(1))));
}

/// The handle of a linked scope, used from another thread, cancels the
/// parent through the link.
#[test]
fn handle_of_a_linked_scope_cancels_the_parent() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(2);
    let (tx, rx) = mpsc::channel::<CancelHandle>();
    let canceller = thread::spawn(move || rx.recv().unwrap().cancel());
    let out = rt.block_on(scope(|p| {
        let probes = probes.clone();
        async move {
            p.spawn(probes.wrap(0, std::future::pending::<()>()));
            let inner = linked_scope(|l| {
                tx.send(l.cancel_handle()).unwrap();
                probes.wrap(1, std::future::pending::<()>())
            })
            .await;
            inner.map(|_| ())
        }
    }));
    canceller.join().unwrap();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::LinkedChild);
    probes.assert_each_dropped_once();
}

/// Spawning through a stale `Scope` clone while a new scope is open is
/// refused and does not count against the new scope.
#[test]
fn stale_scope_clone_cannot_spawn_into_a_reused_slot() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, 2));
    let (tx, rx) = mpsc::channel::<Scope>();
    let _ = rt.block_on(scope(|s| async move { tx.send(s).unwrap() }));
    let old = rx.recv().unwrap();
    let probes = Probes::new(1);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        let rt = rt.clone();
        async move {
            let before = rt.live_tasks();
            let refused = old.spawn(probes.wrap(0, async { 1 }));
            assert_eq!(rt.live_tasks(), before);
            let reason = refused.await.unwrap_err().reason().clone();
            (reason, s.spawn(async { 2 }).await)
        }
    }));
    assert_eq!(out, Ok((CancelReason::ScopeEnded, Ok(2))));
    assert_eq!(probes.total_polls(), 0);
    probes.assert_each_dropped_once();
}

/// An early handle (`CancelHandle::new`) cancelled while its scope opens
/// never says "not cancelled" again: opening binds the handle to the node
/// and only then applies the recorded cancel to it, and in between
/// `is_cancelled` used to read the node's flag alone (false). Once true,
/// true.
#[test]
fn an_early_handle_is_cancelled_for_good_while_its_scope_opens() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let rounds = if cfg!(miri) { 10 } else { 5_000 };
    let mut lapses = 0;
    for _ in 0..rounds {
        let handle = CancelHandle::new();
        let watcher = handle.clone();
        let start = Arc::new(std::sync::Barrier::new(2));
        let go = start.clone();
        let watch = thread::spawn(move || {
            watcher.cancel();
            go.wait();
            // Watch through the opening of the scope.
            (0..200).filter(|_| !watcher.is_cancelled()).count()
        });
        start.wait();
        let out = rt.block_on(scope(|_| async {}).with_cancel_handle(&handle));
        // Opened cancelled: the body is dropped before its first poll.
        assert!(out.is_err());
        assert!(handle.is_cancelled());
        lapses += watch.join().unwrap();
    }
    assert_eq!(
        lapses, 0,
        "is_cancelled() read false after cancel() returned"
    );
}
