//! Journaled writes of the payload: what `update`, `write_from` and `RawSegment::set` journal and
//! store, each as one seqlock write under the segment's lock.
//!
//! An update journals and stores only what it changes. It compares the new values with the old
//! ones it loaded and finds the runs of bytes that differ; each run is journaled right before it
//! is stored, in pieces of at most 64 KiB. Changing one element
//! of a large array thus journals that element, not the array.
//!
//! - Numbers and arrays of numbers (whose values are their twins' bytes) are compared cell by
//!   cell (a cell is one primitive). A run of cells that all changed is journaled with its old
//!   values only ([`Kind::All`]) and stored in bulk; runs closer than [`MERGE_GAP`] are merged into
//!   one that also carries the new values ([`Kind::Changed`]), so that the unchanged cells
//!   between them are left alone when it is undone.
//! - Other types are compared element by element, through their twins' bytes; a run of changed
//!   elements is journaled with old and new values (`Changed`: some of their fields may be
//!   unchanged) and stored with `store_changed`.
//! - A single value of at most [`SMALL`] bytes (`Shared::update`) is journaled whole, old and new,
//!   without comparing first, and allocates nothing.
//!
//! A bulk write (`write_from`) overwrites its whole range: it journals the old values only, read
//! from the payload piece by piece right before each piece is stored.

use core::mem::{size_of, MaybeUninit};
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::Relaxed;
use std::alloc::{self, Layout as AllocLayout};

use crate::bulk;
use crate::cell::{Region, Width};
use crate::journal::{self, Kind};
use crate::segment::Segment;
use crate::seqlock::Write;
use crate::{BulkCopy, Result, SharedLayout};

/// Changed runs closer than this many bytes are journaled as one entry with old and new values.
const MERGE_GAP: usize = 64;

/// A single value this small is journaled whole, without comparing, from twins on the stack.
const SMALL: usize = 4096;

/// A single value this small is written by code inlined into the caller (`Shared::update`):
/// an out-of-line call returned its result and kept the write's state through memory.
pub(crate) const INLINE: usize = 128;

/// Room for entries that can never fit: a write that asks for it gets no record, or `NoSpace`.
const TOO_MUCH: usize = usize::MAX;

/// The result of a write that did not require its journal: such a write goes ahead without one
/// when there is no room for it, so it never fails.
#[inline]
pub(crate) fn infallible<R>(r: Result<R>) -> R {
    match r {
        Ok(r) => r,
        Err(_) => unreachable!("a write that may go without a journal does not fail"),
    }
}

/// Stores `new` into the twins `twins` (the payload bytes from `at`), whose values were loaded as
/// `old`, as one journaled seqlock write: the fields that differ, and only those. The caller
/// holds the segment's lock.
///
/// # Errors
/// If `required` and there is no room for the journal: nothing is stored.
///
/// # Panics
/// If the three slices differ in length.
///
/// Always inlined, as a dispatch the compiler resolves: a `Shared::update` of a small value
/// compiles to [`single`] alone, in the caller, and the comparing paths stay out of line.
#[inline(always)]
pub(crate) fn update<T: SharedLayout>(
    seg: &Segment,
    twins: &[T::Atomic],
    at: usize,
    old: &[T],
    new: &[T],
    required: bool,
) -> Result<()> {
    assert!(
        twins.len() == old.len() && old.len() == new.len(),
        "an update of slices of different lengths"
    );
    let size = size_of::<T::Atomic>();
    if old.len() == 1 && size <= INLINE {
        return single(seg, &twins[0], at, &old[0], &new[0], required);
    }
    if old.len() == 1 && size <= SMALL {
        return single_out_of_line(seg, &twins[0], at, &old[0], &new[0], required);
    }
    if T::PLAIN_BYTES {
        if let Some(unit) = const { bulk::uniform_width::<T>() } {
            return plain(seg, twins, at, old, new, unit, required);
        }
    }
    by_element(seg, twins, at, old, new, required)
}

/// [`single`], called: for a value too large to inline its write everywhere it is updated.
#[inline(never)]
fn single_out_of_line<T: SharedLayout>(
    seg: &Segment,
    twin: &T::Atomic,
    at: usize,
    old: &T,
    new: &T,
    required: bool,
) -> Result<()> {
    single(seg, twin, at, old, new, required)
}

