//! A scope's deadline: a timer plus a check (invariant 7).

use super::{Deadline, Links, Node, NodeRef};
use crate::cancelled::CancelReason;
use crate::trace::EventKind;
use std::time::{Duration, Instant};

impl Node {
    /// The deadline, if the scope has one and is not cancelled.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let st = self.state.lock();
        st.rare.as_ref().and_then(|r| r.deadline).map(|d| d.at)
    }
}

impl NodeRef {
    /// Sets or moves the scope's deadline to `at`, which is `after` from
    /// when it was asked for: a timer whose waker asks the node to check
    /// it. Publishes the scope (invariant 2). The timer holds a reference
    /// to the node until it fires or is removed (when the deadline moves,
    /// the scope is cancelled, or it ends).
    pub(crate) fn set_deadline(&self, at: Instant, after: Duration) {
        self.publish();
        let timers = &self.shared().timers;
        let node = self.clone();
        let waker = waker_fn::waker_fn(move || node.deadline_passed());
        let (timer, earliest) = timers.insert(at, waker);
        if earliest {
            self.shared().timer_set(at);
        }
        let due = self.with(|st, later| {
            let over = self.life.load().phase() == super::life::Phase::Removed;
            if over || self.cancelled.is_set() {
                later.remove_timer(timers, timer);
                return false;
            }
            let old = st.rare().deadline.replace(Deadline { at, after, timer });
            if let Some(old) = old {
                later.remove_timer(timers, old.timer);
            }
            at <= timers.now()
        });
        if due {
            self.cancel(CancelReason::Deadline { after }, Links::Follow);
        }
    }

    /// A deadline timer fired (invariant 7).
    fn deadline_passed(&self) {
        let now = self.shared().timers.now();
        let due = {
            let st = self.state.lock();
            st.rare
                .as_ref()
                .and_then(|r| r.deadline)
                .filter(|d| d.at <= now)
        };
        if let Some(deadline) = due {
            self.shared()
                .record(|| EventKind::DeadlineFired { scope: self.id() });
            let reason = CancelReason::Deadline {
                after: deadline.after,
            };
            self.cancel(reason, Links::Follow);
        }
    }
}
