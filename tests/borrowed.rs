//! Borrowing scopes (`runtime::scoped`, `BorrowScope`): tasks that borrow
//! the caller's data, and the promise that makes it sound, that the call
//! returns only once every task of it has ended and been dropped.
//!
//! The tasks borrow memory that the test frees right after the call (a
//! `Vec`, a counter in a `Box`): a task that ran on, or a future or output
//! dropped after the call, would touch freed memory, which Miri and the
//! sanitizers report. Each test also checks with counters that what it
//! expects to be dropped was dropped by the time the call returned.
//!
//! - Tasks read and write the caller's data: parts of a buffer, one per
//!   task; blocking closures too; a `BorrowJoinSet`'s outputs borrow it.
//! - The call waits for every task of a cancelled scope: parked ones
//!   (dropped by the cancel), one inside its poll and one running
//!   blocking closure (each staged with barriers, writing to the
//!   caller's data after the cancel), and one queued closure, which never
//!   runs; the result is `Err(Cancelled)`.
//! - A deadline on the paused clock ends the call after its tasks, at
//!   the deadline's virtual time.
//! - A panic in a task, in the body's closure, in the body's future and
//!   in the `Drop` of a cancelled task is resumed from the call, once
//!   every task has been dropped.
//! - Handles: a forgotten `BorrowJoinHandle` leaks its output, which is
//!   never dropped (not even after the call); a handle dropped while its
//!   task completes leaves no output behind, with a `TaskCancelHandle`
//!   keeping the task's memory past the call.
//! - A clone of the scope handle kept past the call spawns nothing: the
//!   future (and a blocking closure) is dropped unpolled, the handle says
//!   `ScopeEnded`; a nested scope opened through it panics; one opened in
//!   a sibling scope, outside its lender, panics too. A kept handle of a
//!   nested scope that ended in its first poll refuses too; a join handle
//!   spawned through a scope handle kept where the data lives may leave
//!   the call, and drops its output when it is dropped, not before.
//! - Nested scopes borrow: plain, linked, supervised, with a deadline,
//!   shielded (the call waits for the shield after a cancel), and
//!   `try_scope`; a nested scope's body may borrow the enclosing body's
//!   locals, its tasks only the call's data.
//! - Where it runs: on a worker it panics (for this runtime, another one
//!   and the default one); inside a blocking closure it opens under the
//!   closure's scope; the tree view and a recorded timeline show it.
//! - A stress run: rounds of calls whose tasks complete, park, or are
//!   inside a poll while another thread cancels, with handles dropped
//!   while their tasks complete, each round's data freed right after its
//!   call (`.ci/run` runs this file under the sanitizers).
//!
//! Under Miri the stress run shrinks, and the tests that start the
//! process-wide runtime are ignored.

mod support;

use cancel_scope::runtime::{self, Builder, Runtime};
use cancel_scope::sync::Event;
use cancel_scope::time::{self, sleep};
use cancel_scope::trace::EventKind;
use cancel_scope::{
    scope, BorrowJoinSet, BorrowScope, CancelHandle, CancelReason, TaskCancelHandle,
};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use support::{
    assert_clean, expect_panic, hang_guard, panic_message, runtime, secs, wait_clean, Clock,
};

const WORKERS: usize = 2;

/// Counts its drop in borrowed memory: a task holding one touches the
/// caller's data when it is dropped.
struct DropMark<'a>(&'a AtomicUsize);

impl Drop for DropMark<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A future that never completes, holding a [`DropMark`] from the start
/// (so that it counts even if the future is dropped unpolled).
fn parked(drops: &AtomicUsize) -> impl Future<Output = ()> + Send + '_ {
    let mark = DropMark(drops);
    async move {
        let _mark = mark;
        std::future::pending::<()>().await
    }
}

/// A future whose `Drop` panics after touching borrowed memory.
struct PanicsOnDrop<'a>(&'a AtomicUsize);

impl Future for PanicsOnDrop<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for PanicsOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("a borrowing future panicked in its drop");
    }
}

/// Spins (yielding the thread) until `flag` is set: a poll held open
/// until the test lets it return.
fn spin_until(flag: &AtomicBool) {
    while !flag.load(SeqCst) {
        thread::yield_now();
    }
}