/// Stores `new` into `twin` (payload bytes from `at`), whose value was loaded as `old`, as one
/// journaled seqlock write: [`update`] of one value, taking the values themselves. A value of
/// up to [`INLINE`] bytes is written by code inlined into the caller, with the values in
/// registers: its record is one entry written before the write begins ([`journal::First`]),
/// and anything else (a value the journal area cannot hold as a twin, a record that goes
/// elsewhere) takes a cold call, which gets the values by value, so that only that call puts
/// them in memory.
#[inline(always)]
pub(crate) fn update_value<T: SharedLayout>(
    seg: &Segment,
    twin: &T::Atomic,
    at: usize,
    old: T,
    new: T,
    required: bool,
) -> Result<()> {
    if size_of::<T::Atomic>() > INLINE {
        return update(
            seg,
            core::slice::from_ref(twin),
            at,
            &[old],
            &[new],
            required,
        );
    }
    if let Some(first) = journal::First::place(seg, at, size_of::<T::Atomic>()) {
        // SAFETY: the copies are in the journal area, which only the holder of the segment's
        // lock (this thread) accesses: no access of another width races with the twins'.
        let copies = unsafe {
            (
                first.old_values().twin::<T>(),
                first.new_values().twin::<T>(),
            )
        };
        if let (Some(o), Some(n)) = copies {
            T::store(o, &old, Relaxed);
            T::store(n, &new, Relaxed);
            first.close();
            let mut w = Write::begin_committed(seg);
            T::store_changed(twin, &old, &new, Relaxed);
            w.finish();
            return Ok(());
        }
    }
    single_by_value(seg, twin, at, old, new, required)
}

/// [`single_out_of_line`] for [`update_value`]: cold, and taking the values by value.
#[cold]
#[inline(never)]
fn single_by_value<T: SharedLayout>(
    seg: &Segment,
    twin: &T::Atomic,
    at: usize,
    old: T,
    new: T,
    required: bool,
) -> Result<()> {
    single_out_of_line(seg, twin, at, &old, &new, required)
}

/// One small value: one entry of old and new values, from twins on the stack.
#[inline(always)]
fn single<T: SharedLayout>(
    seg: &Segment,
    twin: &T::Atomic,
    at: usize,
    old: &T,
    new: &T,
    required: bool,
) -> Result<()> {
    let size = size_of::<T::Atomic>();
    let need = journal::entry_size(at, size, Kind::Changed).unwrap_or(TOO_MUCH);
    let mut w = Write::begin(seg, need, required)?;
    w.journal(at, size, Kind::Changed, |o, n| {
        record_value(old, o);
        if let Some(n) = n {
            record_value(new, n);
        }
    });
    T::store_changed(twin, old, new, Relaxed);
    w.finish();
    Ok(())
}

/// Writes `value` into a journal area region: stored straight into a twin there if the region is
/// aligned for one (the bytes of its padding are then whatever they were: undo compares and
/// restores primitives only), else as the bytes of a twin made on the stack.
#[inline]
fn record_value<T: SharedLayout>(value: &T, into: Region<'_>) {
    // SAFETY: `into` is part of a journal area, which only the holder of the segment's lock
    // accesses: no access of another width races with the twin's.
    match unsafe { into.twin::<T>() } {
        Some(twin) => T::store(twin, value, Relaxed),
        None => twin_bytes(value, |bytes| store_bytes(bytes, into)),
    }
}

/// Calls `f` with the bytes of `value`'s twin: what [`SharedLayout::store`] leaves in a twin
/// whose bytes were all zero (so padding is zero).
fn twin_bytes<T: SharedLayout>(value: &T, f: impl FnOnce(&[u8])) {
    let twin = MaybeUninit::<T::Atomic>::zeroed();
    // SAFETY: every bit pattern, all zeros included, is a valid `T::Atomic` (`SharedLayout`'s
    // contract); the twin is used in place, never moved, so its padding stays the zeros it was
    // made of.
    let twin = unsafe { twin.assume_init_ref() };
    T::store(twin, value, Relaxed);
    // SAFETY: the twin's `size_of::<T::Atomic>()` bytes are initialised (zeroed, then written by
    // atomic stores of its fields) and nobody writes them while the slice lives: the twin is this
    // function's, and the stores above are done.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (twin as *const T::Atomic).cast::<u8>(),
            size_of::<T::Atomic>(),
        )
    };
    f(bytes)
}

