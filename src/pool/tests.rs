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

fn pages(class: usize) -> usize {
    current().unwrap().class(class).pages()
}

#[test]
fn classes_cover_sizes_in_order_and_refuse_what_does_not_fit() {
    assert!(CLASS_SIZES.windows(2).all(|w| w[0] < w[1]));
    assert!(CLASS_SIZES.iter().all(|s| s % 8 == 0));
    assert_eq!(CLASS_SIZES[NUM_CLASSES - 1], 1024);
    for align in [1, 2, 4, 8, 16] {
        for size in (1..=1024).filter(|s| s % align == 0) {
            let class = class_of(Layout::from_size_align(size, align).unwrap()).unwrap();
            assert!(CLASS_SIZES[class] >= size);
            assert_eq!(CLASS_SIZES[class] % align, 0, "chunks aligned");
            assert!(
                (0..class).all(|c| CLASS_SIZES[c] < size || CLASS_SIZES[c] % align != 0),
                "the smallest class that fits"
            );
        }
    }
    assert_eq!(class_of(Layout::from_size_align(1025, 8).unwrap()), None);
    assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
}

#[test]
fn chunks_are_distinct_aligned_writable_and_reused_after_a_local_free() {
    let class = class_of(Layout::new::<[u64; 12]>()).unwrap();
    let n = many(class);
    let chunks: Vec<_> = (0..n).map(|_| alloc(class).unwrap()).collect();
    let set: HashSet<_> = chunks.iter().map(|c| c.as_ptr() as usize).collect();
    assert_eq!(set.len(), n, "no chunk handed out twice");
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.as_ptr() as usize % 8, 0);
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
    let again = alloc(class).unwrap();
    assert!(set.contains(&(again.as_ptr() as usize)));
    // SAFETY: as above.
    unsafe { free(again) };
}

#[test]
fn empty_pages_go_back_but_one() {
    let class = class_of(Layout::new::<[u64; 30]>()).unwrap();
    let before = pages(class);
    let n = many(class);
    let chunks: Vec<_> = (0..n).map(|_| alloc(class).unwrap()).collect();
    assert!(pages(class) >= before + n * CLASS_SIZES[class] / PAGE_SIZE);
    for c in chunks {
        // SAFETY: from `alloc`, freed once.
        unsafe { free(c) };
    }
    assert!(
        pages(class) <= before + 1,
        "a burst's empty pages were given back"
    );
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
    let chunks = addresses((0..n).map(|_| alloc(class).unwrap()).collect());
    let before = pages(class);
    thread::spawn(move || {
        for c in chunks {
            // SAFETY: from `alloc` on the other thread, freed once here.
            unsafe { free(chunk(c)) };
        }
    })
    .join()
    .unwrap();
    // Nothing came back yet: the chunks wait on the remote list.
    assert_eq!(pages(class), before);
    drain();
    assert!(
        pages(class) <= before.saturating_sub(n * CLASS_SIZES[class] / PAGE_SIZE - 1),
        "the drained pages went back"
    );
    // And the class hands out memory again.
    let again = alloc(class).unwrap();
    // SAFETY: from `alloc`, freed once.
    unsafe { free(again) };
}

#[test]
fn a_heap_outlives_its_thread_and_its_chunks_can_still_be_freed() {
    let class = class_of(Layout::new::<[u64; 7]>()).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let chunks: Vec<_> = (0..10).map(|_| alloc(class).unwrap()).collect();
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
        let c = alloc(class).unwrap();
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
    let before = pages(class);
    let (tx, rx) = mpsc::channel::<Sent>();
    let freer = thread::spawn(move || {
        for c in rx {
            // SAFETY: each chunk came from `alloc`, and is sent once.
            unsafe { free(chunk(c)) };
        }
    });
    for _ in 0..rounds {
        tx.send(Sent(alloc(class).unwrap())).unwrap();
    }
    drop(tx);
    freer.join().unwrap();
    drain();
    // Every chunk came home: at most the one page kept for reuse stays.
    assert!(pages(class) <= before + 1);
}

/// Under AddressSanitizer (`--cfg cancel_scope_asan`), a read of a pooled
/// chunk after its free is reported: the test runs itself in a child
/// process, which the sanitizer ends, and looks for the report.
#[cfg(cancel_scope_asan)]
#[test]
fn a_use_after_free_of_a_pooled_chunk_is_reported() {
    const CHILD: &str = "CANCEL_SCOPE_POOL_UAF_CHILD";
    const NAME: &str = "pool::tests::a_use_after_free_of_a_pooled_chunk_is_reported";
    if std::env::var_os(CHILD).is_some() {
        let class = class_of(Layout::new::<[u64; 8]>()).unwrap();
        let chunk = alloc(class).unwrap();
        // SAFETY: none; this is the bug the sanitizer must catch.
        unsafe {
            free(chunk);
            let byte = std::ptr::read_volatile(chunk.as_ptr().add(32));
            std::hint::black_box(byte);
        }
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("start the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the read after free went unnoticed");
    assert!(stderr.contains("use-after-poison"), "{stderr}");
}
