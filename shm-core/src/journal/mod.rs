//! The undo journal: what lets the next process roll back a write whose writer was killed while
//! storing.
//!
//! Before a write stores a run of payload bytes, it appends an entry to its *record* holding the
//! run's old values (and, where the write leaves some fields of the run alone, their new values
//! too), and commits it: the header's `journal_len` then covers it. A large write is cut into
//! pieces, each journaled right before it is stored, so a writer killed at any moment has
//! journaled every byte it stored. When the stores are done the write clears the record.
//!
//! A process that finds a record after the writer died restores the old values it holds: every
//! primitive of an entry of [`Kind::All`], and the primitives whose old and new values differ of
//! an entry of [`Kind::Changed`]. The half-done write is undone, and fields it did not change —
//! which other processes may have changed meanwhile with their own atomics — are left alone.
//!
//! The record goes into the segment's own journal area if it fits: room for one entry of the
//! whole payload, old and new, but at most [`AREA_MAX`] bytes, so a segment costs its payload
//! plus a small constant. A larger record goes into the [side journal](side), an object next to
//! the segment created and grown on demand. If there is no room for it either (a full
//! `/dev/shm`), the write goes ahead without a record, saying so in the header: should its writer
//! die, what it stored cannot be rolled back, and the lock is poisoned instead.

mod record;
pub(crate) mod side;
mod undo;

use std::sync::atomic::{fence, Ordering};

pub(crate) use record::{pieces, size_in_pieces, Kind};
pub(crate) use undo::{each_primitive, record_of, restore, undo};

use crate::cell::{Region, Width};
use crate::header::{JOURNAL_HERE, JOURNAL_NONE, JOURNAL_SIDE};
use crate::segment::Segment;
use crate::Result;

use record::Entry;

/// The largest journal area a segment has of its own.
pub(crate) const AREA_MAX: usize = 64 << 10;

/// The size of the journal area of a segment whose payload is `payload_len` bytes: room for an
/// entry of the whole payload with its old and new values, but at most [`AREA_MAX`]; a multiple
/// of 128. `None` if that overflows.
pub(crate) fn area_size(payload_len: usize) -> Option<usize> {
    record::size(0, payload_len, Kind::Changed)?
        .min(AREA_MAX)
        .checked_next_multiple_of(128)
}

/// The bytes an entry of [`Kind::Changed`] for payload bytes `start..start + len` takes.
#[inline]
pub(crate) fn entry_size(start: usize, len: usize, kind: Kind) -> Option<usize> {
    record::size(start, len, kind)
}

/// The payload length, if a journal area of `cap` bytes holds a `Changed` entry of the whole
/// payload (`payload_len` bytes): what [`First`] writes. Else `usize::MAX`, which no payload's
/// length is (an entry of it would not fit).
pub(crate) fn whole_entry(payload_len: usize, cap: usize) -> usize {
    match entry_size(0, payload_len, Kind::Changed) {
        Some(end) if end <= cap => payload_len,
        _ => usize::MAX,
    }
}

/// The record of a write: where its entries go, and how far they have got.
pub(crate) struct Log<'a> {
    seg: &'a Segment,
    place: Place<'a>,
    /// Where the next entry goes.
    at: usize,
}

/// Where a record goes.
enum Place<'a> {
    /// The segment's own journal area.
    Here,
    /// The side journal, mapped and held for the write.
    Side(side::Held<'a>),
    /// Nowhere: there was no room for it.
    Nowhere,
}

