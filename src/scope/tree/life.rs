//! A node's life word: what keeps a scope open, and the one change that
//! ends it.
//!
//! A scope is *drained* when its body has ended (returned, or its future
//! was dropped), no task of it is live and no child of it is in the tree
//! (invariant 2). It is *finished* when it is drained and nothing it owns
//! holds it any more: its daemons stopped, its cleanups run, its cancel
//! handlers returned (`DAEMONS`, `DEFERRED`, `HANDLING`). The counts and
//! flags that decide it live in one atomic word, so that each change is
//! one read-modify-write whose result says whether it drained or finished
//! the scope: exactly one change does each, and whoever made it acts (a
//! drain with something owned: the hook of `owned.rs`; a finish: settles
//! the node, waking its future or retiring it). So a task's release and a
//! cancel walk's drops need the node's lock only for the task list, never
//! to count. A scope that owns nothing is finished by the change that
//! drains it, as if these flags did not exist.
//!
//! | bits   | field         | set by                                      | cleared by |
//! |--------|---------------|---------------------------------------------|------------|
//! | 0..31  | tasks         | a spawn (+1, under the node's lock)         | a task's release (−1), a walk's drops (−n) |
//! | 31..55 | children      | a child's publication (+1, under this node's lock); the cleanup phase's scope (+1) | the child leaving (−1, same lock) |
//! | 55..57 | body          | `Running` at open; the scope future, once: `Done` or `Dropped` | never |
//! | 57..59 | phase         | `Unpublished` at open (but on a recording runtime); `Published`; `Cleaning` (its cleanups run); `Removed` (retired: terminal) | never |
//! | 59     | `INTERRUPTED` | a walk's drop, a release of a task the scope's cancel stopped, the future dropping its body at a cancel | never |
//! | 60     | `PANICKED`    | a panic stored in the node (under its lock) | the scope future taking it |
//! | 61     | `DAEMONS`     | the first daemon (its scope joins, under this node's lock) | the daemons' scope leaving (under this node's lock) |
//! | 62     | `DEFERRED`    | the first cleanup registered (under the node's lock) | the cleanup phase beginning |
//! | 63     | `HANDLING`    | a cancel walk that found cancel handlers (under the lock) | that walk, once they returned |
//!
//! Combinations that cannot occur: a task or a child while `Unpublished`
//! (a spawn and a child's publication publish the node first), nor
//! `DAEMONS`, `DEFERRED` or `HANDLING` (what sets them publishes first);
//! a task, `DEFERRED` or a second child while `Cleaning`; any change to
//! the counts once `Removed` (a spawn and a publication are refused once
//! the word is drained, by the same compare-and-swap that would add
//! them); `Removed` before finished.

use crate::loom::sync::atomic::{AtomicU64, Ordering::*};

/// Where the task count starts.
const TASKS_SHIFT: u32 = 0;
/// One live task.
const ONE_TASK: u64 = 1 << TASKS_SHIFT;
const TASKS: u64 = 0x7FFF_FFFF << TASKS_SHIFT;
/// Where the child count starts.
const CHILDREN_SHIFT: u32 = 31;
/// One child in the tree.
const ONE_CHILD: u64 = 1 << CHILDREN_SHIFT;
const CHILDREN: u64 = 0xFF_FFFF << CHILDREN_SHIFT;
const BODY_SHIFT: u32 = 55;
const BODY: u64 = 0b11 << BODY_SHIFT;
const PHASE_SHIFT: u32 = 57;
const PHASE: u64 = 0b11 << PHASE_SHIFT;
/// The phase bit that `Removed` and `Cleaning` share: the scope takes no
/// new task, cleanup or daemon.
const CLOSED: u64 = 0b10 << PHASE_SHIFT;
/// A cancel of the scope cut something short (its result is `Err`).
pub(super) const INTERRUPTED: u64 = 1 << 59;
/// A panic waits in the node for the scope future.
pub(super) const PANICKED: u64 = 1 << 60;
/// The scope has daemons: their scope (`daemons.rs`) is its child,
/// counted here rather than in `children`, so that the scope drains
/// without them; the drain stops them.
pub(super) const DAEMONS: u64 = 1 << 61;
/// Cleanups are registered (`cleanup.rs`) and their phase has not begun:
/// the drain begins it.
pub(super) const DEFERRED: u64 = 1 << 62;
/// A cancel walk runs the scope's cancel handlers (`handlers.rs`): the
/// scope does not finish before they return.
pub(super) const HANDLING: u64 = 1 << 63;
/// What a drain has to act on before the scope can finish.
const PENDING: u64 = DAEMONS | DEFERRED;

