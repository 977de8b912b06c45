//! A thread's [`Heap`]: one [`Class`] per chunk size and family, each with
//! its pages, and the thread-local that says which heap is this thread's.
//!
//! **Rule "one owner per heap".** A heap has one owner at a time: the thread
//! whose thread-local names it. Only the owner touches a class's page list and
//! counts, and a page's free list and counts (`page.rs`); other threads touch
//! a heap only through its classes' remote lists (`remote.rs`). A heap changes
//! owner only through the orphan list: a thread that exits files everything it
//! can, gives its empty pages back, and leaves its heap there; the next thread
//! to need a heap adopts it (the list's lock orders the old owner's writes
//! before the new owner's). Heaps are never freed, so a page's `heap` and
//! `class` pointers are always good.

use super::page::Page;
use super::remote::RemoteList;
use super::{asan, CLASS_SIZES, NUM_CLASSES};
use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::Mutex;

/// How many empty pages a class of the released family keeps for reuse
/// before it gives the next one back to the system: one, so that a
/// thread alternating between filling and emptying a page does not pay
/// the system allocator each time, while a burst's pages all go back.
const KEEP_EMPTY: usize = 1;

/// One thread's pools: a class per size.
pub(crate) struct Heap {
    classes: [Class; NUM_CLASSES],
}

// SAFETY: rule "one owner per heap": the owner-only fields (the `Cell`s of the
// classes and of their pages) are touched by one thread at a time, handed over
// through the orphan list's lock; the rest is atomic.
unsafe impl Sync for Heap {}
// SAFETY: as for `Sync`.
unsafe impl Send for Heap {}

/// The pages of one chunk size in one family, and the chunks other
/// threads freed back to them.
pub(crate) struct Class {
    pub(super) size: usize,
    /// Pages with room, most recently freed into first (rule "one owner per
    /// heap").
    avail: Cell<*mut Page>,
    /// Listed pages with no chunk out (rule "one owner per heap").
    empty: Cell<usize>,
    /// Pages this class holds, full or not (rule "one owner per heap").
    pages: Cell<usize>,
    /// Chunks freed by other threads.
    pub(super) remote: RemoteList,
}

/// Heaps whose thread has exited, waiting for a new owner. Touched when a
/// thread first allocates and when it exits, never on the way of an
/// allocation or a free.
static ORPHANS: Mutex<Vec<&'static Heap>> = Mutex::new(Vec::new());

/// What [`CURRENT`] holds once this thread's heap has been given up (the
/// thread is exiting): allocations then fall back to the global
/// allocator, and frees go to the remote lists.
const GONE: *const Heap = 1 as *const Heap;

thread_local! {
    /// This thread's heap: null before the first allocation, [`GONE`]
    /// once the thread is exiting. No destructor, so it stays readable
    /// while other thread-locals are destroyed (a task freed then).
    static CURRENT: Cell<*const Heap> = const { Cell::new(ptr::null()) };
    /// Gives the heap to the orphans when the thread exits.
    static OWNER: Owner = const { Owner };
}

/// The thread-local whose destructor orphans this thread's heap.
struct Owner;

impl Drop for Owner {
    fn drop(&mut self) {
        let heap = CURRENT.with(|c| c.replace(GONE));
        if !heap.is_null() && heap != GONE {
            // SAFETY: heaps are never freed, and this thread owned it.
            let heap: &'static Heap = unsafe { &*heap };
            heap.give_back_empty_pages();
            ORPHANS
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(heap);
        }
    }
}

/// This thread's heap, adopting or making one on first use; `None` while
/// the thread exits.
#[inline]
pub(super) fn current() -> Option<&'static Heap> {
    let heap = CURRENT.with(Cell::get);
    if heap.is_null() {
        return adopt();
    }
    if heap == GONE {
        return None;
    }
    // SAFETY: heaps are never freed, and the thread-local names the heap
    // this thread owns (rule "one owner per heap").
    Some(unsafe { &*heap })
}

/// This thread's heap, if it has one already (never makes one).
#[inline]
pub(super) fn current_if_any() -> Option<&'static Heap> {
    let heap = CURRENT.with(Cell::get);
    if heap.is_null() || heap == GONE {
        return None;
    }
    // SAFETY: as in `current`.
    Some(unsafe { &*heap })
}

/// Whether `heap` is this thread's.
#[inline]
pub(super) fn is_current(heap: *const Heap) -> bool {
    CURRENT.with(Cell::get) == heap
}

#[cold]
fn adopt() -> Option<&'static Heap> {
    if super::disabled_by_env() {
        // No pool on this thread: its allocations go to the global
        // allocator (the sentinel is the exiting thread's).
        CURRENT.with(|c| c.set(GONE));
        return None;
    }
    // Registering the destructor first: if the thread is already exiting
    // (its thread-locals being destroyed), there is nobody to give the
    // heap back, so it is not taken.
    OWNER.try_with(|_| ()).ok()?;
    let orphan = ORPHANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop();
    let heap = orphan.unwrap_or_else(|| Box::leak(Box::new(Heap::new())));
    CURRENT.with(|c| c.set(heap));
    Some(heap)
}

impl Heap {
    fn new() -> Heap {
        Heap {
            classes: std::array::from_fn(|i| Class::new(CLASS_SIZES[i])),
        }
    }

    pub(super) fn class(&self, index: usize) -> &Class {
        &self.classes[index]
    }

