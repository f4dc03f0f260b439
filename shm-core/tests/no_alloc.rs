//! What allocates, counted by a global allocator that counts each thread's allocations and
//! their largest size: `snapshot`, `update`, `lock` and the bulk copies of an uncontended
//! segment allocate nothing (after a thread's first lock, which reads the thread's start time
//! from /proc once), and a descriptor cannot make its parser allocate by what it claims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Descriptor, Shared, SharedLayout};

/// Counts the allocations of the thread that asks, and remembers the largest.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn count(layout: Layout) {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
    LARGEST.with(|l| l.set(l.get().max(layout.size())));
}

// SAFETY: every method forwards to `System` unchanged; counting touches only const-initialised
// thread-local `Cell`s, which need no allocation and no destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A size that overflows a `Layout` fails in `System` as well; it is counted as it is.
        count(Layout::from_size_align(new_size, layout.align()).unwrap_or(layout));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// The largest allocation this thread has made since the last call.
fn largest_since_last() -> usize {
    LARGEST.with(|l| l.replace(0))
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

/// A struct descriptor (docs/FORMAT.md: tag `S`, size, alignment, an empty name, the field
/// count) that claims `fields` fields and holds none.
fn struct_claiming(fields: u32) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend_from_slice(&8u64.to_le_bytes());
    b.extend_from_slice(&8u64.to_le_bytes());
    b.push(0);
    b.extend_from_slice(&fields.to_le_bytes());
    b
}

#[test]
fn hostile_counts_do_not_allocate() {
    // A million first: a parser that sized a vector by the claim would allocate tens of
    // megabytes here and fail the assertion (u32::MAX would abort the process instead).
    for fields in [1 << 20, u32::MAX] {
        let bytes = struct_claiming(fields);
        largest_since_last();
        let e = Descriptor::parse(&bytes).unwrap_err();
        let largest = largest_since_last();
        // The error's message is all it allocates.
        assert!(
            largest <= 256,
            "parsing a descriptor that claims {fields} fields allocated {largest} bytes at once"
        );
        assert!(e.reason.contains("cannot fit"), "{fields} fields: {e}");
    }
}
