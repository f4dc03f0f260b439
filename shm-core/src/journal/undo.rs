//! Undoing a dead writer's record: each entry checked, then its old values restored, primitive
//! by primitive with stores of their own widths, into the payload (or a reader's copy of it).

use std::ops::Range;
use std::sync::atomic::{fence, Ordering};

use super::record::{self, Entry, Kind};
use super::side;
use crate::bulk;
use crate::cell::{Region, Width};
use crate::header::{JOURNAL_HERE, JOURNAL_SIDE};
use crate::layout::TEXT_LEN_SIZE;
use crate::lock;
use crate::segment::Segment;
use crate::{Descriptor, DescriptorKind};

/// What [`undo`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undone {
    /// No record: nothing had been stored, or the write was whole.
    Nothing,
    /// A record, rolled back: the payload is as before the write.
    RolledBack,
    /// A write that could not be rolled back: it had no record, or its record is not usable
    /// (missing side journal, entries outside the payload). The lock is now poisoned.
    Lost,
}

/// Undoes the record of an unfinished write, and clears it. The caller holds the segment's lock
/// and has seen the sequence counter odd. A write it cannot roll back poisons the lock.
pub(crate) fn undo(seg: &Segment) -> Undone {
    let h = seg.header();
    let (place, len) = record_of(seg);
    let outcome = restore(seg, Region::payload(seg), place, len);
    if outcome == Undone::Lost {
        lock::poison(h);
    }
    h.journal_len.store(0, Ordering::Release);
    h.journal_where.store(JOURNAL_HERE, Ordering::Release);
    outcome
}

/// Where the record of the write in progress is and how many of its bytes are committed
/// (`journal_where`, `journal_len`): relaxed loads and an acquire fence, which a read-only
/// mapping allows (the fence pairs with the writer's release store of `journal_len`, so the
/// entries it covers are visible).
pub(crate) fn record_of(seg: &Segment) -> (u32, u64) {
    let h = seg.header();
    let len = h.journal_len.load(Ordering::Relaxed);
    // After the fence: `journal_where` is stored before the first entry is committed.
    fence(Ordering::Acquire);
    let place = h.journal_where.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    (place, len)
}

/// Restores into `target` — the payload, or a reader's copy of it laid out the same — the old
/// values of the record at `place` whose first `len` bytes are committed; clears nothing. The
/// caller holds the segment's lock, or (a read-only handle) restores into a copy of its own.
pub(crate) fn restore(seg: &Segment, target: Region<'_>, place: u32, len: u64) -> Undone {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    match place {
        JOURNAL_HERE | JOURNAL_SIDE if len == 0 => Undone::Nothing,
        JOURNAL_HERE => undo_record(seg, Region::journal(seg), len, target),
        JOURNAL_SIDE => match side::existing(seg, len) {
            Ok(held) => undo_record(seg, held.area(), len, target),
            Err(_) => Undone::Lost,
        },
        _ => Undone::Lost,
    }
}

/// Rolls back the first `len` bytes of a record in `area` into `target`. Entries are checked
/// before any is restored, and restored last first (a write never journals a byte twice, but a
/// record written by another program might).
fn undo_record(seg: &Segment, area: Region<'_>, len: usize, target: Region<'_>) -> Undone {
    if len > area.len() {
        return Undone::Lost;
    }
    let mut entries = Vec::new();
    let mut at = 0;
    let mut whole = true;
    while at < len {
        match read_entry(seg, area, at, len) {
            Some(e) => {
                at = e.end;
                entries.push(e);
            }
            None => {
                whole = false;
                break;
            }
        }
    }
    for e in entries.iter().rev() {
        restore_entry(seg, area, e, target);
    }
    if whole {
        Undone::RolledBack
    } else {
        Undone::Lost
    }
}

/// The entry at `at` of a record of `len` bytes, if it is whole, of a known kind, and inside the
/// payload.
fn read_entry(seg: &Segment, area: Region<'_>, at: usize, len: usize) -> Option<Entry> {
    if at.checked_add(record::HEADER)? > len {
        return None;
    }
    let word = |i: usize| {
        // SAFETY: as in `Log::append`: only the lock's holder accesses a journal area.
        unsafe { area.cell(at + 8 * i, Width::Eight) }.map(|c| c.load())
    };
    let start = usize::try_from(word(0)?).ok()?;
    let run = usize::try_from(word(1)?).ok()?;
    let kind = Kind::from_word(word(2)?)?;
    let e = Entry::place(at, start, run, kind)?;
    let inside = start.checked_add(run)? <= seg.payload_len();
    (inside && e.end <= len).then_some(e)
}

