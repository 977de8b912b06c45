//! Time: [`sleep`], [`timeout`] and the clock. Scopes with deadlines are
//! the scope module's: [`move_on_after`](crate::move_on_after),
//! [`Scope::cancel_after`](crate::Scope::cancel_after).
//!
//! Timers are driven by the runtime's workers (`timers.rs`); the clock is
//! real time, or a virtual clock for a runtime built with
//! [`Builder::start_paused`](crate::runtime::Builder::start_paused)
//! (`clock.rs`). A [`Sleep`] that is dropped (for example because its task
//! was cancelled) removes its timer at once.

pub(crate) mod clock;
pub(crate) mod pace;
pub(crate) mod timers;

use crate::runtime::Shared;
use crate::task::budget;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use timers::TimerKey;

/// The current time on this runtime's clock: real time, or virtual time
/// on a runtime built with
/// [`start_paused`](crate::runtime::Builder::start_paused).
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, time};
///
/// let t = runtime::block_on(async { time::now() });
/// assert!(t <= std::time::Instant::now());
/// ```
pub fn now() -> Instant {
    crate::runtime::context::current_runtime().timers.now()
}

/// How far ahead "never" is: a duration too long to add to an `Instant`
/// (such as `Duration::MAX`) means this far instead, about 30 years, as
/// tokio does.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + duration`, saturating at [`FAR_FUTURE`] from now.
pub(crate) fn after(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration.min(FAR_FUTURE))
        .unwrap_or(now + FAR_FUTURE)
}

/// Waits until `duration` has passed on the runtime's clock.
///
/// Once the time has passed, the `.await` spends a unit of the task's
/// [budget](crate::task::consume_budget); in a task (or scope body) that
/// has been cancelled it never completes: the task is dropped there.
///
/// The sleep belongs to the runtime that first polls it: built outside a
/// runtime and awaited in one (even a runtime with a paused clock), it
/// counts `duration` from its first poll, on that runtime's clock.
///
/// # Panics
///
/// When polled outside any runtime (not in a task, a scope's body or a
/// `block_on`): there is no clock to wait on.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, time::sleep};
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// runtime::block_on(sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        when: When::After(duration),
        shared: None,
        key: None,
    }
}

/// Waits until `deadline` on the clock of the runtime that first polls it
/// (see [`sleep`]).
///
/// # Panics
///
/// When polled outside any runtime.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, time::{self, sleep_until}};
/// use std::time::Duration;
///
/// runtime::block_on(async {
///     let deadline = time::now() + Duration::from_millis(5);
///     sleep_until(deadline).await;
///     assert!(time::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        when: When::At(deadline),
        shared: None,
        key: None,
    }
}

/// Runs `future`, giving up once `duration` has passed: `Err(Elapsed)`
/// then, and the future is dropped.
///
/// Like [`sleep`], it spends a unit of the task's
/// [budget](crate::task::consume_budget) when it is ready, even when
/// `future` is always ready, and never completes in a cancelled task.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, time::{sleep, timeout}};
/// use std::time::Duration;
///
/// let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(60)));
/// assert!(runtime::block_on(slow).is_err());
/// let fast = timeout(Duration::from_secs(60), async { 5 });
/// assert_eq!(runtime::block_on(fast), Ok(5));
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        // Boxed, so that `Timeout` is `Unpin` whatever `F` is, and polls
        // it without pin projection.
        future: Box::pin(future),
        sleep: sleep(duration),
        duration,
    }
}

/// The error of a [`timeout`] that ran out.
///
/// # Examples
///
/// It is an error type like any other: `?` turns it into a
/// `Box<dyn Error>`.
///
/// ```
/// use cancel_scope::{runtime, time::{sleep, timeout, Elapsed}};
/// use std::time::Duration;
///
/// async fn fetch() -> Result<u32, Box<dyn std::error::Error>> {
///     timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))).await?;
///     Ok(42)
/// }
/// let err = runtime::block_on(fetch()).unwrap_err();
/// assert!(err.is::<Elapsed>());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    duration: Duration,
}

impl Elapsed {
    /// The timeout that passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, time::{sleep, timeout}};
    /// use std::time::Duration;
    ///
    /// let d = Duration::from_millis(1);
    /// let err = runtime::block_on(timeout(d, sleep(Duration::from_secs(9)))).unwrap_err();
    /// assert_eq!(err.duration(), d);
    /// assert_eq!(err.to_string(), "deadline of 1ms passed");
    /// ```
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline of {:?} passed", self.duration)
    }
}

impl std::error::Error for Elapsed {}

