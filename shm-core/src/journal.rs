//! The undo journal: what lets the next process roll back an update whose writer was killed
//! while storing.
//!
//! Before an update stores anything, it writes the old and the new values of the range it
//! stores into two copies in the journal (each laid out like the payload) and records the range
//! in the header. When the stores are done it clears the record. A process that finds a record
//! after the writer died restores the old value of every byte whose old and new values differ:
//! the half-done update is undone, and bytes the update did not change — fields other processes
//! may have changed meanwhile with their own atomics — are left alone.

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::segment::Segment;
use crate::SharedLayout;

/// Copies `len` bytes from `from` to `to` with relaxed atomic loads and stores: 8 at a time
/// where both are 8-aligned (the payload and the journal copies share their alignment modulo
/// 8), else 1.
///
/// # Safety
/// `from..from + len` and `to..to + len` must lie inside one live mapping, and only be accessed
/// atomically by anyone.
pub(crate) unsafe fn copy(from: *const u8, to: *const u8, len: usize) {
    let mut i = 0;
    while i < len {
        let (f, t) = (from as usize + i, to as usize + i);
        if f % 8 == 0 && t % 8 == 0 && len - i >= 8 {
            // SAFETY: both 8-byte words are inside the ranges (the caller's contract and
            // `len - i >= 8`) and 8-aligned; every bit pattern is a valid `AtomicU64`.
            let (src, dst) = unsafe { (&*(f as *const AtomicU64), &*(t as *const AtomicU64)) };
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
            i += 8;
        } else {
            // SAFETY: both bytes are inside the ranges; `AtomicU8` has alignment 1.
            let (src, dst) = unsafe { (&*(f as *const AtomicU8), &*(t as *const AtomicU8)) };
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
            i += 1;
        }
    }
}

/// Copies the values of `from` into `to`, byte for byte with atomics.
///
/// # Panics
/// If the slices differ in length.
pub(crate) fn copy_twins<T: SharedLayout>(from: &[T::Atomic], to: &[T::Atomic]) {
    assert_eq!(
        from.len(),
        to.len(),
        "copy between slices of different lengths"
    );
    // SAFETY: both slices are live references to atomics, so each spans
    // `size_of_val(from)` bytes of one allocation or mapping that only atomics access; any
    // bytes are valid twins (`SharedLayout`'s contract).
    unsafe {
        copy(
            from.as_ptr() as *const u8,
            to.as_ptr() as *const u8,
            std::mem::size_of_val(from),
        )
    }
}

/// Where an update writes the old and the new values of its range: each pointer is at the
/// range's start in its journal copy, with the range's length and the payload's alignment there.
pub(crate) struct Copies {
    /// The old values.
    pub old: NonNull<u8>,
    /// The new values.
    pub new: NonNull<u8>,
    /// Bytes in the range.
    pub len: usize,
}

impl Copies {
    /// The two copies as `n` twins of `T` each: (old, new).
    ///
    /// # Panics
    /// If `n` twins do not fit in the range or the copies are not aligned for them (a caller
    /// that journals another range than it stores).
    pub(crate) fn twins<T: SharedLayout>(&self, n: usize) -> (&[T::Atomic], &[T::Atomic]) {
        let size = std::mem::size_of::<T::Atomic>();
        let align = std::mem::align_of::<T::Atomic>();
        assert!(
            n.checked_mul(size).is_some_and(|b| b <= self.len)
                && self.old.as_ptr() as usize % align == 0
                && self.new.as_ptr() as usize % align == 0,
            "journal copies do not fit the values"
        );
        // SAFETY: each copy has `len >= n * size` bytes inside the mapping (asserted; `begin`
        // made them from a range of the payload, and the journal copies have its length), is
        // aligned for `T::Atomic` (asserted), any bytes are a valid `T::Atomic`, all access is
        // atomic, and they live as long as the segment, which outlives `self`.
        unsafe {
            (
                std::slice::from_raw_parts(self.old.as_ptr() as *const T::Atomic, n),
                std::slice::from_raw_parts(self.new.as_ptr() as *const T::Atomic, n),
            )
        }
    }

    /// Writes the bytes `old` and `new` into the copies (for a write that knows its range as
    /// bytes, not as typed values).
    ///
    /// # Panics
    /// If they are longer than the range.
    pub(crate) fn record_bytes(&self, old: &[u8], new: &[u8]) {
        assert!(
            old.len() <= self.len && new.len() <= self.len,
            "journal bytes do not fit"
        );
        for (base, bytes) in [(self.old, old), (self.new, new)] {
            // SAFETY: the copy has `len >= bytes.len()` bytes inside the mapping (asserted), which
            // only atomics access; `AtomicU8` has alignment 1 and accepts any byte.
            let cells = unsafe {
                std::slice::from_raw_parts(base.as_ptr() as *const AtomicU8, bytes.len())
            };
            for (cell, b) in cells.iter().zip(bytes) {
                cell.store(*b, Ordering::Relaxed);
            }
        }
    }

