//! Daemon tasks: [`Scope::spawn_daemon`].
//!
//! The tree keeps a scope's daemons in a child scope of their own and
//! stops them when the rest of the scope's work has ended
//! (`tree/daemons.rs`); this file is their public face, and the redirect
//! that makes a daemon's spawns daemons too.

use super::tree::NodeRef;
use super::Scope;
use crate::task::JoinHandle;
use std::future::Future;

impl Scope {
    /// Spawns a daemon: a task the scope does not wait for on its own
    /// account. Once the body, every other task and every nested scope
    /// have ended, the scope cancels its daemons, with
    /// [`CancelReason::DaemonStopped`](crate::CancelReason::DaemonStopped),
    /// and ends once they are dropped (then its cleanups run, if it has
    /// any). Heartbeats, watchers, background flushers.
    ///
    /// # The rules
    ///
    /// - **Not an interruption.** Stopping the daemons cuts nothing of the
    ///   scope's own work short: a scope whose only cancelled work was its
    ///   daemons ends `Ok`. Their handles say `Err(Cancelled)` with
    ///   `DaemonStopped`.
    /// - **Daemon work.** What a daemon starts from inside its poll is
    ///   daemon work, or the scope would wait for it forever: a scope it
    ///   opens, a task it spawns into this scope with
    ///   [`spawn`](Scope::spawn) or [`spawn_blocking`](Scope::spawn_blocking)
    ///   (and what those start in turn). Work it hands to other scopes is
    ///   theirs.
    /// - **Cancellation.** A cancel of the scope reaches its daemons as any
    ///   task (reason `Ancestor`): they are a child scope of it, `"daemons"`
    ///   in the tree view.
    /// - **Panics.** A daemon's panic goes to the scope, as a task's does
    ///   (the scope is cancelled and resumes it); in a
    ///   [`supervisor_scope`](crate::supervisor_scope) it stays with the
    ///   daemon's handle.
    /// - **Refused** as [`spawn`](Scope::spawn) refuses a task: when the
    ///   scope is cancelled, finishing (its work ended) or over.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, time::sleep, CancelReason};
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let beats = Arc::new(AtomicUsize::new(0));
    /// let counted = beats.clone();
    /// let mut heartbeat = None;
    /// let out = runtime::block_on(scope(|s| {
    ///     heartbeat = Some(s.spawn_daemon(async move {
    ///         loop {
    ///             counted.fetch_add(1, SeqCst);
    ///             sleep(Duration::from_millis(1)).await;
    ///         }
    ///     }));
    ///     async move {
    ///         sleep(Duration::from_millis(20)).await; // the real work
    ///         "served"
    ///     }
    /// }));
    /// assert_eq!(out, Ok("served")); // the daemon did not keep the scope open
    /// assert!(beats.load(SeqCst) > 0);
    /// let stopped = runtime::block_on(heartbeat.unwrap()).unwrap_err();
    /// assert_eq!(stopped.reason(), &CancelReason::DaemonStopped);
    /// ```
    pub fn spawn_daemon<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.node.daemons() {
            Ok(daemons) => Scope { node: daemons }.spawn(future),
            Err(cancelled) => {
                drop(future);
                JoinHandle::refused(cancelled)
            }
        }
    }

    /// Where a spawn into this scope goes if it comes from daemon work
    /// (the rules of [`spawn_daemon`](Scope::spawn_daemon)): the daemons'
    /// scope, else `None`. One load for a scope without daemons.
    #[inline]
    pub(super) fn daemon_redirect(&self) -> Option<NodeRef> {
        if self.node.has_daemons() {
            self.node.daemons_polling_here()
        } else {
            None
        }
    }
}
