//! [`WakeList`]: wakers collected under a lock, to be woken after it.
//!
//! The common case is one waker (a scope future), so the first lives
//! inline: the cheapest cancel (an empty scope) allocates nothing. A longer
//! list spills into a buffer that each thread keeps from its last long
//! list.

use crate::panic::wake_contained;
use std::cell::Cell;
use std::task::Waker;

/// A list that grew longer than this keeps its buffer for the next list
/// that spills on the same thread: a large cancel collects a waker per
/// scope, and growing that buffer each time, then freeing it, adds a few
/// reallocations to every large cancel (and the free of a large buffer
/// makes glibc consolidate the chunks of every task the cancel just
/// freed).
const KEEP: usize = 64;

thread_local! {
    /// The kept buffer, empty; at most one per thread. Reached with
    /// `try_with` only: a runtime dropped by another thread-local's
    /// destructor may cancel after this one is gone.
    static SPARE: Cell<Vec<Waker>> = const { Cell::new(Vec::new()) };
}

/// A list of wakers, the first stored inline. `rest` is empty while
/// `first` is `None`.
#[derive(Default)]
pub(crate) struct WakeList {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl WakeList {
    #[inline]
    pub(crate) fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            if self.rest.capacity() == 0 {
                // `wake_all` gives it back. During thread teardown the
                // kept buffer may be gone already: start a fresh one.
                self.rest = SPARE.try_with(Cell::take).unwrap_or_default();
            }
            self.rest.push(waker);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Wakes every waker, in the order they were pushed. A waker that
    /// panics does not stop the others; see [`wake_contained`].
    #[inline]
    pub(crate) fn wake_all(self) {
        let Some(first) = self.first else { return };
        wake_contained(first);
        if self.rest.capacity() != 0 {
            Self::wake_rest(self.rest);
        }
    }

    fn wake_rest(mut rest: Vec<Waker>) {
        for waker in rest.drain(..) {
            wake_contained(waker);
        }
        if rest.capacity() > KEEP {
            // Fails only during thread teardown; the buffer is then freed.
            let _ = SPARE.try_with(|spare| {
                let kept = spare.take();
                spare.set(if kept.capacity() > rest.capacity() {
                    kept
                } else {
                    rest
                });
            });
        }
    }
}

impl Extend<Waker> for WakeList {
    fn extend<I: IntoIterator<Item = Waker>>(&mut self, wakers: I) {
        for waker in wakers {
            self.push(waker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    #[test]
    fn wakes_every_waker_inline_and_spilled() {
        let woken = Arc::new(AtomicUsize::new(0));
        let mut list = WakeList::default();
        for _ in 0..5 {
            let woken = woken.clone();
            list.push(waker_fn::waker_fn(move || {
                woken.fetch_add(1, SeqCst);
            }));
        }
        assert_eq!(list.rest.len(), 4);
        list.wake_all();
        assert_eq!(woken.load(SeqCst), 5);
    }
}
