//! Borrowing scopes: tasks that borrow the caller's data, on the
//! work-stealing pool ([`runtime::scoped`](crate::runtime::scoped),
//! [`BorrowScope`]).
//!
//! A [`Scope`]'s tasks must be `'static`: a scope future can be forgotten
//! (`mem::forget`) after its first poll, and then nothing stops its tasks
//! from running on after the data they borrowed is gone. A *blocking*
//! call cannot be forgotten: [`runtime::scoped`](crate::runtime::scoped)
//! returns only once every task of its scope, and of every scope below
//! it, has ended and been dropped, on every path. So its tasks may borrow
//! anything that outlives the call, as `std::thread::scope`'s threads do.
//!
//! The types sit beside the `'static` ones and share their internals: a
//! [`BorrowScope`] is a [`Scope`] (it derefs to one) whose `spawn`
//! accepts borrowing futures; its tasks are ordinary tasks of its node,
//! listed, counted and cancelled as any other. The files, one concept
//! each:
//!
//! - `call.rs`: the blocking entry, and the guard that makes even an
//!   unwinding call wait for its tasks;
//! - `handle.rs`: [`BorrowJoinHandle`], a task's output;
//! - `join_set.rs`: [`BorrowJoinSet`], outputs in completion order;
//! - `nested.rs`: scopes nested in a borrowing one (plain, linked,
//!   supervised, with a deadline, shielded), whose tasks borrow too;
//! - `try_scope.rs`: [`BorrowTryScope`], the first error cancels the rest.
//!
//! # Lifetimes
//!
//! - `BorrowScope<'env>`: `'env` is what the call's data lives for. It is
//!   a lifetime parameter of `scoped`, so it outlives the call. The
//!   handle is *invariant* in `'env`: were it covariant, a body could
//!   shrink `'env` to one of its own locals and lend that to a task,
//!   which may outlive the body (the body is a task too, dropped when
//!   cancelled).
//! - Spawned futures, blocking closures and their outputs are
//!   `Send + 'env`.
//! - `BorrowJoinHandle<'a, T>` and `BorrowJoinSet<'a, T>` borrow the
//!   `BorrowScope` they were spawned through (`'env: 'a`). That scope
//!   handle is most often a local of the body or a task, which keeps the
//!   join handle inside the call; one borrowed from where the call's data
//!   lives gives a join handle that may leave the call but never outlives
//!   `'env`: the output it drops, it drops while its borrows live.
//! - Nested borrowing scopes ([`BorrowScope::scope`] and siblings) hand
//!   their bodies a `BorrowScope<'env>` of the same `'env`: a nested
//!   scope borrows what the call borrows, never a task's own locals.
//!
//! # Why it is sound
//!
//! **Rule "the call outlives its tasks".** A `BorrowScope` exists only
//! for a node of a running call's subtree: the call's root, which the
//! call opens, or a nested scope that checked, when it opened, that it
//! descends from its lender ([`Node::descends_from`](super::tree)). The
//! call returns, or unwinds, only once its root node has finished: its
//! body done, no live task, no child (the life word, tree invariant 8).
//! Then:
//!
//! 1. Every task listed in the subtree has been counted gone. A node
//!    outlives its tasks and children (tree invariant 2), so a finished
//!    root has nothing below it, and a task is counted gone only after
//!    its future was dropped: by its runner, before `Schedule::release`,
//!    or by a cancel walk, which counts the futures it dropped (shared
//!    drops included) once they are all dropped.
//! 2. A task its node refused (cancelled or ended) was dropped, unpolled,
//!    before `spawn` returned.
//! 3. An output is dropped only by its `JoinHandle` (task rule "output through
//!    the join slot": a task is never freed with an output in it), and the
//!    handle is inside a `BorrowJoinHandle` that borrows a
//!    `BorrowScope<'env>`, so it drops the output within `'env` (in practice
//!    inside the call, where the scope handle lives); a forgotten handle leaks
//!    its output, which is then never dropped.
//! 4. After the call, a kept clone of a `BorrowScope` spawns nothing (its
//!    node is finished, and refuses the task, dropping it in `spawn`),
//!    and a nested scope opened through it panics (no open node descends
//!    from a finished one).
//!
//! What is left of a task once the call has returned (its memory, kept
//! by a queue's reference or a waker a timer still holds) holds no future
//! and no output: dropping it, later and on any thread, touches nothing
//! the call borrowed.
//!
//! **Every path.** A panic in a task, in the body or in a `Drop` is
//! caught and stored in its scope, which is cancelled; the call waits for
//! its root to finish, then resumes the panic. A cancel or a deadline
//! drops idle futures at once, and running ones when their poll returns,
//! which the call waits for. A `BorrowJoinHandle` forgotten with
//! `mem::forget` leaks its output (and keeps the task's memory): nothing
//! is dropped late. A nested scope future forgotten after its first poll
//! never ends its body, so the call waits for ever: a hang, never a
//! dangling borrow. If the call's own frame unwinds before the end (a
//! bug in the runtime), its guard cancels the root and waits for it
//! before the unwinding goes on (`call.rs`).
//!
//! **Why only a blocking call.** An awaited scope is a future, and a
//! future can be forgotten after its first poll while its tasks run on;
//! a function call that blocks cannot be. For the same reason a nested
//! scope, which is awaited, borrows only `'env`: the task it runs in may
//! be dropped, freeing its locals, while the nested scope's tasks run on
//! (its future dropped or forgotten).
//!
//! **The cost of blocking.** The call blocks the thread that makes it,
//! until everything in it has ended; its body and tasks run on the
//! workers, and the calling thread parks meanwhile (it is idle, not
//! busy). On one of this runtime's workers it panics, as `block_on` does:
//! blocking a worker can deadlock the runtime. On another runtime's
//! worker it blocks that worker.