#[test]
fn tasks_read_and_write_the_callers_data() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let input: Vec<u64> = (1..=64).collect();
    let mut squares = vec![0u64; 64];
    let (input_ref, out_ref) = (&input, &mut squares);
    let out = rt.scoped(|s| async move {
        // Each task writes its own part of the caller's buffer.
        for (chunk, part) in input_ref.chunks(8).zip(out_ref.chunks_mut(8)) {
            s.spawn(async move {
                for (x, y) in chunk.iter().zip(part) {
                    *y = x * x;
                }
            });
        }
        // A blocking closure and a task read the same input.
        let sum = s.spawn_blocking(move || input_ref.iter().sum::<u64>());
        let max = s.spawn(async move { input_ref.iter().max().copied() });
        (sum.await.unwrap(), max.await.unwrap())
    });
    assert_eq!(out, Ok((64 * 65 / 2, Some(64))));
    assert!(squares.iter().zip(&input).all(|(y, x)| *y == x * x));
    drop(input);
    assert_clean(&rt);
}

#[test]
fn a_join_set_of_outputs_that_borrow() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let lines = vec![
        "alpha beta".to_string(),
        "gamma".into(),
        "delta epsilon".into(),
    ];
    let lines_ref = &lines;
    let out = rt.scoped(|s| async move {
        let mut set = BorrowJoinSet::new();
        for line in lines_ref {
            // The output borrows the caller's string.
            set.spawn_in(&s, async move { line.split(' ').next() });
        }
        let mut firsts = Vec::new();
        while let Some(first) = set.join_next().await {
            firsts.push(first.unwrap().unwrap());
        }
        firsts.sort();
        firsts.join(",")
    });
    assert_eq!(out.unwrap(), "alpha,delta,gamma");
    drop(lines);
    assert_clean(&rt);
}

#[test]
fn the_call_waits_for_every_task_of_a_cancelled_scope() {
    let _hang = hang_guard();
    let rt = Builder::new()
        .worker_threads(WORKERS)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let drops = Box::new(AtomicUsize::new(0));
    let written = Box::new(Mutex::new(Vec::new()));
    let (in_poll, in_closure) = (Barrier::new(2), Barrier::new(2));
    let (go_poll, go_closure) = (AtomicBool::new(false), AtomicBool::new(false));
    let ran_queued = AtomicBool::new(false);
    let (drops_ref, written_ref) = (&*drops, &*written);
    let (in_poll, in_closure, go_poll, go_closure, ran_queued) =
        (&in_poll, &in_closure, &go_poll, &go_closure, &ran_queued);
    let out = rt.scoped(|s| async move {
        for _ in 0..3 {
            s.spawn(parked(drops_ref));
        }
        // A task inside its poll when the cancel comes.
        s.spawn(async move {
            let _mark = DropMark(drops_ref);
            in_poll.wait();
            spin_until(go_poll);
            written_ref.lock().unwrap().push("task, after the cancel");
            std::future::pending::<()>().await
        });
        // A blocking closure running when the cancel comes, and one
        // queued behind it (the pool has one thread).
        s.spawn_blocking(move || {
            let _mark = DropMark(drops_ref);
            in_closure.wait();
            spin_until(go_closure);
            written_ref
                .lock()
                .unwrap()
                .push("closure, after the cancel");
        });
        // It holds a value that borrows: dropped with the closure.
        let held = DropMark(drops_ref);
        s.spawn_blocking(move || {
            let _held = held;
            ran_queued.store(true, SeqCst);
        });
        in_poll.wait();
        in_closure.wait();
        s.cancel();
        go_poll.store(true, SeqCst);
        go_closure.store(true, SeqCst);
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    // All six are gone: the two that ran on after the cancel, and the
    // value the queued closure held, included.
    assert_eq!(drops.load(SeqCst), 6);
    let mut written = written.into_inner().unwrap();
    written.sort();
    assert_eq!(
        written,
        ["closure, after the cancel", "task, after the cancel"]
    );
    assert!(
        !ran_queued.load(SeqCst),
        "a queued closure ran after the cancel"
    );
    drop(drops);
    assert_clean(&rt);
}

#[test]
fn a_deadline_ends_the_call_after_its_tasks_on_the_paused_clock() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, WORKERS);
    let drops = AtomicUsize::new(0);
    let mut progress = [0u32; 3];
    let (drops_ref, slots) = (&drops, &mut progress);
    let start = rt.block_on(async { time::now() });
    let out = rt.scoped(|s| async move {
        s.cancel_after(secs(3600));
        for (i, slot) in slots.iter_mut().enumerate() {
            s.spawn(async move {
                let _mark = DropMark(drops_ref);
                for _ in 0..=i {
                    sleep(secs(1500)).await;
                    *slot += 1;
                }
            });
        }
        sleep(secs(86_400)).await;
    });
    let elapsed = rt.block_on(async { time::now() }) - start;
    assert!(matches!(
        out.unwrap_err().reason(),
        CancelReason::Deadline { .. }
    ));
    assert_eq!(elapsed, secs(3600));
    assert_eq!(progress, [1, 2, 2]);
    assert_eq!(drops.load(SeqCst), 3);
    assert_clean(&rt);
}