/// Writes `bytes` into a journal area region of as many bytes.
fn store_bytes(bytes: &[u8], into: Region<'_>) {
    // SAFETY: `into` is part of a journal area, which only the holder of the segment's lock
    // accesses: no access of another width races with these.
    unsafe { bulk::store_cells(bytes, into, Width::One) }
}

/// Values that are their twins' bytes, as bytes.
///
/// # Safety
/// `T::PLAIN_BYTES` is true.
unsafe fn plain_bytes<T: SharedLayout>(values: &[T]) -> &[u8] {
    // SAFETY: a `PLAIN_BYTES` type has no padding (the caller's), so every byte of the slice is
    // initialised; the bytes are borrowed as long as `values`.
    unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), size_of_val(values)) }
}

/// Numbers: compared and journaled cell by cell (`unit` wide), stored in bulk.
#[inline(never)]
fn plain<T: SharedLayout>(
    seg: &Segment,
    twins: &[T::Atomic],
    at: usize,
    old: &[T],
    new: &[T],
    unit: Width,
    required: bool,
) -> Result<()> {
    // SAFETY: `update` calls this only for `PLAIN_BYTES` types.
    let (ob, nb) = unsafe { (plain_bytes(old), plain_bytes(new)) };
    let cell = unit.bytes();
    let runs = diff(ob, nb, cell, true);
    let need = total(&runs, at, cell);
    let mut w = Write::begin(seg, need, required)?;
    let payload = Region::of::<T>(twins);
    for &(s, l, kind) in &runs {
        for (ps, pl) in journal::pieces(at + s, l, cell) {
            let r = ps - at..ps - at + pl;
            w.journal(ps, pl, kind, |o, n| {
                store_bytes(&ob[r.clone()], o);
                if let Some(n) = n {
                    store_bytes(&nb[r.clone()], n);
                }
            });
            let here = payload.slice(r.clone());
            match kind {
                // SAFETY: every primitive of `T`, so of the twins, is `unit` wide (`unit` is
                // `T`'s uniform width), the width of every access to them.
                Kind::All => unsafe { bulk::store_cells(&nb[r.clone()], here, unit) },
                Kind::Changed => {
                    for c in (0..pl).step_by(cell) {
                        let (o, n) = (&ob[r.start + c..][..cell], &nb[r.start + c..][..cell]);
                        if o != n {
                            // SAFETY: as above; the cell is inside the run, aligned.
                            let target = unsafe { here.cell(c, unit) };
                            target.expect("cells of the twins").store(unit.decode(n));
                        }
                    }
                }
            }
        }
    }
    w.finish();
    Ok(())
}

/// Other types: compared element by element through their twins' bytes; runs of changed elements
/// journaled with old and new values, stored with `store_changed`.
#[inline(never)]
fn by_element<T: SharedLayout>(
    seg: &Segment,
    twins: &[T::Atomic],
    at: usize,
    old: &[T],
    new: &[T],
    required: bool,
) -> Result<()> {
    let size = size_of::<T::Atomic>();
    let (oi, ni) = (Image::of(old), Image::of(new));
    let runs = diff(oi.bytes(), ni.bytes(), size, false);
    let need = total(&runs, at, size);
    let mut w = Write::begin(seg, need, required)?;
    for &(s, l, kind) in &runs {
        for (ps, pl) in journal::pieces(at + s, l, size) {
            let r = ps - at..ps - at + pl;
            w.journal(ps, pl, kind, |o, n| {
                store_bytes(&oi.bytes()[r.clone()], o);
                if let Some(n) = n {
                    store_bytes(&ni.bytes()[r.clone()], n);
                }
            });
            for i in r.start / size..r.end / size {
                T::store_changed(&twins[i], &old[i], &new[i], Relaxed);
            }
        }
    }
    w.finish();
    Ok(())
}

