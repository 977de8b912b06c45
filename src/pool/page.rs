//! A page of a pool: one block of [`PAGE_SIZE`] bytes, aligned to its size,
//! cut into chunks of one class.
//!
//! The alignment is what lets a free find its page, and through it the
//! owning heap and class, from the chunk's address alone
//! ([`Page::of`]): no chunk carries a header, so a pooled task is no
//! bigger than its cell rounded up to its class.
//!
//! ```text
//!  page (64 KiB, aligned to 64 KiB)
//!  ┌────────────┬─────────┬─────────┬─────┬───────────────────────────┐
//!  │ Page header│ chunk 0 │ chunk 1 │ ... │ never used yet (`bump` on) │
//!  └────────────┴─────────┴─────────┴─────┴───────────────────────────┘
//! ```
//!
//! A page hands out its local free list first, then chunks it never used
//! (the *bump* area), so a new page touches its memory only as it fills.

use super::asan;
use super::heap::{Class, Heap};
use super::remote::FreeChunk;
use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::{self, NonNull};

/// The size of a page, and its alignment. Large enough that the header
/// is a small share of it for the largest class (1 KiB: 63 chunks) and
/// that a thread's pages are few; small enough that a burst's pages,
/// once empty, go back to the system one by one.
pub(crate) const PAGE_SIZE: usize = 1024 * 1024;

/// Where chunk 0 starts: the header, rounded up to a cache line, so that
/// the owner's writes to the header do not share a line with chunk 0.
const FIRST_CHUNK: usize = (std::mem::size_of::<Page>() + 63) & !63;

/// The header at the start of every page.
///
/// `heap` and `class` are fixed for the page's life, and read by any thread
/// that frees a chunk of it. The rest is the owner's alone (**rule "one owner
/// per heap"**, `heap.rs`): only the thread that owns `heap` touches it.
#[repr(C)]
pub(super) struct Page {
    /// The heap this page belongs to.
    pub(super) heap: *const Heap,
    /// Its class in that heap.
    pub(super) class: *const Class,
    /// The chunk size.
    size: usize,
    /// How many chunks fit.
    capacity: usize,
    /// Chunks handed out and not yet freed back here (a remote free counts
    /// once the owner files it).
    used: Cell<usize>,
    /// Chunks `bump..capacity` were never handed out.
    bump: Cell<usize>,
    /// The local free list.
    free: Cell<*mut FreeChunk>,
    /// The class's list of pages with room (`listed`).
    pub(super) prev: Cell<*mut Page>,
    pub(super) next: Cell<*mut Page>,
    pub(super) listed: Cell<bool>,
}

impl Page {
    /// A new, empty page for `class` of `heap`, or `None` if the system
    /// has no memory left.
    pub(super) fn new(heap: *const Heap, class: &Class) -> Option<NonNull<Page>> {
        // SAFETY: the layout's size is not zero.
        let block = NonNull::new(unsafe { std::alloc::alloc(layout()) })?;
        let page = block.cast::<Page>();
        let size = class.size;
        // SAFETY: the block is ours, aligned and large enough for a header.
        unsafe {
            page.as_ptr().write(Page {
                heap,
                class,
                size,
                capacity: (PAGE_SIZE - FIRST_CHUNK) / size,
                used: Cell::new(0),
                bump: Cell::new(0),
                free: Cell::new(ptr::null_mut()),
                prev: Cell::new(ptr::null_mut()),
                next: Cell::new(ptr::null_mut()),
                listed: Cell::new(false),
            });
        }
        // Nothing past the header is anyone's yet.
        // SAFETY: within the block.
        asan::poison(
            unsafe { block.as_ptr().add(FIRST_CHUNK) },
            PAGE_SIZE - FIRST_CHUNK,
        );
        Some(page)
    }

    /// Gives an empty page back to the system.
    ///
    /// # Safety
    ///
    /// `page` came from [`Page::new`], every chunk of it is free, and no
    /// other thread will read it again: it is on no list, and no chunk of
    /// it is on a remote list.
    pub(super) unsafe fn release(page: NonNull<Page>) {
        let block = page.cast::<u8>().as_ptr();
        asan::unpoison(block, PAGE_SIZE);
        // SAFETY: the caller's contract; allocated with this layout.
        unsafe { std::alloc::dealloc(block, layout()) };
    }

    /// The page a chunk lives in. The pointer is the chunk's, moved back
    /// to the page's start, so it keeps the page block's provenance.
    pub(super) fn of(chunk: NonNull<u8>) -> NonNull<Page> {
        let offset = chunk.as_ptr() as usize & (PAGE_SIZE - 1);
        let base = chunk.as_ptr().wrapping_sub(offset).cast::<Page>();
        // SAFETY: a chunk lies past its page's header, within the block.
        unsafe { NonNull::new_unchecked(base) }
    }

    /// Hands out a chunk (the owner), or `None` if the page is full.
    /// `was_empty` says whether the page had no chunk out before.
    ///
    /// # Safety
    ///
    /// `page` is a live page owned by the calling thread (rule "one owner per
    /// heap"), with the provenance of its whole block (as [`Page::new`] and
    /// [`Page::of`] give).
    pub(super) unsafe fn take(page: NonNull<Page>) -> Option<(NonNull<u8>, bool)> {
        // SAFETY: the caller's contract; only `Cell`s are written.
        let this = unsafe { page.as_ref() };
        let head = this.free.get();
        let chunk = match NonNull::new(head) {
            Some(chunk) => {
                // SAFETY: rule "one owner per heap"; the free list's chunks
                // are this page's and free, their links written by
                // `give_back`.
                this.free.set(unsafe { asan::read_link(chunk) });
                chunk.cast::<u8>()
            }
            None => {
                let i = this.bump.get();
                if i == this.capacity {
                    return None;
                }
                this.bump.set(i + 1);
                // SAFETY: within the page's block, past the header; the
                // block pointer's provenance covers it.
                unsafe {
                    NonNull::new_unchecked(
                        page.as_ptr().cast::<u8>().add(FIRST_CHUNK + i * this.size),
                    )
                }
            }
        };
        let used = this.used.get();
        this.used.set(used + 1);
        asan::unpoison(chunk.as_ptr(), this.size);
        Some((chunk, used == 0))
    }

    /// Files a freed chunk in the local free list (the owner); returns
    /// whether the page is now empty.
    ///
    /// # Safety
    ///
    /// `chunk` is a chunk of this page handed out by [`take`](Page::take)
    /// and freed, and the caller owns it now.
    pub(super) unsafe fn give_back(&self, chunk: NonNull<u8>) -> bool {
        asan::poison(chunk.as_ptr(), self.size);
        // SAFETY: the caller owns the chunk; its first word is the link.
        unsafe { asan::write_link(chunk.cast(), self.free.get()) };
        self.free.set(chunk.as_ptr().cast());
        let used = self.used.get() - 1;
        self.used.set(used);
        used == 0
    }

    /// Whether no chunk of the page is out.
    pub(super) fn is_empty(&self) -> bool {
        self.used.get() == 0
    }

    /// The chunk size.
    pub(super) fn size(&self) -> usize {
        self.size
    }
}

fn layout() -> Layout {
    Layout::from_size_align(PAGE_SIZE, PAGE_SIZE).expect("a valid page layout")
}