#[test]
fn a_panicking_task_is_resumed_after_every_task_was_dropped() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let drops = Box::new(AtomicUsize::new(0));
    let drops_ref = &*drops;
    let caught = catch_unwind(AssertUnwindSafe(|| {
        rt.scoped(|s| async move {
            for _ in 0..4 {
                s.spawn(parked(drops_ref));
            }
            s.spawn(async move {
                let _mark = DropMark(drops_ref);
                panic!("a borrowing task panicked");
            });
            std::future::pending::<()>().await
        })
    }));
    let payload = caught.expect_err("the task's panic is resumed");
    assert_eq!(panic_message(&*payload), "a borrowing task panicked");
    assert_eq!(drops.load(SeqCst), 5);
    drop(drops);
    assert_clean(&rt);
}

#[test]
fn a_panicking_body_is_resumed_after_its_tasks_were_dropped() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let drops = Box::new(AtomicUsize::new(0));
    let drops_ref = &*drops;
    // In the closure, after it spawned.
    let message = expect_panic(|| {
        rt.scoped(|s| {
            s.spawn(parked(drops_ref));
            if drops_ref.load(SeqCst) < 100 {
                panic!("the body's closure panicked");
            }
            async {}
        })
    });
    assert_eq!(message, "the body's closure panicked");
    assert_eq!(drops.load(SeqCst), 1);
    // In the future, on a worker.
    let message = expect_panic(|| {
        rt.scoped(|s| async move {
            s.spawn(parked(drops_ref));
            s.spawn(parked(drops_ref));
            if drops_ref.load(SeqCst) < 100 {
                panic!("the body's future panicked");
            }
        })
    });
    assert_eq!(message, "the body's future panicked");
    assert_eq!(drops.load(SeqCst), 3);
    drop(drops);
    assert_clean(&rt);
}

#[test]
fn a_panicking_drop_of_a_cancelled_borrowing_task_is_resumed() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let drops = Box::new(AtomicUsize::new(0));
    let drops_ref = &*drops;
    let message = expect_panic(|| {
        rt.scoped(|s| async move {
            s.spawn(PanicsOnDrop(drops_ref));
            s.spawn(parked(drops_ref));
            cancel_scope::task::yield_now().await;
            s.cancel();
        })
    });
    assert_eq!(message, "a borrowing future panicked in its drop");
    assert_eq!(drops.load(SeqCst), 2);
    drop(drops);
    assert_clean(&rt);
}

/// An output that counts its drop in borrowed memory.
struct Output<'a>(&'a AtomicUsize);

impl Drop for Output<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_forgotten_handle_leaks_its_output_and_nothing_is_dropped_late() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let output_drops = Box::new(AtomicUsize::new(0));
    let task_drops = Box::new(AtomicUsize::new(0));
    let (outputs, tasks) = (&*output_drops, &*task_drops);
    let mut kept: Vec<TaskCancelHandle> = Vec::new();
    let kept_ref = &mut kept;
    let out = rt.scoped(|s| async move {
        // One finished before it is forgotten, one still parked.
        let mark = DropMark(tasks);
        let done = s.spawn(async move {
            let _mark = mark;
            Output(outputs)
        });
        while !done.is_finished() {
            cancel_scope::task::yield_now().await;
        }
        kept_ref.push(done.cancel_handle());
        std::mem::forget(done);
        // The mark exists from the spawn, not from the first poll: the
        // cancel below may drop this task before it is ever polled.
        let wait = parked(tasks);
        let parked_task = s.spawn(async move {
            wait.await;
            Output(outputs)
        });
        kept_ref.push(parked_task.cancel_handle());
        std::mem::forget(parked_task);
        // A handle dropped normally drops its output.
        let dropped = s.spawn(async move { Output(outputs) });
        drop(dropped.await);
        s.cancel();
    });
    assert!(out.is_err());
    // The forgotten output was never dropped, nor will it be; the one
    // taken was; both futures were.
    assert_eq!(output_drops.load(SeqCst), 1);
    assert_eq!(task_drops.load(SeqCst), 2);
    drop((output_drops, task_drops));
    // Handles that keep the tasks' memory past the call, dropped after
    // the data is gone: they hold no future and no output.
    assert!(kept.iter().all(TaskCancelHandle::is_finished));
    drop(kept);
    assert_clean(&rt);
}

