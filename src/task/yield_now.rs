//! [`yield_now`]: give other tasks a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields once to the scheduler: the current task goes to the back of its
/// worker's run queue and other ready tasks run first.
///
/// It does not spend the task's budget (see
/// [`consume_budget`](super::consume_budget)): it always ends the poll, and
/// the next poll starts with a full budget. Nor does it need to look for
/// a cancel: the poll it ends is where a cancelled task is dropped. Where
/// a loop only needs to yield *now and then*, `consume_budget` is cheaper.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, task::yield_now};
///
/// runtime::block_on(async {
///     yield_now().await;
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