    /// Files every chunk other threads freed to this heap (the owner).
    pub(super) fn drain(&self) {
        for class in &self.classes {
            if !class.remote.is_empty() {
                class.drain(self);
            }
        }
    }

    /// Files the remote frees, and gives every empty page back to the
    /// system (the owner, exiting).
    fn give_back_empty_pages(&self) {
        self.drain();
        for class in &self.classes {
            let mut page = class.avail.get();
            while let Some(p) = NonNull::new(page) {
                // SAFETY: a listed page is alive (rule "one owner per heap").
                let (next, empty) = unsafe { (p.as_ref().next.get(), p.as_ref().is_empty()) };
                page = next;
                if empty {
                    class.unlist(p);
                    class.empty.set(class.empty.get() - 1);
                    class.pages.set(class.pages.get() - 1);
                    // SAFETY: empty, unlisted, and no chunk of it is on a
                    // remote list (all are free and filed).
                    unsafe { Page::release(p) };
                }
            }
        }
    }
}

impl Class {
    fn new(size: usize) -> Class {
        Class {
            size,
            avail: Cell::new(ptr::null_mut()),
            empty: Cell::new(0),
            pages: Cell::new(0),
            remote: RemoteList::new(),
        }
    }

    /// A chunk of this class (the owner), or `None` if the system has no
    /// memory for a new page.
    #[inline]
    pub(super) fn alloc(&self, heap: &Heap) -> Option<NonNull<u8>> {
        loop {
            if let Some(page) = NonNull::new(self.avail.get()) {
                // SAFETY: a listed page is alive, ours (rule "one owner per
                // heap"), and the list holds block pointers.
                match unsafe { Page::take(page) } {
                    Some((chunk, was_empty)) => {
                        if was_empty {
                            self.empty.set(self.empty.get() - 1);
                        }
                        return Some(chunk);
                    }
                    // Full: out of the way until a chunk comes back.
                    None => self.unlist(page),
                }
            } else {
                self.refill(heap)?;
            }
        }
    }

    /// No page has room: files the remote frees, or adds a page.
    #[cold]
    fn refill(&self, heap: &Heap) -> Option<()> {
        if !self.remote.is_empty() {
            self.drain(heap);
            if !self.avail.get().is_null() {
                return Some(());
            }
        }
        let page = Page::new(heap, self)?;
        self.list(page);
        self.empty.set(self.empty.get() + 1);
        self.pages.set(self.pages.get() + 1);
        Some(())
    }

    /// Takes a chunk back from its owner's thread.
    ///
    /// # Safety
    ///
    /// `page` is this class's page (a block pointer), owned by the calling
    /// thread, and `chunk` a chunk of it that was handed out and is now
    /// free.
    #[inline]
    pub(super) unsafe fn free_local(&self, page: NonNull<Page>, chunk: NonNull<u8>) {
        // SAFETY: the caller's contract.
        let (empty, listed) = unsafe {
            let p = page.as_ref();
            (p.give_back(chunk), p.listed.get())
        };
        if !listed {
            self.list(page);
        }
        if empty {
            self.page_emptied(page);
        }
    }

    /// A page of this class has no chunk out any more.
    #[cold]
    fn page_emptied(&self, page: NonNull<Page>) {
        if self.empty.get() >= KEEP_EMPTY {
            self.unlist(page);
            self.pages.set(self.pages.get() - 1);
            // SAFETY: empty, unlisted, and every chunk of it is filed (this
            // was the last).
            unsafe { Page::release(page) };
        } else {
            self.empty.set(self.empty.get() + 1);
        }
    }

    /// Files the chunks other threads freed (the owner).
    #[cold]
    fn drain(&self, heap: &Heap) {
        let mut chunk = self.remote.take_all();
        while let Some(c) = NonNull::new(chunk) {
            // SAFETY: taken from the remote list, so ours (rule "a pushed
            // chunk is the owner's"); its link was written by the push.
            chunk = unsafe { asan::read_link(c) };
            let page = Page::of(c.cast());
            // SAFETY: a chunk of a live page of this class (its page stays
            // while any chunk of it is out), owned by this heap.
            unsafe {
                debug_assert!(ptr::eq((*page.as_ptr()).heap, heap));
                self.free_local(page, c.cast());
            }
        }
    }

    /// Pages this class holds (the owner).
    #[cfg(test)]
    pub(super) fn pages(&self) -> usize {
        self.pages.get()
    }

    /// Puts `page` (a block pointer) first on the list of pages with room.
    fn list(&self, page: NonNull<Page>) {
        let head = self.avail.get();
        // SAFETY: rule "one owner per heap": our pages, alive while listed or
        // being listed.
        unsafe {
            page.as_ref().prev.set(ptr::null_mut());
            page.as_ref().next.set(head);
            if let Some(head) = NonNull::new(head) {
                head.as_ref().prev.set(page.as_ptr());
            }
            page.as_ref().listed.set(true);
        }
        self.avail.set(page.as_ptr());
    }

    fn unlist(&self, page: NonNull<Page>) {
        // SAFETY: rule "one owner per heap": our pages, alive while listed.
        unsafe {
            let p = page.as_ref();
            let (prev, next) = (p.prev.get(), p.next.get());
            match NonNull::new(prev) {
                Some(prev) => prev.as_ref().next.set(next),
                None => self.avail.set(next),
            }
            if let Some(next) = NonNull::new(next) {
                next.as_ref().prev.set(prev);
            }
            p.listed.set(false);
        }
    }
}
