//! `snapshot`, `update`, `lock` and the bulk copies of an uncontended segment allocate nothing
//! (after a thread's first lock, which reads the thread's start time from /proc once).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Shared, SharedLayout};

/// Counts the allocations of the thread that asks.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` unchanged; counting touches only a const-initialised
// thread-local `Cell`, which needs no allocation and no destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
struct Block {
    f: [u64; 8],
}

#[test]
fn the_uncontended_paths_do_not_allocate() {
    let pid = std::process::id();
    let s = Shared::<Block>::create(&format!("no-alloc-s-{pid}"), Block::default()).unwrap();
    let a = Array::<u32>::create_zeroed(&format!("no-alloc-a-{pid}"), 1000).unwrap();
    let mut buf = vec![7u32; 1000];
    // Warm up: the first lock of a thread reads its start time (its name in the lock word).
    s.update(|b| b.f[0] += 1);
    drop(a.lock());

    let before = allocations();
    for k in 0..1000u64 {
        let snap = s.snapshot();
        s.update(|b| b.f[..7].fill(snap.f[0] + k));
        drop(s.lock());
        s.f[7].fetch_add(1, Relaxed);
        a.write_from(0, &buf);
        a.read_into(0, &mut buf);
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations on the uncontended path"
    );
    // `update` stores only the fields it changed: no increment was lost.
    assert_eq!(s.f[7].load(Relaxed), 1000);
}
