//! [`Cancelled`]: the value a cancelled scope or task completes with.
//!
//! Cancellation is not an error in this runtime: a scope that was cancelled
//! completes normally, with `Err(Cancelled)` as its output, and the value says
//! why it stopped.

use crate::panic::Panic;
use parking_lot::Mutex;
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// Why a scope or task stopped before finishing its work.
///
/// A cancelled scope resolves to `Err(Cancelled)`, and so does the
/// [`JoinHandle`](crate::JoinHandle) of every task that was stopped with it.
/// [`Cancelled::reason`] tells what set the cancellation off, as seen from
/// the scope the value belongs to: the scope on which `cancel()` was called
/// reports [`CancelReason::Explicit`], its descendants report
/// [`CancelReason::Ancestor`], and a parent reached through a
/// [`linked_scope`](crate::linked_scope) reports
/// [`CancelReason::LinkedChild`]. [`Cancelled::cause`] is the value given
/// to [`cancel_with`](crate::Scope::cancel_with), shared by every scope and
/// task the cancellation reached. A scope records its reason without a
/// lock, so [`is_cancelled`](crate::Scope::is_cancelled) is one atomic load.
///
/// Two values are equal when their reasons are, and they share the same
/// cause (or neither has one).
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, CancelReason};
///
/// let out = runtime::block_on(scope(|s| async move {
///     s.cancel();
///     std::future::pending::<()>().await; // the body stops here
/// }));
/// let cancelled = out.unwrap_err();
/// assert_eq!(cancelled.reason(), &CancelReason::Explicit);
/// assert_eq!(cancelled.to_string(), "cancelled: cancel() was called on this scope");
/// ```
#[derive(Clone)]
pub struct Cancelled(Repr);

/// Most values are a reason alone, as small as the reason (16 bytes: a
/// task's join slot holds one) and free to drop; the few that carry more
/// share it between their clones.
#[derive(Clone)]
enum Repr {
    Plain(CancelReason),
    Rich(Arc<Rich>),
}

/// A [`Cancelled`] that carries more than its reason.
struct Rich {
    reason: CancelReason,
    /// What the user gave `cancel_with`.
    cause: Option<Cause>,
    /// The payload of a supervised task's panic, to be taken once.
    panic: Mutex<Option<Panic>>,
    /// The name of the scope the value belongs to, for `Debug`.
    scope: Option<Arc<str>>,
}

/// A user's reason for a cancel (`cancel_with`).
pub(crate) type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// What set a cancellation off. See [`Cancelled`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// `cancel()` was called on this scope (or on a
    /// [`CancelHandle`](crate::CancelHandle) to it), or, for one task, on
    /// its [`JoinHandle`](crate::JoinHandle) or
    /// [`TaskCancelHandle`](crate::TaskCancelHandle).
    Explicit,
    /// An ancestor scope was cancelled, and its cancellation reached this one.
    Ancestor,
    /// A linked child scope was cancelled, and the link carried the
    /// cancellation up to this scope.
    LinkedChild,
    /// The scope's deadline passed. `after` is how far ahead the deadline
    /// was set.
    Deadline {
        /// The time between setting the deadline and the deadline.
        after: Duration,
    },
    /// A task (or the body) of this scope panicked; the scope stopped its
    /// other tasks and resumes the panic once they have all ended. In a
    /// [`supervisor_scope`](crate::supervisor_scope) only the task's handle
    /// reports it, with the payload ([`Cancelled::take_panic`]).
    Panicked,
    /// A task (or the body) of a [`try_scope`](crate::try_scope) returned
    /// an error; the scope stopped its other tasks.
    Failed,
    /// Another entrant of a [`race_ok`](crate::race_ok) finished first.
    Lost,
    /// The scope's future was dropped before it completed.
    ScopeDropped,
    /// The scope had already ended when the task was spawned into it.
    ScopeEnded,
    /// The runtime was shut down while the task was still alive, or the
    /// scope was opened after the shutdown began.
    Shutdown,
    /// A daemon ([`Scope::spawn_daemon`](crate::Scope::spawn_daemon)):
    /// the rest of its scope's work had ended, so the scope stopped it.
    /// This cancel interrupts nothing of the scope's own.
    DaemonStopped,
    /// A graceful shutdown of this scope
    /// ([`Scope::shutdown`](crate::Scope::shutdown)) asked its tasks to
    /// stop, and its grace period passed before everything had ended: what
    /// was left was cancelled. The cancel's cause, a
    /// [`GraceExpired`](crate::GraceExpired), gives the grace period and
    /// names the scopes still running then ([`Cancelled::still_running`]).
    /// (No field: a second `Duration` beside `Deadline`'s would make every
    /// `Cancelled`, and every task's join slot, a word larger.)
    GraceExpired,
}