/// Puts back into `target` the old values an entry holds: every primitive of the run (`All`),
/// or those whose old and new values differ (`Changed`), each with one store of its own width
/// (other processes may use the same fields with their atomics meanwhile). Only loads of at most
/// 8 bytes read the journal where it is mapped read only.
fn restore_entry(seg: &Segment, area: Region<'_>, e: &Entry, target: Region<'_>) {
    let old = area.slice(e.old..e.old + e.len);
    let new = e.new.map(|n| area.slice(n..n + e.len));
    let elem = seg.element();
    let run = target.slice(e.start..e.start + e.len);
    if let (Kind::All, Some(unit)) = (e.kind, uniform(elem)) {
        if unit.divides(e.start) && unit.divides(e.len) {
            if seg.is_read_only() {
                // SAFETY: as below, cell by cell: relaxed loads of `unit` bytes.
                unsafe { old.copy_to(run, unit) };
            } else {
                // SAFETY: every primitive of the payload is `unit` wide (the element's
                // descriptor says so), and only the lock's holder accesses the journal area; the
                // run and its old copy are whole aligned cells (checked), at the same offset
                // modulo 16.
                unsafe { bulk::copy_cells(old, run, unit) };
            }
            return;
        }
    }
    if elem.size == 0 {
        return;
    }
    let (start, end) = (e.start as u64, (e.start + e.len) as u64);
    let mut k = start / elem.size;
    while k * elem.size < end {
        each_primitive(elem, k * elem.size, &(start..end), &mut |offset, width| {
            let at = (offset - start) as usize;
            // SAFETY: `width` is the width the segment's element descriptor gives the primitive
            // at `offset` (walked just now), the width of every access to it in the payload (and
            // in a reader's copy laid out like it); only the lock's holder accesses the
            // journal's copies, or a reader that only loads them. The cells lie inside their
            // regions, aligned: the copies sit at the run's offset modulo 16.
            let cells = unsafe {
                (
                    target.cell(offset as usize, width),
                    old.cell(at, width),
                    new.and_then(|n| n.cell(at, width)),
                )
            };
            if let (Some(cell), Some(old)) = (cells.0, cells.1) {
                let old = old.load();
                if cells.2.is_none_or(|new| new.load() != old) {
                    cell.store(old);
                }
            }
        });
        k += 1;
    }
}

/// The width of every primitive of `d`, if it is primitives of one width with no bytes between
/// them (so a run of it can be copied cell by cell without knowing where each field is).
fn uniform(d: &Descriptor) -> Option<Width> {
    match &d.kind {
        DescriptorKind::Primitive(code) | DescriptorKind::Enum { repr: code, .. } => {
            Some(Width::of(*code))
        }
        // A length word and bytes: two widths.
        DescriptorKind::Text { .. } => None,
        DescriptorKind::Array { elem, len } if *len > 0 => uniform(elem),
        DescriptorKind::Array { .. } => None,
        DescriptorKind::Struct { fields } => {
            let mut end = 0;
            let mut width = None;
            for f in fields {
                let w = uniform(&f.ty)?;
                if f.offset != end || width.is_some_and(|x| x != w) {
                    return None;
                }
                width = Some(w);
                end = f.offset.checked_add(f.ty.size)?;
            }
            width.filter(|_| end == d.size)
        }
    }
}

/// Calls `f(offset, width)` for every primitive of `d`, placed at `base`, that lies entirely in
/// `range`: every cell one atomic access of its width reads or writes (an enum's number; a text's
/// length word, then each of its bytes).
pub(crate) fn each_primitive(
    d: &Descriptor,
    base: u64,
    range: &Range<u64>,
    f: &mut dyn FnMut(u64, Width),
) {
    if base >= range.end || base.saturating_add(d.size) <= range.start {
        return;
    }
    let inside = |at: u64, len: u64| at >= range.start && at.saturating_add(len) <= range.end;
    match &d.kind {
        DescriptorKind::Primitive(code) | DescriptorKind::Enum { repr: code, .. } => {
            if inside(base, d.size) {
                f(base, Width::of(*code))
            }
        }
        DescriptorKind::Text { capacity } => {
            // The length word, then each byte (as `AtomicText` accesses them).
            let len = TEXT_LEN_SIZE as u64;
            if inside(base, len) {
                f(base, Width::Four);
            }
            let first = (base + len).max(range.start);
            let end = (base + len).saturating_add(*capacity).min(range.end);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SharedLayout;

    #[test]
    fn uniform_layouts_are_found() {
        let d = |l: &crate::Layout| Descriptor::from_layout(l);
        assert_eq!(uniform(&d(&u16::LAYOUT)), Some(Width::Two));
        assert_eq!(uniform(&d(&<[[f32; 3]; 2]>::LAYOUT)), Some(Width::Four));
        assert_eq!(uniform(&d(&bool::LAYOUT)), Some(Width::One));
        assert_eq!(uniform(&d(&<[u8; 0]>::LAYOUT)), None);
        static U32: crate::Layout = crate::Layout::primitive(crate::TypeCode::U32);
        static U64: crate::Layout = crate::Layout::primitive(crate::TypeCode::U64);
        let strukt = |fields: Vec<(usize, &'static crate::Layout)>, size| {
            let fields: Vec<crate::Field> = fields
                .into_iter()
                .map(|(offset, layout)| crate::Field {
                    name: "f",
                    offset,
                    layout,
                })
                .collect();
            crate::Layout {
                name: "S",
                size,
                align: 8,
                kind: crate::Kind::Struct {
                    fields: Box::leak(fields.into_boxed_slice()),
                },
            }
        };
        let gap = strukt(vec![(0, &U32), (8, &U64)], 16);
        let tight = strukt(vec![(0, &U64), (8, &U64)], 16);
        let tail = strukt(vec![(0, &U64)], 16);
        assert_eq!(uniform(&d(&gap)), None);
        assert_eq!(uniform(&d(&tight)), Some(Width::Eight));
        assert_eq!(uniform(&d(&tail)), None);
    }
}
