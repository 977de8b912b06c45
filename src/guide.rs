//! A guide to writing real programs: I/O, blocking work, busy tasks and
//! the budget, borrowing from the caller, `select`, channels, limiting
//! concurrency, shutdown, owning resources, collecting results, and cancel
//! safety.
//!
//! This module holds no code, only this page. Each section has an example
//! that runs as a test; the `examples/` directory has whole programs
//! (`echo_server`, `fan_out`, `pipeline`, `blocking`, `resources`,
//! `borrowed`).
//!
//! The one rule behind every section: **every task belongs to a scope,
//! and cancelling a scope drops its futures at their next `.await`**. A
//! dropped future runs no more of its code; it drops what it owns, and
//! that is all.
//!
//! # Coming from tokio
//!
//! | in tokio | here | the difference to mind |
//! | --- | --- | --- |
//! | `#[tokio::main]` | `fn main()` calling [`runtime::block_on`](crate::runtime::block_on) on a [`scope`](crate::scope) | `block_on` on a worker thread panics: inside the runtime, `.await` instead |
//! | `tokio::spawn` | [`Scope::spawn`](crate::Scope::spawn) | no detached tasks: a task lives in its scope, and the scope waits for it |
//! | `select!` | `futures_lite::future::or`, [`race_ok`](crate::race_ok), or any `select!` macro | a task's own scope's `cancelled()` never fires in it (below) |
//! | `time::timeout` | [`time::timeout`](crate::time::timeout) for one future; [`move_on_after`](crate::move_on_after) or [`Scope::cancel_after`](crate::Scope::cancel_after) for a body and its tasks | a deadline on a scope cancels everything in it, tasks included |
//! | `JoinSet` | [`JoinSet`](crate::JoinSet), filled with `spawn_in(&scope, ..)` | the scope owns the tasks: dropping the set does not stop them, and the set may outlive the scope (its finished outputs stay readable) |
//! | `CancellationToken` | as a request ("finish, flush, return"): [`Scope::request_stop`](crate::Scope::request_stop) or [`shutdown(grace)`](crate::Scope::shutdown), seen through [`stop_requested`](crate::stop_requested); as an abort: [`Scope::cancel`](crate::Scope::cancel), or a [`CancelHandle`](crate::CancelHandle) from any thread | a cancel *drops* the scope's futures at their `.await`; a token and a stop request only signal (see graceful shutdown, below) |
//! | `JoinSet` and a `Semaphore` | a scope with a [`limit`](crate::ScopeFuture::limit), and [`spawn_when_free`](crate::Scope::spawn_when_free) for back-pressure | tasks past the limit wait in the scope, unpolled (see limiting concurrency) |
//! | `spawn_blocking` | [`Scope::spawn_blocking`](crate::Scope::spawn_blocking) | the scope waits for the closure; a cancel cannot interrupt one that runs (it may poll its scope's `CancelHandle::is_cancelled`), and a queued one never starts |
//! | `signal::ctrl_c` | none built in: a signal crate (`async-signal`, `signal-hook`, `ctrlc`) whose handler calls [`CancelHandle::shutdown`](crate::CancelHandle::shutdown) (or `cancel`) | the runtime installs no signal handlers |
//!
//! ## Async closures
//!
//! A scope's body is a closure that returns a future; `|s| async move {
//! .. }` moves what it uses into the future, so a body that fills
//! something declared outside it borrows it first (`let set = &mut set;`,
//! as in [Collecting results](#collecting-results)). On Rust 1.85 or
//! newer, an async closure borrows what it uses, as any closure does (the
//! example is skipped where the doc examples are tested on the minimum
//! Rust, 1.75, which cannot parse `async |s|`):
//!
#![cfg_attr(cancel_scope_msrv, doc = "```ignore")]
#![cfg_attr(not(cancel_scope_msrv), doc = "```")]
//! use cancel_scope::{move_on_after, runtime::Builder, time::sleep, JoinSet};
//! use std::time::Duration;
//!
//! let rt = Builder::new().start_paused(true).build().unwrap();
//! let mut set = JoinSet::new();
//! let mut kept = Vec::new();
//! let _ = rt.block_on(move_on_after(Duration::from_millis(25), async |s| {
//!     for ms in [30u64, 10, 20, 40] {
//!         set.spawn_in(&s, async move {
//!             sleep(Duration::from_millis(ms)).await;
//!             ms
//!         });
//!     }
//!     while let Some(Ok(ms)) = set.join_next().await {
//!         kept.push(ms);
//!     }
//! }));
//! assert_eq!(kept, [10, 20]);
//! ```
//!
//! # Doing I/O
//!
//! The runtime has no reactor of its own: it drives
//! [async-io](https://docs.rs/async-io)'s. Use async-io's types
//! (`Async<TcpListener>`, `Async<TcpStream>`, `Async<UdpSocket>`, Unix
//! sockets, and `Async::new` for any other file descriptor) and the crates
//! built on them such as `async-net`. Reading and writing go through
//! `futures-lite`'s `AsyncReadExt`/`AsyncWriteExt` (the `futures-io`
//! traits). Crates that need tokio's reactor do not work here.
//!
//! With the runtime's `async-io` feature (on by default), a worker with
//! nothing to run waits in async-io's reactor, and a task whose socket
//! becomes ready is woken on that worker and runs there: no other thread
//! is involved, as in tokio or smol. Without the feature (or with
//! [`Builder::drive_io`](crate::runtime::Builder)`(false)`), the same code
//! works, but async-io's own thread waits in the reactor and hands each
//! woken task to the workers, a thread switch per wake-up, which on an
//! echo server cost about a third of the round trips.
//! [`Runtime::io_driver`](crate::runtime::Runtime::io_driver), and the
//! runtime's `Debug`, say which is in use.
//!
//! ```
//! use async_io::Async;
//! use cancel_scope::{runtime, scope};
//! use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
//! use std::net::{TcpListener, TcpStream};
//!
//! let out = runtime::block_on(scope(|s| async move {
//!     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
//!     let addr = listener.get_ref().local_addr()?;
//!     // The server: echo what one connection sends, until it closes.
//!     s.spawn(async move {
//!         let (mut stream, _) = listener.accept().await?;
//!         let mut buf = [0; 64];
//!         loop {
//!             let n = stream.read(&mut buf).await?;
//!             if n == 0 {
//!                 return Ok::<(), std::io::Error>(());
//!             }
//!             stream.write_all(&buf[..n]).await?;
//!         }
//!     });
//!     let mut client = Async::<TcpStream>::connect(addr).await?;
//!     client.write_all(b"ping").await?;
//!     let mut echo = [0; 4];
//!     client.read_exact(&mut echo).await?;
//!     Ok::<_, std::io::Error>(echo)
//! }));
//! assert_eq!(&out.unwrap().unwrap(), b"ping");
//! ```
//!
//! Cancelling the scope drops the futures waiting on the sockets, and with
//! them the sockets: the peer sees the connection close. For timeouts, use
//! [`time::timeout`](crate::time::timeout) and scope deadlines rather than
//! async-io's `Timer`: they follow the runtime's clock, paused in tests,
//! and cost a lock and a map insert where an async-io timer also wakes
//! the thread waiting in the reactor. (The two coexist: async-io's timers
//! still fire, on real time, in whichever thread waits in the reactor.)
//! On a paused clock, I/O that a task of the runtime made ready before
//! the runtime went idle is delivered before the clock jumps, so a test
//! over a loopback socket with timeouts is exact; a peer outside the
//! runtime does not hold the clock back.
//!
//! async-io's reactor is one per process. Two runtimes in one process
//! (or a runtime and a thread in `async_io::block_on`) take turns at it,
//! and a task of one woken by a worker of the other is handed over
//! through its own runtime's queue. Give the reactor to the runtime that
//! does the I/O: build the others with `drive_io(false)`.
//!
//! Files: async-io does not do files; read them in a blocking closure
//! (next section).
//!
//! # Blocking and CPU-heavy work
//!
//! A task must not block: it holds a worker thread meanwhile, and with it
//! every task queued behind it. Blocking calls (a file, a blocking
//! library, a DNS lookup) and long computations go to
//! [`Scope::spawn_blocking`](crate::Scope::spawn_blocking), which runs a
//! closure on the runtime's pool of blocking threads and returns a
//! [`JoinHandle`](crate::JoinHandle):
//!
//! ```
//! use cancel_scope::{runtime, scope};
//!
//! let path = std::env::temp_dir().join(format!("guide-{}.txt", std::process::id()));
//! let out = runtime::block_on(scope(|s| async move {
//!     let written = path.clone();
//!     s.spawn_blocking(move || std::fs::write(written, "hello from a blocking thread"))
//!         .await
//!         .unwrap()?;
//!     let text = s.spawn_blocking(move || std::fs::read_to_string(path)).await.unwrap()?;
//!     Ok::<_, std::io::Error>(text)
//! }));
//! assert_eq!(out.unwrap().unwrap(), "hello from a blocking thread");
//! ```
//!
//! The closure is a task of the scope: the scope waits for it. A thread
//! cannot be stopped from outside, so cancellation reaches a closure in
//! two ways: one that has not started never runs, and one that runs is
//! waited for; to return early, it checks a
//! [`CancelHandle`](crate::CancelHandle) it captured, between chunks of
//! work. Its handle says `Err(Cancelled)` once the scope was cancelled.
//!
//! ```
//! use cancel_scope::{move_on_after, runtime};
//! use std::time::Duration;
//!
//! let out = runtime::block_on(move_on_after(Duration::from_millis(10), |s| async move {
//!     let cancel = s.cancel_handle();
//!     s.spawn_blocking(move || {
//!         let mut chunks = 0u64;
//!         while !cancel.is_cancelled() {
//!             chunks += 1; // a chunk of real work, then look again
//!         }
//!         chunks
//!     })
//!     .await
//! }));
//! assert!(out.is_err()); // the deadline stopped it; the scope waited
//! ```
//!
//! `blocking::unblock` (from the `blocking` crate, which `async-fs` uses)
//! also runs closures on threads, but outside any scope: cancelling the
//! scope drops the future awaiting the closure, and the closure runs on,
//! unbounded by the scope that started it. Prefer `spawn_blocking`.
//!
//! Computation in short steps can stay in a task if it awaits between
//! steps ([`task::consume_budget`](crate::task::consume_budget), next
//! section), which is also where a cancel can stop it. The example
//! `blocking` shows both a pool at work and the worker staying free.
//!
//! # Busy tasks and the budget
//!
//! A task gives its worker back only when a poll returns `Pending`, and a
//! cancel can drop it only there. A loop whose `.await`s are always ready
//! (an [`Event`](crate::sync::Event) already set, a
//! [`JoinHandle`](crate::JoinHandle) whose task has finished, a
//! [`JoinSet`](crate::JoinSet) with outputs waiting, `sleep(0)`) would
//! never return `Pending`: it would hold its worker, and run on past any
//! cancel or deadline. So the runtime gives every poll of a task a
//! **budget**:
//!
//! - The runtime's own futures ([`sleep`](crate::time::sleep),
//!   [`timeout`](crate::time::timeout), `Event::wait`, `JoinHandle`,
//!   [`JoinSet::join_next`](crate::JoinSet::join_next),
//!   [`consume_budget`](crate::task::consume_budget)) spend a unit each
//!   time they are ready; after 128 they make the task yield: it goes
//!   behind the other tasks and comes back with a full budget.
//! - In a task or scope body that has been cancelled (its scope, an
//!   enclosing one, or the task alone through its handle), they never
//!   complete: the task is dropped at its next `.await` on them, at once.
//!   A shield's tasks are not cancelled, so they go on.
//!   [`Scope::cancelled`](crate::Scope::cancelled) is the exception: it is
//!   ready once its scope is cancelled, so that `or(work, s.cancelled())`
//!   still ends.
//! - A worker kept busy still looks at the timers between tasks, at least
//!   every 20 µs of polling (or after every poll, when polls are longer),
//!   so a deadline does not wait for the work to run out.
//!
//! [`yield_now`](crate::task::yield_now) spends nothing: it always yields.
//! Two tools change how a task uses its budget:
//!
//! - **`task::consume_budget().await`**, in a loop of your own that
//!   awaits nothing of the runtime's: it spends a unit, yields when the
//!   budget is spent, and is where a cancel stops the loop. Cheaper than
//!   `yield_now`, which yields on every call.
//! - **[`task::unconstrained(fut)`](crate::task::unconstrained)**, to opt
//!   out: the futures inside never make it yield for being ready (a cancel
//!   still stops them). For a short burst that must not be split across
//!   polls; everything else on its worker waits meanwhile.
//!
//! What no budget can fix, because the runtime never sees it:
//!
//! - **Another crate's future that is always ready**: a channel from
//!   another crate with items queued (`async-channel` here), a stream
//!   that always has the next item. Its `.await`s spend nothing of ours,
//!   so a loop on it never yields and no cancel reaches it: put a
//!   `consume_budget().await` in the loop.
//! - **A long synchronous stretch** between two `.await`s: a
//!   computation, a blocking call. No `.await`, no yield, no cancel; split
//!   it with `consume_budget`, or move it to `spawn_blocking` (previous
//!   section).
//!
//! ```
//! use cancel_scope::{move_on_after, runtime, task};
//! use std::time::Duration;
//!
//! let (tx, rx) = async_channel::unbounded::<u64>();
//! let out = runtime::block_on(move_on_after(Duration::from_millis(10), |_| async move {
//!     let mut echoed = 0;
//!     loop {
//!         // Both always ready, and not the runtime's: they spend no budget.
//!         tx.send(echoed).await.unwrap();
//!         echoed = rx.recv().await.unwrap() + 1;
//!         task::consume_budget().await; // without it, the loop never ends
//!     }
//! }));
//! assert!(out.is_err()); // the deadline landed
//! ```
//!
//! # Borrowing from the caller
//!
//! A task spawned with [`Scope::spawn`](crate::Scope::spawn) is
//! `'static`: a scope future can be forgotten (`mem::forget`) while its
//! tasks run on, so they may not borrow the stack; data goes in an `Arc`,
//! or is moved in. When the data belongs to a caller that can wait (a
//! `main`, a test, a request handler on a thread of its own, a blocking
//! closure), [`runtime::scoped`](crate::runtime::scoped) lends it
//! instead: a *blocking* call, as `std::thread::scope` is for threads,
//! whose tasks may borrow anything that outlives the call, because the
//! call returns only once every one of them has ended and been dropped.
//!
//! ```
//! use cancel_scope::runtime;
//!
//! let lines = vec!["one two".to_string(), "three".into(), "four five six".into()];
//! let mut counts = vec![0; lines.len()];
//! // References go in; `async move` moves what it names.
//! let (lines_ref, counts_ref) = (&lines, &mut counts);
//! let total = runtime::scoped(|s| async move {
//!     for (line, count) in lines_ref.iter().zip(counts_ref.iter_mut()) {
//!         s.spawn(async move { *count = line.split(' ').count() });
//!     }
//!     s.spawn(async move { lines_ref.iter().map(String::len).sum::<usize>() }).await
//! });
//! assert_eq!(total, Ok(Ok(25)));
//! assert_eq!(counts, [2, 1, 3]); // written by the tasks, in place
//! ```
//!
//! What to know:
//!
//! - **It blocks.** The calling thread parks until the scope ends, while
//!   the body (a task, so `Send`) and its tasks run on the workers. Call
//!   it from a plain thread or a [`spawn_blocking`](crate::Scope::spawn_blocking)
//!   closure, never from async code: on this runtime's workers it panics,
//!   on another runtime's worker it blocks that worker. Async code opens
//!   a [`scope`](crate::scope()) and shares with `Arc`.
//! - **Only what outlives the call.** A task may not borrow the body's
//!   own locals, nor a task's (the compiler says so): the body and tasks
//!   can be cancelled, which drops them while others run on.
//! - **Everything else is a scope.** The handle derefs to a
//!   [`Scope`](crate::Scope): `cancel`, `cancel_after`, `cancelled`,
//!   scope-locals, the tree view, the timeline. Nested scopes that lend
//!   too are methods of the handle ([`scope`](crate::BorrowScope::scope),
//!   [`move_on_after`](crate::BorrowScope::move_on_after),
//!   [`try_scope`](crate::BorrowScope::try_scope), ...): their bodies may
//!   borrow the enclosing body's locals, their tasks only the caller's
//!   data.
//! - **Handles stay inside.** A [`BorrowJoinHandle`](crate::BorrowJoinHandle)
//!   borrows the scope handle it came from, so it is awaited in the body
//!   or task that spawned it; collect many with a
//!   [`BorrowJoinSet`](crate::BorrowJoinSet), or let tasks write their
//!   results into the caller's data, where they survive a deadline:
//!
//! ```
//! use cancel_scope::{runtime::Builder, time::sleep};
//! use std::sync::Mutex;
//! use std::time::Duration;
//!
//! let rt = Builder::new().start_paused(true).build().unwrap();
//! let latencies = [30u64, 5, 50, 10];
//! let answers = Mutex::new(Vec::new());
//! let (latencies_ref, answers_ref) = (&latencies, &answers);
//! let out = rt.scoped(|s| async move {
//!     s.move_on_after(Duration::from_millis(20), |inner| async move {
//!         for ms in latencies_ref {
//!             inner.spawn(async move {
//!                 sleep(Duration::from_millis(*ms)).await; // a slow backend
//!                 answers_ref.lock().unwrap().push(*ms);
//!             });
//!         }
//!     })
//!     .await
//!     .is_err()
//! });
//! assert_eq!(out, Ok(true)); // the deadline passed
//! assert_eq!(*answers.lock().unwrap(), [5, 10]); // what came in time
//! ```
//!
//! The example `borrowed` verifies blocks borrowed from `main` under a
//! deadline and a first-error policy.
//!
//! # `select`, `future::or` and `cancelled()`
//!
//! Racing two futures in one task (`futures_lite::future::or`, or a
//! `select!` macro) works as anywhere: the first to finish wins, the other
//! is dropped. A scope's [`cancelled()`](crate::Scope::cancelled) future
//! can be one of them, but **not the task's own scope's**: a cancel drops
//! the tasks of the scope first, so a task parked on its own scope's
//! `cancelled()` never sees it fire (only a task that happens to be
//! running at that moment may, for the rest of that poll). This is the
//! first thing a tokio user writes (tokio's `CancellationToken` only
//! signals; it drops nothing):
//!
//! ```
//! use cancel_scope::{runtime::Builder, scope, time::sleep};
//! use futures_lite::future;
//! use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let fired = Arc::new(AtomicBool::new(false));
//! let seen = fired.clone();
//! let rt = Builder::new().start_paused(true).build().unwrap();
//! let out = rt.block_on(scope(|s| async move {
//!     let me = s.clone();
//!     s.spawn(async move {
//!         let work = sleep(Duration::from_secs(60));
//!         future::or(work, async {
//!             me.cancelled().await; // never fires: the cancel drops this task
//!             seen.store(true, SeqCst);
//!         })
//!         .await
//!     });
//!     // On a paused clock, this sleep ends once the task is parked.
//!     sleep(Duration::from_millis(1)).await;
//!     s.cancel();
//! }));
//! assert!(out.is_err());
//! assert!(!fired.load(SeqCst));
//! ```
//!
//! What to write instead depends on what the `cancelled()` arm was for:
//!
//! - **Nothing but stopping.** Leave it out: the cancel stops the task at
//!   its `.await`. Cleanup that needs no `.await` goes in a `Drop` guard,
//!   which runs when the future is dropped.
//! - **Cleanup that must `.await`** (say goodbye on a socket, flush a
//!   buffer). Run the work in a [`shielded_scope`](crate::shielded_scope)
//!   and race it against the *enclosing* scope's `cancelled()`: the cancel
//!   does not reach into the shield, so its task sees the arm fire, cleans
//!   up, and the enclosing scope waits for it. Bound the cleanup with the
//!   shield's own deadline.
//! - **A request to stop, not a cancel** (finish the current item, then
//!   stop). Use a signal that is not a cancel: an
//!   [`Event`](crate::sync::Event), or a channel closing; race against
//!   that (see graceful shutdown, below).
//!
//! ```
//! use cancel_scope::{runtime, scope, shielded_scope, sync::Event};
//! use futures_lite::future;
//! use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let cleaned_up = Arc::new(AtomicBool::new(false));
//! let done = cleaned_up.clone();
//! let started = Event::new();
//! let out = runtime::block_on(scope(|s| async move {
//!     let outer = s.clone();
//!     let ready = started.clone();
//!     s.spawn(shielded_scope(move |shield| async move {
//!         shield.cancel_after(Duration::from_secs(5)); // bounds the cleanup too
//!         ready.set();
//!         let work = async { std::future::pending::<()>().await; false };
//!         let stopped = future::or(work, async { outer.cancelled().await; true }).await;
//!         if stopped {
//!             // may .await here: say goodbye, flush, ...
//!             done.store(true, SeqCst);
//!         }
//!     }));
//!     started.wait().await;
//!     s.cancel();
//! }));
//! assert!(out.is_err());
//! assert!(cleaned_up.load(SeqCst), "the scope waited for the cleanup");
//! ```
//!
//! # Pipelines over channels
//!
//! Give each stage a task that owns the *sending* end of the channel
//! after it (`async-channel`, or any runtime-agnostic channel). Then one
//! cancel stops the pipeline in order, with no stop message: cancelling
//! the producer's scope drops the producer's `Sender`, which closes the
//! channel; the next stage's `recv` returns the items still buffered, then
//! an error, so that stage ends and drops its own `Sender`; and so on down
//! the line. Every item that was sent is consumed.
//!
//! ```
//! use cancel_scope::{runtime, scope, sync::Event};
//!
//! let out = runtime::block_on(scope(|s| async move {
//!     let (raw_tx, raw_rx) = async_channel::bounded::<u64>(4);
//!     let (out_tx, out_rx) = async_channel::bounded::<u64>(4);
//!     s.spawn(async move {
//!         while let Ok(x) = raw_rx.recv().await {
//!             let _ = out_tx.send(x * 10).await;
//!         } // input closed and drained: `out_tx` drops, closing the output
//!     });
//!     let consumer = s.spawn(async move {
//!         let mut got = Vec::new();
//!         while let Ok(y) = out_rx.recv().await {
//!             got.push(y);
//!         }
//!         got
//!     });
//!     let enough = Event::new();
//!     let sent_three = enough.clone();
//!     // The producer in a scope of its own, cancelled alone.
//!     let _ = scope(|p| async move {
//!         p.spawn(async move {
//!             for i in 0.. {
//!                 raw_tx.send(i).await.unwrap();
//!                 if i == 2 {
//!                     sent_three.set();
//!                 }
//!                 if i >= 2 {
//!                     std::future::pending::<()>().await; // stands for a slow source
//!                 }
//!             }
//!         });
//!         enough.wait().await;
//!         p.cancel(); // drops the producer, and its sender
//!     })
//!     .await;
//!     consumer.await.unwrap()
//! }));
//! assert_eq!(out, Ok(vec![0, 10, 20])); // everything sent came through
//! ```
//!
//! A stage that is cancelled while it waits in `send` on a full channel
//! drops the item it was sending (see cancel safety, below); count an item
//! as sent once `send` has returned. The example `pipeline` has a
//! three-stage pipeline, with the timeline printed.
//!
//! # Limiting concurrency
//!
//! A crawler with at most 16 fetches in flight, a server with at most 1,000
//! connections: give the scope a limit,
//! [`limit(n)`](crate::ScopeFuture::limit). At most `n` of its tasks have
//! started and not ended; a task spawned past the limit waits in the
//! scope, in spawn order, never polled, until a running one ends. No
//! semaphore, no window written by hand, and the scope still waits for
//! every task and cancels them as one.
//!
//! ```
//! use cancel_scope::{runtime::Builder, scope, time::sleep};
//! use std::time::Duration;
//!
//! let rt = Builder::new().start_paused(true).build().unwrap();
//! let pages = rt.block_on(scope(|s| async move {
//!     let fetches: Vec<_> = (0..100u64)
//!         .map(|page| {
//!             s.spawn(async move {
//!                 sleep(Duration::from_millis(10)).await; // the fetch
//!                 page
//!             })
//!         })
//!         .collect();
//!     let mut got = 0;
//!     for fetch in fetches {
//!         got += fetch.await.is_ok() as u64;
//!     }
//!     got
//! }).limit(16));
//! assert_eq!(pages, Ok(100));
//! ```
//!
//! What to know:
//!
//! - **Queued tasks hold their futures.** `spawn` never waits: it queues.
//!   A loop that produces work faster than the scope runs it (an accept
//!   loop, a reader of a large file) must wait instead, so that it holds
//!   at most one piece of work: [`spawn_when_free`](crate::Scope::spawn_when_free)
//!   waits for a slot and spawns into it, and [`slot`](crate::Scope::slot)
//!   waits for a slot before the work is even taken (accept only what you
//!   can serve; the rest waits in the operating system's backlog). Both
//!   are cancel safe.
//! - **Shedding load:** [`try_spawn`](crate::Scope::try_spawn) spawns only
//!   if a slot is free, else hands the future back
//!   ([`TrySpawnError::Full`](crate::TrySpawnError::Full)): answer "busy"
//!   instead of queueing.
//! - **Order:** a freed slot goes to the queued tasks first, in spawn
//!   order, then to the `slot()` and `spawn_when_free` waiters, in the
//!   order they came: what the scope accepted finishes before new work.
//! - **What counts:** every task of the scope, `spawn_blocking` closures
//!   included; not nested scopes (they run inside a task or the body,
//!   and have a limit of their own).
//! - **Cancelling** the scope drops its queued tasks unpolled, with the
//!   others; cancelling one queued task (its `JoinHandle`) takes it out
//!   of the queue. The tree view shows each limited scope's running and
//!   queued tasks.
//! - **Do not await a queued task from a running one of the same scope:**
//!   with every slot held by such waiters, nothing ever frees one (a
//!   deadlock, which the scope's cancel or deadline still ends). Await
//!   the tasks from the body, as above.
//!
//! # Graceful shutdown
//!
//! Ask, wait a grace period, then cancel:
//! [`shutdown(grace)`](crate::Scope::shutdown) (on a `Scope` or a
//! [`CancelHandle`](crate::CancelHandle), from anywhere, the scope's own
//! body included) requests a stop of the scope and every scope in it, and
//! cancels what is left once `grace` has passed.
//!
//! - **The request.** A stop request cancels nothing. Every task below
//!   sees it, without holding the `Scope`: [`stop_requested`](crate::stop_requested)
//!   resolves, [`is_stop_requested`](crate::is_stop_requested) says so.
//!   The accept loop stops accepting and drops its listener; a connection
//!   finishes the reply it is writing, flushes, says goodbye and returns,
//!   with its result. Scopes opened later are born with the request; a
//!   request is never withdrawn, and it does not climb to the parent
//!   (not even through a link). [`request_stop`](crate::Scope::request_stop)
//!   is the request alone.
//! - **The grace.** The scope ends as soon as everything in it has ended,
//!   with `Ok` if nothing had to be cancelled.
//! - **The hard cancel.** When the grace runs out, what is left is
//!   cancelled, with [`CancelReason::GraceExpired`](crate::CancelReason::GraceExpired),
//!   and the scope's `Err` names the scopes still running then, by name
//!   and location ([`Cancelled::still_running`](crate::Cancelled::still_running)):
//!   the requests that ignored the stop.
//! - **Shields.** A [`shielded_scope`](crate::shielded_scope) stops the
//!   request as it stops a cancel: cleanup in a shield runs on through the
//!   whole grace, unasked, and the hard cancel does not reach it either.
//!
//! ```
//! use cancel_scope::{runtime::Builder, scope, stop_requested, time::sleep};
//! use futures_lite::future;
//! use std::time::Duration;
//!
//! let rt = Builder::new().start_paused(true).build().unwrap();
//! let out = rt.block_on(scope(|s| async move {
//!     // Stands for a listener: each item, a connection that lasts so many ms.
//!     let (incoming_tx, incoming) = async_channel::unbounded::<u64>();
//!     for ms in [10, 50, 60_000] {
//!         incoming_tx.send(ms).await.unwrap();
//!     }
//!     s.spawn(scope(|connections| async move {
//!         loop {
//!             let accept = async { incoming.recv().await.ok() };
//!             let stop = async { stop_requested().await; None };
//!             let Some(ms) = future::or(stop, accept).await else { break };
//!             connections.spawn(sleep(Duration::from_millis(ms)));
//!         }
//!         drop(incoming); // 1. stopped accepting
//!     }).named("connections"));
//!     sleep(Duration::from_millis(100)).await;
//!     s.shutdown(Duration::from_secs(1)); // Ctrl-C; 2. the grace period
//! }).named("server"));
//! // 3. the connection that would have lasted a minute was cut after 1s.
//! let err = out.unwrap_err();
//! let names: Vec<_> = err.still_running().unwrap().scopes().iter().map(|s| s.name()).collect();
//! assert_eq!(names, [Some("server"), Some("connections")]);
//! ```
//!
//! The example `echo_server` does this over TCP, on Ctrl-C, with its
//! connections limited, and a scope per connection with an idle deadline.
//!
//! **Coming from `CancellationToken`.** A tokio program often uses a
//! `CancellationToken` as a *request*: its tasks see `cancelled()`
//! resolve, finish what they are doing, flush and return their results.
//! The faithful port of `token.cancel()` is
//! [`request_stop`](crate::Scope::request_stop) (or `shutdown(grace)`),
//! and of `token.cancelled().await` is
//! [`stop_requested().await`](crate::stop_requested): nothing is dropped.
//! This runtime's [`cancel()`](crate::Scope::cancel) is `JoinHandle::abort`
//! for a whole subtree: the tasks' futures are dropped at their next
//! `.await`, and their cleanup and results with them. A literal port of
//! `token.cancel()` to `cancel()` silently loses both. Port
//! `abort()` (and the hard half of "graceful, then abort after a timeout")
//! to `cancel()`.
//!
//! **Ending the runtime.** Dropping a [`Runtime`](crate::runtime::Runtime)
//! cancels what is left and waits, with no bound, for blocking closures
//! still running. At the end of `main`, when a closure may be stuck (a
//! lookup that never answers), shut down with a bound instead, and print
//! what was left running:
//!
//! ```
//! use cancel_scope::{runtime::Runtime, scope};
//! use std::time::Duration;
//!
//! let rt = Runtime::new();
//! let _ = rt.block_on(scope(|s| async move { s.spawn_blocking(|| 1 + 1).await }));
//! let report = rt.shutdown_timeout(Duration::from_secs(5));
//! if !report.is_complete() {
//!     eprintln!("{report}"); // each straggler with its scope's name and location
//! }
//! ```
//!
//! [`Runtime::shutdown_graceful`](crate::runtime::Runtime::shutdown_graceful)
//! asks first: a stop request to every root, the grace, then this bounded
//! shutdown; its report also names the scopes the grace left running.
//!
//! The process-wide runtime behind
//! [`runtime::block_on`](crate::runtime::block_on) is never shut down: a
//! closure still running on it when `main` returns ends with the process.
//!
//! # Owning resources
//!
//! A scope owns more than its tasks. Four things bind resources and
//! background work to a scope's life, so that nothing outlives it and
//! nothing is released under work that still uses it.
//!
//! **Cleanups: [`Scope::defer`](crate::Scope::defer).** A cleanup
//! registered on a scope runs once the scope's body, every task, every
//! nested scope and every daemon have ended, and before the scope future
//! completes. The rules:
//!
//! - **Order:** newest first, one at a time (a cleanup and everything it
//!   started end before the next begins): register a resource's cleanup
//!   right after acquiring it, and what depends on it is released first.
//! - **When:** after the last piece of work, however the scope ends: it
//!   completed, was cancelled, failed (`try_scope`) or panicked. A task
//!   may still register cleanups while the body is done and tasks run;
//!   once the cleanups have begun the scope refuses tasks and cleanups
//!   ([`DeferRefused`](crate::DeferRefused)).
//! - **What a cleanup sees:** a [`ScopeEnd`](crate::ScopeEnd) saying how
//!   the scope ended, which agrees with the scope's result
//!   (`Completed { cancel }` is `Ok`, with the cancel that interrupted
//!   nothing, if one came). An async cleanup
//!   ([`defer_async`](crate::Scope::defer_async)) also gets a scope of its
//!   own to spawn into, and an optional grace period
//!   ([`defer_async_within`](crate::Scope::defer_async_within)) after
//!   which it is cut.
//! - **Shielded:** a cancel of the scope or its ancestors does not reach
//!   its cleanups (a shutdown does: the cleanups not started are still
//!   called, a `defer` closure to its end, a `defer_async` one's future
//!   dropped unpolled).
//! - **Panics:** a cleanup's panic is kept, the others still run, and the
//!   scope resumes it at its end; a panic of the body or a task came
//!   first, and wins.
//! - **A dropped scope future:** the scope is cancelled; its cleanups run
//!   on the workers once its last task ended, and its parent waits for
//!   them.
//!
//! This is what async `Drop` would be: Rust cannot await in `Drop`, and a
//! cancelled future is dropped where it stands. `defer_async` is the
//! asynchronous release of what the scope acquired (close a connection
//! politely, flush a log, delete a directory through `spawn_blocking`),
//! run when the scope is done with it, whichever way it ends; a plain
//! `Drop` still runs for what a dropped future held, but cannot await.
//!
//! ```
//! use cancel_scope::{move_on_after, runtime, time::sleep, ScopeEnd};
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let l = log.clone();
//! let out = runtime::block_on(move_on_after(Duration::from_millis(10), |s| async move {
//!     let (pool, file) = (l.clone(), l.clone());
//!     // Acquired first: released last.
//!     s.defer_async(move |_, end| async move {
//!         sleep(Duration::from_millis(1)).await; // a polite goodbye to the database
//!         pool.lock().unwrap().push(format!("pool closed, the scope {}", describe(&end)));
//!     })
//!     .unwrap();
//!     s.defer(move |_| file.lock().unwrap().push("temporary file removed".to_string()))
//!         .unwrap();
//!     sleep(Duration::from_secs(60)).await; // the work, cut by the deadline
//! }));
//! fn describe(end: &ScopeEnd) -> &'static str {
//!     match end {
//!         ScopeEnd::Completed { .. } => "completed",
//!         ScopeEnd::Cancelled(_) => "was cancelled",
//!         ScopeEnd::Failed => "failed",
//!         _ => "panicked",
//!     }
//! }
//! assert!(out.is_err());
//! assert_eq!(
//!     *log.lock().unwrap(),
//!     ["temporary file removed", "pool closed, the scope was cancelled"]
//! );
//! ```
//!
//! **Cancel handlers: [`Scope::on_cancel`](crate::Scope::on_cancel).**
//! Code that cannot await a cancellation (a blocking read, a callback
//! API) is stopped by a handler: a closure that runs once, on the
//! cancelling thread, with the scope's `Cancelled`, before the scope's
//! idle tasks are dropped, outside every lock of the runtime. It should
//! be short and not block. Dropping its guard unregisters it (waiting
//! for it if another thread is running it). The example `resources` shuts
//! a blocking closure's work down this way.
//!
//! **Daemons: [`Scope::spawn_daemon`](crate::Scope::spawn_daemon).** A
//! heartbeat, a watcher, a background flusher: a task the scope does not
//! wait for. Once everything else in the scope has ended, the scope stops
//! its daemons (`CancelReason::DaemonStopped`), which interrupts nothing
//! of the scope's (it ends `Ok`), then runs its cleanups. What a daemon
//! spawns into the scope, or opens, is daemon work too.
//!
//! **A readiness handshake: [`Scope::spawn_ready`](crate::Scope::spawn_ready).**
//! A server must listen before its clients start: the task sends a value
//! when it is ready, and the caller awaits it, then goes on while the task
//! serves. If the task fails first, the caller gets its output (the bind
//! error); dropping the wait before the task is ready (a startup timeout)
//! cancels the task.
//!
//! ```
//! use cancel_scope::{runtime, scope, time::sleep};
//! use std::time::Duration;
//!
//! let out = runtime::block_on(scope(|s| async move {
//!     s.spawn_daemon(async {
//!         loop {
//!             sleep(Duration::from_millis(5)).await; // a heartbeat
//!         }
//!     });
//!     let (port, server) = s
//!         .spawn_ready(|ready| async move {
//!             ready.send(8080); // bound and listening
//!             sleep(Duration::from_millis(20)).await; // serving
//!         })
//!         .await
//!         .unwrap();
//!     server.await.unwrap();
//!     port
//! }));
//! assert_eq!(out, Ok(8080)); // the heartbeat did not keep the scope open
//! ```
//!
//! # Collecting results
//!
//! - **All of them, in order:** keep the [`JoinHandle`](crate::JoinHandle)s
//!   in a `Vec` and await them one by one.
//! - **As they complete:** a [`JoinSet`](crate::JoinSet):
//!   [`join_next`](crate::JoinSet::join_next) returns the next task to
//!   complete.
//! - **All, or the first error:** [`try_scope`](crate::try_scope) cancels
//!   the rest when one fails. **The first success:**
//!   [`race_ok`](crate::race_ok).
//! - **Whatever finished by a deadline:** put the deadline on an *inner*
//!   scope and keep the results (and the `JoinSet`) *outside* it. A
//!   deadline that cancels a scope drops its body, and everything the body
//!   owns; what it borrows from outside survives.
//!
//! ```
//! use cancel_scope::{move_on_after, runtime::Builder, time::sleep, JoinSet};
//! use std::time::Duration;
//!
//! let rt = Builder::new().start_paused(true).build().unwrap();
//! let kept = rt.block_on(async {
//!     let mut set = JoinSet::new();
//!     let mut kept = Vec::new();
//!     let _ = move_on_after(Duration::from_millis(25), |s| {
//!         let (set, kept) = (&mut set, &mut kept);
//!         async move {
//!             for ms in [30u64, 10, 20, 40] {
//!                 set.spawn_in(&s, async move {
//!                     sleep(Duration::from_millis(ms)).await;
//!                     ms
//!                 });
//!             }
//!             while let Some(Ok(ms)) = set.join_next().await {
//!                 kept.push(ms);
//!             }
//!         }
//!     })
//!     .await;
//!     kept // the body was dropped at the deadline; `kept` was not
//! });
//! assert_eq!(kept, [10, 20]);
//! ```
//!
//! The example `fan_out` does this with 1,000 requests, a timeout each,
//! and results still unread in the set when the deadline passes.
//!
//! # What a scope's result says
//!
//! A scope ends in `Err(Cancelled)` when a cancel **interrupted**
//! something of it: its body at an `.await`, or a task before it finished.
//! A body that ran to its end, with no task cut short, gives `Ok(value)`,
//! even if a cancel or a deadline came while it ran: its work is done, and
//! a request handler that wrote its reply must not go on to write a
//! timeout reply too. To learn that a cancel was *asked for* all the same,
//! keep a [`CancelHandle`](crate::CancelHandle) and ask it after the end.
//!
//! Where the body finished but tasks were cut short, the result is `Err`
//! and the body's value is dropped with it. To keep what the body
//! produced, let it write to something outside the scope, which the body
//! may borrow (it is polled in place, not spawned):
//!
//! ```
//! use cancel_scope::{runtime, scope, time::sleep};
//! use std::time::Duration;
//!
//! let mut summary = None;
//! let out = runtime::block_on(scope(|s| {
//!     let summary = &mut summary;
//!     async move {
//!         s.spawn(sleep(Duration::from_secs(60))); // a straggler
//!         *summary = Some("42 rows"); // the body's real result
//!         s.cancel(); // cuts the straggler short
//!     }
//! }));
//! assert!(out.is_err()); // a task was interrupted
//! assert_eq!(summary, Some("42 rows")); // what the body produced survives
//! ```
//!
//! # Cancel safety
//!
//! A cancel drops a future where it is suspended, at an `.await`. It never
//! interrupts code between two `.await`s (that code runs on a worker to
//! its end), and never a blocking closure (which runs to its end, see
//! above). What a dropped future loses is what it held at that `.await`:
//!
//! - its locals are dropped: `Drop` guards run, locks are released,
//!   sockets closed; the code after the `.await` never runs;
//! - an operation in flight is abandoned halfway: a `read_exact` may have
//!   consumed bytes it will never return, a `write_all` may have written
//!   part of its buffer, a `send` on a full channel drops its item;
//! - an operation that completes in one step is *cancel safe*: dropping it
//!   before it completes loses nothing. A channel's `recv`, an `Event`'s
//!   `wait`, a `sleep`, [`JoinSet::join_next`](crate::JoinSet::join_next)
//!   and awaiting a `JoinHandle` are; that matters most in a `select` loop,
//!   which drops the losing future on every turn.
//!
//! ```
//! use cancel_scope::{move_on_after, runtime, time::sleep};
//! use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
//! use std::time::Duration;
//!
//! struct Guard<'a>(&'a AtomicBool);
//! impl Drop for Guard<'_> {
//!     fn drop(&mut self) {
//!         self.0.store(true, SeqCst); // runs when the future is dropped
//!     }
//! }
//!
//! let (dropped, went_on) = (AtomicBool::new(false), AtomicBool::new(false));
//! let out = runtime::block_on(move_on_after(Duration::from_millis(10), |_| async {
//!     let _guard = Guard(&dropped);
//!     sleep(Duration::from_secs(60)).await; // the deadline drops the body here
//!     went_on.store(true, SeqCst); // never runs
//! }));
//! assert!(out.is_err());
//! assert!(dropped.load(SeqCst));
//! assert!(!went_on.load(SeqCst));
//! ```
//!
//! So state that must stay consistent is not left half-updated across an
//! `.await`: update it after the operation completes, or keep the
//! operation's future alive across loop turns (pin it outside the loop)
//! instead of recreating it, or move the whole update into a
//! [`shielded_scope`](crate::shielded_scope), which a cancel of the
//! enclosing scopes does not reach.
