//! [`CancelHandle`]: cancelling a scope from anywhere, before it opens and
//! after it ends.
//!
//! A handle is bound to a scope's node: the one [`Scope::cancel_handle`]
//! gives is bound from the start. One made by [`CancelHandle::new`] is
//! *early*: it records a cancel that comes before the scope opens, and the
//! scope that opens with it
//! ([`ScopeFuture::with_cancel_handle`](crate::ScopeFuture::with_cancel_handle))
//! binds it, opening cancelled if it was. From then on every handle acts on
//! the node.

use super::tree::{Links, NodeRef};
use super::Scope;
use crate::cancelled::{CancelReason, Cancelled, Cause};
use parking_lot::Mutex;
use slab::Slab;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

/// A handle that can cancel a scope from any thread or task, and outlive
/// it: once the scope has ended, [`cancel`](CancelHandle::cancel) does
/// nothing.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let handle = s.cancel_handle();
///     std::thread::spawn(move || handle.cancel()).join().unwrap();
///     std::future::pending::<()>().await
/// }));
/// assert!(out.is_err());
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    pub(super) target: Target,
}

/// What a handle acts on.
#[derive(Clone)]
pub(super) enum Target {
    Node(NodeRef),
    Early(Arc<Mutex<Early>>),
}

/// A handle made before its scope (see the module docs).
#[derive(Default)]
pub(super) struct Early {
    /// Set when the scope opens.
    pub(super) node: Option<NodeRef>,
    /// A scope is opening with this handle (`reserve`).
    taken: bool,
    /// A cancel that came first; the scope opens with it. Kept after the
    /// scope opens: `bind` publishes the node before it applies this
    /// cancel to it, and in between `is_cancelled` must still say true
    /// (once true, true).
    cancel: Option<(CancelReason, Option<Cause>)>,
    /// A stop request that came first, and the shortest grace of a
    /// shutdown that came first: the scope opens with them (the grace
    /// counted from the opening).
    stop: bool,
    grace: Option<Duration>,
    /// `cancelled()` futures polled before the scope opened; woken when it
    /// opens or is cancelled, to look again.
    pub(super) waiters: Slab<Waker>,
}

impl CancelHandle {
    /// A handle for a scope not opened yet: open the scope with
    /// [`with_cancel_handle`](crate::ScopeFuture::with_cancel_handle).
    /// Until then it records a cancel (the first one), and the scope opens
    /// cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelHandle};
    ///
    /// let handle = CancelHandle::new();
    /// let watcher = handle.clone();
    /// let out = runtime::block_on(
    ///     scope(|s| async move {
    ///         s.spawn(async move { watcher.cancel() });
    ///         std::future::pending::<()>().await
    ///     })
    ///     .with_cancel_handle(&handle),
    /// );
    /// assert!(out.is_err());
    /// assert!(handle.is_cancelled());
    /// ```
    #[allow(clippy::new_without_default)]
    pub fn new() -> CancelHandle {
        CancelHandle {
            target: Target::Early(Arc::default()),
        }
    }

    pub(super) fn of(scope: &Scope) -> CancelHandle {
        CancelHandle {
            target: Target::Node(scope.node.clone()),
        }
    }

    /// Cancels the scope, if it is still running, or makes it open
    /// cancelled if it has not opened yet. See [`Scope::cancel`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.cancel_handle().cancel();
    ///     std::future::pending::<()>().await // the body stops here
    /// }));
    /// assert!(out.is_err());
    /// ```
    pub fn cancel(&self) {
        self.cancel_because(None);
    }

    /// Cancels the scope with a reason of the caller's, as
    /// [`Scope::cancel_with`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.cancel_handle().cancel_with("the client went away");
    ///     std::future::pending::<()>().await // the body stops here
    /// }));
    /// let err = out.unwrap_err();
    /// assert_eq!(err.cause().unwrap().to_string(), "the client went away");
    /// ```
    pub fn cancel_with(&self, reason: impl Into<Box<dyn Error + Send + Sync>>) {
        self.cancel_because(Some(Arc::from(reason.into())));
    }

    fn cancel_because(&self, cause: Option<Cause>) {
        let node = match &self.target {
            Target::Node(node) => node.clone(),
            Target::Early(early) => {
                let mut early = early.lock();
                match &early.node {
                    Some(node) => node.clone(),
                    None => {
                        if early.cancel.is_none() {
                            early.cancel = Some((CancelReason::Explicit, cause));
                        }
                        let waiters = std::mem::take(&mut early.waiters);
                        drop(early);
                        waiters.into_iter().for_each(|(_, w)| w.wake());
                        return;
                    }
                }
            }
        };
        node.cancel_because(CancelReason::Explicit, cause, Links::Follow);
    }

    /// Requests a stop of the scope, if it is still running, or makes it
    /// open with the request if it has not opened yet. See
    /// [`Scope::request_stop`]: a request, not a cancel.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, stop_requested};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let handle = s.cancel_handle();
    ///     std::thread::spawn(move || handle.request_stop()).join().unwrap();
    ///     stop_requested().await; // the body winds down, unhurt
    ///     "bye"
    /// }));
    /// assert_eq!(out, Ok("bye"));
    /// ```
    pub fn request_stop(&self) {
        if let Some(node) = self.node_or_record(|early| early.stop = true) {
            node.request_stop();
        }
    }