#[test]
fn handles_dropped_while_their_tasks_complete_leave_no_output_behind() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let rounds = if cfg!(miri) { 3 } else { 2000 };
    for _ in 0..rounds {
        let outputs = Box::new(AtomicUsize::new(0));
        let outputs_ref = &*outputs;
        let mut kept = Vec::new();
        let kept_ref = &mut kept;
        let out = rt.scoped(|s| async move {
            for _ in 0..4 {
                let task = s.spawn(async move { Output(outputs_ref) });
                kept_ref.push(task.cancel_handle());
                // Dropped as soon as the task is seen `COMPLETE`,
                // which may be before its runner stored the output.
                let mut spins = 0u32;
                while !task.is_finished() {
                    spins += 1;
                    if spins % 4096 == 0 {
                        // Let this worker run the task, if no other did.
                        cancel_scope::task::yield_now().await;
                    }
                    std::hint::spin_loop();
                }
                drop(task);
            }
        });
        assert!(out.is_ok());
        assert_eq!(outputs.load(SeqCst), 4, "an output outlived its handle");
        drop(outputs);
        drop(kept);
    }
    assert_clean(&rt);
}

#[test]
fn a_kept_scope_handle_spawns_nothing_after_the_call() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let polled = AtomicBool::new(false);
    let drops = AtomicUsize::new(0);
    let kept: Mutex<Option<BorrowScope<'_>>> = Mutex::new(None);
    let kept_ref = &kept;
    let out = rt.scoped(|s| {
        *kept_ref.lock().unwrap() = Some(s.clone());
        async {}
    });
    assert!(out.is_ok());
    let s = kept.lock().unwrap().take().unwrap();
    let (polled_ref, drops_ref) = (&polled, &drops);
    let mark = DropMark(drops_ref);
    let task = s.spawn(async move {
        let _mark = mark;
        polled_ref.store(true, SeqCst);
    });
    let mark = DropMark(drops_ref);
    let closure = s.spawn_blocking(move || {
        let _mark = mark;
        polled_ref.store(true, SeqCst);
    });
    // Both were dropped before `spawn` returned, never run.
    assert_eq!(drops.load(SeqCst), 2);
    assert!(!polled.load(SeqCst));
    for handle in [task, closure] {
        let err = rt.block_on(handle).unwrap_err();
        assert_eq!(err.reason(), &CancelReason::ScopeEnded);
    }
    // A nested scope opened through it panics before its body runs.
    let nested = s.scope(|inner| async move {
        inner.spawn(async move { polled_ref.store(true, SeqCst) });
    });
    let message = expect_panic(|| rt.block_on(nested));
    assert!(message.contains("opened outside it"), "{message}");
    assert!(!polled.load(SeqCst));
    drop(s);
    assert_clean(&rt);
}