mod call;
mod handle;
mod join_set;
mod nested;
mod try_scope;

pub use call::scoped;
use captures::Captures;
pub use handle::BorrowJoinHandle;
pub use join_set::BorrowJoinSet;
pub use nested::BorrowShieldedScope;
pub use try_scope::BorrowTryScope;

use super::blocking::{BlockingBinding, RunClosure};
use super::{Scope, TaskBinding};
use crate::runtime::Shared;
use crate::task::{JoinHandle, Schedule, TaskRef};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;

/// The handle of a borrowing scope: a [`Scope`] whose tasks may borrow
/// anything that outlives the call that opened it
/// ([`runtime::scoped`](crate::runtime::scoped)).
///
/// It derefs to its [`Scope`], for `cancel`, `cancel_after`,
/// `cancelled`, `cancel_handle`, `id` and the rest; its own
/// [`spawn`](BorrowScope::spawn) and
/// [`spawn_blocking`](BorrowScope::spawn_blocking) take futures and
/// closures that borrow. Cheap to clone (one reference count), `Send` and
/// `Sync`. A clone kept after the call returned spawns nothing: its tasks
/// are refused, their futures dropped unpolled.
///
/// Scopes nested in it borrow too: [`scope`](BorrowScope::scope),
/// [`linked_scope`](BorrowScope::linked_scope),
/// [`supervisor_scope`](BorrowScope::supervisor_scope),
/// [`move_on_after`](BorrowScope::move_on_after),
/// [`shielded_scope`](BorrowScope::shielded_scope) and
/// [`try_scope`](BorrowScope::try_scope) mirror the free functions of the
/// same names.
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime;
///
/// let words = vec!["borrowed".to_string(), "not".into(), "cloned".into()];
/// let borrowed = &words;
/// let total = runtime::scoped(|s| async move {
///     let words = borrowed;
///     let lengths: Vec<_> = words.iter().map(|w| s.spawn(async move { w.len() })).collect();
///     let mut total = 0;
///     for length in lengths {
///         total += length.await.unwrap();
///     }
///     total
/// });
/// assert_eq!(total, Ok(17));
/// assert_eq!(words.len(), 3); // still ours
/// ```
#[derive(Clone)]
pub struct BorrowScope<'env> {
    scope: Scope,
    /// Invariant in `'env` (see the module docs), `Send` and `Sync`.
    env: PhantomData<fn(&'env ()) -> &'env ()>,
}

