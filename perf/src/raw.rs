//! A segment mapped a second time by hand, as a program without shm-core would reach it: a bare
//! `shared_memory` open of the name, the payload offset read from the header (docs/FORMAT.md:
//! bytes 32..40), and pointers cast to `&AtomicU64`.

use std::sync::atomic::{AtomicU64, Ordering};

use shared_memory::{Shmem, ShmemConf};

/// Errors of the benchmarks: whatever failed, as text.
pub type Error = Box<dyn std::error::Error>;

/// A second, hand-made mapping of a segment.
pub struct RawMap {
    map: Shmem,
    payload: usize,
}

impl RawMap {
    /// Maps the segment `name` (as given to shm-core, without the leading `/`).
    pub fn open(name: &str) -> Result<RawMap, Error> {
        let map = ShmemConf::new().os_id(format!("/{name}")).open()?;
        if map.len() < 256 {
            return Err(format!("{name}: too short for a segment").into());
        }
        // SAFETY: the mapping is at least 256 bytes (checked) and page-aligned; bytes 32..40 of
        // a segment's header are `payload_offset`, an 8-aligned u64 only accessed atomically.
        let off =
            unsafe { AtomicU64::from_ptr(map.as_ptr().add(32).cast()) }.load(Ordering::Relaxed);
        if off % 128 != 0 || off as usize > map.len() {
            return Err(format!("{name}: payload offset {off} out of range").into());
        }
        Ok(RawMap {
            map,
            payload: off as usize,
        })
    }

    /// The segment's seqlock counter, `seq` (docs/FORMAT.md: header bytes 128..136), for a
    /// seqlock read written by hand.
    pub fn seq(&self) -> &AtomicU64 {
        // SAFETY: the mapping is at least 256 bytes (checked at open) and page-aligned, so bytes
        // 128..136 are in it and 8-aligned; any bits are a valid `AtomicU64`, shm-core accesses
        // `seq` only atomically, and the mapping lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(128).cast()) }
    }

    /// The payload's first byte.
    pub fn base(&self) -> *mut u8 {
        // SAFETY: `payload <= len` (checked at open).
        unsafe { self.map.as_ptr().add(self.payload) }
    }

    /// Payload bytes (to the end of the mapping).
    pub fn len(&self) -> usize {
        self.map.len() - self.payload
    }

    /// Whether the mapping ends where the payload starts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` `u64`s of the payload, as atomics.
    ///
    /// # Panics
    /// If the payload is shorter.
    pub fn u64s(&self, n: usize) -> &[AtomicU64] {
        assert!(n * 8 <= self.len(), "payload shorter than {n} u64s");
        // SAFETY: in bounds (just checked), 8-aligned (the payload is 128-aligned), any bits are
        // a valid `AtomicU64`, shm-core accesses these bytes only atomically too, and the
        // mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base().cast::<AtomicU64>(), n) }
    }

    /// The first `N` `u64`s of the payload, as an array of atomics.
    ///
    /// # Panics
    /// If the payload is shorter.
    pub fn words<const N: usize>(&self) -> &[AtomicU64; N] {
        self.u64s(N).try_into().expect("N words")
    }
}