#[test]
fn a_handle_kept_where_the_data_lives_drops_its_output_within_its_borrows() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let output_drops = AtomicUsize::new(0);
    let polled = AtomicBool::new(false);
    // Scope handles kept where the call's data lives, so borrowed for
    // as long as the data: the root's, and a nested scope's that ended
    // in its first poll, before it was ever in the tree.
    let kept: OnceLock<BorrowScope<'_>> = OnceLock::new();
    let nested: Mutex<Option<BorrowScope<'_>>> = Mutex::new(None);
    let (outputs, polled_ref) = (&output_drops, &polled);
    let (kept_ref, nested_ref) = (&kept, &nested);
    // The body returns a join handle, on purpose.
    #[allow(clippy::async_yields_async)]
    let out = rt.scoped(|s| async move {
        s.scope(|inner| async move {
            *nested_ref.lock().unwrap() = Some(inner);
        })
        .await
        .unwrap();
        // The nested scope has ended: it refuses the task, dropping it
        // unpolled.
        let stray = nested_ref.lock().unwrap().take().unwrap();
        let refused = stray.spawn(async move { polled_ref.store(true, SeqCst) });
        assert_eq!(
            refused.await.unwrap_err().reason(),
            &CancelReason::ScopeEnded
        );
        // A join handle spawned through the kept root handle may leave
        // the call; it holds the finished task's output until dropped.
        let _ = kept_ref.set(s.clone());
        let root = kept_ref.get().unwrap();
        root.spawn(async move { Output(outputs) })
    });
    assert!(!polled.load(SeqCst), "a refused task was polled");
    let handle = out.unwrap();
    assert!(handle.is_finished());
    assert_eq!(output_drops.load(SeqCst), 0);
    // The output is dropped by its handle, while what it borrows lives.
    drop(handle);
    assert_eq!(output_drops.load(SeqCst), 1);
    assert_clean(&rt);
}

#[test]
fn a_nested_scope_opened_outside_its_lender_panics() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let ran = AtomicBool::new(false);
    let ran_ref = &ran;
    let message = expect_panic(|| {
        rt.scoped(|s| async move {
            let (a, b) = (s.clone(), s.clone());
            a.scope(|inner_a| async move {
                let stray = inner_a.scope(|_| async { ran_ref.store(true, SeqCst) });
                // Awaited in a scope of `b`'s, beside `inner_a`.
                b.spawn(b.scope(|_| stray)).await
            })
            .await
        })
    });
    assert!(message.contains("opened outside it"), "{message}");
    assert!(!ran.load(SeqCst));
    assert_clean(&rt);
}

#[test]
fn nested_scopes_borrow_too() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, WORKERS);
    let numbers: Vec<u64> = (1..=10).collect();
    let shield_ran = AtomicBool::new(false);
    let started = Event::new();
    let (numbers_ref, shield_ran_ref, started_ref) = (&numbers, &shield_ran, &started);
    let out = rt.scoped(|s| async move {
        // The nested body may borrow the enclosing body's locals;
        // only its tasks need the call's data.
        let mut sums = Vec::new();
        let sums_ref = &mut sums;
        s.scope(|inner| async move {
            let halves = [
                inner.spawn(async move { numbers_ref[..5].iter().sum::<u64>() }),
                inner.spawn(async move { numbers_ref[5..].iter().sum::<u64>() }),
            ];
            for half in halves {
                sums_ref.push(half.await.unwrap());
            }
        })
        .named("halves")
        .await
        .unwrap();
        assert_eq!(sums, [15, 40]);

        let supervised = s
            .supervisor_scope(|inner| async move {
                let bad = inner.spawn(async move {
                    assert!(numbers_ref.is_empty(), "the caller's data is not empty");
                });
                let good = inner.spawn(async move { numbers_ref.len() });
                (bad.await.is_err(), good.await.unwrap())
            })
            .await;
        assert_eq!(supervised, Ok((true, 10)));

        let deadline = s
            .move_on_after(secs(10), |inner| async move {
                for n in numbers_ref {
                    inner.spawn(async move { sleep(secs(*n * 2)).await });
                }
            })
            .await;
        assert!(matches!(
            deadline.unwrap_err().reason(),
            CancelReason::Deadline { .. }
        ));

        let failed = s
            .try_scope(|t| async move {
                for n in numbers_ref {
                    t.spawn(async move {
                        if *n == 7 {
                            Err(*n)
                        } else {
                            Ok(())
                        }
                    });
                }
                Ok(())
            })
            .await;
        assert_eq!(failed, Ok(Err(7)));

        // A linked scope's cancel reaches this one; the shield, which a
        // task of this one awaits, finishes anyway, and the call waits.
        let shield = s.shielded_scope(move |_| async move {
            started_ref.set();
            sleep(secs(5)).await;
            shield_ran_ref.store(true, SeqCst);
        });
        s.spawn(shield);
        started_ref.wait().await;
        let linked = s.linked_scope(|inner| async move { inner.cancel() }).await;
        assert!(linked.is_ok());
        std::future::pending::<()>().await
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::LinkedChild);
    assert!(
        shield_ran.load(SeqCst),
        "the call returned before the shield"
    );
    drop(numbers);
    assert_clean(&rt);
}

