// What 32-bit x86 does to a `u64` field (its atomic is more aligned than it), played here by a
// hand-written `SharedLayout` whose twin is more aligned than the plain type: the proofs name
// the field that moved, and the struct whose size and alignment differ.
use shm_core::{Layout, SharedLayout, TypeCode};
use std::sync::atomic::{AtomicU64, Ordering};

#[repr(C)]
pub struct Halves {
    pub lo: u32,
    pub hi: u32,
}

// SAFETY: the twin is one `AtomicU64`, described by the `u64` layout.
unsafe impl SharedLayout for Halves {
    type Atomic = AtomicU64;
    const LAYOUT: Layout = Layout::primitive(TypeCode::U64);

    fn load(atomic: &AtomicU64, order: Ordering) -> Self {
        let bits = atomic.load(order);
        Halves {
            lo: bits as u32,
            hi: (bits >> 32) as u32,
        }
    }

    fn store(atomic: &AtomicU64, value: &Self, order: Ordering) {
        atomic.store(u64::from(value.hi) << 32 | u64::from(value.lo), order);
    }
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub count: u32,
    pub total: Halves,
}

fn main() {}
