//! [`WakeList`]: wakers collected under a lock, to be woken after it.
//!
//! The common case is one or two wakers (a scope future, a waiter), so the
//! first few live inline and only a long list allocates; the cheapest
//! cancel (an empty scope) then allocates nothing.

use crate::task::Panic;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;

/// Wakes `waker`, catching a panic from it. A waker is user code; when the
/// runtime calls one outside any task's poll (a timer, a cancel walk) there
/// is nobody to hand its panic to, and letting it unwind would lose the
/// wakes after it or take down a worker, so callers contain it.
pub(crate) fn wake_catching(waker: Waker) -> Option<Panic> {
    catch_unwind(AssertUnwindSafe(|| waker.wake())).err()
}

/// How many wakers fit without allocating: one cancel usually wakes a
/// scope future and perhaps a waiter or two.
const INLINE: usize = 4;

/// A list of wakers, the first [`INLINE`] of them stored inline.
#[derive(Default)]
pub(crate) struct WakeList {
    inline: [Option<Waker>; INLINE],
    spill: Vec<Waker>,
}

impl WakeList {
    pub(crate) fn push(&mut self, waker: Waker) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(waker),
            None => self.spill.push(waker),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inline[0].is_none()
    }

    /// Wakes every waker, in the order they were pushed. A waker that
    /// panics does not stop the others; see [`wake_catching`].
    pub(crate) fn wake_all(self) {
        for waker in self.inline.into_iter().flatten().chain(self.spill) {
            drop(wake_catching(waker));
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
        for _ in 0..INLINE + 3 {
            let woken = woken.clone();
            list.push(waker_fn::waker_fn(move || {
                woken.fetch_add(1, SeqCst);
            }));
        }
        assert_eq!(list.spill.len(), 3);
        list.wake_all();
        assert_eq!(woken.load(SeqCst), INLINE + 3);
    }
}
