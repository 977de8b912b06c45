//! The child lists: a node's children are an intrusive doubly linked list
//! through the children's `siblings`, its head in the parent's locked state
//! (the roots' list: in `Roots`). Linking and unlinking allocate nothing
//! and cost a few pointer writes.
//!
//! Every function here follows rule "siblings under the parent's lock"
//! (`mod.rs`): the caller holds the lock that guards the list.

use super::Node;
use std::ptr::NonNull;

/// A node's neighbours in its parent's child list.
#[derive(Clone, Copy, Default)]
pub(super) struct Siblings {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
}

/// Links `node` at the head of the list that starts at `head`.
///
/// # Safety
///
/// The caller holds the lock that guards this list, and `node` is a live
/// node in no list, its pointer made by rule "pointers from the box".
pub(super) unsafe fn link_first(head: &mut Option<NonNull<Node>>, node: NonNull<Node>) {
    let next = head.replace(node);
    // SAFETY: the caller's contract; the list's lock covers the links.
    unsafe { node.as_ref() }
        .siblings
        .with_mut(|s| unsafe { *s = Siblings { prev: None, next } });
    if let Some(next) = next {
        // SAFETY: `next` was in the list, so alive (invariant 2), and the
        // list's lock covers its links.
        unsafe { next.as_ref() }
            .siblings
            .with_mut(|s| unsafe { (*s).prev = Some(node) });
    }
}

/// Unlinks `node` from the list that starts at `head`.
///
/// # Safety
///
/// The caller holds the lock that guards this list, and `node` is in it.
pub(super) unsafe fn unlink(head: &mut Option<NonNull<Node>>, node: &Node) {
    // SAFETY: the caller holds the list's lock.
    let Siblings { prev, next } = node.siblings.with(|s| unsafe { *s });
    match prev {
        // SAFETY: neighbours in the list are alive (invariant 2).
        Some(prev) => unsafe { prev.as_ref() }
            .siblings
            .with_mut(|s| unsafe { (*s).next = next }),
        None => *head = next,
    }
    if let Some(next) = next {
        // SAFETY: as above.
        unsafe { next.as_ref() }
            .siblings
            .with_mut(|s| unsafe { (*s).prev = prev });
    }
}

/// Iterates a child list, newest first.
///
/// # Safety
///
/// The caller holds the lock that guards the list while it uses the
/// iterator and the nodes it yields.
pub(super) unsafe fn children(first: Option<NonNull<Node>>) -> impl Iterator<Item = NonNull<Node>> {
    std::iter::successors(first, |node| {
        // SAFETY: the caller's contract: the list is locked, its nodes
        // alive (invariant 2).
        unsafe { node.as_ref() }
            .siblings
            .with(|s| unsafe { (*s).next })
    })
}