    /// Shuts the scope down gracefully: see [`Scope::shutdown`]. For a
    /// scope not opened yet, it opens with the request, and the grace is
    /// counted from its opening.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, CancelReason};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let out = rt.block_on(scope(|s| async move {
    ///     s.cancel_handle().shutdown(Duration::from_secs(1));
    ///     std::future::pending::<()>().await // deaf to the request
    /// }));
    /// assert_eq!(out.unwrap_err().reason(), &CancelReason::GraceExpired);
    /// ```
    pub fn shutdown(&self, grace: Duration) {
        let record = |early: &mut Early| {
            early.stop = true;
            early.grace = Some(early.grace.map_or(grace, |g| g.min(grace)));
        };
        if let Some(node) = self.node_or_record(record) {
            node.shutdown(grace);
        }
    }

    /// Whether a stop was requested of the scope or reached it (before it
    /// ended), or, for a scope not opened yet, whether it will open with
    /// one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::CancelHandle;
    ///
    /// let early = CancelHandle::new();
    /// early.request_stop();
    /// assert!(early.is_stop_requested() && !early.is_cancelled());
    /// ```
    pub fn is_stop_requested(&self) -> bool {
        match &self.target {
            Target::Node(node) => node.is_stop_requested(),
            Target::Early(early) => {
                let early = early.lock();
                early.stop || early.node.as_ref().is_some_and(|n| n.is_stop_requested())
            }
        }
    }

    /// The node, if the handle is bound to one; else `record` notes the
    /// request in the early handle, for the scope to open with.
    fn node_or_record(&self, record: impl FnOnce(&mut Early)) -> Option<NodeRef> {
        match &self.target {
            Target::Node(node) => Some(node.clone()),
            Target::Early(early) => {
                let mut early = early.lock();
                match &early.node {
                    Some(node) => Some(node.clone()),
                    None => {
                        record(&mut early);
                        None
                    }
                }
            }
        }
    }

    /// A future that resolves once the scope is cancelled; see
    /// [`Scope::cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelReason};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let handle = s.cancel_handle();
    ///     let watcher = std::thread::spawn(move || runtime::block_on(handle.cancelled()));
    ///     s.cancel();
    ///     let seen = watcher.join().unwrap();
    ///     assert_eq!(seen.reason(), &CancelReason::Explicit);
    /// }));
    /// // The body ran to its end: the cancel interrupted nothing.
    /// assert!(out.is_ok());
    /// ```
    pub fn cancelled(&self) -> super::WaitCancelled {
        super::WaitCancelled::new(self.target.clone())
    }

    /// Whether the scope was cancelled (before it ended), or, for a scope
    /// not opened yet, whether it will open cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     let h = s.cancel_handle();
    ///     assert!(!h.is_cancelled());
    ///     s.cancel();
    ///     assert!(h.is_cancelled());
    /// }));
    /// ```
    pub fn is_cancelled(&self) -> bool {
        match &self.target {
            Target::Node(node) => node.cancelled.is_set(),
            Target::Early(early) => {
                let early = early.lock();
                early.cancel.is_some() || early.node.as_ref().is_some_and(|n| n.cancelled.is_set())
            }
        }
    }

    /// Claims an early handle for the scope about to open with it, before
    /// anything of that scope exists.
    ///
    /// # Panics
    ///
    /// If the handle is a scope's own, or was claimed before.
    pub(super) fn reserve(&self) {
        let Target::Early(early) = &self.target else {
            panic!(
                "`with_cancel_handle` takes a handle made by `CancelHandle::new`, \
                 not one of an open scope"
            );
        };
        let mut early = early.lock();
        assert!(
            !early.taken,
            "a `CancelHandle` made by `CancelHandle::new` opens one scope only"
        );
        early.taken = true;
    }

    /// Binds a reserved early handle to the scope opening with it, and
    /// applies a cancel it recorded.
    pub(super) fn bind(&self, node: &NodeRef) {
        let Target::Early(early) = &self.target else {
            unreachable!("`reserve` checked the handle");
        };
        let (cancel, stop, grace, waiters) = {
            let mut early = early.lock();
            early.node = Some(node.clone());
            let waiters = std::mem::take(&mut early.waiters);
            (early.cancel.clone(), early.stop, early.grace, waiters)
        };
        if let Some((reason, cause)) = cancel {
            node.cancel_because(reason, cause, Links::Follow);
        }
        match grace {
            Some(grace) => node.shutdown(grace),
            None if stop => node.request_stop(),
            None => {}
        }
        waiters.into_iter().for_each(|(_, w)| w.wake());
    }

    /// What an unopened scope's handle says when asked for its reason.
    pub(super) fn early_cancelled(early: &Early) -> Option<Cancelled> {
        let (reason, cause) = early.cancel.as_ref()?;
        Some(Cancelled::new(reason.clone()).with_cause(cause.clone()))
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CancelHandle");
        match &self.target {
            Target::Node(node) => d.field("id", &node.id()),
            Target::Early(early) => match &early.lock().node {
                Some(node) => d.field("id", &node.id()),
                None => d.field("id", &"not opened yet"),
            },
        };
        d.field("cancelled", &self.is_cancelled()).finish()
    }
}
