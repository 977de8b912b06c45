//! [`RemoteList`]: chunks freed by other threads, on their way back to
//! the thread that owns them.
//!
//! A free from a thread that does not own the chunk is one atomic push
//! (compare-and-swap on the head); the owner takes the whole list in one
//! swap and files the chunks into their pages at leisure. There is no
//! single pop, so the list has no ABA problem: a push only ever links its
//! chunk in front of the head it saw, and that is right whatever happened
//! to the head meanwhile, as long as the compare-and-swap finds it still
//! there.
//!
//! **Rule "a pushed chunk is the owner's".** A chunk pushed here belongs to
//! the list from the push on: its pusher touches it no more. The push releases
//! and the owner's take acquires, so every access the freeing thread made to
//! the chunk's old contents happens before the owner reuses it.

use super::asan;
use crate::loom::sync::atomic::{AtomicPtr, Ordering::*};
use std::ptr::{self, NonNull};

/// A free chunk's first word: the next free chunk of its list.
#[repr(C)]
pub(super) struct FreeChunk {
    pub(super) next: *mut FreeChunk,
}

/// A list of chunks freed by threads other than their owner.
pub(super) struct RemoteList {
    head: AtomicPtr<FreeChunk>,
}

impl RemoteList {
    pub(super) fn new() -> RemoteList {
        RemoteList {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pushes a freed chunk (any thread).
    ///
    /// # Safety
    ///
    /// `chunk` is a free chunk of at least a word that the caller owns and
    /// gives up (rule "a pushed chunk is the owner's").
    pub(super) unsafe fn push(&self, chunk: NonNull<FreeChunk>) {
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: the caller owns the chunk until the exchange below
            // succeeds; the write is its link, seen by the owner after its
            // acquiring take.
            unsafe { asan::write_link(chunk, head) };
            match self
                .head
                .compare_exchange_weak(head, chunk.as_ptr(), Release, Relaxed)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Takes every chunk pushed so far (the owner), as a chain through
    /// their first words, or null.
    pub(super) fn take_all(&self) -> *mut FreeChunk {
        // A load first: the common "nothing freed from afar" case then
        // writes no shared line.
        if self.head.load(Relaxed).is_null() {
            return ptr::null_mut();
        }
        self.head.swap(ptr::null_mut(), Acquire)
    }

    /// Whether anything was pushed and not yet taken (a hint: a push may be
    /// on its way).
    pub(super) fn is_empty(&self) -> bool {
        self.head.load(Relaxed).is_null()
    }
}

#[cfg(all(test, cancel_scope_loom))]
mod loom_models {
    //! The remote-free list under loom: frees from two threads racing the
    //! owner's takes lose no chunk, file none twice, and hand each chunk
    //! over with its contents (rule "a pushed chunk is the owner's").

    use super::*;
    use crate::loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// A chunk: its link word first, then a payload its freer wrote.
    #[repr(C)]
    struct Chunk {
        link: FreeChunk,
        payload: UnsafeCell<usize>,
    }

    #[test]
    fn frees_from_two_threads_racing_the_owner_lose_nothing() {
        loom::model(|| {
            let list = Arc::new(RemoteList::new());
            let chunks: Arc<Vec<Chunk>> = Arc::new(
                (0..3)
                    .map(|_| Chunk {
                        link: FreeChunk {
                            next: ptr::null_mut(),
                        },
                        payload: UnsafeCell::new(0),
                    })
                    .collect(),
            );
            let freer = |ids: Vec<usize>| {
                let (list, chunks) = (list.clone(), chunks.clone());
                thread::spawn(move || {
                    for i in ids {
                        let chunk = &chunks[i];
                        // The freer's last write to the chunk, which the owner
                        // must see (rule "a pushed chunk is the owner's").
                        chunk.payload.with_mut(|p| unsafe { *p = i + 1 });
                        let ptr = NonNull::from(chunk).cast::<FreeChunk>();
                        // SAFETY: each chunk is pushed once, by its freer.
                        unsafe { list.push(ptr) };
                    }
                })
            };
            let a = freer(vec![0, 1]);
            let b = freer(vec![2]);
            let mut seen = Vec::new();
            let take = |seen: &mut Vec<usize>| {
                let mut c = list.take_all();
                while !c.is_null() {
                    // SAFETY: taken chunks are the owner's (rule "a pushed
                    // chunk is the owner's").
                    let chunk = unsafe { &*(c as *const Chunk) };
                    let i = chunk.payload.with(|p| unsafe { *p }) - 1;
                    seen.push(i);
                    c = unsafe { (*c).next };
                }
            };
            take(&mut seen);
            a.join().unwrap();
            b.join().unwrap();
            take(&mut seen);
            seen.sort_unstable();
            assert_eq!(seen, [0, 1, 2], "each chunk came back once");
            assert!(list.is_empty());
        });
    }
}
