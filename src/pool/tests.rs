//! The pool's unit tests; they run under Miri too (with smaller counts).

use super::heap::current;
use super::page::PAGE_SIZE;
use super::*;
use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;

/// Chunks enough to fill a few pages of `class`, fewer under Miri.
fn many(class: usize) -> usize {
    let per_page = PAGE_SIZE / CLASS_SIZES[class];
    if cfg!(miri) {
        per_page + 3
    } else {
        per_page * 3 + 7
    }
}

fn pages(family: Family, class: usize) -> usize {
    current().unwrap().class(family, class).pages()
}

#[test]
fn classes_cover_sizes_in_order_and_refuse_what_does_not_fit() {
    assert!(CLASS_SIZES.windows(2).all(|w| w[0] < w[1]));
    assert!(CLASS_SIZES.iter().all(|s| s % CHUNK_ALIGN == 0));
    assert_eq!(CLASS_SIZES[NUM_CLASSES - 1], 1024);
    for size in 1..=1024 {
        let class = class_of(Layout::from_size_align(size, 8).unwrap()).unwrap();
        assert!(CLASS_SIZES[class] >= size);
        assert!(
            class == 0 || CLASS_SIZES[class - 1] < size,
            "the smallest class that fits"
        );
    }
    assert_eq!(class_of(Layout::from_size_align(1025, 8).unwrap()), None);
    assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
}

#[test]
fn chunks_are_distinct_aligned_writable_and_reused_after_a_local_free() {
    let class = class_of(Layout::new::<[u64; 12]>()).unwrap();
    let n = many(class);
    let chunks: Vec<_> = (0..n)
        .map(|_| alloc(Family::Released, class).unwrap())
        .collect();
    let set: HashSet<_> = chunks.iter().map(|c| c.as_ptr() as usize).collect();
    assert_eq!(set.len(), n, "no chunk handed out twice");
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.as_ptr() as usize % CHUNK_ALIGN, 0);
        // SAFETY: each chunk is ours and `CLASS_SIZES[class]` long.
        unsafe { std::ptr::write_bytes(c.as_ptr(), i as u8, CLASS_SIZES[class]) };
    }
    for (i, c) in chunks.iter().enumerate() {
        // SAFETY: as above.
        assert_eq!(unsafe { *c.as_ptr().add(CLASS_SIZES[class] - 1) }, i as u8);
    }
    for c in chunks {
        // SAFETY: from `alloc`, freed once.
        unsafe { free(c) };
    }
    // Freed memory is handed out again (from the page kept for reuse).
    let again = alloc(Family::Released, class).unwrap();
    assert!(set.contains(&(again.as_ptr() as usize)));
    // SAFETY: as above.
    unsafe { free(again) };
}

#[test]
fn empty_pages_go_back_but_one() {
    let class = class_of(Layout::new::<[u64; 30]>()).unwrap();
    let before = pages(Family::Released, class);
    let n = many(class);
    let chunks: Vec<_> = (0..n)
        .map(|_| alloc(Family::Released, class).unwrap())
        .collect();
    assert!(pages(Family::Released, class) >= before + n * CLASS_SIZES[class] / PAGE_SIZE);
    for c in chunks {
        // SAFETY: from `alloc`, freed once.
        unsafe { free(c) };
    }
    assert!(
        pages(Family::Released, class) <= before + 1,
        "a burst's empty pages were given back"
    );
}

#[test]
fn kept_pages_stay_and_a_free_chunk_keeps_its_second_word() {
    let class = class_of(Layout::new::<[u64; 20]>()).unwrap();
    let n = many(class);
    let chunks: Vec<_> = (0..n)
        .map(|_| alloc(Family::Kept, class).unwrap())
        .collect();
    for c in &chunks {
        // SAFETY: ours, and at least two words long.
        unsafe { c.as_ptr().cast::<usize>().add(1).write(0xC0FFEE) };
    }
    let held = pages(Family::Kept, class);
    for c in &chunks {
        // SAFETY: from `alloc`, freed once.
        unsafe { free(*c) };
    }
    assert_eq!(pages(Family::Kept, class), held, "kept pages stay");
    for c in &chunks {
        // SAFETY: kept pages are never given back, and a free chunk's
        // second word is left alone.
        let second = unsafe { c.as_ptr().cast::<usize>().add(1).read() };
        assert_eq!(second, 0xC0FFEE);
    }
}

