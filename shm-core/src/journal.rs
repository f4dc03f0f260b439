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
use std::sync::atomic::Ordering;

use crate::cell::{Region, Width};
use crate::layout::TEXT_LEN_SIZE;
use crate::segment::Segment;
use crate::{Descriptor, DescriptorKind, SharedLayout};

/// Where an update writes the old and the new values of its range: the range's bytes in each of
/// the journal's copies (laid out like the payload, so aligned as the payload's range is).
///
/// Only the holder of the segment's lock accesses the journal (the writer filling it, or a
/// process undoing a dead writer's update), so no access to it races with another: its bytes
/// may be written with one width and read with another.
pub(crate) struct Copies<'a> {
    /// The old values.
    old: Region<'a>,
    /// The new values.
    new: Region<'a>,
}

impl Copies<'_> {
    /// The two copies as `n` twins of `T` each: (old, new).
    ///
    /// # Panics
    /// If `n` twins do not fit in the range or the copies are not aligned for them (a caller
    /// that journals another range than it stores).
    #[inline]
    pub(crate) fn twins<T: SharedLayout>(&self, n: usize) -> (&[T::Atomic], &[T::Atomic]) {
        // SAFETY: only the lock's holder accesses the journal (see `Copies`), so nothing races
        // with the twins' accesses, whatever their widths.
        let copies = unsafe { (self.old.twins::<T>(n), self.new.twins::<T>(n)) };
        match copies {
            (Some(old), Some(new)) => (old, new),
            _ => panic!("journal copies do not fit the values"),
        }
    }

    /// Writes the bytes `old` and `new` into the copies (for a write that knows its range as
    /// bytes, not as typed values).
    ///
    /// # Panics
    /// If they are longer than the range.
    pub(crate) fn record_bytes(&self, old: &[u8], new: &[u8]) {
        assert!(
            old.len() <= self.old.len() && new.len() <= self.new.len(),
            "journal bytes do not fit"
        );
        for (copy, bytes) in [(self.old, old), (self.new, new)] {
            // SAFETY: as in `twins`; bytes are stored one by one.
            unsafe { copy.slice(0..bytes.len()).store_from(bytes, Width::One) };
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
    let (old, new) = Region::journal(seg);
    let copies = Copies {
        old: old.slice(range.clone()),
        new: new.slice(range.clone()),
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

/// Calls `f(offset, width)` for every primitive of `d`, placed at `base`, that lies in `range`:
/// every cell one atomic access of its width reads or writes (an enum's number; a text's length
/// word, then each of its bytes).
pub(crate) fn each_primitive(
    d: &Descriptor,
    base: u64,
    range: &Range<u64>,
    f: &mut dyn FnMut(u64, Width),
) {
    if base >= range.end || base.saturating_add(d.size) <= range.start {
        return;
    }
    match &d.kind {
        DescriptorKind::Primitive(code) | DescriptorKind::Enum { repr: code, .. } => {
            f(base, Width::of(*code))
        }
        DescriptorKind::Text { capacity } => {
            // The length word, then each byte (as `AtomicText` accesses them).
            if base >= range.start && base + TEXT_LEN_SIZE as u64 <= range.end {
                f(base, Width::Four);
            }
            let first = (base + TEXT_LEN_SIZE as u64).max(range.start);
            let end = (base + TEXT_LEN_SIZE as u64)
                .saturating_add(*capacity)
                .min(range.end);
            for offset in first..end {
                f(offset, Width::One);
            }
        }
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

/// Restores the primitive of `width` at payload `offset` from the old journal copy, if the old
/// and new copies differ there. The caller holds the segment's lock.
fn restore(seg: &Segment, offset: usize, width: Width) {
    let payload = Region::payload(seg);
    let (old, new) = Region::journal(seg);
    // SAFETY: `width` is the width the segment's element descriptor gives the primitive at
    // `offset` (`undo` walks the descriptor), the width of every access to it in the payload;
    // only the lock's holder, the caller, accesses the journal's copies.
    let cells = unsafe {
        (
            payload.cell(offset, width),
            old.cell(offset, width),
            new.cell(offset, width),
        )
    };
    // Inside and aligned by construction (payload and journal offsets are multiples of the
    // element's alignment, and a validated descriptor aligns every field); checked all the same.
    if let (Some(cell), Some(old), Some(new)) = cells {
        let old = old.load();
        if old != new.load() {
            cell.store(old);
        }
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
