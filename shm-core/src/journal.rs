//! The undo journal: what lets the next process roll back an update whose writer was killed
//! while storing.
//!
//! Before an update stores anything, it writes the old and the new values of the range it
//! stores into two copies in the journal (each laid out like the payload) and records the range
//! in the header. When the stores are done it clears the record. A process that finds a record
//! after the writer died restores the old value of every field whose old and new values differ:
//! the half-done update is undone, and fields the update did not change — which other processes
//! may have changed meanwhile with their own atomics — are left alone.

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::segment::Segment;
use crate::{Descriptor, DescriptorKind, SharedLayout};

/// Copies the values of `from` into `to`, element by element with the twins' own atomics.
///
/// # Panics
/// If the slices differ in length.
pub(crate) fn copy_twins<T: SharedLayout>(from: &[T::Atomic], to: &[T::Atomic]) {
    assert_eq!(
        from.len(),
        to.len(),
        "copy between slices of different lengths"
    );
    for (f, t) in from.iter().zip(to) {
        T::store(t, &T::load(f, Ordering::Relaxed), Ordering::Relaxed);
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
    #[inline]
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
    #[inline]
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
#[inline]
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
#[inline]
pub(crate) fn end(seg: &Segment) {
    seg.header().journal_len.store(0, Ordering::Release);
}

/// Undoes a recorded, unfinished update: every primitive of the range whose old and new values
/// differ gets its old value back, stored with an atomic of its own width (other processes may use
/// the same fields with their atomics meanwhile). The caller holds the segment's lock. Returns
/// whether there was a record that fits the payload.
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
    let elem = seg.element();
    if fits && elem.size > 0 {
        let range = start..start + len;
        let first = start / elem.size;
        let mut k = first;
        while k * elem.size < range.end {
            each_primitive(elem, k * elem.size, &range, &mut |offset, width| {
                restore(seg, offset as usize, width)
            });
            k += 1;
        }
    }
    h.journal_len.store(0, Ordering::Release);
    fits
}

/// Calls `f(offset, width)` for every primitive of `d`, placed at `base`, that lies in `range`.
fn each_primitive(d: &Descriptor, base: u64, range: &Range<u64>, f: &mut dyn FnMut(u64, usize)) {
    if base >= range.end || base.saturating_add(d.size) <= range.start {
        return;
    }
    match &d.kind {
        DescriptorKind::Primitive(code) => f(base, code.size()),
        DescriptorKind::Array { elem, len } => {
            if elem.size == 0 {
                return;
            }
            let mut i = range.start.saturating_sub(base) / elem.size;
            while i < *len && base + i * elem.size < range.end {
                each_primitive(elem, base + i * elem.size, range, f);
                i += 1;
            }
        }
        DescriptorKind::Struct { fields } => {
            for field in fields {
                each_primitive(&field.ty, base + field.offset, range, f);
            }
        }
    }
}

/// Restores the primitive of `width` bytes at payload `offset` from the old journal copy, if
/// the old and new copies differ there.
fn restore(seg: &Segment, offset: usize, width: usize) {
    macro_rules! restore_as {
        ($atomic:ty) => {{
            let n = seg.payload_len();
            let in_bounds = offset.checked_add(width).is_some_and(|end| end <= n);
            let (p, j) = (seg.payload().as_ptr(), seg.journal().as_ptr());
            // Aligned by construction (payload and journal offsets are multiples of the element's
            // alignment, and a validated descriptor aligns every field); checked all the same.
            let aligned = [
                p as usize + offset,
                j as usize + offset,
                j as usize + n + offset,
            ]
            .iter()
            .all(|a| a % width == 0);
            if in_bounds && aligned {
                // SAFETY: `offset + width <= payload_len` (checked), so the cell lies inside the
                // payload and inside each journal copy, which have the payload's length; it is
                // aligned for the atomic of its width (checked); any bits are a valid atomic
                // integer; all access to the mapping is atomic; it lives as long as `seg`.
                let (cell, old, new) = unsafe {
                    (
                        &*(p.add(offset) as *const $atomic),
                        &*(j.add(offset) as *const $atomic),
                        &*(j.add(n + offset) as *const $atomic),
                    )
                };
                let old = old.load(Ordering::Relaxed);
                if old != new.load(Ordering::Relaxed) {
                    cell.store(old, Ordering::Relaxed);
                }
            }
        }};
    }
    match width {
        1 => restore_as!(AtomicU8),
        2 => restore_as!(AtomicU16),
        4 => restore_as!(AtomicU32),
        _ => restore_as!(AtomicU64),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use crate::lock::{self, Wait};
    use crate::{Array, Options};

    /// A process that dies between two stores of an update leaves a half-written value; the next
    /// reader and the next locker see the value from before the update, never the half — and
    /// keep what field atomics did meanwhile to elements the update did not change. The rollback
    /// is a repair: the lock is not poisoned, before or after it.
    #[test]
    fn a_writer_dying_between_stores_is_rolled_back() {
        let name = format!("shmt-journal-{}", std::process::id());
        let a = Array::<i64>::create_with(&name, &[10, -10, 7], &Options::new()).unwrap();
        let seg = a.segment();
        // SAFETY: fork in a test: the child only does atomic loads and stores, takes the
        // segment's lock (which reads /proc to learn the child's thread's start time: glibc's
        // fork leaves malloc usable in the child), and calls `_exit`; it takes no lock of this
        // process's.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The child: `update` of elements 0..3 changing [0] and [1], killed after one store.
            let h = seg.header();
            if lock::lock(h, Wait::Forever, || false).is_ok() {
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
        // The owner died inside a write window: that will be rolled back, not a poisoning.
        assert!(!a.is_poisoned());
        // A reader rolls it back and does not wait forever; a[2] keeps its increment.
        assert_eq!(a.snapshot(), vec![10, -10, 8]);
        // Nothing is left half-changed, so no locker is told anything.
        assert!(!a.is_poisoned());
        assert!(a.lock().is_ok());
        a.update(|v| {
            v[0] += 1;
            v[1] -= 1;
        });
        assert_eq!(a.snapshot(), vec![11, -11, 8]);
    }
}
