//! [`NodeRef`]: a counted reference to a scope node, whose memory comes
//! from the opening thread's pool.
//!
//! A node lives in a [`NodeBox`]: a reference count, then the node. The box
//! is a chunk of the pools (`pool/`), or a `Box` where the runtime does not
//! pool (Miri, loom, a thread that is exiting). A node freed on another
//! thread goes back to the pool it came from by that pool's remote list.
//!
//! The count is `Arc`'s: a reference is taken `Relaxed` (whoever takes one
//! holds one already) and given up `Release`, and the last one acquires
//! before it frees, so the thread that frees the node sees every other
//! holder's last access. Who holds one: the *tree reference* (the scope
//! future's, or, once the future is dropped, the tree's own, given up by
//! whoever retires the node: invariant 2), each child (its parent), each
//! handle (`Scope`, `CancelHandle`, `WaitCancelled`), a deadline's timer,
//! and a walk's stack while the node waits on it.
//!
//! **Rule "pointers from the box".** A raw pointer to a node (in a child list,
//! a task's binding, the current-scope thread-local, a walk's stack) is made
//! by [`NodeRef::as_ptr`] or [`NodeRef::into_raw`], never from a `&Node`: it
//! then carries the whole box's provenance, so that [`NodeRef::clone_raw`] and
//! [`NodeRef::from_raw`] may reach the count in front of the node.
//!
//! A handle counts, so a slot is never reused under a handle: a handle
//! whose scope has ended reads that scope's final state, truthfully and for
//! good (a cancelled scope stays cancelled). Slab keys with generations
//! would let a slot be reused under a stale handle, and then nothing would
//! be left to say whether the scope it named was cancelled (ARCHITECTURE.md,
//! "Counted handles, not generations").

use super::Node;
#[cfg(not(cancel_scope_tsan))]
use crate::loom::sync::atomic::fence;
use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};
use crate::pool;
use std::alloc::Layout;
use std::ops::Deref;
use std::ptr::NonNull;

/// A counted reference to a node; see the module docs.
pub(crate) struct NodeRef(NonNull<NodeBox>);

/// A node's memory: its count, where the memory came from, and the node.
#[repr(C)]
struct NodeBox {
    refs: AtomicUsize,
    pooled: bool,
    node: Node,
}

// SAFETY: a node is `Send + Sync` (its mutable parts are behind its lock,
// its counts atomic), and the count decides who frees it.
unsafe impl Send for NodeRef {}
// SAFETY: as for `Send`: `&NodeRef` gives `&Node` and clones.
unsafe impl Sync for NodeRef {}

/// The pools' class for a node box, if it fits one.
const CLASS: Option<usize> = pool::class_of(Layout::new::<NodeBox>());

/// More references than this is a runaway clone loop (as `Arc` aborts).
const MAX_REFS: usize = isize::MAX as usize;

impl NodeRef {
    /// A node built in memory of its own by `fill`, with a count of one:
    /// the reference returned. Built in place: a node is a few cache lines,
    /// and moving one in would copy them.
    ///
    /// # Safety
    ///
    /// `fill` initializes every field of the node it is given.
    #[inline(always)]
    pub(super) unsafe fn new_in_place(fill: impl FnOnce(*mut Node)) -> NodeRef {
        let pooled = match CLASS {
            Some(class) if pool::ENABLED => pool::alloc(class),
            _ => None,
        };
        let boxed = match pooled {
            Some(chunk) => chunk.cast::<NodeBox>(),
            None => {
                let layout = Layout::new::<NodeBox>();
                // SAFETY: a node box is not zero-sized.
                let memory = unsafe { std::alloc::alloc(layout) };
                match NonNull::new(memory.cast::<NodeBox>()) {
                    Some(boxed) => boxed,
                    None => std::alloc::handle_alloc_error(layout),
                }
            }
        };
        let at = boxed.as_ptr();
        // SAFETY: the memory is ours, sized and aligned for a box (its
        // class fits the box: `class_of`); `fill` writes the node.
        unsafe {
            std::ptr::addr_of_mut!((*at).refs).write(AtomicUsize::new(1));
            std::ptr::addr_of_mut!((*at).pooled).write(pooled.is_some());
            fill(std::ptr::addr_of_mut!((*at).node));
        }
        NodeRef(boxed)
    }

    /// The node's address, for the raw pointers of rule "pointers from the
    /// box".
    pub(crate) fn as_ptr(&self) -> NonNull<Node> {
        // SAFETY: the box is alive (we hold a count); the field's address
        // keeps the box pointer's provenance.
        unsafe { NonNull::new_unchecked(std::ptr::addr_of_mut!((*self.0.as_ptr()).node)) }
    }

    /// Gives up the reference as a pointer, still counted.
    pub(super) fn into_raw(self) -> NonNull<Node> {
        let ptr = self.as_ptr();
        std::mem::forget(self);
        ptr
    }