impl Cancelled {
    pub(crate) fn new(reason: CancelReason) -> Cancelled {
        Cancelled(Repr::Plain(reason))
    }

    #[inline]
    pub(crate) fn with_cause(self, cause: Option<Cause>) -> Cancelled {
        match cause {
            None => self,
            cause => self.with_extra(|extra| extra.cause = cause),
        }
    }

    /// Names the scope the value belongs to (for `Debug`).
    #[inline]
    pub(crate) fn with_scope(self, name: Option<Arc<str>>) -> Cancelled {
        match name {
            None => self,
            name => self.with_extra(|extra| extra.scope = name),
        }
    }

    /// A supervised task's panic, carried to its handle.
    pub(crate) fn panicked(payload: Panic) -> Cancelled {
        Cancelled::new(CancelReason::Panicked)
            .with_extra(|extra| extra.panic = Mutex::new(Some(payload)))
    }

    /// Sets a rare part, on a `Rich` of this value's own.
    #[cold]
    fn with_extra(self, set: impl FnOnce(&mut Rich)) -> Cancelled {
        let mut rich = match self.0 {
            Repr::Plain(reason) => Rich {
                reason,
                cause: None,
                panic: Mutex::new(None),
                scope: None,
            },
            Repr::Rich(rich) => match Arc::try_unwrap(rich) {
                Ok(rich) => rich,
                // Shared with clones: copy what can be (a panic payload
                // stays with the value that carried it to its handle).
                Err(shared) => Rich {
                    reason: shared.reason.clone(),
                    cause: shared.cause.clone(),
                    panic: Mutex::new(None),
                    scope: shared.scope.clone(),
                },
            },
        };
        set(&mut rich);
        Cancelled(Repr::Rich(Arc::new(rich)))
    }

    fn rich(&self) -> Option<&Rich> {
        match &self.0 {
            Repr::Plain(_) => None,
            Repr::Rich(rich) => Some(rich),
        }
    }

    fn cause_ref(&self) -> Option<&Cause> {
        self.rich()?.cause.as_ref()
    }

    /// Why the scope or task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelReason};
    ///
    /// let err = runtime::block_on(scope(|s| async move {
    ///     s.cancel();
    ///     std::future::pending::<()>().await // the body stops here
    /// }))
    /// .unwrap_err();
    /// assert!(matches!(err.reason(), CancelReason::Explicit));
    /// ```
    pub fn reason(&self) -> &CancelReason {
        match &self.0 {
            Repr::Plain(reason) => reason,
            Repr::Rich(rich) => &rich.reason,
        }
    }

