//! A structured-concurrency async runtime in which cancel scopes are
//! first-class.
//!
//! Every task belongs to a **scope**. A scope completes only when its body
//! and all its tasks have ended, and cancelling a scope stops all of them
//! together. A cancelled scope is not an error: it completes with
//! `Err(Cancelled)`, a value that says so.
//!
//! # A tour
//!
//! Run a future with [`runtime::block_on`], open a scope with [`scope`](scope()),
//! and spawn tasks into it:
//!
//! ```
//! use cancel_scope::{runtime, scope};
//!
//! let out = runtime::block_on(scope(|s| async move {
//!     let a = s.spawn(async { 20 });
//!     let b = s.spawn(async { 22 });
//!     a.await.unwrap() + b.await.unwrap()
//! }));
//! assert_eq!(out, Ok(42));
//! ```
//!
//! Cancel the scope, and every task in it stops; the scope itself ends
//! without a panic, with `Err(Cancelled)`:
//!
//! ```
//! use cancel_scope::{runtime, scope, time::sleep};
//! use std::time::Duration;
//!
//! let out = runtime::block_on(scope(|s| async move {
//!     for secs in 1..=4 {
//!         s.spawn(sleep(Duration::from_secs(secs)));
//!     }
//!     s.cancel(); // no task sleeps on: the block ends at once
//! }));
//! assert!(out.is_err());
//! ```
//!
//! Scopes nest. Cancelling a scope cancels the scopes inside it, never the
//! one around it, unless the inner one is a [`linked_scope`]:
//!
//! ```
//! use cancel_scope::{runtime, scope, linked_scope, sync::Event};
//!
//! let forever = Event::new();
//! let out = runtime::block_on(scope(|outer| async move {
//!     outer.spawn(async move { forever.wait().await }); // would never end
//!     outer.spawn(linked_scope(|inner| async move {
//!         inner.cancel(); // cancels `outer` too, through the link
//!     }));
//! }));
//! assert!(out.is_err());
//! ```
//!
//! A scope can carry a deadline; when it passes, the scope is cancelled
//! exactly as by `cancel()`. Cleanup that must finish anyway goes in a
//! [`shielded_scope`], which the cancellation of enclosing scopes does not
//! reach:
//!
//! ```
//! use cancel_scope::{move_on_after, runtime, shielded_scope, time::sleep};
//! use std::time::Duration;
//!
//! let out = runtime::block_on(move_on_after(Duration::from_millis(10), |s| async move {
//!     s.spawn(shielded_scope(|_| async { /* flush, say goodbye, ... */ }));
//!     sleep(Duration::from_secs(60)).await; // cut short by the deadline
//! }));
//! assert_eq!(out.unwrap_err().to_string(), "cancelled: deadline of 10ms passed");
//! ```
//!
//! Policies built on scopes: [`try_scope`] (the first error cancels the
//! rest), [`race_ok`] (the first success cancels the rest). To see what a
//! running program is waiting for, print
//! [`Runtime::scope_tree`](runtime::Runtime::scope_tree).
//!
//! Blocking work goes to [`Scope::spawn_blocking`], and a [`JoinSet`]
//! gives task outputs in the order they complete, even after a deadline
//! cancelled their scope.
//!
//! A scope owns more than its tasks: cleanups that run once its work is
//! over, however it ends ([`Scope::defer`], the async `Drop` Rust lacks),
//! handlers called when it is cancelled ([`Scope::on_cancel`]), daemons it
//! stops instead of waiting for ([`Scope::spawn_daemon`]), and tasks it
//! starts and waits for until they are ready ([`Scope::spawn_ready`]):
//!
//! ```
//! use cancel_scope::{runtime, scope};
//!
//! let out = runtime::block_on(scope(|s| async move {
//!     s.defer(|end| println!("closing the pool: {end:?}")).unwrap();
//!     let (port, server) = s
//!         .spawn_ready(|ready| async move { ready.send(8080) })
//!         .await
//!         .unwrap();
//!     server.await.unwrap();
//!     port
//! }));
//! assert_eq!(out, Ok(8080));
//! ```
//!
//! Tasks are `'static`: a scope future can be forgotten while its tasks
//! run on. A call that blocks until its tasks have ended is the
//! exception: [`runtime::scoped`] runs a scope whose tasks borrow the
//! caller's data ([`BorrowScope`]):
//!
//! ```
//! use cancel_scope::runtime;
//!
//! let mut halves = [0u64; 2];
//! let (numbers, out) = (&[1u64, 2, 3, 4, 5, 6], &mut halves);
//! let sums = runtime::scoped(|s| async move {
//!     for (half, slot) in numbers.chunks(3).zip(out.iter_mut()) {
//!         s.spawn(async move { *slot = half.iter().sum() });
//!     }
//! });
//! assert!(sums.is_ok());
//! assert_eq!(halves, [6, 15]);
//! ```
//!
//! The [`guide`] shows how to write real programs: I/O, blocking work,
//! `select` with `cancelled()`, pipelines over channels, graceful
//! shutdown, owning resources, collecting results, and cancel safety. The
//! guide to the design is `ARCHITECTURE.md` in the repository.

#![warn(missing_docs, missing_debug_implementations)]

mod cancelled;
pub mod guide;
mod loom;
mod panic;
mod pool;
pub mod runtime;
mod scope;
pub mod sync;
pub mod task;
pub mod time;
pub mod trace;
mod wake_list;

pub use cancelled::{CancelReason, Cancelled};
pub use scope::{
    is_stop_requested, linked_scope, move_on_after, race_ok, scope, shielded_scope, stop_requested,
    supervisor_scope, try_scope, BorrowJoinHandle, BorrowJoinSet, BorrowScope, BorrowShieldedScope,
    BorrowTryScope, CancelHandle, DeferRefused, GraceExpired, JoinSet, NotReady, OnCancelGuard,
    Ready, Scope, ScopeEnd, ScopeFuture, ScopeLocal, ScopeSnapshot, ScopeState, ShieldedScope,
    Slot, SpawnWhenFree, Starting, StopRequested, TreeSnapshot, TryScope, TrySpawnError,
    WaitCancelled, WaitSlot,
};
pub use task::{JoinHandle, TaskCancelHandle};