impl<'env> BorrowScope<'env> {
    /// The handle of `scope`, a node of a running call's subtree (rule
    /// E): made by the call for its root, and by a nested scope that
    /// checked its descent.
    pub(super) fn new(scope: Scope) -> BorrowScope<'env> {
        BorrowScope {
            scope,
            env: PhantomData,
        }
    }

    /// Spawns a task into this scope that may borrow anything living for
    /// `'env`, and returns its [`BorrowJoinHandle`].
    ///
    /// The task starts at once on the runtime's workers, as
    /// [`Scope::spawn`]'s do. If the scope is already cancelled, or has
    /// ended (a kept clone used after its call returned), the future is
    /// dropped here without ever being polled, and the handle resolves to
    /// `Err(Cancelled)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let mut counts = [0u32; 4];
    /// let slots = &mut counts;
    /// let out = runtime::scoped(|s| async move {
    ///     // Each task writes to its own part of the caller's array.
    ///     for (i, slot) in slots.iter_mut().enumerate() {
    ///         s.spawn(async move { *slot = i as u32 * 10 });
    ///     }
    /// });
    /// assert!(out.is_ok());
    /// assert_eq!(counts, [0, 10, 20, 30]);
    /// ```
    pub fn spawn<F>(&self, future: F) -> BorrowJoinHandle<'_, F::Output>
    where
        F: Future + Send + 'env,
        F::Output: Send + 'env,
    {
        BorrowJoinHandle::new(self.lend(future))
    }

    /// Runs a blocking closure that may borrow anything living for
    /// `'env` on the runtime's blocking pool, as a task of this scope
    /// (see [`Scope::spawn_blocking`] for how it runs and how a cancel
    /// reaches it), and returns its [`BorrowJoinHandle`].
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread while the pool
    /// has none to run the closure.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let block = vec![7u8; 4096];
    /// let block = &block;
    /// let sum = runtime::scoped(|s| async move {
    ///     // A CPU-heavy pass over the caller's buffer, off the workers.
    ///     s.spawn_blocking(move || block.iter().map(|&b| u64::from(b)).sum::<u64>()).await
    /// });
    /// assert_eq!(sum, Ok(Ok(7 * 4096)));
    /// ```
    pub fn spawn_blocking<F, T>(&self, f: F) -> BorrowJoinHandle<'_, T>
    where
        F: FnOnce() -> T + Send + 'env,
        T: Send + 'env,
    {
        let binding = BlockingBinding(TaskBinding {
            node: self.scope.node.as_ptr(),
        });
        BorrowJoinHandle::new(self.start(RunClosure::new(f), binding, |shared, task| {
            shared.blocking.submit(task);
        }))
    }

    /// Spawns `future` as a task of this scope; the handle is the task
    /// module's own, with no lifetime: the callers wrap it, or keep it
    /// inside the call.
    pub(super) fn lend<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'env,
        F::Output: Send + 'env,
    {
        let binding = TaskBinding {
            node: self.scope.node.as_ptr(),
        };
        // To the back of the queue, as `Scope::spawn` does.
        self.start(future, binding, |shared, task| {
            shared.schedule(task, crate::runtime::worker::Push::Back);
        })
    }

    /// [`Scope::start`]'s twin for futures that borrow: lists a new task
    /// in this scope and hands it to `run`, or, if the scope refuses it,
    /// drops it here and returns a refused handle.
    fn start<F, S>(
        &self,
        future: F,
        binding: S,
        run: impl FnOnce(&Shared, TaskRef),
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'env,
        F::Output: Send + 'env,
        S: Schedule,
    {
        let node = &self.scope.node;
        // SAFETY: rule "the call outlives its tasks": this node is in a
        // running call's subtree, so the call does not return before the task
        // is counted gone, which comes after its future was dropped; a task
        // refused below is dropped before we return; its output is dropped
        // only through the handle, which the caller keeps inside the call (a
        // `BorrowJoinHandle` borrowing this scope, or the call's own).
        // Everything `'env` outlives the call.
        let (task, handle) = unsafe { crate::task::new_borrowing(future, binding) };
        match node.add_task(task.clone()) {
            Ok(()) => {
                let shared = node.shared();
                shared.record(|| crate::trace::EventKind::TaskSpawned {
                    task: task.id().number(),
                    scope: node.id(),
                });
                run(shared, task);
                handle
            }
            Err((cancelled, listed)) => {
                // The last reference is the handle's: dropping it drops the
                // future, unpolled, here (rule "the call outlives its tasks",
                // point 2).
                drop((listed, task, handle));
                JoinHandle::refused(cancelled)
            }
        }
    }
}

/// Names a lifetime in an `impl Trait` return type, so that the hidden
/// type may mention it without having to outlive it: the nested scopes'
/// futures mention `'env` (their bodies make `BorrowScope<'env>`s) but may
/// borrow the enclosing body's locals, which do not live for `'env`.
/// Edition 2021's rules need this; the 2024 edition says it with
/// `use<..>`. Public in a private module: nameable by no one.
mod captures {
    pub trait Captures<'a> {}

    impl<T: ?Sized> Captures<'_> for T {}
}

impl Deref for BorrowScope<'_> {
    type Target = Scope;

    fn deref(&self) -> &Scope {
        &self.scope
    }
}

impl fmt::Debug for BorrowScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BorrowScope").field(&self.scope).finish()
    }
}