    /// The reason the user gave [`cancel_with`](crate::Scope::cancel_with),
    /// if the cancellation came from such a call; downcast it to the type
    /// given (a message arrives as an error whose `Display` is the message).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// #[derive(Debug)]
    /// struct Maintenance;
    /// impl std::fmt::Display for Maintenance {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("down for maintenance")
    ///     }
    /// }
    /// impl std::error::Error for Maintenance {}
    ///
    /// let err = runtime::block_on(scope(|s| async move {
    ///     s.cancel_with(Maintenance);
    ///     std::future::pending::<()>().await // the body stops here
    /// }))
    /// .unwrap_err();
    /// assert!(err.cause().unwrap().downcast_ref::<Maintenance>().is_some());
    /// assert_eq!(err.to_string(), "cancelled: cancel() was called on this scope: down for maintenance");
    /// ```
    pub fn cause(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.cause_ref().map(|cause| &**cause)
    }

    /// The scopes a graceful shutdown's hard cancel found still running,
    /// if this cancellation is that cancel's
    /// ([`CancelReason::GraceExpired`] where
    /// [`Scope::shutdown`](crate::Scope::shutdown) was called, and
    /// [`CancelReason::Ancestor`] below it): the shut-down scope and its
    /// nested scopes as they were when the grace ran out, each with its
    /// name, location and tasks. A shortcut for downcasting
    /// [`cause`](Cancelled::cause) to [`GraceExpired`](crate::GraceExpired).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let out = rt.block_on(scope(|s| async move {
    ///     s.spawn(scope(|_| sleep(Duration::from_secs(60))).named("deaf to the request"));
    ///     s.shutdown(Duration::from_secs(1));
    /// }));
    /// let err = out.unwrap_err();
    /// let names: Vec<_> = err.still_running().unwrap().scopes().iter().map(|s| s.name()).collect();
    /// assert_eq!(names, [None, Some("deaf to the request")]);
    /// ```
    pub fn still_running(&self) -> Option<&crate::TreeSnapshot> {
        let cause = self.cause()?;
        cause
            .downcast_ref::<crate::GraceExpired>()
            .map(|g| g.still_running())
    }

    /// Takes out the panic payload of a task of a
    /// [`supervisor_scope`](crate::supervisor_scope) that panicked (reason
    /// [`CancelReason::Panicked`]), to resume it
    /// (`std::panic::resume_unwind`) or log it. The payload is taken once:
    /// later calls, on this value or its clones, return `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, supervisor_scope};
    ///
    /// let out = runtime::block_on(supervisor_scope(|s| async move {
    ///     let err = s.spawn(async { panic!("bad input") }).await.unwrap_err();
    ///     let payload = err.take_panic().expect("the panic's payload");
    ///     *payload.downcast::<&str>().unwrap()
    /// }));
    /// assert_eq!(out, Ok("bad input"));
    /// ```
    pub fn take_panic(&self) -> Option<Panic> {
        let rich = self.rich()?;
        rich.panic.lock().take()
    }
}

impl PartialEq for Cancelled {
    fn eq(&self, other: &Cancelled) -> bool {
        let same_cause = match (self.cause_ref(), other.cause_ref()) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.reason() == other.reason() && same_cause
    }
}

impl Eq for Cancelled {}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cancelled");
        d.field("reason", self.reason());
        if let Some(rich) = self.rich() {
            if let Some(cause) = &rich.cause {
                d.field("cause", &format_args!("{cause}"));
            }
            if let Some(name) = &rich.scope {
                d.field("scope", name);
            }
            let panic = rich.panic.lock();
            if panic.is_some() {
                d.field("panic", &"..");
            }
        }
        d.finish()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled: {}", self.reason())?;
        match self.cause_ref() {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Explicit => f.write_str("cancel() was called on this scope"),
            CancelReason::Ancestor => f.write_str("an enclosing scope was cancelled"),
            CancelReason::LinkedChild => f.write_str("a linked inner scope was cancelled"),
            CancelReason::Deadline { after } => write!(f, "deadline of {after:?} passed"),
            CancelReason::Panicked => f.write_str("a task in the scope panicked"),
            CancelReason::Failed => f.write_str("a task in the scope returned an error"),
            CancelReason::Lost => f.write_str("another entrant of the race finished first"),
            CancelReason::ScopeDropped => f.write_str("the scope's future was dropped"),
            CancelReason::ScopeEnded => f.write_str("the scope had already ended"),
            CancelReason::Shutdown => f.write_str("the runtime shut down"),
            CancelReason::DaemonStopped => {
                f.write_str("the rest of the scope's work ended: its daemons are stopped")
            }
            CancelReason::GraceExpired => f.write_str("the shutdown's grace period ran out"),
        }
    }
}

