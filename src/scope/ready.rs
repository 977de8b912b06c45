//! A readiness handshake: [`Scope::spawn_ready`], the task's [`Ready`]
//! signal, the caller's [`Starting`] future, and [`NotReady`].
//!
//! The task and its caller share one slot: the task's `Ready` fills it
//! (or closes it, if dropped unsent: the task ended, was dropped, or gave
//! up), and the caller's `Starting` waits on it. A value in the slot is
//! delivered whatever happens to the task afterwards; a slot closed empty
//! sends the caller to the task's `JoinHandle`, which says how it ended.

use super::tree::NodeRef;
use super::Scope;
use crate::cancelled::Cancelled;
use crate::task::JoinHandle;
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

impl Scope {
    /// Spawns a task that says when it is ready, and returns a future of
    /// the value it says it with (Trio's `nursery.start`).
    ///
    /// `start` is called at once with the task's [`Ready`] and returns the
    /// task's future, which is spawned into this scope (like
    /// [`spawn`](Scope::spawn)). The task calls [`Ready::send`] once it is
    /// ready (a listener bound, a connection made), and goes on as an
    /// ordinary task of the scope. The returned [`Starting`] resolves to
    /// the value and the task's [`JoinHandle`] for the rest of its work;
    /// or, if the task ends before it is ready, to [`NotReady`]: its
    /// output if it returned (a bind that failed), or the [`Cancelled`] if
    /// it was cancelled or panicked (the panic itself goes to the scope,
    /// as a task's does).
    ///
    /// # The rules
    ///
    /// - **Until it is ready, the task is the caller's.** Dropping the
    ///   `Starting` before the value came (a startup timeout, a caller
    ///   cancelled) cancels the task. Once the value came, the task is the
    ///   scope's: dropping the `Starting` drops the value and the handle,
    ///   and the task goes on.
    /// - **A value sent is delivered,** even if the task is cancelled or
    ///   ends right after: the caller gets the value, and the handle says
    ///   how the task ended.
    /// - **Dropping `Ready` without sending it** is giving up: the caller
    ///   then waits for the task's end, and gets `NotReady`.
    /// - The tree view counts the scope's tasks not yet ready
    ///   ([`ScopeSnapshot::tasks_not_ready`](crate::ScopeSnapshot::tasks_not_ready)).
    ///
    /// # Examples
    ///
    /// A server that must listen before its client starts:
    ///
    /// ```
    /// use async_io::Async;
    /// use cancel_scope::{runtime, scope};
    /// use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let (addr, server) = s
    ///         .spawn_ready(|ready| async move {
    ///             let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ///             ready.send(listener.get_ref().local_addr()?);
    ///             let (mut stream, _) = listener.accept().await?;
    ///             stream.write_all(b"hello").await?;
    ///             Ok::<_, std::io::Error>(())
    ///         })
    ///         .await
    ///         .expect("the server listens");
    ///     let mut client = Async::<TcpStream>::connect(addr).await.unwrap();
    ///     let mut greeting = [0; 5];
    ///     client.read_exact(&mut greeting).await.unwrap();
    ///     server.await.unwrap().unwrap();
    ///     greeting
    /// }));
    /// assert_eq!(&out.unwrap(), b"hello");
    /// ```
    ///
    /// A task that fails before it is ready hands its error to the caller:
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, NotReady};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let starting = s.spawn_ready(|ready: cancel_scope::Ready<u16>| async move {
    ///         let port: u16 = "not a port".parse().map_err(|_| "bad configuration")?;
    ///         ready.send(port);
    ///         Ok::<(), &str>(())
    ///     });
    ///     match starting.await {
    ///         Err(NotReady::Returned(Err(why))) => why,
    ///         _ => unreachable!(),
    ///     }
    /// }));
    /// assert_eq!(out, Ok("bad configuration"));
    /// ```
    pub fn spawn_ready<F, Fut, T>(&self, start: F) -> Starting<T, Fut::Output>
    where
        F: FnOnce(Ready<T>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Mutex::new(Slot {
            value: None,
            state: Stage::Waiting,
            waker: None,
        }));
        self.node.count_not_ready(1);
        let ready = Ready {
            slot: slot.clone(),
            scope: Some(self.node.clone()),
        };
        let handle = self.spawn(start(ready));
        Starting {
            slot,
            handle: Some(handle),
        }
    }
}

/// What the task and its caller share.
struct Slot<T> {
    value: Option<T>,
    state: Stage,
    /// The caller's, while it waits.
    waker: Option<Waker>,
}

/// Where the handshake is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing sent yet.
    Waiting,
    /// The task sent its value.
    Sent,
    /// The task's `Ready` was dropped unsent.
    Closed,
    /// The caller's `Starting` was dropped first.
    Abandoned,
}

/// The signal a task of [`Scope::spawn_ready`] gives when it is ready.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let (answer, task) = s
///         .spawn_ready(|ready| async move {
///             ready.send(42); // ready: the caller goes on
///             "then the rest of the work"
///         })
///         .await
///         .unwrap();
///     (answer, task.await.unwrap())
/// }));
/// assert_eq!(out, Ok((42, "then the rest of the work")));
/// ```
pub struct Ready<T> {
    slot: Arc<Mutex<Slot<T>>>,
    /// The scope whose count of tasks not ready includes this one.
    scope: Option<NodeRef>,
}

