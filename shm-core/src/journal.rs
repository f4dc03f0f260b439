//! The undo journal: what lets the next process roll back an update whose writer was killed
//! while storing.
//!
//! Before an update stores anything, it copies the bytes it may change from the payload into the
//! journal (a region laid out like the payload) and records the range in the header. When the
//! stores are done it clears the record. A process that finds a record after the writer died
//! copies the journal back: the half-done update is undone, and the value is the one before it.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::segment::Segment;

/// Copies `len` bytes from `from` to `to` with relaxed atomic loads and stores: 8 at a time
/// where both are 8-aligned (payload and journal share their alignment modulo 128), else 1.
///
/// # Safety
/// `from..from + len` and `to..to + len` must lie inside one live mapping, and only be accessed
/// atomically by anyone.
unsafe fn copy(from: *const u8, to: *const u8, len: usize) {
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

/// Journals the payload bytes in `range` before an update stores into them. The caller holds
/// the segment's lock, and `range` is inside the payload.
pub(crate) fn begin(seg: &Segment, range: Range<usize>) {
    assert!(
        range.start <= range.end && range.end <= seg.payload_len(),
        "journal range out of bounds"
    );
    if range.is_empty() {
        return;
    }
    // SAFETY: `range` is inside the payload (asserted), and the journal has the payload's length;
    // the mapping lives as long as `seg`, and all access to it is atomic.
    unsafe {
        copy(
            seg.payload().as_ptr().add(range.start),
            seg.journal().as_ptr().add(range.start),
            range.len(),
        );
    }
    let h = seg.header();
    h.journal_start.store(range.start as u64, Ordering::Relaxed);
    h.journal_len.store(range.len() as u64, Ordering::Release);
}

/// Clears the record after the update's stores.
pub(crate) fn end(seg: &Segment) {
    seg.header().journal_len.store(0, Ordering::Release);
}

/// Undoes a recorded, unfinished update. The caller holds the segment's lock. Returns whether
/// there was one.
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
        // SAFETY: `start..start + len` is inside the payload (checked just above), and the
        // journal has the payload's length; access is atomic; the mapping lives as long as `seg`.
        unsafe {
            copy(
                seg.journal().as_ptr().add(start as usize),
                seg.payload().as_ptr().add(start as usize),
                len as usize,
            );
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
    /// reader and the next locker see the value from before the update, never the half.
    #[test]
    fn a_writer_dying_between_stores_is_rolled_back() {
        let name = format!("shmt-journal-{}", std::process::id());
        let a = Array::<i64>::create_with(&name, &[10, -10, 7], &Options::new()).unwrap();
        let seg = a.segment();
        // SAFETY: fork in a test: the child only does atomic stores, pthread calls on the
        // process-shared mutex, and `_exit`: no allocation, no locks of this process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The child: the first half of `update`, then death while holding the lock.
            let h = seg.header();
            if lock::lock(h, Wait::Forever).is_ok() {
                let odd = h.seq.load(Relaxed) | 1;
                h.seq.store(odd, Relaxed);
                super::begin(seg, 0..16);
                a[0].store(11, Relaxed);
            }
            // SAFETY: ends the child at once, running nothing of the parent's state.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        // Half-written: a[0] changed, a[1] not.
        assert_eq!((a[0].load(Relaxed), a[1].load(Relaxed)), (11, -10));
        // A reader rolls it back and does not wait forever.
        assert_eq!(a.snapshot(), vec![10, -10, 7]);
        // The next locker is told, once.
        assert!(a.lock().is_err());
        assert!(a.lock().is_ok());
        a.update(|v| {
            v[0] += 1;
            v[1] -= 1;
        });
        assert_eq!(a.snapshot(), vec![11, -11, 7]);
    }
}