impl<'a> Log<'a> {
    /// Makes room for the record of a write whose entries take `need` bytes: in the segment's
    /// own journal area if they fit, else in the side journal, created or grown for them. The
    /// caller holds the segment's lock and has not begun the write.
    ///
    /// # Errors
    /// Why there is no room in the side journal (no space in `/dev/shm`, an object under its name
    /// that cannot serve, a failing system call), if `required`; otherwise the write gets no
    /// record.
    #[inline]
    pub(crate) fn prepare(seg: &'a Segment, need: usize, required: bool) -> Result<Log<'a>> {
        let place = if need <= seg.journal_cap() {
            Place::Here
        } else {
            Self::elsewhere(seg, need, required)?
        };
        Ok(Log { seg, place, at: 0 })
    }

    /// The side journal, or nowhere: for a record too large for the journal area.
    #[cold]
    fn elsewhere(seg: &'a Segment, need: usize, required: bool) -> Result<Place<'a>> {
        match side::reserve(seg, need) {
            Ok(held) => Ok(Place::Side(held)),
            Err(e) if required => Err(e),
            Err(_) => Ok(Place::Nowhere),
        }
    }

    /// Says in the header where the record goes: the first step of the write, once the sequence
    /// counter is odd. Stored only if the header says something else: between writes it says
    /// [`JOURNAL_HERE`] (what [`end`](Self::end) and undo leave), so most writes store nothing.
    #[inline]
    pub(crate) fn start(&self) {
        let place = match self.place {
            Place::Here => JOURNAL_HERE,
            Place::Side(_) => JOURNAL_SIDE,
            Place::Nowhere => JOURNAL_NONE,
        };
        let w = &self.seg.header().journal_where;
        if w.load(Ordering::Relaxed) != place {
            w.store(place, Ordering::Relaxed);
        }
        // Orders the odd counter and `journal_where` before every store of the write.
        fence(Ordering::Release);
    }

    #[inline]
    fn area(&self) -> Option<Region<'_>> {
        match &self.place {
            Place::Here => Some(Region::journal(self.seg)),
            Place::Side(held) => Some(held.area()),
            Place::Nowhere => None,
        }
    }

    /// Appends the entry for payload bytes `start..start + len` and commits it: `fill` writes
    /// the old values into the first region it is given and, for [`Kind::Changed`], the new
    /// values into the second. Once this returns, the write may store those bytes. Without a
    /// record, `fill` is not called.
    ///
    /// # Panics
    /// If the entry does not fit in the room made by `prepare` (a writer that journals more than
    /// it said).
    #[inline(always)]
    pub(crate) fn append(
        &mut self,
        start: usize,
        len: usize,
        kind: Kind,
        fill: impl FnOnce(Region<'_>, Option<Region<'_>>),
    ) {
        let at = self.at;
        let Some(area) = self.area() else {
            return;
        };
        let e = Entry::place(at, start, len, kind)
            .filter(|e| e.end <= area.len())
            .expect("a journal entry beyond the room made for the write");
        for (i, word) in [start as u64, len as u64, kind as u64, 0]
            .into_iter()
            .enumerate()
        {
            // SAFETY: only the holder of the segment's lock, this thread, accesses a journal
            // area, so no access of another width races with this one.
            let cell = unsafe { area.cell(e.at + 8 * i, Width::Eight) };
            cell.expect("entries start on a multiple of 16").store(word);
        }
        fill(
            area.slice(e.old..e.old + len),
            e.new.map(|new| area.slice(new..new + len)),
        );
        self.at = e.end;
        self.seg
            .header()
            .journal_len
            .store(e.end as u64, Ordering::Release);
        // Orders the committed entry before the stores it covers: a process killed among them
        // leaves a record that covers them.
        fence(Ordering::Release);
    }

    /// Clears the record after the write's stores: the write is whole. (By reference: the
    /// writer drops the record where it lies, without moving it.) `journal_where` is stored
    /// only if [`start`](Self::start) made it say something else than [`JOURNAL_HERE`].
    #[inline]
    pub(crate) fn end(&self) {
        let h = self.seg.header();
        h.journal_len.store(0, Ordering::Release);
        if !matches!(self.place, Place::Here) {
            h.journal_where.store(JOURNAL_HERE, Ordering::Release);
        }
    }
}

/// The one entry of a record written *before* its write begins (the counter still even), in
/// the journal area, for the odd counter to commit: a single value's update. An undo reads a
/// record only while the counter is odd, so until then the entry may be written in any order,
/// and once the write is over it may stay: the next write that journals the general way clears
/// `journal_len` before it makes the counter odd (see `Write::begin`).
pub(crate) struct First<'a> {
    seg: &'a Segment,
    area: Region<'a>,
    e: Entry,
}