const SCOPED_ON_A_WORKER: &str = "`scoped` called from a runtime worker thread";

#[test]
fn scoped_on_a_worker_panics() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, WORKERS));
    let other = Arc::new(runtime(Clock::Real, 1));
    let (inner, other_inner) = (rt.clone(), other.clone());
    let out = rt.block_on(scope(|s| async move {
        let own = s.spawn(async move {
            catch_unwind(AssertUnwindSafe(|| inner.scoped(|_| async {})))
                .map_err(|p| panic_message(&*p))
        });
        let another = s.spawn(async move {
            catch_unwind(AssertUnwindSafe(|| other_inner.scoped(|_| async {})))
                .map_err(|p| panic_message(&*p))
        });
        (own.await.unwrap(), another.await.unwrap())
    }));
    let (own, another) = out.unwrap();
    for message in [own.unwrap_err(), another.unwrap_err()] {
        assert!(message.contains(SCOPED_ON_A_WORKER), "{message}");
    }
    wait_clean(&rt);
}

#[test]
#[cfg_attr(miri, ignore = "starts the process-wide runtime")]
fn the_default_runtime_s_scoped_panics_on_a_worker_and_runs_elsewhere() {
    let _hang = hang_guard();
    let data = vec![1u8, 2, 3];
    let data_ref = &data;
    let out = runtime::scoped(|s| async move {
        let on_worker = s.spawn(async {
            catch_unwind(|| runtime::scoped(|_| async {})).map_err(|p| panic_message(&*p))
        });
        let message = on_worker.await.unwrap().unwrap_err();
        assert!(message.contains(SCOPED_ON_A_WORKER), "{message}");
        s.spawn(async move { data_ref.len() }).await.unwrap()
    });
    assert_eq!(out, Ok(3));
}

#[test]
fn scoped_inside_a_blocking_closure_opens_under_its_scope() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, WORKERS));
    let inner = rt.clone();
    let seen = Arc::new(Mutex::new(None));
    let seen_inside = seen.clone();
    let out = rt.block_on(scope(|s| async move {
        let outer = s.clone();
        s.spawn_blocking(move || {
            let data = vec![5u64; 100];
            let data_ref = &data;
            let rt = &inner;
            let out = rt.scoped(|s| async move {
                let tree = rt.scope_tree();
                let mine = tree.scopes().iter().find(|snap| snap.id() == s.id());
                let depth = mine.expect("in the tree").depth();
                // The closure's scope's cancel reaches this one.
                outer.cancel();
                let sum = s.spawn(async move { data_ref.iter().sum::<u64>() });
                (depth, sum.await)
            });
            *seen_inside.lock().unwrap() = Some(out);
        })
        .await
    }));
    // The outer scope was cancelled, its body at its await.
    assert!(out.is_err());
    // The call opened under the closure's scope (depth 1), and was
    // cancelled with it: the body was cut short at its await, or its
    // task was refused.
    let inside = seen.lock().unwrap().take().expect("the closure ran");
    match inside {
        Err(cancelled) => assert_eq!(cancelled.reason(), &CancelReason::Ancestor),
        Ok((depth, sum)) => {
            assert_eq!(depth, 1);
            assert_eq!(sum.unwrap_err().reason(), &CancelReason::Ancestor);
        }
    }
    wait_clean(&rt);
}

#[test]
fn the_tree_view_and_the_timeline_show_a_borrowing_scope() {
    let _hang = hang_guard();
    let rt = Builder::new()
        .worker_threads(WORKERS)
        .record(10_000)
        .build()
        .unwrap();
    let rt_ref = &rt;
    let name = String::from("borrowed");
    let name_ref = &name;
    let (ids, rendered) = rt
        .scoped(|s| async move {
            let root = s.id();
            s.scope(|inner| async move {
                let tree = rt_ref.scope_tree();
                let task = inner.spawn(async move { name_ref.len() });
                task.await.unwrap();
                ((root, inner.id()), tree.to_string())
            })
            .named("nested")
            .await
            .unwrap()
        })
        .unwrap();
    assert!(rendered.contains("\"nested\""), "{rendered}");
    assert!(rendered.contains("tests/borrowed.rs"), "{rendered}");
    let trace = rt.take_trace();
    let opened: Vec<(u64, Option<u64>)> = trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ScopeOpened { scope, parent, .. } => Some((*scope, *parent)),
            _ => None,
        })
        .collect();
    assert!(opened.contains(&(ids.0, None)), "{opened:?}");
    assert!(opened.contains(&(ids.1, Some(ids.0))), "{opened:?}");
    assert_clean(&rt);
}

