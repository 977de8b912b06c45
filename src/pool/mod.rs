//! Per-thread pools of fixed-size chunks: the memory of tasks and of scope
//! nodes.
//!
//! Every thread that spawns a task or opens a scope has a [`heap`](heap::Heap)
//! of its own: for each size class, pages of [`PAGE_SIZE`](page::PAGE_SIZE)
//! bytes cut into chunks of that size (`page.rs`). Allocating is a pop from
//! the current page's free list, or the next never-used chunk of it; no
//! lock, no atomic. Freeing finds the chunk's page from its address
//! (pages are aligned to their size) and, through the page, its heap:
//!
//! - on the heap's own thread, a push on the page's free list;
//! - on any other thread, one atomic push on the class's remote list
//!   (`remote.rs`), which the owner files into its pages when it next
//!   runs out of room in that class, when it parks ([`drain`]), and when
//!   it exits.
//!
//! So the thread that allocates a task (the spawner) and the one that
//! frees it (a worker, a canceller) never share a lock, and the common
//! free costs a few plain stores.
//!
//! # Memory goes back
//!
//! A page whose chunks are all free goes back to the system, but for one
//! kept per class for reuse, so that a burst of tasks does not leave the
//! process holding the burst's memory. Pages are 1 MiB: the system
//! allocator's slack around an aligned block (the headers it writes
//! beside it) is then a sliver of the resident set, not a seventh.
//!
//! # Threads come and go
//!
//! A heap outlives its thread: a task allocated by a thread that has since
//! exited may still be freed. An exiting thread files its remote frees, gives
//! its empty pages back, and leaves its heap on an orphan list; the next
//! thread that needs a heap adopts it (rule "one owner per heap" in
//! `heap.rs`). A heap is never freed.
//!
//! # Checkers
//!
//! With `CANCEL_SCOPE_NO_POOL` set in its environment, a process does not
//! pool either: every task and node is a block of the global allocator,
//! which a counting allocator (the leak test's) then sees one by one.
//!
//! Under Miri and the loom models the runtime does not pool
//! ([`ENABLED`]): every task and node is a `Box`, so that Miri checks each
//! as its own allocation (the pool's own unit tests still run under
//! Miri). Under AddressSanitizer (`--cfg cancel_scope_asan`) free chunks
//! are poisoned, so a use after free of a pooled task is reported as it
//! would be for a boxed one (`asan.rs`).
//!
//! # Why pools
//!
//! The global allocator was the largest single cost of every hot path
//! (a spawn, a task's end, a scope's open and end), and a task allocated
//! by one thread and freed by another made glibc's arenas work hardest.
//! The price: a chunk freed elsewhere waits on its owner's remote list
//! until the owner runs out of room in that class, parks or exits. The
//! one shared line of a cross-thread free is the owner's remote list of
//! that class: 63 workers finishing tasks that one thread spawned contend
//! on it as they would on a single allocator arena, while tasks spawned by
//! tasks spread over the workers' own heaps.

mod asan;
mod heap;
mod page;
mod remote;

use heap::is_current;
use page::Page;
use std::alloc::Layout;
use std::ptr::NonNull;

/// Whether the runtime allocates its tasks and nodes from the pools: not
/// under Miri (it checks each `Box` as an allocation of its own) nor in
/// the loom models (whose threads are not the pools' threads).
pub(crate) const ENABLED: bool = !cfg!(miri) && !cfg!(cancel_scope_loom);

/// The chunk sizes, in bytes: steps of 8 to 128 (where most task cells
/// fall, so that rounding wastes at most 7 bytes a task), then of 16 to
/// 256, of 32 to 512 and of 64 to 1024. Larger cells go to the global
/// allocator.
const CLASS_SIZES: [usize; NUM_CLASSES] = {
    let mut sizes = [0; NUM_CLASSES];
    let mut i = 0;
    while i < NUM_CLASSES {
        sizes[i] = if i < 15 {
            16 + 8 * i
        } else if i < 23 {
            128 + 16 * (i - 14)
        } else if i < 31 {
            256 + 32 * (i - 22)
        } else {
            512 + 64 * (i - 30)
        };
        i += 1;
    }
    sizes
};
const NUM_CLASSES: usize = 39;

/// The largest alignment a chunk may need: a chunk's address is a
/// multiple of its size's largest power of two, up to this (pages and
/// their first chunk are aligned to a cache line).
const CHUNK_ALIGN: usize = 16;

/// The class of chunks that fit `layout`, if any: the smallest at least as
/// large whose chunks are aligned enough (a size that is a multiple of the
/// alignment keeps every chunk of a page aligned). A compile-time constant
/// for a type's layout.
pub(crate) const fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CHUNK_ALIGN || layout.size() > CLASS_SIZES[NUM_CLASSES - 1] {
        return None;
    }
    let mut i = 0;
    while CLASS_SIZES[i] < layout.size() || CLASS_SIZES[i] % layout.align() != 0 {
        i += 1;
    }
    Some(i)
}

/// A chunk of `class` (from [`class_of`]), from this thread's
/// heap; `None` while the thread exits, or if the system is out of memory
/// (the caller then falls back to the global allocator).
#[inline]
pub(crate) fn alloc(class: usize) -> Option<NonNull<u8>> {
    let heap = heap::current()?;
    heap.class(class).alloc(heap)
}

/// Frees a chunk that [`alloc`] returned, from any thread.
///
/// # Safety
///
/// `chunk` came from [`alloc`], is not used after this call, and is freed
/// once.
#[inline]
pub(crate) unsafe fn free(chunk: NonNull<u8>) {
    let page = Page::of(chunk);
    // SAFETY: the chunk is out, so its page is alive; `heap` and `class`
    // are fixed for the page's life, and heaps are never freed.
    let (heap, class) = unsafe { ((*page.as_ptr()).heap, &*(*page.as_ptr()).class) };
    if is_current(heap) {
        // SAFETY: rule "one owner per heap": this thread owns the page's heap;
        // the caller gives the chunk up.
        unsafe { class.free_local(page, chunk) };
    } else {
        // SAFETY: the caller gives the chunk up (rule "a pushed chunk is the
        // owner's"); nobody else touches it until its owner takes it.
        unsafe {
            asan::poison(chunk.as_ptr(), (*page.as_ptr()).size());
            class.remote.push(chunk.cast());
        }
    }
}

/// Whether `CANCEL_SCOPE_NO_POOL` turns pooling off in this process (read
/// once).
fn disabled_by_env() -> bool {
    static DISABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var_os("CANCEL_SCOPE_NO_POOL").is_some())
}

/// Files the chunks other threads freed to this thread's heap, so that
/// pages they emptied go back to the system. Called by a thread about to
/// park: a worker with nothing to do, a `block_on` waiting.
pub(crate) fn drain() {
    if !ENABLED {
        return;
    }
    if let Some(heap) = heap::current_if_any() {
        heap.drain();
    }
}

#[cfg(test)]
mod tests;