/// The journal bytes the entries of `runs` take when cut into pieces on multiples of `cut`.
fn total(runs: &[(usize, usize, Kind)], at: usize, cut: usize) -> usize {
    runs.iter()
        .try_fold(0usize, |t, &(s, l, kind)| {
            t.checked_add(journal::size_in_pieces(at.checked_add(s)?, l, cut, kind)?)
        })
        .unwrap_or(TOO_MUCH)
}

/// The runs of `cell`-byte cells in which `old` and `new` differ, as (offset, length, kind):
/// runs closer than [`MERGE_GAP`] are merged. With `exact` (a cell is one primitive), a run whose
/// cells all differ is [`Kind::All`]; every other run is [`Kind::Changed`].
fn diff(old: &[u8], new: &[u8], cell: usize, exact: bool) -> Vec<(usize, usize, Kind)> {
    debug_assert!(old.len() == new.len() && cell > 0 && old.len() % cell == 0);
    // Equal blocks are skipped with one comparison (`memcmp`).
    let block = (4096 / cell).max(1) * cell;
    let mut runs = Vec::new();
    // The run being built: start, end, whether it holds equal cells.
    let mut run: Option<(usize, usize, bool)> = None;
    let mut b = 0;
    while b < old.len() {
        let e = (b + block).min(old.len());
        if old[b..e] != new[b..e] {
            for c in (b..e).step_by(cell) {
                if old[c..c + cell] == new[c..c + cell] {
                    continue;
                }
                run = Some(match run {
                    Some((s, end, mixed)) if c - end < MERGE_GAP => {
                        (s, c + cell, mixed || c != end)
                    }
                    Some(done) => {
                        runs.push(done);
                        (c, c + cell, false)
                    }
                    None => (c, c + cell, false),
                });
            }
        }
        b = e;
    }
    runs.extend(run);
    runs.into_iter()
        .map(|(s, e, mixed)| {
            let kind = if exact && !mixed {
                Kind::All
            } else {
                Kind::Changed
            };
            (s, e - s, kind)
        })
        .collect()
}

/// Twins on the heap, zeroed and then given values with [`SharedLayout::store`]: their bytes
/// (padding zero) are what an update compares and journals for types that are not plain bytes.
struct Image<T: SharedLayout> {
    ptr: NonNull<T::Atomic>,
    len: usize,
}

impl<T: SharedLayout> Image<T> {
    fn layout(len: usize) -> AllocLayout {
        AllocLayout::array::<T::Atomic>(len).expect("as many twins as values in memory")
    }

    fn of(values: &[T]) -> Image<T> {
        let layout = Self::layout(values.len());
        let ptr = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc::alloc_zeroed(layout) };
            NonNull::new(raw.cast()).unwrap_or_else(|| alloc::handle_alloc_error(layout))
        };
        // SAFETY: `values.len()` twins of zeroed memory, allocated just above (or none), aligned;
        // all zeros is a valid twin (`SharedLayout`'s contract).
        let twins = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), values.len()) };
        for (t, v) in twins.iter().zip(values) {
            T::store(t, v, Relaxed);
        }
        Image {
            ptr,
            len: values.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation's bytes were zeroed and then written only by the atomic stores
        // of `of`, which are done; nothing writes them while `self` is borrowed.
        unsafe {
            core::slice::from_raw_parts(
                self.ptr.as_ptr().cast::<u8>(),
                self.len * size_of::<T::Atomic>(),
            )
        }
    }
}