    /// Writes `old` and `new` into the copies.
    pub(crate) fn record<T: SharedLayout>(&self, old: &[T], new: &[T]) {
        let (o, n) = self.twins::<T>(old.len().max(new.len()));
        for (twin, v) in o.iter().zip(old) {
            T::store(twin, v, Ordering::Relaxed);
        }
        for (twin, v) in n.iter().zip(new) {
            T::store(twin, v, Ordering::Relaxed);
        }
    }
}

/// Journals an update of the payload bytes in `range`: `fill` writes the old and new values into
/// the copies, then the range is recorded. The caller holds the segment's lock.
pub(crate) fn begin(seg: &Segment, range: Range<usize>, fill: impl FnOnce(&Copies)) {
    assert!(
        range.start <= range.end && range.end <= seg.payload_len(),
        "journal range out of bounds"
    );
    if range.is_empty() {
        return;
    }
    // SAFETY: the journal holds two copies of `payload_len()` bytes and `range` is inside the
    // payload (asserted), so both offsets are inside the journal.
    let copies = unsafe {
        let base = seg.journal().as_ptr();
        Copies {
            old: NonNull::new_unchecked(base.add(range.start)),
            new: NonNull::new_unchecked(base.add(seg.payload_len() + range.start)),
            len: range.len(),
        }
    };
    fill(&copies);
    let h = seg.header();
    h.journal_start.store(range.start as u64, Ordering::Relaxed);
    h.journal_len.store(range.len() as u64, Ordering::Release);
}

/// Clears the record after the update's stores.
pub(crate) fn end(seg: &Segment) {
    seg.header().journal_len.store(0, Ordering::Release);
}

/// Undoes a recorded, unfinished update: every byte of the range whose old and new values
/// differ gets its old value back. The caller holds the segment's lock. Returns whether there was
/// a record that fits the payload.
pub(crate) fn undo(seg: &Segment) -> bool {
    let h = seg.header();
    let len = h.journal_len.load(Ordering::Acquire);
    if len == 0 {
        return false;
    }
    let start = h.journal_start.load(Ordering::Relaxed);
    // The record is in the shared header: check it against this handle's own payload length.
    let fits = start
        .checked_add(len)
        .is_some_and(|end| end <= seg.payload_len() as u64);
    if fits {
        let (start, len, n) = (start as usize, len as usize, seg.payload_len());
        // SAFETY: `start..start + len` is inside the payload (checked just above) and so inside
        // each journal copy, which have the payload's length; `AtomicU8` has alignment 1 and
        // accepts any byte; the mapping lives as long as `seg`.
        let (payload, old, new) = unsafe {
            let p = seg.payload().as_ptr().add(start) as *const AtomicU8;
            let j = seg.journal().as_ptr();
            (
                std::slice::from_raw_parts(p, len),
                std::slice::from_raw_parts(j.add(start) as *const AtomicU8, len),
                std::slice::from_raw_parts(j.add(n + start) as *const AtomicU8, len),
            )
        };
        for ((p, o), w) in payload.iter().zip(old).zip(new) {
            let o = o.load(Ordering::Relaxed);
            if o != w.load(Ordering::Relaxed) {
                p.store(o, Ordering::Relaxed);
            }
        }
    }
    h.journal_len.store(0, Ordering::Release);
    fits
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use crate::lock::{self, Wait};
    use crate::{Array, Options};

    /// A process that dies between two stores of an update leaves a half-written value; the next
    /// reader and the next locker see the value from before the update, never the half — and
    /// keep what field atomics did meanwhile to elements the update did not change.
    #[test]
    fn a_writer_dying_between_stores_is_rolled_back() {
        let name = format!("shmt-journal-{}", std::process::id());
        let a = Array::<i64>::create_with(&name, &[10, -10, 7], &Options::new()).unwrap();
        let seg = a.segment();
        // SAFETY: fork in a test: the child only does atomic loads and stores, pthread calls on
        // the process-shared mutex, and `_exit`: no allocation, no locks of this process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The child: `update` of elements 0..3 changing [0] and [1], killed after one store.
            let h = seg.header();
            if lock::lock(h, Wait::Forever).is_ok() {
                let odd = h.seq.load(Relaxed) | 1;
                h.seq.store(odd, Relaxed);
                super::begin(seg, 0..24, |c| {
                    c.record::<i64>(&[10, -10, 7], &[11, -11, 7])
                });
                a[0].store(11, Relaxed);
            }
            // SAFETY: ends the child at once, running nothing of the parent's state.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        // Half-written: a[0] changed, a[1] not. Meanwhile a field atomic changes a[2], which the
        // update did not change.
        assert_eq!((a[0].load(Relaxed), a[1].load(Relaxed)), (11, -10));
        a[2].fetch_add(1, Relaxed);
        // A reader rolls it back and does not wait forever; a[2] keeps its increment.
        assert_eq!(a.snapshot(), vec![10, -10, 8]);
        // The next locker is told, once.
        assert!(a.lock().is_err());
        assert!(a.lock().is_ok());
        a.update(|v| {
            v[0] += 1;
            v[1] -= 1;
        });
        assert_eq!(a.snapshot(), vec![11, -11, 8]);
    }
}