/// Where the scope's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// The scope future is alive and its body has not ended.
    Running = 0,
    /// The body ended; the scope future waits for tasks and children.
    Done = 1,
    /// The scope future was dropped before it finished; whoever finishes
    /// the scope retires it.
    Dropped = 2,
}

/// Whether the node is in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not linked in its parent's child list yet (invariant 2's
    /// publication rule).
    Unpublished = 0,
    /// In its parent's child list (or the roots).
    Published = 1,
    /// Left the tree; the node only answers stale handles now.
    Removed = 2,
    /// In the tree, drained, and running its cleanups (in a child scope of
    /// its own): it takes no new task.
    Cleaning = 3,
}

/// A copy of the life word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Life(u64);

/// The life word of one node.
pub(crate) struct LifeWord(AtomicU64);

impl Life {
    pub(crate) fn tasks(self) -> usize {
        ((self.0 & TASKS) >> TASKS_SHIFT) as usize
    }

    pub(crate) fn children(self) -> usize {
        ((self.0 & CHILDREN) >> CHILDREN_SHIFT) as usize
    }

    pub(crate) fn body(self) -> Body {
        match (self.0 & BODY) >> BODY_SHIFT {
            0 => Body::Running,
            1 => Body::Done,
            _ => Body::Dropped,
        }
    }

    pub(crate) fn phase(self) -> Phase {
        match (self.0 & PHASE) >> PHASE_SHIFT {
            0 => Phase::Unpublished,
            1 => Phase::Published,
            2 => Phase::Removed,
            _ => Phase::Cleaning,
        }
    }

    pub(crate) fn has(self, flag: u64) -> bool {
        self.0 & flag != 0
    }

    /// The body has ended and no task or child of the scope is left, and
    /// it has not been retired.
    #[inline]
    pub(crate) fn is_drained(self) -> bool {
        self.0 & (TASKS | CHILDREN) == 0
            && self.body() != Body::Running
            && self.phase() != Phase::Removed
    }

    /// Drained, and nothing it owns holds it (no daemon, cleanup or
    /// running cancel handler): it is ready to be retired.
    #[inline]
    pub(crate) fn is_finished(self) -> bool {
        self.0 & (TASKS | CHILDREN | PENDING | HANDLING) == 0
            && self.body() != Body::Running
            && self.phase() != Phase::Removed
    }

    fn with_body(self, body: Body) -> u64 {
        (self.0 & !BODY) | (body as u64) << BODY_SHIFT
    }

    fn with_phase(self, phase: Phase) -> u64 {
        (self.0 & !PHASE) | (phase as u64) << PHASE_SHIFT
    }
}

/// How the tasks counted gone by [`LifeWord::tasks_ended`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskExit {
    /// On their own: they completed, panicked, or were cancelled alone.
    Finished,
    /// The scope's cancel cut them short: the scope was interrupted.
    CutShort,
}

/// What a change did to the scope.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The scope goes on.
    Open,
    /// This change finished the scope: its maker settles the node.
    Finished,
    /// This change drained the scope, which owns daemons or cleanups: its
    /// maker acts on them, with no lock held (`NodeRef::drained`).
    Drained,
}

impl LifeWord {
    pub(crate) fn new(phase: Phase) -> LifeWord {
        LifeWord(AtomicU64::new(Life(0).with_phase(phase)))
    }

    pub(crate) fn load(&self) -> Life {
        Life(self.0.load(Acquire))
    }

    /// [`load`](LifeWord::load) as a read-modify-write, which reads the
    /// latest value and joins the release-acquire chain of the word's
    /// other read-modify-writes: the look at the phase after an unpublished
    /// cancel's mark (`cancel.rs`).
    pub(crate) fn load_latest(&self) -> Life {
        Life(self.0.fetch_or(0, AcqRel))
    }