/// The future returned by [`timeout`].
///
/// # Examples
///
/// A `Timeout` is `Unpin` whatever it wraps, so it can be polled by
/// reference, in a loop that keeps it across iterations:
///
/// ```
/// use cancel_scope::{runtime, time::{sleep, timeout}};
/// use futures_lite::future;
/// use std::time::Duration;
///
/// runtime::block_on(async {
///     let mut overall = timeout(Duration::from_millis(20), sleep(Duration::from_secs(60)));
///     let mut ticks = 0;
///     loop {
///         match future::or(async { Some((&mut overall).await) }, async {
///             sleep(Duration::from_millis(1)).await;
///             None
///         })
///         .await
///         {
///             Some(result) => break assert!(result.is_err() && ticks > 0),
///             None => ticks += 1,
///         }
///     }
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: Sleep,
    duration: Duration,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A leaf of the budget (`task/budget.rs`), even when the future it
        // runs is always ready: in a cancelled poll it stays `Pending`, and
        // a spent budget makes it yield.
        let permit = ready!(budget::poll_proceed(cx));
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return permit.settle(Poll::Ready(Ok(v)));
        }
        let duration = self.duration;
        let elapsed = self.sleep.poll_elapsed(cx);
        permit.settle(elapsed.map(|()| Err(Elapsed { duration })))
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// # Examples
///
/// A `Sleep` registers its timer at its first poll, and a dropped one
/// takes it back: a sleep that lost a race costs nothing afterwards.
///
/// ```
/// use cancel_scope::{runtime, time::{self, sleep}};
/// use futures_lite::future;
/// use std::time::Duration;
///
/// runtime::block_on(async {
///     let start = time::now();
///     let first = future::or(async { sleep(Duration::from_secs(60)).await; "slow" }, async {
///         sleep(Duration::from_millis(5)).await;
///         "fast"
///     });
///     assert_eq!(first.await, "fast");
///     assert!(time::now() - start < Duration::from_secs(60));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    when: When,
    /// The runtime that first polled it.
    shared: Option<Arc<Shared>>,
    key: Option<TimerKey>,
}

/// When a [`Sleep`] ends: an instant, or a duration from its first poll.
#[derive(Clone, Copy, Debug)]
enum When {
    At(Instant),
    After(Duration),
}

impl Sleep {
    /// The instant this sleep ends. For a [`sleep`] not polled yet, that is
    /// `duration` from now on the clock of the runtime this thread is in
    /// (the real clock outside any runtime): its first poll fixes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::time::sleep_until;
    /// use std::time::Instant;
    ///
    /// let t = Instant::now();
    /// assert_eq!(sleep_until(t).deadline(), t);
    /// ```
    pub fn deadline(&self) -> Instant {
        match self.when {
            When::At(at) => at,
            When::After(d) => {
                let now = crate::runtime::context::runtime_of_this_thread()
                    .map_or_else(Instant::now, |s| s.timers.now());
                after(now, d)
            }
        }
    }

    /// Binds the sleep to the runtime polling it, at its first poll.
    fn bind(&mut self) -> &Arc<Shared> {
        if self.shared.is_none() {
            let shared = crate::runtime::context::runtime_of_this_thread().expect(
                "cancel_scope::time: a `Sleep` (or `timeout`) was polled outside any runtime; \
                 await it in a task, a scope's body or a `block_on`",
            );
            if let When::After(d) = self.when {
                self.when = When::At(after(shared.timers.now(), d));
            }
            self.shared = Some(shared);
        }
        self.shared.as_ref().expect("bound above")
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A leaf of the budget (`task/budget.rs`), even once the deadline
        // has passed: in a cancelled poll it stays `Pending`, and a spent
        // budget makes it yield.
        let permit = ready!(budget::poll_proceed(cx));
        permit.settle(self.poll_elapsed(cx))
    }
}

impl Sleep {
    /// Ready once the deadline has passed, else registers `cx`'s waker
    /// with a timer.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.bind().clone();
        let When::At(deadline) = self.when else {
            unreachable!("`bind` fixed the deadline")
        };
        let timers = &shared.timers;
        if timers.now() >= deadline {
            if let Some(key) = self.key.take() {
                timers.remove(key);
            }
            return Poll::Ready(());
        }
        match self.key {
            Some(key) => {
                if !timers.update(key, cx.waker()) {
                    // It fired, but our clock read came first: look again.
                    self.key = None;
                    cx.waker().wake_by_ref();
                }
            }
            None => {
                let (key, earliest) = timers.insert(deadline, cx.waker().clone());
                if earliest {
                    shared.timer_set(deadline);
                }
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(key), Some(shared)) = (self.key.take(), &self.shared) {
            shared.timers.remove(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("when", &self.when).finish()
    }
}
