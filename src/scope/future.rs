//! [`ScopeFuture`]: the future of a scope, from joining the tree at its
//! first poll to leaving it once the body and every task have ended.

use super::tree::{CancelBatch, Deferred, Kind};
use super::{Scope, ScopeInner};
use crate::cancelled::{CancelReason, Cancelled};
use crate::context;
use crate::runtime::Shared;
use crate::task::Panic;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The future returned by [`scope`](crate::scope()) and
/// [`linked_scope`](crate::linked_scope).
///
/// Dropping it before it completes cancels the scope (reason
/// [`CancelReason::ScopeDropped`]): idle tasks are dropped at once, running
/// ones when their poll returns. It never waits.
#[must_use = "a scope does nothing unless awaited"]
pub struct ScopeFuture<F, Fut: Future> {
    state: State<F, Fut>,
    kind: Kind,
    /// A deadline to set when the scope starts (`move_on_after`).
    deadline: Option<Duration>,
    location: &'static Location<'static>,
}

enum State<F, Fut: Future> {
    /// Not polled yet: the scope joins the tree at its first poll, where it
    /// learns its parent.
    Init(Option<F>),
    Running {
        inner: Arc<ScopeInner>,
        body: Option<Pin<Box<Fut>>>,
        output: Option<Fut::Output>,
    },
    Done,
}

impl<F, Fut> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    pub(crate) fn new(body: F, kind: Kind, location: &'static Location<'static>) -> Self {
        ScopeFuture {
            state: State::Init(Some(body)),
            kind,
            deadline: None,
            location,
        }
    }

    /// A plain scope that is cancelled `after` its start (`move_on_after`).
    pub(crate) fn with_deadline(
        body: F,
        after: Duration,
        location: &'static Location<'static>,
    ) -> Self {
        ScopeFuture {
            state: State::Init(Some(body)),
            kind: Kind::Plain,
            deadline: Some(after),
            location,
        }
    }

    /// Joins the tree under the current scope and starts the body.
    fn start(&mut self) {
        let State::Init(body) = &mut self.state else {
            return;
        };
        let body = body.take().expect("Init holds the body");
        let (kind, location) = (self.kind, self.location);
        let inner = context::with_current_scope(|parent| {
            let open = |shared: &Arc<Shared>| {
                shared.tree.lock().insert(parent.map(|p| p.id), kind, |id| {
                    ScopeInner::new(shared.clone(), id, location)
                })
            };
            match parent {
                Some(p) => open(&p.shared),
                None => open(&context::current_runtime()),
            }
        });
        if let Some(after) = self.deadline {
            let now = inner.shared.timers.now();
            inner.set_deadline(crate::time::after(now, after), after);
        }
        let handle = Scope {
            inner: inner.clone(),
        };
        // The closure itself may spawn: run it inside the scope.
        let body = context::enter_scope(&inner, || catch_unwind(AssertUnwindSafe(|| body(handle))));
        let body = match body {
            Ok(fut) => Some(Box::pin(fut)),
            Err(panic) => {
                record_panic(&inner, panic);
                None
            }
        };
        self.state = State::Running {
            inner,
            body,
            output: None,
        };
    }
}

fn record_panic(inner: &ScopeInner, panic: Panic) {
    let mut batch = CancelBatch::default();
    inner
        .shared
        .tree
        .lock()
        .record_panic(inner.id, panic, &mut batch);
    batch.run(&inner.shared);
}

impl<F, Fut> Future for ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    type Output = Result<Fut::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.start();
        let State::Running {
            inner,
            body,
            output,
        } = &mut this.state
        else {
            panic!("`ScopeFuture` polled after it completed");
        };
        while let Some(fut) = body {
            if inner.cancelled.is_set() {
                // Cancelled: the body is dropped at this suspension point.
                let dropped = catch_unwind(AssertUnwindSafe(|| *body = None));
                if let Err(panic) = dropped {
                    record_panic(inner, panic);
                }
                break;
            }
            let polled = context::enter_scope(inner, || {
                catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)))
            });
            match polled {
                Ok(Poll::Ready(value)) => {
                    *output = Some(value);
                    *body = None;
                }
                Ok(Poll::Pending) => {
                    let mut deferred = Deferred::default();
                    let mut tree = inner.shared.tree.lock();
                    let cancelled = tree.register_body_waker(inner.id, cx.waker(), &mut deferred);
                    drop(tree);
                    deferred.run(&inner.shared);
                    if !cancelled {
                        return Poll::Pending;
                    }
                }
                Err(panic) => {
                    let dropped = catch_unwind(AssertUnwindSafe(|| *body = None));
                    drop(dropped);
                    record_panic(inner, panic);
                }
            }
        }
        let mut deferred = Deferred::default();
        let outcome = inner
            .shared
            .tree
            .lock()
            .finish_body(inner.id, cx.waker(), &mut deferred);
        deferred.run(&inner.shared);
        let Some(outcome) = outcome else {
            return Poll::Pending;
        };
        let value = output.take();
        this.state = State::Done;
        if let Some(panic) = outcome.panic {
            resume_unwind(panic);
        }
        match outcome.cancelled {
            Some(cancelled) => Poll::Ready(Err(cancelled)),
            None => Poll::Ready(Ok(value.expect("an uncancelled scope's body finished"))),
        }
    }
}

// The body is boxed, and `F` is never pinned, so moving a `ScopeFuture` is
// always fine.
impl<F, Fut: Future> Unpin for ScopeFuture<F, Fut> {}

impl<F, Fut: Future> Drop for ScopeFuture<F, Fut> {
    fn drop(&mut self) {
        let State::Running { inner, body, .. } = &mut self.state else {
            return;
        };
        // Stop the tasks first, so none runs on; then drop the body; then
        // leave the node to the last task to end (tree invariant 2). A
        // shield is not cancelled: its tasks finish, and its parent waits.
        if self.kind != Kind::Shielded && !inner.cancelled.is_set() {
            inner.cancel(CancelReason::ScopeDropped, false);
        }
        let dropped = catch_unwind(AssertUnwindSafe(|| *body = None));
        let mut deferred = Deferred::default();
        inner.shared.tree.lock().drop_body(inner.id, &mut deferred);
        deferred.run(&inner.shared);
        if let Err(panic) = dropped {
            resume_unwind(panic);
        }
    }
}

impl<F, Fut: Future> fmt::Debug for ScopeFuture<F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Init(_) => "init",
            State::Running { .. } => "running",
            State::Done => "done",
        };
        f.debug_struct("ScopeFuture")
            .field("state", &state)
            .field("location", &self.location)
            .finish()
    }
}