impl Error for Cancelled {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause_ref().map(|c| &**c as &(dyn Error + 'static))
    }
}

/// The bit of a [`CancelCell`]'s code that says a cause came with it.
const CAUSE: u8 = 0x80;
/// The bit of a [`CancelCell`]'s code that says the node is not published
/// yet: its ancestors' marks count too (the scope tree's invariant 2).
const UNPUBLISHED: u8 = 0x40;
/// The bit of a [`CancelCell`]'s code that says the scope has ended: no
/// claim succeeds after it (a stale handle's cancel marks nothing).
const ENDED: u8 = 0x20;
/// The bits of a [`CancelCell`]'s code that hold the reason.
const REASON: u8 = 0x1F;

/// A scope's cancellation, read without a lock: a reason code, and the
/// duration that [`CancelReason::Deadline`] or
/// [`CancelReason::GraceExpired`] carries.
///
/// The code is set once, by a compare-and-swap (a *claim*): whoever makes
/// it owns the node's cancel walk, and a second claim fails. A claim of
/// `Deadline` writes the duration first; two deadline claims of one node
/// that race write durations that both passed, and either may stay.
pub(crate) struct CancelCell {
    /// The reason's code (see [`CancelCell::code`]) once cancelled, 0
    /// before; with the `CAUSE` and `UNPUBLISHED` bits.
    code: AtomicU8,
    /// `Deadline { after }`, in nanoseconds.
    after_nanos: AtomicU64,
}

impl CancelCell {
    /// The cell of a node not yet published (the tree's invariant 2).
    pub(crate) const fn unpublished() -> CancelCell {
        CancelCell {
            code: AtomicU8::new(UNPUBLISHED),
            after_nanos: AtomicU64::new(0),
        }
    }

    /// Whether the scope itself is cancelled. One atomic load.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.code.load(Acquire) & REASON != 0
    }

    /// [`is_set`](CancelCell::is_set) as a read-modify-write, which reads
    /// the latest value and joins the release-acquire chain of the claims:
    /// the look a spawn takes after publishing a node itself, against an
    /// unpublished cancel's mark (the scope tree's `cancel.rs`).
    pub(crate) fn is_set_latest(&self) -> bool {
        self.code.fetch_or(0, AcqRel) & REASON != 0
    }

    /// Whether the node is unpublished and not cancelled itself: then its
    /// ancestors' marks decide.
    #[inline]
    pub(crate) fn is_unpublished_and_clear(&self) -> bool {
        self.code.load(Acquire) == UNPUBLISHED
    }

    /// The scope ends: from now on no claim succeeds. Called before the
    /// node is retired, so a cancel either marked it before (and the
    /// scope was cancelled before it ended) or marks nothing.
    pub(crate) fn seal(&self) {
        self.code.fetch_or(ENDED, AcqRel);
    }

    /// The node is published (under its parent's lock and its own).
    pub(crate) fn published(&self) {
        self.code.fetch_and(!UNPUBLISHED, Release);
    }

    /// Whether the cancel came with a cause (`cancel_with`), which the
    /// node keeps under its lock.
    pub(crate) fn has_cause(&self) -> bool {
        self.code.load(Acquire) & CAUSE != 0
    }

