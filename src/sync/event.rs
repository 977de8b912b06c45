//! [`Event`]: a flag that tasks can wait for, like `asyncio.Event`.

use crate::task::budget;
use parking_lot::Mutex;
use slab::Slab;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

/// A flag that starts unset; [`wait`](Event::wait) resolves once it is set.
///
/// Cloning an `Event` gives another handle to the same flag.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, sync::Event};
///
/// let ready = Event::new();
/// let out = runtime::block_on(scope(|s| {
///     let ready = ready.clone();
///     async move {
///         let waiter = s.spawn({
///             let ready = ready.clone();
///             async move { ready.wait().await; "woken" }
///         });
///         ready.set();
///         waiter.await
///     }
/// }));
/// assert_eq!(out, Ok(Ok("woken")));
/// assert!(ready.is_set());
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    set: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// Registered wakers. `set` empties the slab and bumps `epoch`, so a key
/// from an older epoch never touches a newer waiter's slot.
#[derive(Default)]
struct Waiters {
    epoch: u64,
    wakers: Slab<Waker>,
}

/// The future returned by [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait {
    inner: Arc<Inner>,
    /// `(epoch, slab key)` of our registered waker.
    key: Option<(u64, usize)>,
}

impl Event {
    /// A new, unset event.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!cancel_scope::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Panics
    ///
    /// If a waiter's waker panics: every waiter is still woken, then the
    /// first such panic resumes here.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = cancel_scope::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn set(&self) {
        self.inner.set.store(true, SeqCst);
        let wakers = {
            let mut waiters = self.inner.waiters.lock();
            waiters.epoch += 1;
            std::mem::take(&mut waiters.wakers)
        };
        // Every waiter is woken even if one's waker panics; the first
        // panic then resumes here, in the caller of `set`.
        let mut first_panic = None;
        for (_, waker) in wakers {
            if let Some(panic) = crate::panic::wake_catching(waker) {
                first_panic.get_or_insert(panic);
            }
        }
        if let Some(panic) = first_panic {
            std::panic::resume_unwind(panic);
        }
    }

    /// Resets the flag; later calls to `wait` wait again.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = cancel_scope::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.inner.set.store(false, SeqCst);
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!cancel_scope::sync::Event::new().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.inner.set.load(SeqCst)
    }

    /// Waits until the flag is set (at once if it already is).
    ///
    /// Ready at once, it spends a unit of the task's
    /// [budget](crate::task::consume_budget); in a task (or scope body)
    /// that has been cancelled it never completes: the task is dropped at
    /// this `.await`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, sync::Event};
    ///
    /// let e = Event::new();
    /// e.set();
    /// runtime::block_on(e.wait());
    /// ```
    pub fn wait(&self) -> EventWait {
        EventWait {
            inner: self.inner.clone(),
            key: None,
        }
    }
}

impl Future for EventWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A leaf of the budget (`task/budget.rs`): in a cancelled poll it
        // stays `Pending`, and a spent budget makes it yield.
        let permit = ready!(budget::poll_proceed(cx));
        permit.settle(self.poll_set(cx))
    }
}

impl EventWait {
    /// Ready if the flag is set, else registers `cx`'s waker.
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.set.load(SeqCst) {
            self.deregister();
            return Poll::Ready(());
        }
        let inner = self.inner.clone();
        let mut waiters = inner.waiters.lock();
        // Checked again under the lock: `set` stores the flag before it
        // takes the waiters, so either we see it or it sees our waker.
        if inner.set.load(SeqCst) {
            drop(waiters);
            self.deregister();
            return Poll::Ready(());
        }
        let epoch = waiters.epoch;
        match self.key {
            Some((e, key)) if e == epoch => {
                let waker = &mut waiters.wakers[key];
                if !waker.will_wake(cx.waker()) {
                    let old = std::mem::replace(waker, cx.waker().clone());
                    drop(waiters);
                    drop(old);
                }
            }
            _ => {
                let key = waiters.wakers.insert(cx.waker().clone());
                drop(waiters);
                self.key = Some((epoch, key));
            }
        }
        Poll::Pending
    }

    fn deregister(&mut self) {
        if let Some((epoch, key)) = self.key.take() {
            let waker = {
                let mut waiters = self.inner.waiters.lock();
                if waiters.epoch == epoch {
                    waiters.wakers.try_remove(key)
                } else {
                    None
                }
            };
            drop(waker);
        }
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

impl fmt::Debug for EventWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("set", &self.inner.set.load(SeqCst))
            .finish()
    }
}