    /// Takes over a count given up by [`into_raw`](NodeRef::into_raw).
    ///
    /// # Safety
    ///
    /// `node` came from `into_raw` (rule "pointers from the box"), and its
    /// count is given to the new reference.
    pub(super) unsafe fn from_raw(node: NonNull<Node>) -> NodeRef {
        // SAFETY: rule "pointers from the box": the pointer is to the `node`
        // field of a live box, with the box's provenance.
        NodeRef(unsafe { box_of(node) })
    }

    /// A new reference to the live node at `node`.
    ///
    /// # Safety
    ///
    /// The node is alive (the caller holds a count, or a lock or rule that
    /// keeps it), and `node` follows rule "pointers from the box".
    pub(crate) unsafe fn clone_raw(node: NonNull<Node>) -> NodeRef {
        // SAFETY: the caller's contract.
        let boxed = unsafe { box_of(node) };
        // SAFETY: the box is alive.
        increment(unsafe { &boxed.as_ref().refs });
        NodeRef(boxed)
    }

    /// Whether two references are to the same node.
    pub(crate) fn ptr_eq(a: &NodeRef, b: &NodeRef) -> bool {
        a.0 == b.0
    }

    /// Frees the box (its count is zero): drops the node, then gives the
    /// memory back. Returns the node's parent reference, which it held,
    /// for the caller to give up: so a long chain of parents is freed by a
    /// loop, not by recursion.
    ///
    /// # Safety
    ///
    /// The count is zero: nobody else can reach the box.
    #[cold]
    unsafe fn free(boxed: NonNull<NodeBox>) -> Option<NodeRef> {
        // SAFETY: the caller's contract; the box is ours alone.
        let node = unsafe { &mut (*boxed.as_ptr()).node };
        node.drop_user_values();
        let parent = node.take_parent();
        // SAFETY: as above; each field is dropped once.
        let pooled = unsafe {
            let pooled = (*boxed.as_ptr()).pooled;
            std::ptr::drop_in_place(boxed.as_ptr());
            pooled
        };
        if pooled {
            // SAFETY: the box came from `pool::alloc` in `new_in_place`, and is not
            // used again.
            unsafe { pool::free(boxed.cast()) };
        } else {
            // SAFETY: the box came from the global allocator with this
            // layout in `new_in_place`; its fields are dropped, so only the
            // memory goes.
            unsafe { std::alloc::dealloc(boxed.as_ptr().cast(), Layout::new::<NodeBox>()) };
        }
        parent
    }
}

impl Clone for NodeRef {
    fn clone(&self) -> NodeRef {
        // SAFETY: we hold a count, so the box is alive.
        increment(unsafe { &self.0.as_ref().refs });
        NodeRef(self.0)
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        let mut next = Some(self.0);
        while let Some(boxed) = next {
            // SAFETY: we hold a count on `boxed`, given up here.
            if unsafe { boxed.as_ref() }.refs.fetch_sub(1, Release) != 1 {
                return;
            }
            // The last reference: see every other holder's last access.
            // ThreadSanitizer does not model fences; under it, an acquiring
            // load of the count (zero, the value we wrote) does the same.
            #[cfg(not(cancel_scope_tsan))]
            fence(Acquire);
            #[cfg(cancel_scope_tsan)]
            // SAFETY: we held the last count; the box is alive until freed.
            unsafe { boxed.as_ref() }.refs.load(Acquire);
            // SAFETY: the count is zero.
            next = unsafe { NodeRef::free(boxed) }.map(NodeRef::into_box);
        }
    }
}

impl NodeRef {
    /// Gives up the reference as its box pointer, still counted (for the
    /// loop in `drop`).
    fn into_box(self) -> NonNull<NodeBox> {
        let boxed = self.0;
        std::mem::forget(self);
        boxed
    }
}

impl Deref for NodeRef {
    type Target = Node;

    fn deref(&self) -> &Node {
        // SAFETY: we hold a count, so the box and its node are alive.
        unsafe { &(*self.0.as_ptr()).node }
    }
}

fn increment(refs: &AtomicUsize) {
    if refs.fetch_add(1, Relaxed) > MAX_REFS {
        std::process::abort();
    }
}

/// The box a node lives in.
///
/// # Safety
///
/// `node` follows rule "pointers from the box": it points to the `node` field
/// of a box, with the box's provenance.
unsafe fn box_of(node: NonNull<Node>) -> NonNull<NodeBox> {
    // SAFETY: the caller's contract: the box starts `node_offset()` bytes
    // before the node.
    unsafe { NonNull::new_unchecked(node.as_ptr().cast::<u8>().sub(node_offset()).cast()) }
}

/// Where the node lies in its box (`offset_of!` is newer than the crate's
/// minimum Rust).
fn node_offset() -> usize {
    let boxed = std::mem::MaybeUninit::<NodeBox>::uninit();
    let base = boxed.as_ptr();
    // SAFETY: only the field's address is taken, never read.
    let field = unsafe { std::ptr::addr_of!((*base).node) };
    field as usize - base as usize
}
