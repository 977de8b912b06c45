//! Cancel handlers: [`Scope::on_cancel`] and its [`OnCancelGuard`].
//!
//! The tree keeps them and its cancel walk runs them (`tree/handlers.rs`,
//! rule "handlers before the end"); this file is their public face.

use super::tree::NodeRef;
use super::Scope;
use crate::cancelled::Cancelled;
use std::fmt;

impl Scope {
    /// Registers `handler`, a closure that runs once, synchronously, when
    /// this scope is cancelled (at once, on this thread, if it already is),
    /// with the scope's [`Cancelled`]. Dropping the returned guard
    /// unregisters it.
    ///
    /// This is the bridge to code that cannot await a cancellation: shut
    /// the socket a blocking closure reads from, abort a callback API,
    /// stop a thread of a library. Unlike a token's signal, it gets the
    /// reason, and the [`cause`](Cancelled::cause) given to
    /// [`cancel_with`](Scope::cancel_with).
    ///
    /// # The rules
    ///
    /// - **Where it runs.** On the thread that cancels: the one calling
    ///   [`cancel`](Scope::cancel) or a [`CancelHandle`](crate::CancelHandle),
    ///   a worker firing a deadline, the thread dropping the scope's future
    ///   or the [`Runtime`](crate::runtime::Runtime), or a worker whose task
    ///   panicked. It should be short and must not block: it delays that
    ///   thread's cancel of everything else.
    /// - **When.** As the cancel reaches this scope: before the scope's
    ///   idle tasks are dropped and its body is woken to stop, so a task
    ///   or body that registered it is still alive while it runs (it may
    ///   touch what they hold, through a clone). The scope does not end
    ///   before its handlers have returned.
    /// - **Outside every lock** of the runtime: it may cancel other scopes
    ///   (even this scope's parent), spawn, register handlers.
    /// - **Exactly once,** however many threads cancel at once; never if
    ///   the scope ends without being cancelled (the handler is dropped
    ///   with the guard, or once the scope and the guard are gone).
    /// - **The guard.** Once its drop has returned, the handler does not
    ///   run any more: if it is running on another thread, the drop waits
    ///   for it to return; on the thread running it (a handler dropping
    ///   its own guard), the drop does not wait. To keep the handler for
    ///   the scope's whole life without holding the guard, call
    ///   [`OnCancelGuard::detach`].
    /// - **Panics.** A handler's panic goes to the scope, which is
    ///   cancelled already and resumes it at its end.
    ///
    /// # Examples
    ///
    /// A blocking closure stopped through a handler, which sets the flag it
    /// polls (a real one might shut a socket down instead):
    ///
    /// ```
    /// use cancel_scope::{move_on_after, runtime};
    /// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let out = runtime::block_on(move_on_after(Duration::from_millis(20), |s| async move {
    ///     let stop = Arc::new(AtomicBool::new(false));
    ///     let flag = stop.clone();
    ///     let _guard = s.on_cancel(move |why| {
    ///         println!("stopping: {why}");
    ///         flag.store(true, SeqCst);
    ///     });
    ///     s.spawn_blocking(move || {
    ///         while !stop.load(SeqCst) {
    ///             std::thread::yield_now(); // a blocking call, in steps
    ///         }
    ///     })
    ///     .await
    /// }));
    /// assert!(out.is_err()); // the deadline passed; the closure stopped
    /// ```
    pub fn on_cancel<F>(&self, handler: F) -> OnCancelGuard
    where
        F: FnOnce(&Cancelled) + Send + 'static,
    {
        let registered = self
            .node
            .on_cancel(Box::new(handler))
            .map(|key| (self.node.clone(), key));
        OnCancelGuard { registered }
    }
}

/// The registration of a cancel handler ([`Scope::on_cancel`]): dropping
/// it unregisters the handler, waiting for it if it is running on another
/// thread.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// use std::sync::Arc;
///
/// let runs = Arc::new(AtomicUsize::new(0));
/// let counted = runs.clone();
/// let _ = runtime::block_on(scope(|s| async move {
///     let guard = s.on_cancel(move |_| {
///         counted.fetch_add(1, SeqCst);
///     });
///     drop(guard); // unregistered: the cancel below finds no handler
///     s.cancel();
/// }));
/// assert_eq!(runs.load(SeqCst), 0);
/// ```
#[must_use = "dropping the guard unregisters the handler at once; `detach` keeps it"]
pub struct OnCancelGuard {
    /// The scope and the handler's key; `None` if the handler ran at once
    /// or was dropped (its scope had ended), or the guard was detached.
    registered: Option<(NodeRef, usize)>,
}

impl OnCancelGuard {
    /// Leaves the handler registered for the rest of the scope's life: it
    /// runs if the scope is cancelled, and is dropped with the scope
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelReason};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(None));
    /// let slot = seen.clone();
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.on_cancel(move |why| *slot.lock().unwrap() = Some(why.reason().clone()))
    ///         .detach();
    ///     s.cancel_with("reloading");
    ///     std::future::pending::<()>().await
    /// }));
    /// assert!(out.is_err());
    /// assert_eq!(*seen.lock().unwrap(), Some(CancelReason::Explicit));
    /// ```
    pub fn detach(mut self) {
        self.registered = None;
    }
}

impl Drop for OnCancelGuard {
    fn drop(&mut self) {
        if let Some((node, key)) = self.registered.take() {
            node.forget_cancel_handler(key);
        }
    }
}

impl fmt::Debug for OnCancelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnCancelGuard")
            .field("registered", &self.registered.is_some())
            .finish()
    }
}
