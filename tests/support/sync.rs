//! Small tools to stage a test: a countdown that sets an `Event`, a task
//! that reports it is parked, a future that reports its first suspension,
//! and shared places to carry values out of a scope.

use cancel_scope::sync::Event;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};

/// A boxed, sendable future, for recursive task trees and lists of
/// futures of different types.
pub type BoxFuture<T = ()> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Sets an [`Event`] once `n` parties have arrived.
#[derive(Debug, Clone)]
pub struct Countdown {
    left: Arc<AtomicUsize>,
    done: Event,
}

impl Countdown {
    /// Waits for `n` arrivals (`n == 0` is already done).
    pub fn new(n: usize) -> Countdown {
        let done = Event::new();
        if n == 0 {
            done.set();
        }
        Countdown {
            left: Arc::new(AtomicUsize::new(n)),
            done,
        }
    }

    /// One party arrived.
    pub fn arrive(&self) {
        if self.left.fetch_sub(1, SeqCst) == 1 {
            self.done.set();
        }
    }

    /// Resolves once everyone arrived.
    pub async fn wait(&self) {
        self.done.wait().await
    }

    /// Whether everyone arrived.
    pub fn is_done(&self) -> bool {
        self.done.is_set()
    }
}

/// Marks that the current poll of a task has been entered, then parks the
/// task forever (it registers no waker).
pub async fn arrive_and_park(countdown: Countdown) {
    countdown.arrive();
    std::future::pending::<()>().await
}

/// Wraps a future and sends one message the first time it returns
/// `Pending`: by then it has registered its waker, so whatever it waits
/// for must now wake it rather than be seen at the first poll.
#[derive(Debug)]
pub struct FirstPending<F> {
    inner: Pin<Box<F>>,
    tx: Option<mpsc::Sender<()>>,
}

/// See [`FirstPending`].
pub fn first_pending<F: Future>(fut: F, tx: mpsc::Sender<()>) -> FirstPending<F> {
    FirstPending {
        inner: Box::pin(fut),
        tx: Some(tx),
    }
}

impl<F: Future> Future for FirstPending<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let polled = self.inner.as_mut().poll(cx);
        if polled.is_pending() {
            if let Some(tx) = self.tx.take() {
                let _ = tx.send(());
            }
        }
        polled
    }
}

/// A place to carry one value (a handle, a result) out of a scope.
#[derive(Debug)]
pub struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Arc::new(Mutex::new(None)))
    }
}

impl<T> Slot<T> {
    /// An empty slot.
    pub fn new() -> Slot<T> {
        Slot::default()
    }

    /// Stores `value`, replacing what was there.
    pub fn put(&self, value: T) {
        *self.0.lock().unwrap() = Some(value);
    }

    /// Takes the value out; panics if there is none.
    pub fn take(&self) -> T {
        self.0
            .lock()
            .unwrap()
            .take()
            .expect("the slot should hold a value")
    }

    /// Whether the slot holds a value.
    pub fn is_some(&self) -> bool {
        self.0.lock().unwrap().is_some()
    }
}

/// A shared, ordered log of events, or a bag of values (such as task
/// handles) to carry out of a scope.
#[derive(Debug)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T> Log<T> {
    /// An empty log.
    pub fn new() -> Log<T> {
        Log::default()
    }

    /// Appends an entry.
    pub fn push(&self, entry: T) {
        self.0.lock().unwrap().push(entry);
    }

    /// Takes every entry out.
    pub fn drain(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Clone> Log<T> {
    /// A copy of the entries so far.
    pub fn entries(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}