/// One round of the stress run: `tasks` borrowing tasks of three kinds
/// (complete at once, park, or, for `held` of them, hold a poll open
/// until the cancel came), handles dropped while their tasks complete
/// (half with a `TaskCancelHandle` kept past the call), and a cancel from
/// another thread once the held polls are running. Every future and
/// output is dropped before the call returns; the data is freed right
/// after, before the kept handles are.
fn stress_round(rt: &Runtime, tasks: usize, held: usize) {
    let cells: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
    let drops = Box::new(AtomicUsize::new(0));
    let outputs = Box::new(AtomicUsize::new(0));
    let in_poll = Barrier::new(held + 1);
    let cancelled = AtomicBool::new(false);
    let (cells_ref, drops_ref, outputs_ref) = (&cells, &*drops, &*outputs);
    let (in_poll, cancelled_ref) = (&in_poll, &cancelled);
    let mut kept: Vec<TaskCancelHandle> = Vec::new();
    let kept_ref = &mut kept;
    let (to_canceller, handle) = mpsc::channel::<CancelHandle>();
    let out = thread::scope(|threads| {
        threads.spawn(move || {
            let scope = handle.recv().expect("the body sends its handle");
            in_poll.wait();
            scope.cancel();
            cancelled_ref.store(true, SeqCst);
        });
        rt.scoped(|s| async move {
            to_canceller.send(s.cancel_handle()).unwrap();
            for (i, cell) in cells_ref.iter().enumerate() {
                let mark = DropMark(drops_ref);
                let task = s.spawn(async move {
                    let _mark = mark;
                    cell.fetch_add(1, SeqCst);
                    match i % 3 {
                        0 => {}
                        1 if i / 3 < held => {
                            in_poll.wait();
                            spin_until(cancelled_ref);
                            cell.fetch_add(1, SeqCst);
                            std::future::pending::<()>().await
                        }
                        _ => std::future::pending::<()>().await,
                    }
                    Output(outputs_ref)
                });
                if i % 2 == 0 {
                    kept_ref.push(task.cancel_handle());
                }
                drop(task);
            }
            std::future::pending::<()>().await
        })
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(drops.load(SeqCst), tasks, "a future outlived the call");
    let completed = cells
        .iter()
        .enumerate()
        .filter(|(i, cell)| i % 3 == 0 && cell.load(SeqCst) == 1)
        .count();
    assert_eq!(
        outputs.load(SeqCst),
        completed,
        "an output outlived the call"
    );
    let held_cells = cells
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1 && i / 3 < held);
    for (_, cell) in held_cells {
        assert_eq!(
            cell.load(SeqCst),
            2,
            "a held poll did not run on after the cancel"
        );
    }
    drop((cells, drops, outputs));
    drop(kept);
}

#[test]
fn stress_borrowing_tasks_cancelled_from_another_thread() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let (rounds, tasks) = if cfg!(miri) { (2, 12) } else { (300, 96) };
    for round in 0..rounds {
        stress_round(&rt, tasks, 1 + round % WORKERS);
    }
    wait_clean(&rt);
}

/// A borrowing try scope fails as `try_scope` does: its first error
/// cancels it, and its cleanups are told it failed.
#[test]
fn a_failing_borrowing_try_scope_tells_its_cleanups() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let told = Arc::new(Mutex::new(None));
    let slot = told.clone();
    let out = rt.scoped(|s| async move {
        s.try_scope(|t| async move {
            t.defer(move |end| *slot.lock().unwrap() = Some(format!("{end:?}")))
                .unwrap();
            t.spawn(async { Err::<(), _>("bad input") });
            std::future::pending::<Result<(), &str>>().await
        })
        .await
    });
    assert_eq!(out, Ok(Ok(Err("bad input"))));
    let end = told.lock().unwrap().clone().expect("the cleanup ran");
    assert!(end.starts_with("Failed"), "{end}");
    assert_clean(&rt);
}