/// A chunk crossing threads in a test.
struct Sent(NonNull<u8>);

// SAFETY: a chunk is plain memory; the tests hand each to one thread.
unsafe impl Send for Sent {}

fn addresses(chunks: Vec<NonNull<u8>>) -> Vec<Sent> {
    chunks.into_iter().map(Sent).collect()
}

fn chunk(sent: Sent) -> NonNull<u8> {
    sent.0
}

#[test]
fn frees_from_another_thread_come_back_to_the_owner() {
    let class = class_of(Layout::new::<[u64; 9]>()).unwrap();
    let n = many(class);
    let chunks = addresses(
        (0..n)
            .map(|_| alloc(Family::Released, class).unwrap())
            .collect(),
    );
    let before = pages(Family::Released, class);
    thread::spawn(move || {
        for c in chunks {
            // SAFETY: from `alloc` on the other thread, freed once here.
            unsafe { free(chunk(c)) };
        }
    })
    .join()
    .unwrap();
    // Nothing came back yet: the chunks wait on the remote list.
    assert_eq!(pages(Family::Released, class), before);
    drain();
    assert!(
        pages(Family::Released, class)
            <= before.saturating_sub(n * CLASS_SIZES[class] / PAGE_SIZE - 1),
        "the drained pages went back"
    );
    // And the class hands out memory again.
    let again = alloc(Family::Released, class).unwrap();
    // SAFETY: from `alloc`, freed once.
    unsafe { free(again) };
}

#[test]
fn a_heap_outlives_its_thread_and_its_chunks_can_still_be_freed() {
    let class = class_of(Layout::new::<[u64; 7]>()).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let chunks: Vec<_> = (0..10)
            .map(|_| alloc(Family::Released, class).unwrap())
            .collect();
        for (i, c) in chunks.iter().enumerate() {
            // SAFETY: ours.
            unsafe { c.as_ptr().write(i as u8) };
        }
        tx.send(addresses(chunks)).unwrap();
    })
    .join()
    .unwrap();
    // The thread is gone; its heap waits for a new owner.
    for (i, c) in rx.recv().unwrap().into_iter().enumerate() {
        let c = chunk(c);
        // SAFETY: still allocated: heaps and their pages outlive threads.
        let byte = unsafe { c.as_ptr().read() };
        assert_eq!(byte, i as u8);
        // SAFETY: from `alloc`, freed once.
        unsafe { free(c) };
    }
    // A new thread may adopt that heap and file those frees; either way
    // it allocates and frees without trouble.
    thread::spawn(move || {
        let c = alloc(Family::Released, class).unwrap();
        drain();
        // SAFETY: from `alloc`, freed once.
        unsafe { free(c) };
    })
    .join()
    .unwrap();
}

#[test]
fn chunks_freed_while_the_owner_allocates_are_all_filed() {
    let class = class_of(Layout::new::<[u64; 4]>()).unwrap();
    let rounds = if cfg!(miri) { 50 } else { 20_000 };
    let before = pages(Family::Released, class);
    let (tx, rx) = mpsc::channel::<Sent>();
    let freer = thread::spawn(move || {
        for c in rx {
            // SAFETY: each chunk came from `alloc`, and is sent once.
            unsafe { free(chunk(c)) };
        }
    });
    for _ in 0..rounds {
        tx.send(Sent(alloc(Family::Released, class).unwrap()))
            .unwrap();
    }
    drop(tx);
    freer.join().unwrap();
    drain();
    // Every chunk came home: at most the one page kept for reuse stays.
    assert!(pages(Family::Released, class) <= before + 1);
}