    /// Applies `f` until the compare-and-swap succeeds; `f` gives the new
    /// word, or `None` to leave it. Returns the word before and after.
    fn update(&self, mut f: impl FnMut(Life) -> Option<u64>) -> Option<(Life, Life)> {
        let mut cur = self.0.load(Acquire);
        loop {
            let next = f(Life(cur))?;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return Some((Life(cur), Life(next))),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Counts a new task, unless the scope is drained, cleaning or
    /// retired (then `false`). The caller holds the node's lock and has
    /// published it.
    pub(crate) fn add_task(&self) -> bool {
        self.update(|w| {
            debug_assert_ne!(w.phase(), Phase::Unpublished);
            (!w.is_drained() && w.0 & CLOSED == 0).then(|| w.0 + ONE_TASK)
        })
        .is_some()
    }

    /// `n` tasks are gone (released, or dropped by a walk), each as `exit`
    /// says.
    pub(crate) fn tasks_ended(&self, n: usize, exit: TaskExit) -> Change {
        let sub = n as u64 * ONE_TASK;
        if exit == TaskExit::Finished {
            let prev = Life(self.0.fetch_sub(sub, AcqRel));
            debug_assert!(prev.tasks() >= n, "more tasks ended than lived");
            return finished_by(prev, Life(prev.0 - sub));
        }
        // One change, so that whoever finishes the scope sees the flag.
        let (prev, next) = self
            .update(|w| {
                debug_assert!(w.tasks() >= n, "more tasks ended than lived");
                Some((w.0 - sub) | INTERRUPTED)
            })
            .expect("always changes");
        finished_by(prev, next)
    }

    /// Counts a child published under this node, unless the scope is
    /// drained or retired (then `false`). The caller holds this node's
    /// lock.
    pub(crate) fn add_child(&self) -> bool {
        self.update(|w| (!w.is_drained() && w.phase() != Phase::Removed).then(|| w.0 + ONE_CHILD))
            .is_some()
    }

    /// A child left the tree (under this node's lock).
    pub(crate) fn child_left(&self) -> Change {
        let prev = Life(self.0.fetch_sub(ONE_CHILD, AcqRel));
        debug_assert!(prev.children() > 0);
        finished_by(prev, Life(prev.0 - ONE_CHILD))
    }

    /// The body ended (`Done`, once; `interrupted` if a cancel cut it
    /// short).
    pub(crate) fn body_done(&self, interrupted: bool) -> Change {
        let flag = if interrupted { INTERRUPTED } else { 0 };
        let (prev, next) = self
            .update(|w| {
                debug_assert_eq!(w.body(), Body::Running, "a body ends once");
                Some(w.with_body(Body::Done) | flag)
            })
            .expect("always changes");
        finished_by(prev, next)
    }

    /// The scope future was dropped unfinished: while its body ran, or
    /// after it ended while the future waited for the rest. In the second
    /// case the scope may be finished already, its finisher having only
    /// woken the future, which will not retire it now: then this change
    /// counts as the one that finished it.
    pub(crate) fn future_dropped(&self) -> Change {
        let (prev, next) = self
            .update(|w| Some(w.with_body(Body::Dropped)))
            .expect("always changes");
        if next.is_finished() && (!prev.is_finished() || prev.body() == Body::Done) {
            Change::Finished
        } else if next.is_drained() && !prev.is_drained() && next.0 & PENDING != 0 {
            Change::Drained
        } else {
            Change::Open
        }
    }

    /// Publishes the node, unless it is published already, finished (it
    /// has nothing a walk would need to reach, and its future retires it
    /// unpublished) or retired (`false`). The caller holds its parent's
    /// lock and its own.
    pub(crate) fn publish(&self) -> bool {
        self.update(|w| {
            (w.phase() == Phase::Unpublished && !w.is_drained())
                .then(|| w.with_phase(Phase::Published))
        })
        .is_some()
    }

    /// Retires a finished node; `false` if it is not finished (or someone
    /// else retired it). Returns the word as it was.
    pub(crate) fn retire(&self) -> Option<Life> {
        self.update(|w| w.is_finished().then(|| w.with_phase(Phase::Removed)))
            .map(|(prev, _)| prev)
    }

    /// Marks that the scope has cleanups (`DEFERRED`), unless it is
    /// drained, cleaning or retired (then `false`: too late). The caller
    /// holds the node's lock and has published it.
    pub(crate) fn defer(&self) -> bool {
        self.update(|w| (!w.is_drained() && w.0 & CLOSED == 0).then_some(w.0 | DEFERRED))
            .is_some()
    }

    /// The cleanup phase begins (its maker drained the scope with
    /// `DEFERRED`, and no daemon is left): the phase's scope is counted as
    /// a child, and the scope turns `Cleaning`, which refuses new tasks and
    /// cleanups. The caller holds the node's lock.
    pub(crate) fn begin_cleanups(&self) {
        let (prev, _) = self
            .update(|w| Some(((w.0 & !DEFERRED) + ONE_CHILD) | CLOSED))
            .expect("always changes");
        debug_assert!(prev.is_drained() && prev.has(DEFERRED) && !prev.has(DAEMONS));
        debug_assert_eq!(prev.phase(), Phase::Published);
    }

    /// Marks that the scope has a daemons' scope (`DAEMONS`), unless it is
    /// drained, cleaning or retired (then `false`). The caller holds the
    /// node's lock and has published it.
    pub(crate) fn add_daemons(&self) -> bool {
        self.update(|w| (!w.is_drained() && w.0 & CLOSED == 0).then_some(w.0 | DAEMONS))
            .is_some()
    }

    /// The daemons' scope left the tree, which it does only once the scope
    /// drained and stopped it: the scope finishes now, or begins its
    /// cleanups (`Drained`), or waits for its cancel handlers.
    pub(crate) fn daemons_left(&self) -> Change {
        let next = Life(self.0.fetch_and(!DAEMONS, AcqRel) & !DAEMONS);
        debug_assert!(next.is_drained());
        if next.is_finished() {
            Change::Finished
        } else if next.has(DEFERRED) {
            Change::Drained
        } else {
            Change::Open
        }
    }

    /// A walk is about to run the scope's cancel handlers: holds the scope
    /// open until they return (`HANDLING`), unless it is finished or
    /// retired already (then `false`: the handlers run all the same). The
    /// caller holds the node's lock.
    pub(crate) fn hold_for_handlers(&self) -> bool {
        self.update(|w| (!w.is_finished() && w.phase() != Phase::Removed).then_some(w.0 | HANDLING))
            .is_some()
    }

    /// The walk's cancel handlers returned: this change finishes the scope
    /// if nothing else holds it.
    pub(crate) fn handlers_done(&self) -> Change {
        let next = Life(self.0.fetch_and(!HANDLING, AcqRel) & !HANDLING);
        if next.is_finished() {
            Change::Finished
        } else {
            Change::Open
        }
    }

    /// Sets a flag bit (`INTERRUPTED`, `PANICKED`).
    pub(crate) fn set(&self, flag: u64) {
        self.0.fetch_or(flag, AcqRel);
    }

    /// Clears a flag bit (`PANICKED`).
    pub(crate) fn clear(&self, flag: u64) {
        self.0.fetch_and(!flag, AcqRel);
    }
}

/// What a change of the counts or the body did: the change that drains a
/// scope finishes it, unless the scope owns something that holds it (a
/// drain to act on, or handlers whose walk finishes it).
#[inline]
fn finished_by(prev: Life, next: Life) -> Change {
    if next.is_drained() && !prev.is_drained() {
        if next.0 & (PENDING | HANDLING) == 0 {
            Change::Finished
        } else if next.0 & PENDING != 0 {
            Change::Drained
        } else {
            Change::Open
        }
    } else {
        Change::Open
    }
}

impl std::fmt::Debug for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Life")
            .field("tasks", &self.tasks())
            .field("children", &self.children())
            .field("body", &self.body())
            .field("phase", &self.phase())
            .field("interrupted", &self.has(INTERRUPTED))
            .field("panicked", &self.has(PANICKED))
            .field("daemons", &self.has(DAEMONS))
            .field("deferred", &self.has(DEFERRED))
            .field("handling", &self.has(HANDLING))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_disjoint_and_cover_their_bits() {
        let fields = [
            TASKS,
            CHILDREN,
            BODY,
            PHASE,
            INTERRUPTED,
            PANICKED,
            DAEMONS,
            DEFERRED,
            HANDLING,
        ];
        for (i, a) in fields.iter().enumerate() {
            for b in &fields[i + 1..] {
                assert_eq!(a & b, 0, "{a:#x} overlaps {b:#x}");
            }
        }
        assert_eq!(ONE_TASK & TASKS, ONE_TASK);
        assert_eq!(ONE_CHILD & CHILDREN, ONE_CHILD);
        assert_eq!(
            fields.iter().fold(0, |all, f| all | f),
            u64::MAX,
            "every bit has a use"
        );
        assert_eq!(CLOSED & PHASE, CLOSED);
        assert_eq!(
            Life(Life(0).with_phase(Phase::Cleaning)).phase(),
            Phase::Cleaning
        );
        assert_eq!(
            Life(Life(0).with_phase(Phase::Removed)).phase(),
            Phase::Removed
        );
    }

    #[test]
    fn exactly_one_change_finishes_a_scope() {
        let life = LifeWord::new(Phase::Published);
        assert!(life.add_task());
        assert!(life.add_task());
        assert!(life.add_child());
        assert_eq!(life.tasks_ended(1, TaskExit::Finished), Change::Open);
        assert_eq!(life.body_done(false), Change::Open);
        assert_eq!(life.child_left(), Change::Open);
        assert_eq!(life.tasks_ended(1, TaskExit::CutShort), Change::Finished);
        let w = life.load();
        assert!(w.is_finished() && w.has(INTERRUPTED));
        // Finished: nothing may join it any more.
        assert!(!life.add_task());
        assert!(!life.add_child());
        assert_eq!(life.retire().map(|w| w.phase()), Some(Phase::Published));
        assert_eq!(life.retire(), None, "retired once");
        assert_eq!(life.load().phase(), Phase::Removed);
        assert!(!life.load().is_finished());
    }

    #[test]
    fn an_empty_unpublished_scope_finishes_with_its_body() {
        let life = LifeWord::new(Phase::Unpublished);
        assert_eq!(life.body_done(false), Change::Finished);
        assert!(life.retire().is_some());
        assert!(!life.publish(), "a retired node is not published");
    }

    #[test]
    fn a_drain_with_cleanups_begins_them_and_their_scope_finishes_it() {
        let life = LifeWord::new(Phase::Published);
        assert!(life.add_task());
        assert!(life.defer());
        assert_eq!(life.body_done(false), Change::Open);
        assert_eq!(
            life.tasks_ended(1, TaskExit::Finished),
            Change::Drained,
            "drained, held"
        );
        assert!(!life.load().is_finished());
        assert!(!life.add_task(), "a drained scope takes no task");
        assert!(!life.defer(), "nor a cleanup");
        life.begin_cleanups();
        let w = life.load();
        assert_eq!(
            (w.phase(), w.children(), w.has(DEFERRED)),
            (Phase::Cleaning, 1, false)
        );
        assert!(!life.add_task(), "a cleaning scope takes no task");
        assert!(!life.defer(), "nor a cleanup");
        assert_eq!(life.child_left(), Change::Finished);
        assert!(life.retire().is_some());
    }

    #[test]
    fn daemons_are_stopped_before_cleanups_begin() {
        let life = LifeWord::new(Phase::Published);
        assert!(life.add_daemons());
        assert!(life.defer());
        assert_eq!(life.body_done(false), Change::Drained);
        assert_eq!(life.daemons_left(), Change::Drained, "now the cleanups");
        life.begin_cleanups();
        assert_eq!(life.child_left(), Change::Finished);
    }

    #[test]
    fn running_handlers_hold_the_scope_until_they_return() {
        let life = LifeWord::new(Phase::Published);
        assert!(life.add_task());
        assert!(life.hold_for_handlers());
        assert_eq!(life.tasks_ended(1, TaskExit::CutShort), Change::Open);
        assert_eq!(life.body_done(true), Change::Open, "drained, but held");
        assert!(life.load().is_drained() && !life.load().is_finished());
        assert_eq!(life.handlers_done(), Change::Finished);
        assert!(!life.hold_for_handlers(), "a finished scope is not held");
    }
}