impl<'a> First<'a> {
    /// The entry for payload bytes `start..start + len` (a `Changed` one): `None` unless that is
    /// the whole payload, if it does not fit in the journal area, or if the header says that the
    /// record goes elsewhere. Writes nothing. The caller holds the segment's lock.
    #[inline(always)]
    pub(crate) fn place(seg: &'a Segment, start: usize, len: usize) -> Option<First<'a>> {
        // One compare for both: `whole_entry` is the payload's length if the journal area holds
        // such an entry.
        if start != 0 || len != seg.whole_entry() {
            return None;
        }
        let area = Region::journal_whole(seg, len);
        let e = Entry::place(0, start, len, Kind::Changed)?;
        (seg.header().journal_where.load(Ordering::Relaxed) == JOURNAL_HERE).then_some(First {
            seg,
            area,
            e,
        })
    }

    /// Where the old values go.
    #[inline(always)]
    pub(crate) fn old_values(&self) -> Region<'a> {
        self.area.slice(self.e.old..self.e.old + self.e.len)
    }

    /// Where the new values go.
    #[inline(always)]
    pub(crate) fn new_values(&self) -> Region<'a> {
        let new = self.e.new.unwrap_or(self.e.old);
        self.area.slice(new..new + self.e.len)
    }

    /// Writes the entry's header and makes `journal_len` cover it, once the caller has written
    /// both copies. Nothing to do if `journal_len` covers such an entry already: only a write of
    /// this kind leaves it non-zero between writes, and every such entry of the segment is the
    /// same, of the whole payload, so the header holds what it must. (One load for five
    /// stores; comparing each word instead made the update slower.)
    #[inline(always)]
    pub(crate) fn close(self) {
        let e = &self.e;
        if self.seg.header().journal_len.load(Ordering::Relaxed) == e.end as u64 {
            return;
        }
        for (i, word) in [e.start as u64, e.len as u64, e.kind as u64, 0]
            .into_iter()
            .enumerate()
        {
            // SAFETY: only the holder of the segment's lock, this thread, accesses a journal
            // area, so no access of another width races with this one.
            let cell = unsafe { self.area.cell(e.at + 8 * i, Width::Eight) };
            cell.expect("entries start on a multiple of 16").store(word);
        }
        self.seg
            .header()
            .journal_len
            .store(e.end as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::undo::Undone;
    use super::*;
    use crate::lock::{self, Wait};
    use crate::{Array, Options};

    /// Journals `old` and `new` (i64s from payload byte `start`) as one `Changed` entry.
    fn journal_i64s(log: &mut Log<'_>, start: usize, old: &[i64], new: &[i64]) {
        let bytes = |v: &[i64]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
        let (o, n) = (bytes(old), bytes(new));
        log.append(start, o.len(), Kind::Changed, |old_r, new_r| {
            // SAFETY: journal areas are accessed only by the lock's holder, this test.
            unsafe {
                old_r.store_from(&o, Width::One);
                new_r.unwrap().store_from(&n, Width::One);
            }
        });
    }

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
                let mut log = Log::prepare(seg, 64, true).unwrap();
                let odd = h.seq.load(Relaxed) | 1;
                h.seq.store(odd, Relaxed);
                log.start();
                journal_i64s(&mut log, 0, &[10, -10, 7], &[11, -11, 7]);
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

    /// Records checked entry by entry: a record with an entry outside the payload, or of an
    /// unknown kind, or cut short, restores the whole entries before it and poisons the lock;
    /// a write that had no record at all poisons it too.
    #[test]
    fn records_that_cannot_be_rolled_back_poison() {
        let name = format!("shmt-journal-bad-{}", std::process::id());
        let a = Array::<i64>::create(&name, &[1, 2, 3, 4]).unwrap();
        let seg = a.segment();
        let h = seg.header();
        type Tamper = fn(&Segment, usize);
        let cases: [(&str, Tamper, bool); 4] = [
            ("whole", |_, _| {}, false),
            (
                "outside the payload",
                |seg, at| {
                    // SAFETY: this test holds the lock; the journal area is only its.
                    let c = unsafe { Region::journal(seg).cell(at, Width::Eight) }.unwrap();
                    c.store(24);
                },
                true,
            ),
            (
                "an unknown kind",
                |seg, at| {
                    // SAFETY: as above.
                    let c = unsafe { Region::journal(seg).cell(at + 16, Width::Eight) }.unwrap();
                    c.store(7);
                },
                true,
            ),
            (
                "cut short",
                |seg, _| {
                    let h = seg.header();
                    h.journal_len
                        .store(h.journal_len.load(Relaxed) - 8, Relaxed);
                },
                true,
            ),
        ];
        for (what, tamper, lost) in cases {
            a.write_from(0, &[1, 2, 3, 4]);
            a.clear_poison();
            let g = a.lock().unwrap();
            // Two entries of 16 bytes, old and new: 64 bytes each, in the segment's own area.
            let mut log = Log::prepare(seg, 128, true).unwrap();
            assert!(matches!(log.place, Place::Here));
            let odd = h.seq.load(Relaxed) | 1;
            h.seq.store(odd, Relaxed);
            log.start();
            journal_i64s(&mut log, 0, &[1, 2], &[10, 20]);
            let second = log.at;
            journal_i64s(&mut log, 16, &[3, 4], &[30, 40]);
            for (i, v) in [10, 20, 30, 40].into_iter().enumerate() {
                a[i].store(v, Relaxed);
            }
            tamper(seg, second);
            drop(log);
            let undone = undo(seg);
            h.seq.store(odd + 1, Relaxed);
            drop(g);
            let want = if lost { [1, 2, 30, 40] } else { [1, 2, 3, 4] };
            assert_eq!(a.snapshot(), want, "{what}");
            assert_eq!(undone == Undone::Lost, lost, "{what}: {undone:?}");
            assert_eq!(a.is_poisoned(), lost, "{what}");
            assert_eq!(h.journal_len.load(Relaxed), 0, "{what}");
        }
        // A write without a record.
        a.clear_poison();
        let g = a.lock().unwrap();
        h.journal_where.store(JOURNAL_NONE, Relaxed);
        assert_eq!(undo(seg), Undone::Lost);
        assert_eq!(h.journal_where.load(Relaxed), JOURNAL_HERE);
        drop(g);
        assert!(a.is_poisoned());
    }

    /// A single value's update leaves its record in place once it is over (the odd counter
    /// committed it); a later write that journals the general way, killed before its first
    /// entry, must not have that record undone, which would take the value back to before the
    /// update.
    #[test]
    fn the_record_an_update_leaves_is_not_undone_for_a_later_write() {
        let name = format!("shmt-journal-left-{}", std::process::id());
        let v = crate::Shared::<[u64; 2]>::create(&name, [1, 2]).unwrap();
        let seg = v.segment();
        let h = seg.header();
        v.update(|x| *x = [3, 4]);
        assert_ne!(h.journal_len.load(Relaxed), 0, "the update's record stays");
        let g = v.lock().unwrap();
        // A write that begins and dies before it journals anything: the counter is left odd.
        std::mem::forget(crate::seqlock::Write::begin(seg, 64, true).unwrap());
        assert_eq!(h.seq.load(Relaxed) & 1, 1);
        assert_eq!(h.journal_len.load(Relaxed), 0);
        drop(g);
        // The next reader finds the counter odd with the lock free, and undoes nothing.
        assert_eq!(v.snapshot(), [3, 4]);
        assert!(!v.is_poisoned());
        // A write of the general kind put its own entry at offset 0 and left `journal_len` 0:
        // the value's next update writes its entry's header again, not only its copies.
        let g = v.lock().unwrap();
        let mut log = Log::prepare(seg, 64, true).unwrap();
        log.append(8, 8, Kind::All, |old, _| {
            // SAFETY: journal areas are accessed only by the lock's holder, this test.
            unsafe { old.store_from(&4u64.to_ne_bytes(), Width::Eight) };
        });
        log.end();
        drop(g);
        v.update(|x| x[0] = 5);
        assert_eq!(v.snapshot(), [5, 4]);
        let area = Region::journal(seg);
        // SAFETY: as above; no write is in progress.
        let header: Vec<u64> = (0..4)
            .map(|i| unsafe { area.cell(8 * i, Width::Eight) }.unwrap().load())
            .collect();
        assert_eq!(header, [0, 16, Kind::Changed as u64, 0]);
        assert_eq!(h.journal_len.load(Relaxed), 32 + 16 + 16);
    }

    #[test]
    fn the_area_is_the_whole_payload_for_small_segments_and_bounded_for_big_ones() {
        assert_eq!(area_size(56), Some(256));
        assert_eq!(area_size(0), Some(128));
        assert_eq!(area_size(64 << 20), Some(AREA_MAX));
        assert_eq!(area_size(usize::MAX), None);
        for len in [1, 100, 30_000] {
            let whole = record::size(0, len, Kind::Changed).unwrap();
            assert!(area_size(len).unwrap() >= whole, "{len}");
        }
    }
}
