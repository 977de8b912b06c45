//! [`TaskList`]: the tasks an owner can still cancel, as an intrusive list.
//!
//! Each task's header has two links; an owner (a scope) threads its tasks
//! through them, so listing a task allocates nothing, unlisting one is two
//! pointer writes, and taking the whole list (a cancel) is one. The list owns
//! one counted reference to each task on it (rule "every reference counts").
//!
//! **Rule "links belong to the list's holder".** A task's links are touched
//! only by the holder of the list it is on: its owner, under the owner's lock,
//! or whoever took the list out ([`TaskList::take_all`]), who then owns the
//! links of every task on it. A task is on one list at most.

use super::raw::{Header, Links, TaskRef};
use std::ptr::NonNull;

/// The tasks an owner can still cancel; see the module docs.
#[derive(Default)]
pub(crate) struct TaskList {
    head: Option<NonNull<Header>>,
    len: usize,
}

/// A task's identity while it lives (its address): what a task hands its
/// owner on release, to be unlisted, and names itself by in a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskId(NonNull<Header>);

// SAFETY: a list is its references to tasks (`TaskRef` is `Send`), and the
// links it follows are its own by rule "links belong to the list's holder".
unsafe impl Send for TaskList {}
// SAFETY: an id is only compared, printed and handed back to the list.
unsafe impl Send for TaskId {}

impl TaskList {
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Lists `task`, taking over its reference.
    pub(crate) fn push(&mut self, task: TaskRef) {
        let header = task.into_raw();
        // SAFETY: the list now owns the reference, so the task is alive; rule
        // "links belong to the list's holder": the task is on no list, and we
        // hold this one.
        unsafe {
            links(header).with_mut(|l| {
                *l = Links {
                    prev: None,
                    next: self.head,
                }
            });
            if let Some(next) = self.head {
                links(next).with_mut(|l| (*l).prev = Some(header));
            }
        }
        self.head = Some(header);
        self.len += 1;
    }

    /// Unlists the task `id` names and hands back the list's reference.
    ///
    /// # Safety
    ///
    /// The task is on this list.
    pub(crate) unsafe fn remove(&mut self, id: TaskId) -> TaskRef {
        let header = id.0;
        // SAFETY: the caller's contract: the task is listed here, so alive
        // (our reference) and, with its neighbours, ours by rule "links belong
        // to the list's holder".
        unsafe {
            let Links { prev, next } = links(header).with(|l| *l);
            match prev {
                Some(prev) => links(prev).with_mut(|l| (*l).next = next),
                None => self.head = next,
            }
            if let Some(next) = next {
                links(next).with_mut(|l| (*l).prev = prev);
            }
            self.len -= 1;
            TaskRef::from_raw(header)
        }
    }

    /// Takes every task off the list, leaving it empty; the returned list
    /// owns their links (rule "links belong to the list's holder").
    pub(crate) fn take_all(&mut self) -> TaskList {
        std::mem::take(self)
    }
}

impl Iterator for TaskList {
    type Item = TaskRef;

    /// Unlists the first task and hands back its reference.
    fn next(&mut self) -> Option<TaskRef> {
        let header = self.head?;
        // SAFETY: the task is the head of this list (rule "links belong to the
        // list's holder"), so alive and its links ours.
        unsafe {
            self.head = links(header).with(|l| (*l).next);
            if let Some(next) = self.head {
                links(next).with_mut(|l| (*l).prev = None);
            }
            self.len -= 1;
            Some(TaskRef::from_raw(header))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        for task in self {
            drop(task);
        }
    }
}

impl TaskId {
    pub(super) fn new(header: NonNull<Header>) -> TaskId {
        TaskId(header)
    }

    /// The number a trace names the task by.
    pub(crate) fn number(self) -> u64 {
        self.0.as_ptr() as usize as u64
    }
}

/// The links of the task at `header`.
///
/// # Safety
///
/// The task is alive, and the caller may touch its links (rule "links belong
/// to the list's holder").
unsafe fn links<'a>(header: NonNull<Header>) -> &'a crate::loom::cell::UnsafeCell<Links> {
    // SAFETY: the caller's contract.
    unsafe { &header.as_ref().links }
}
