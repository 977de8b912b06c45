//! [`Cancelled`]: the value a cancelled scope or task completes with.
//!
//! Cancellation is not an error in this runtime: a scope that was cancelled
//! completes normally, with `Err(Cancelled)` as its output, and the value says
//! why it stopped.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::*};
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
/// [`CancelReason::LinkedChild`]. Reading it is one atomic load (two for
/// a deadline); [`is_cancelled`](crate::Scope::is_cancelled) is one.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, CancelReason};
///
/// let out = runtime::block_on(scope(|s| async move {
///     s.cancel();
/// }));
/// let cancelled = out.unwrap_err();
/// assert_eq!(cancelled.reason(), &CancelReason::Explicit);
/// assert_eq!(cancelled.to_string(), "cancelled: cancel() was called on this scope");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    reason: CancelReason,
}

/// What set a cancellation off. See [`Cancelled`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// `cancel()` was called on this scope (or on a [`CancelHandle`](crate::CancelHandle) to it).
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
    /// other tasks and resumes the panic once they have all ended.
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
    /// The runtime was shut down while the task was still alive.
    Shutdown,
}

impl Cancelled {
    pub(crate) fn new(reason: CancelReason) -> Cancelled {
        Cancelled { reason }
    }

    /// Why the scope or task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelReason};
    ///
    /// let err = runtime::block_on(scope(|s| async move { s.cancel() })).unwrap_err();
    /// assert!(matches!(err.reason(), CancelReason::Explicit));
    /// ```
    pub fn reason(&self) -> &CancelReason {
        &self.reason
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled: {}", self.reason)
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
        }
    }
}

impl std::error::Error for Cancelled {}

/// A scope's cancellation, read without a lock: a reason code, and the
/// duration that [`CancelReason::Deadline`] carries.
///
/// Written at most once, by the tree under its lock; so a plain store is
/// enough, and a reader that sees the code (`Acquire`) sees the duration
/// stored before it.
pub(crate) struct CancelCell {
    /// 0 until cancelled, then the reason's code (see [`CancelCell::code`]).
    code: AtomicU8,
    /// `Deadline { after }`, in nanoseconds.
    after_nanos: AtomicU64,
}

impl CancelCell {
    pub(crate) const fn new() -> CancelCell {
        CancelCell {
            code: AtomicU8::new(0),
            after_nanos: AtomicU64::new(0),
        }
    }

    /// Whether the scope is cancelled. One atomic load.
    pub(crate) fn is_set(&self) -> bool {
        self.code.load(Acquire) != 0
    }

    /// The reason, if cancelled.
    pub(crate) fn get(&self) -> Option<Cancelled> {
        let reason = match self.code.load(Acquire) {
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
            _ => CancelReason::Shutdown,
        };
        Some(Cancelled::new(reason))
    }

    /// Records `reason` unless a reason is recorded already (the first one
    /// stays). The caller holds the tree lock: no two writers race.
    pub(crate) fn set(&self, reason: &CancelReason) {
        if self.code.load(Relaxed) != 0 {
            return;
        }
        if let CancelReason::Deadline { after } = reason {
            let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
            self.after_nanos.store(nanos, Relaxed);
        }
        self.code.store(Self::code(reason), Release);
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for reason in reasons {
            let cell = CancelCell::new();
            assert!(!cell.is_set());
            assert_eq!(cell.get(), None);
            cell.set(&reason);
            cell.set(&CancelReason::Explicit);
            cell.set(&CancelReason::Shutdown);
            assert!(cell.is_set());
            assert_eq!(cell.get(), Some(Cancelled::new(reason)));
        }
    }
}
