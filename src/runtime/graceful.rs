//! A graceful shutdown of the whole runtime: [`Runtime::request_stop`] and
//! [`Runtime::shutdown_graceful`].
//!
//! The steps: set the runtime's stop flag (roots published from then on
//! are born with the request) and request a stop of every root, which
//! reaches every scope below it up to shields (`scope/tree/stop.rs`);
//! wait, up to the grace period, for every root to end; if some are left,
//! copy the tree for the report; then the bounded shutdown
//! ([`Runtime::shutdown_timeout`]): cancel everything left, shields
//! included, and wait at most the bound for the threads.

use super::{Runtime, ShutdownReport};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

impl Runtime {
    /// Requests a stop of every root scope of this runtime, and of every
    /// root opened from now on: [`Scope::request_stop`](crate::Scope::request_stop)
    /// on each. The scopes go on running; their tasks see the request
    /// ([`stop_requested`](crate::stop_requested),
    /// [`is_stop_requested`](crate::is_stop_requested)) and wind down.
    /// It reaches shielded roots too (it is made of each root, not of an
    /// ancestor), and below a root it stops at shields. Idempotent; never
    /// withdrawn.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope, stop_requested};
    /// use std::sync::Arc;
    ///
    /// let rt = Arc::new(Runtime::new());
    /// let remote = rt.clone();
    /// let out = rt.block_on(scope(|s| async move {
    ///     let worker = s.spawn(async {
    ///         stop_requested().await; // finish up, then return
    ///         "flushed"
    ///     });
    ///     remote.request_stop(); // e.g. from a signal handler's thread
    ///     worker.await.unwrap()
    /// }));
    /// assert_eq!(out, Ok("flushed"));
    /// ```
    pub fn request_stop(&self) {
        let shared = self.shared();
        shared.stop_requested.store(true, SeqCst);
        shared.roots().request_stop_all();
    }

    /// Shuts the runtime down gracefully: requests a stop of every root
    /// ([`request_stop`](Runtime::request_stop)), waits up to `grace` for
    /// every root scope to end, then shuts down with
    /// [`shutdown_timeout`](Runtime::shutdown_timeout)`(bound)`, which
    /// cancels whatever is left (shields included) and waits at most
    /// `bound` for the threads still busy.
    ///
    /// The report's [`still_running`](ShutdownReport::still_running) names
    /// the scopes the grace period left running (empty if every root ended
    /// in time), and its stragglers the threads the bound left running.
    /// Both waits are in real time, from when each begins, also on a
    /// [paused clock](super::Builder::start_paused). Called from a thread
    /// of this runtime (a task that owns it), the caller's own root keeps
    /// the tree from emptying: the call then waits the whole grace.
    ///
    /// A shielded scope below a root does not see the request, and so
    /// may use the whole grace (cleanup that must finish); the cancel at
    /// the end reaches it.
    ///
    /// # Examples
    ///
    /// Two shields whose futures were dropped, so that they run on as
    /// roots of the runtime (a dropped shield detaches): one winds down
    /// when asked, one does not.
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, shielded_scope, stop_requested};
    /// use futures_lite::future;
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new();
    /// let detach = |shield| rt.block_on(future::or(async { drop(shield.await) }, async {}));
    /// detach(shielded_scope(|_| async { stop_requested().await }).named("polite"));
    /// detach(shielded_scope(|_| std::future::pending::<()>()).named("deaf"));
    ///
    /// let report = rt.shutdown_graceful(Duration::from_millis(50), Duration::from_secs(5));
    /// let names: Vec<_> = report.still_running().scopes().iter().map(|s| s.name()).collect();
    /// assert_eq!(names, [Some("deaf")]); // cancelled when the grace ran out
    /// assert!(report.is_complete()); // and then everything ended within the bound
    /// ```
    pub fn shutdown_graceful(self, grace: Duration, bound: Duration) -> ShutdownReport {
        self.request_stop();
        let shared = self.shared().clone();
        let deadline = Instant::now().checked_add(grace);
        let ended = match deadline {
            Some(deadline) => shared.roots().wait_empty(deadline),
            None => shared.roots().wait_empty(far_future()),
        };
        let still_running = if ended {
            crate::TreeSnapshot::default()
        } else {
            shared.roots().snapshot(shared.timers.now())
        };
        let mut report = self.shutdown_timeout(bound);
        report.still_running = still_running;
        report
    }
}

/// A deadline for a grace too long to add to now: about thirty years on.
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(30 * 365 * 24 * 3600))
        .unwrap_or(now)
}