impl<T> Ready<T> {
    /// Says the task is ready, with `value` for the caller. If the caller
    /// has given up (its [`Starting`] was dropped), the value is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.spawn_ready(|ready| async move { ready.send("listening") }).await.unwrap().0
    /// }));
    /// assert_eq!(out, Ok("listening"));
    /// ```
    pub fn send(mut self, value: T) {
        let (waker, refused) = {
            let mut slot = self.slot.lock();
            if slot.state == Stage::Abandoned {
                (None, Some(value))
            } else {
                slot.value = Some(value);
                slot.state = Stage::Sent;
                (slot.waker.take(), None)
            }
        };
        self.counted_out();
        // Not under the slot's lock: either may run user code.
        drop(refused);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The task is not waiting to be ready any more.
    fn counted_out(&mut self) {
        if let Some(scope) = self.scope.take() {
            scope.count_not_ready(-1);
        }
    }
}

impl<T> Drop for Ready<T> {
    fn drop(&mut self) {
        if self.scope.is_none() {
            return; // sent
        }
        let waker = {
            let mut slot = self.slot.lock();
            if slot.state == Stage::Waiting {
                slot.state = Stage::Closed;
            }
            slot.waker.take()
        };
        self.counted_out();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Ready<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready").finish_non_exhaustive()
    }
}

/// The future returned by [`Scope::spawn_ready`]: the task's value and its
/// [`JoinHandle`] once it is ready, or why it never was.
///
/// Dropping it before the task is ready cancels the task; see
/// [`Scope::spawn_ready`].
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, time::timeout, NotReady};
/// use std::time::Duration;
///
/// let out = runtime::block_on(scope(|s| async move {
///     let starting = s.spawn_ready(|ready: cancel_scope::Ready<()>| async move {
///         std::future::pending::<()>().await; // never ready
///         ready.send(());
///     });
///     // A startup timeout: dropping `Starting` cancels the task.
///     timeout(Duration::from_millis(10), starting).await.is_err()
/// }));
/// assert_eq!(out, Ok(true));
/// ```
#[must_use = "dropping `Starting` before the task is ready cancels the task"]
pub struct Starting<T, R> {
    slot: Arc<Mutex<Slot<T>>>,
    /// `None` once this future completed.
    handle: Option<JoinHandle<R>>,
}

impl<T, R> Future for Starting<T, R> {
    type Output = Result<(T, JoinHandle<R>), NotReady<R>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        {
            let mut slot = this.slot.lock();
            if let Some(value) = slot.value.take() {
                let handle = this
                    .handle
                    .take()
                    .expect("`Starting` polled after it completed");
                return Poll::Ready(Ok((value, handle)));
            }
            if slot.state == Stage::Waiting {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        // Closed empty: the task ended, or gave up being ready. Its handle
        // says how it ends.
        let handle = this
            .handle
            .as_mut()
            .expect("`Starting` polled after it completed");
        let out = std::task::ready!(Pin::new(handle).poll(cx));
        this.handle = None;
        Poll::Ready(Err(match out {
            Ok(output) => NotReady::Returned(output),
            Err(cancelled) => NotReady::Cancelled(cancelled),
        }))
    }
}

impl<T, R> Drop for Starting<T, R> {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let (sent, value) = {
            let mut slot = self.slot.lock();
            if slot.state == Stage::Waiting {
                slot.state = Stage::Abandoned;
            }
            (slot.state == Stage::Sent, slot.value.take())
        };
        // Until it was ready, the task was this caller's.
        if !sent {
            handle.cancel();
        }
        drop(value);
    }
}

impl<T, R> fmt::Debug for Starting<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Starting")
            .field("done", &self.handle.is_none())
            .finish_non_exhaustive()
    }
}

/// Why a task of [`Scope::spawn_ready`] never said it was ready.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, supervisor_scope, CancelReason, NotReady, Ready};
///
/// // In a supervisor scope a task's panic stays with the task: the caller
/// // learns of it, and the scope goes on.
/// let out = runtime::block_on(supervisor_scope(|s| async move {
///     let starting = s.spawn_ready(|ready: Ready<u16>| async move {
///         let _unsent = ready;
///         panic!("bad configuration");
///     });
///     match starting.await {
///         Err(NotReady::Cancelled(why)) => why.reason().clone(),
///         _ => unreachable!(),
///     }
/// }));
/// assert_eq!(out, Ok(CancelReason::Panicked));
/// ```
#[derive(Debug)]
pub enum NotReady<R> {
    /// The task returned before it was ready: its output (often the
    /// error that kept it from getting ready).
    Returned(R),
    /// The task was cancelled or panicked before it was ready.
    Cancelled(Cancelled),
}

impl<R> fmt::Display for NotReady<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::Returned(_) => f.write_str("the task returned before it was ready"),
            NotReady::Cancelled(why) => write!(f, "the task stopped before it was ready: {why}"),
        }
    }
}

impl<R: fmt::Debug> std::error::Error for NotReady<R> {}
