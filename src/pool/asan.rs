//! Keeping AddressSanitizer's eyes open on pooled memory.
//!
//! A pool hands out chunks the global allocator never sees freed, so on
//! its own AddressSanitizer would take a use-after-free of a pooled task
//! for an ordinary access. Built with `--cfg cancel_scope_asan` (with
//! `-Zsanitizer=address`, as `.ci/run` does), a free chunk is *poisoned*:
//! the sanitizer reports any access to it, and the pool unpoisons a chunk
//! only while it writes or reads its free-list link, and when it hands the
//! chunk out. Without that cfg every function here is a plain access.

use super::remote::FreeChunk;
use std::ptr::NonNull;

#[cfg(cancel_scope_asan)]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Marks `size` bytes at `at` as not to be touched.
#[inline(always)]
pub(super) fn poison(at: *const u8, size: usize) {
    #[cfg(cancel_scope_asan)]
    // SAFETY: the sanitizer's runtime is linked (the cfg comes with
    // `-Zsanitizer=address`); poisoning only changes its shadow memory.
    unsafe {
        __asan_poison_memory_region(at, size)
    };
    let _ = (at, size);
}

/// Marks `size` bytes at `at` as usable again.
#[inline(always)]
pub(super) fn unpoison(at: *const u8, size: usize) {
    #[cfg(cancel_scope_asan)]
    // SAFETY: as in `poison`.
    unsafe {
        __asan_unpoison_memory_region(at, size)
    };
    let _ = (at, size);
}

/// Writes a free chunk's link, leaving the chunk poisoned.
///
/// # Safety
///
/// `chunk` is a free chunk the caller owns.
#[inline(always)]
pub(super) unsafe fn write_link(chunk: NonNull<FreeChunk>, next: *mut FreeChunk) {
    let at = chunk.as_ptr().cast::<u8>();
    unpoison(at, size_of_link());
    // SAFETY: the caller owns the chunk, which is at least a link long.
    unsafe { chunk.as_ptr().write(FreeChunk { next }) };
    poison(at, size_of_link());
}

/// Reads a free chunk's link.
///
/// # Safety
///
/// `chunk` is a free chunk the caller owns, whose link was written.
#[inline(always)]
pub(super) unsafe fn read_link(chunk: NonNull<FreeChunk>) -> *mut FreeChunk {
    let at = chunk.as_ptr().cast::<u8>();
    unpoison(at, size_of_link());
    // SAFETY: the caller's contract.
    let next = unsafe { chunk.as_ptr().read().next };
    poison(at, size_of_link());
    next
}

const fn size_of_link() -> usize {
    std::mem::size_of::<FreeChunk>()
}