    /// The reason, if cancelled.
    pub(crate) fn get(&self) -> Option<Cancelled> {
        let reason = match self.code.load(Acquire) & REASON {
            0 => return None,
            1 => CancelReason::Explicit,
            2 => CancelReason::Ancestor,
            3 => CancelReason::LinkedChild,
            4 => CancelReason::Deadline {
                after: Duration::from_nanos(self.after_nanos.load(Relaxed)),
            },
            5 => CancelReason::Panicked,
            6 => CancelReason::Failed,
            7 => CancelReason::Lost,
            8 => CancelReason::ScopeDropped,
            9 => CancelReason::ScopeEnded,
            10 => CancelReason::Shutdown,
            11 => CancelReason::DaemonStopped,
            _ => CancelReason::GraceExpired,
        };
        Some(Cancelled::new(reason))
    }

    /// Claims the cell for `reason` (noting whether a `cause` comes with
    /// it; the node keeps the cause itself): true if this call set it,
    /// false if a reason was there already (the first one stays).
    pub(crate) fn claim(&self, reason: &CancelReason, cause: Option<&Cause>) -> bool {
        let mut cur = self.code.load(Relaxed);
        if cur & (REASON | ENDED) != 0 {
            return false;
        }
        if let CancelReason::Deadline { after } = reason {
            let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
            self.after_nanos.store(nanos, Relaxed);
        }
        let cause = if cause.is_some() { CAUSE } else { 0 };
        loop {
            let new = (cur & UNPUBLISHED) | Self::code(reason) | cause;
            match self.code.compare_exchange_weak(cur, new, AcqRel, Relaxed) {
                Ok(_) => return true,
                Err(now) if now & (REASON | ENDED) != 0 => return false,
                Err(now) => cur = now,
            }
        }
    }

    fn code(reason: &CancelReason) -> u8 {
        match reason {
            CancelReason::Explicit => 1,
            CancelReason::Ancestor => 2,
            CancelReason::LinkedChild => 3,
            CancelReason::Deadline { .. } => 4,
            CancelReason::Panicked => 5,
            CancelReason::Failed => 6,
            CancelReason::Lost => 7,
            CancelReason::ScopeDropped => 8,
            CancelReason::ScopeEnded => 9,
            CancelReason::Shutdown => 10,
            CancelReason::DaemonStopped => 11,
            CancelReason::GraceExpired => 12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task's join slot holds a `Result<T, Cancelled>`: a reason
    /// that grows (a second variant with a `Duration`, say) grows every
    /// task cell, and can move it to a larger pool class.
    #[test]
    fn a_cancelled_is_two_words() {
        assert_eq!(std::mem::size_of::<Cancelled>(), 16);
        assert_eq!(std::mem::size_of::<Result<(), Cancelled>>(), 16);
    }

    #[test]
    fn cancel_cell_keeps_the_first_reason_and_round_trips_every_reason() {
        let reasons = [
            CancelReason::Explicit,
            CancelReason::Ancestor,
            CancelReason::LinkedChild,
            CancelReason::Deadline {
                after: Duration::from_millis(1500),
            },
            CancelReason::Panicked,
            CancelReason::Failed,
            CancelReason::Lost,
            CancelReason::ScopeDropped,
            CancelReason::ScopeEnded,
            CancelReason::Shutdown,
            CancelReason::DaemonStopped,
            CancelReason::GraceExpired,
        ];
        let cause: Cause = Arc::new(std::io::Error::other("why"));
        for reason in reasons {
            let cell = CancelCell::unpublished();
            assert!(!cell.is_set() && cell.is_unpublished_and_clear());
            assert_eq!(cell.get(), None);
            assert!(cell.claim(&reason, Some(&cause)));
            assert!(!cell.claim(&CancelReason::Explicit, None));
            assert!(!cell.claim(&CancelReason::Shutdown, None));
            assert!(cell.is_set() && cell.has_cause());
            assert!(!cell.is_unpublished_and_clear());
            assert_eq!(cell.get(), Some(Cancelled::new(reason.clone())));
            cell.published();
            assert_eq!(cell.get(), Some(Cancelled::new(reason)), "the reason stays");
        }
    }
}