impl<T: SharedLayout> Drop for Image<T> {
    fn drop(&mut self) {
        let layout = Self::layout(self.len);
        if layout.size() != 0 {
            // SAFETY: allocated in `of` with this layout, freed once.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

/// Writes `values` into the twins `twins` (the payload bytes from `at`), all of them, as one
/// journaled seqlock write: each piece's old values are copied from the payload into the
/// journal, then the piece is stored. The caller holds the segment's lock.
///
/// # Errors
/// If `required` and there is no room for the journal: nothing is stored.
pub(crate) fn write_from<T: BulkCopy>(
    seg: &Segment,
    twins: &[T::Atomic],
    at: usize,
    values: &[T],
    required: bool,
) -> Result<()> {
    let size = size_of::<T>();
    let unit = const { bulk::uniform_width::<T>() };
    let cut = unit.map_or(size, Width::bytes);
    let len = size_of_val(values);
    let need = journal::size_in_pieces(at, len, cut, Kind::All).unwrap_or(TOO_MUCH);
    let mut w = Write::begin(seg, need, required)?;
    let payload = Region::of::<T>(twins);
    let src = bulk::bytes(values);
    for (ps, pl) in journal::pieces(at, len, cut) {
        let r = ps - at..ps - at + pl;
        let here = payload.slice(r.clone());
        match unit {
            Some(unit) => {
                // SAFETY: every primitive of `T` is `unit` wide, the width of every access to
                // the payload's cells; the journal area is only the lock holder's.
                w.journal(ps, pl, Kind::All, |o, _| unsafe {
                    bulk::copy_to_journal(here, o, unit)
                });
                // SAFETY: as above.
                unsafe { bulk::store_cells(&src[r.clone()], here, unit) };
            }
            None => {
                let elems = r.start / size..r.end / size;
                w.journal(ps, pl, Kind::All, |o, _| {
                    for (k, twin) in twins[elems.clone()].iter().enumerate() {
                        let v = T::load(twin, Relaxed);
                        store_bytes(
                            bulk::bytes(core::slice::from_ref(&v)),
                            o.slice(k * size..(k + 1) * size),
                        );
                    }
                });
                bulk::store(&values[elems.clone()], &twins[elems]);
            }
        }
    }
    w.finish();
    Ok(())
}

/// Writes payload bytes `at..at + old.len()`, whose bytes are `old` and become `new`, as one
/// journaled seqlock write (for a tool that writes fields it knows by their place): journaled
/// with old and new values, cut every multiple of `unit` bytes from `at` (the element's size,
/// so that every cut falls where a primitive starts); `store(piece)` stores the primitives of
/// each piece, once its entry is committed. The caller holds the segment's lock.
pub(crate) fn bytes(
    seg: &Segment,
    at: usize,
    old: &[u8],
    new: &[u8],
    unit: usize,
    mut store: impl FnMut(Range<usize>),
) {
    assert_eq!(
        old.len(),
        new.len(),
        "old and new bytes of different lengths"
    );
    let need = journal::size_in_pieces(at, old.len(), unit, Kind::Changed).unwrap_or(TOO_MUCH);
    // Without `required` there is always a way: the record, or a write without one.
    let Ok(mut w) = Write::begin(seg, need, false) else {
        return;
    };
    for (ps, pl) in journal::pieces(at, old.len(), unit) {
        let r = ps - at..ps - at + pl;
        w.journal(ps, pl, Kind::Changed, |o, n| {
            store_bytes(&old[r.clone()], o);
            if let Some(n) = n {
                store_bytes(&new[r.clone()], n);
            }
        });
        store(ps..ps + pl);
    }
    w.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_finds_exact_runs_and_merges_close_ones() {
        let old = vec![0u8; 10_000];
        let mut new = old.clone();
        assert!(diff(&old, &new, 8, true).is_empty());
        new[8..24].fill(1); // cells 1 and 2
        new[5000] = 1; // cell 625, far away
        assert_eq!(
            diff(&old, &new, 8, true),
            vec![(8, 16, Kind::All), (5000, 8, Kind::All)]
        );
        new[40] = 1; // cell 5: two equal cells after cell 2, within the gap
        assert_eq!(
            diff(&old, &new, 8, true),
            vec![(8, 40, Kind::Changed), (5000, 8, Kind::All)]
        );
        // Element cells: always Changed.
        assert_eq!(diff(&old, &new, 40, false)[0], (0, 80, Kind::Changed));
        // Across the block boundary: one run.
        let mut across = old.clone();
        across[4090..4100].fill(9);
        assert_eq!(diff(&old, &across, 2, true), vec![(4090, 10, Kind::All)]);
        // Everything.
        let all = vec![1u8; 10_000];
        assert_eq!(diff(&old, &all, 1, true), vec![(0, 10_000, Kind::All)]);
    }
}
