//! An atomic cell of 1, 2, 4 or 8 bytes in shared memory: the one place where a place and a
//! width become a std atomic.
//!
//! Every primitive of a segment is 1, 2, 4 or 8 bytes wide, aligned to its width, and accessed
//! only with an atomic of that width (docs/FORMAT.md). Code that knows a primitive by its place
//! and width rather than by its Rust type — the undo journal restoring one, `inspect` reading or
//! writing a field its descriptor names, the ends of a bulk copy — asks a [`Region`] for the
//! [`Cell`] of a [`Width`] at an offset. The region checks that the cell lies inside it and is
//! aligned; the cell loads and stores with the std atomic of its width, relaxed.
//!
//! A region is bytes of a segment that only atomics access: the payload, a journal area, a slice
//! of twins. Two conditions stay with the caller, and are why [`Region::new`],
//! [`Region::cell`] (and what is built on it) are `unsafe`: that the bytes stay mapped while the
//! region is used and only atomics access them; and that the width is the one every concurrent
//! access to those bytes uses (the width the segment's checked layout gives the primitive there),
//! because Rust forbids racing atomic accesses of different sizes to the same bytes.

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::segment::Segment;
use crate::{SharedLayout, TypeCode};

/// How many bytes a primitive takes, and is aligned to, in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// `i8 u8 bool`.
    One = 1,
    /// `i16 u16`.
    Two = 2,
    /// `i32 u32 f32 char`.
    Four = 4,
    /// `i64 u64 f64`.
    Eight = 8,
}

impl Width {
    /// The width of a primitive of type `code`.
    pub(crate) const fn of(code: TypeCode) -> Width {
        match Width::from_bytes(code.size()) {
            Some(w) => w,
            // Every type code is 1, 2, 4 or 8 bytes wide (a test checks each).
            None => Width::Eight,
        }
    }

    /// The width of `bytes` bytes, if a primitive can have it.
    pub(crate) const fn from_bytes(bytes: usize) -> Option<Width> {
        match bytes {
            1 => Some(Width::One),
            2 => Some(Width::Two),
            4 => Some(Width::Four),
            8 => Some(Width::Eight),
            _ => None,
        }
    }

    /// The number of bytes.
    #[inline]
    pub(crate) const fn bytes(self) -> usize {
        self as usize
    }

    /// Whether `n` is a multiple of the width (a mask, not a division: widths are powers of two).
    #[inline]
    pub(crate) const fn divides(self, n: usize) -> bool {
        n & (self.bytes() - 1) == 0
    }

    /// Where the low `self` bytes of a `u64` are among its eight in memory.
    #[inline]
    fn low_bytes(self) -> Range<usize> {
        let n = self.bytes();
        if cfg!(target_endian = "big") {
            8 - n..8
        } else {
            0..n
        }
    }

    /// Writes the low `self` bytes of `bits` into `out` as an atomic of this width holds them in
    /// memory.
    ///
    /// # Panics
    /// If `out` is not `self.bytes()` long.
    #[inline]
    pub(crate) fn encode(self, bits: u64, out: &mut [u8]) {
        out.copy_from_slice(&bits.to_ne_bytes()[self.low_bytes()]);
    }

    /// The low `self` bytes of `bits` as an atomic of this width holds them in memory.
    pub(crate) fn ne_bytes(self, bits: u64) -> Vec<u8> {
        let mut bytes = vec![0; self.bytes()];
        self.encode(bits, &mut bytes);
        bytes
    }

    /// The value, zero-extended, that `bytes` hold in memory for an atomic of this width.
    ///
    /// # Panics
    /// If `bytes` is not `self.bytes()` long.
    #[inline]
    pub(crate) fn decode(self, bytes: &[u8]) -> u64 {
        let mut all = [0; 8];
        all[self.low_bytes()].copy_from_slice(bytes);
        u64::from_ne_bytes(all)
    }
}

/// One primitive in a segment, as the std atomic of its width. Obtained from [`Region::cell`],
/// which checked that it lies inside the region and is aligned.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cell<'a> {
    /// One byte.
    One(&'a AtomicU8),
    /// Two bytes.
    Two(&'a AtomicU16),
    /// Four bytes.
    Four(&'a AtomicU32),
    /// Eight bytes.
    Eight(&'a AtomicU64),
}

impl Cell<'_> {
    /// The cell's width.
    #[inline]
    pub(crate) fn width(self) -> Width {
        match self {
            Cell::One(_) => Width::One,
            Cell::Two(_) => Width::Two,
            Cell::Four(_) => Width::Four,
            Cell::Eight(_) => Width::Eight,
        }
    }

    /// A relaxed atomic load, zero-extended.
    #[inline]
    pub(crate) fn load(self) -> u64 {
        match self {
            Cell::One(a) => a.load(Relaxed).into(),
            Cell::Two(a) => a.load(Relaxed).into(),
            Cell::Four(a) => a.load(Relaxed).into(),
            Cell::Eight(a) => a.load(Relaxed),
        }
    }

    /// A relaxed atomic store of the cell's width of low bytes of `bits`.
    #[inline]
    pub(crate) fn store(self, bits: u64) {
        match self {
            Cell::One(a) => a.store(bits as u8, Relaxed),
            Cell::Two(a) => a.store(bits as u16, Relaxed),
            Cell::Four(a) => a.store(bits as u32, Relaxed),
            Cell::Eight(a) => a.store(bits, Relaxed),
        }
    }
}

/// Bytes of shared memory that only atomics access, and that stay mapped for `'a`: a segment's
/// payload, a journal area, a slice of twins.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region<'a> {
    start: NonNull<u8>,
    len: usize,
    /// Borrows what holds the bytes, as a shared slice of atomics would.
    life: PhantomData<&'a [AtomicU8]>,
}

impl<'a> Region<'a> {
    /// The `len` bytes from `start`.
    ///
    /// # Safety
    /// `start..start + len` lies inside one mapping or allocation that lives for `'a`, and every
    /// access to those bytes, by any thread or process, is atomic.
    #[inline]
    pub(crate) unsafe fn new(start: NonNull<u8>, len: usize) -> Region<'a> {
        Region {
            start,
            len,
            life: PhantomData,
        }
    }

    /// The payload of `seg`.
    #[inline]
    pub(crate) fn payload(seg: &'a Segment) -> Region<'a> {
        // SAFETY: `Segment` proved at create or open that its payload, `payload_len()` bytes from
        // `payload()`, lies inside the mapping, which lives as long as `seg`; every access of
        // this crate to the mapping is atomic, and so is every access docs/FORMAT.md allows
        // another process.
        unsafe { Region::new(seg.payload(), seg.payload_len()) }
    }

    /// The segment's own journal area, where the record of a write that fits in it goes.
    #[inline]
    pub(crate) fn journal(seg: &'a Segment) -> Region<'a> {
        // SAFETY: as in `payload`: `Segment` proved that the journal area, `journal_cap()` bytes
        // from `journal()`, lies inside the mapping.
        unsafe { Region::new(seg.journal(), seg.journal_cap()) }
    }

    /// The start of the segment's journal area, as long as an entry of the whole payload
    /// (`Changed`), which is `len` bytes.
    ///
    /// # Panics
    /// Unless `len` is `seg.whole_entry()`: the caller checks that first, which makes this check
    /// cost nothing once inlined.
    #[inline(always)]
    pub(crate) fn journal_whole(seg: &'a Segment, len: usize) -> Region<'a> {
        use crate::journal::{entry_size, Kind};
        assert_eq!(len, seg.whole_entry(), "not the whole payload");
        let end = entry_size(0, len, Kind::Changed).unwrap_or(0);
        // SAFETY: `Segment` sets `whole_entry` to the payload's length only if an entry of that
        // length, `end` bytes, fits in the journal area (`journal::whole_entry`); so as in
        // `journal`.
        unsafe { Region::new(seg.journal(), end) }
    }

    /// The bytes of `twins`.
    #[inline]
    pub(crate) fn of<T: SharedLayout>(twins: &'a [T::Atomic]) -> Region<'a> {
        // SAFETY: a shared slice is one live allocation or mapping for `'a`, of
        // `size_of_val(twins)` bytes; `SharedLayout` promises that `T::Atomic` is made only of
        // atomics, so every access to its bytes is atomic.
        unsafe { Region::new(NonNull::from(twins).cast(), size_of_val(twins)) }
    }

    /// Its length in bytes.
    #[inline]
    pub(crate) fn len(self) -> usize {
        self.len
    }

    /// Its first byte, for code that accesses it by other means with the same care (the bulk
    /// copies' 16-byte accesses).
    #[inline]
    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.start.as_ptr()
    }

    /// The bytes `range` of this region.
    ///
    /// # Panics
    /// If `range` does not lie inside it, as slice indexing does.
    #[inline]
    pub(crate) fn slice(self, range: Range<usize>) -> Region<'a> {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "bytes {range:?} of a region of {} bytes",
            self.len
        );
        // SAFETY: `range` lies inside this region (asserted), so inside its mapping, and its
        // bytes are this region's, which only atomics access.
        unsafe { Region::new(self.start.add(range.start), range.len()) }
    }

    /// The first `mid` bytes and the rest.
    ///
    /// # Panics
    /// If `mid` is past the end.
    #[inline]
    pub(crate) fn split_at(self, mid: usize) -> (Region<'a>, Region<'a>) {
        (self.slice(0..mid), self.slice(mid..self.len))
    }

    /// The cell of `width` at `offset`, if it lies inside the region and is aligned for its
    /// width.
    ///
    /// # Safety
    /// No access of another width to these bytes races with the cell's: `width` is the width of
    /// the primitive the segment's layout puts at `offset` (with which every access of this crate
    /// to it is made), or the bytes are accessed only under the segment's lock.
    #[inline]
    pub(crate) unsafe fn cell(self, offset: usize, width: Width) -> Option<Cell<'a>> {
        Some(match width {
            Width::One => Cell::One(self.atomic(offset)?),
            Width::Two => Cell::Two(self.atomic(offset)?),
            Width::Four => Cell::Four(self.atomic(offset)?),
            Width::Eight => Cell::Eight(self.atomic(offset)?),
        })
    }

    /// The region's first bytes as a twin of `T`, if they fit and are aligned for it.
    ///
    /// # Safety
    /// As for [`cell`](Self::cell): no access of other widths races with the twin's own (the
    /// region holds a `T` where the twin is, or it is accessed only under the segment's lock).
    #[inline]
    pub(crate) unsafe fn twin<T: SharedLayout>(self) -> Option<&'a T::Atomic> {
        let fits = size_of::<T::Atomic>() <= self.len;
        if !fits || self.as_ptr() as usize % align_of::<T::Atomic>() != 0 {
            return None;
        }
        // SAFETY: the twin fits in the region (checked), which lives for `'a`; its start is
        // aligned for it (checked); any bits are a valid `T::Atomic`, made only of atomics
        // (`SharedLayout`'s contract), and only atomics access the region. The widths are the
        // caller's to vouch for.
        Some(unsafe { &*self.start.cast::<T::Atomic>().as_ptr() })
    }

    /// The std atomic `A` at `offset`, if it lies inside the region and is aligned for `A`. Only
    /// for `cell`, whose caller vouches for the width.
    #[inline]
    fn atomic<A: StdAtomic>(self, offset: usize) -> Option<&'a A> {
        let end = offset.checked_add(size_of::<A>())?;
        if end > self.len {
            return None;
        }
        let ptr = self.start.as_ptr().wrapping_add(offset);
        if ptr as usize % align_of::<A>() != 0 {
            return None;
        }
        // SAFETY: `offset + size_of::<A>() <= len` (checked), so the bytes lie inside the region,
        // whose mapping lives for `'a` (and `wrapping_add` did not wrap); `ptr` is aligned for `A`
        // (checked); `A` is one of std's `AtomicU8..AtomicU64`, for which any bits are a valid
        // value; only atomics access the region. The width is `cell`'s caller's to vouch for.
        Some(unsafe { &*ptr.cast::<A>() })
    }

    /// Relaxed atomic loads of the `unit`-wide cells that make up the region, written to `out`
    /// (as many bytes) as they lie in memory.
    ///
    /// # Safety
    /// As for [`cell`](Self::cell), for each of them: every primitive in the region is `unit`
    /// wide.
    ///
    /// # Panics
    /// If `out` is not as long as the region, or the region is not whole aligned cells of `unit`.
    #[inline(always)]
    pub(crate) unsafe fn load_into(self, out: &mut [u8], unit: Width) {
        assert_eq!(out.len(), self.len, "load into a buffer of another length");
        // SAFETY: the caller's.
        unsafe {
            self.each_cell(unit, |offset, cell| {
                let width = cell.width();
                width.encode(cell.load(), &mut out[offset..offset + width.bytes()]);
            })
        }
    }

    /// Relaxed atomic stores into the `unit`-wide cells that make up the region, of the values
    /// `from` (as many bytes) holds as they lie in memory.
    ///
    /// # Safety
    /// As for [`load_into`](Self::load_into).
    ///
    /// # Panics
    /// As for `load_into`.
    #[inline(always)]
    pub(crate) unsafe fn store_from(self, from: &[u8], unit: Width) {
        assert_eq!(
            from.len(),
            self.len,
            "store from a buffer of another length"
        );
        // SAFETY: the caller's.
        unsafe {
            self.each_cell(unit, |offset, cell| {
                let width = cell.width();
                cell.store(width.decode(&from[offset..offset + width.bytes()]));
            })
        }
    }

    /// Relaxed atomic loads of the `unit`-wide cells that make up the region, stored with relaxed
    /// atomic stores into the cells of `to` at the same offsets.
    ///
    /// # Safety
    /// As for [`load_into`](Self::load_into), for both regions.
    ///
    /// # Panics
    /// If the regions differ in length, or either is not whole aligned cells of `unit`.
    #[inline(always)]
    pub(crate) unsafe fn copy_to(self, to: Region<'_>, unit: Width) {
        assert_eq!(to.len, self.len, "copy into a region of another length");
        // SAFETY: the caller's, for both regions.
        unsafe {
            self.each_cell(unit, |offset, from| {
                let to = to.cell(offset, from.width());
                to.expect("a run of cells that are not whole or not aligned")
                    .store(from.load());
            })
        }
    }

    /// Calls `f(offset, cell)` for each `unit`-wide cell that makes up the region, in order.
    ///
    /// # Safety
    /// As for [`cell`](Self::cell), for each of them: every primitive in the region is `unit`
    /// wide.
    ///
    /// # Panics
    /// If the region is not whole aligned cells of `unit`.
    #[inline(always)]
    unsafe fn each_cell(self, unit: Width, mut f: impl FnMut(usize, Cell<'a>)) {
        // One match for the whole run: in each arm the width is a constant, so the loop copies
        // with the one instruction its width takes. This and the three runs above are always
        // inlined: the ends of a bulk copy are a few cells, which a call and a jump table would
        // cost as much as copying them.
        match unit {
            Width::One => self.each_atomic(|offset, a| f(offset, Cell::One(a))),
            Width::Two => self.each_atomic(|offset, a| f(offset, Cell::Two(a))),
            Width::Four => self.each_atomic(|offset, a| f(offset, Cell::Four(a))),
            Width::Eight => self.each_atomic(|offset, a| f(offset, Cell::Eight(a))),
        }
    }

    /// Calls `f(offset, atomic)` for each std atomic `A` that makes up the region, in order. Only
    /// for `each_cell`, whose caller vouches for the width.
    ///
    /// # Panics
    /// If the region is not whole aligned `A`s.
    #[inline]
    fn each_atomic<A: StdAtomic>(self, mut f: impl FnMut(usize, &'a A)) {
        let width = A::WIDTH;
        assert!(
            width.divides(self.as_ptr() as usize) && width.divides(self.len),
            "a run of cells that are not whole or not aligned"
        );
        let mut offset = 0;
        while offset < self.len {
            // SAFETY: as in `atomic`: `offset + width <= len` (`len` is a multiple of `width`),
            // and the start, so every multiple of `width` from it, is aligned for `A`, whose
            // alignment is its width (asserted).
            f(offset, unsafe { &*self.as_ptr().add(offset).cast::<A>() });
            offset += width.bytes();
        }
    }
}

/// std's `AtomicU8..AtomicU64`: any bits are a valid value of each, and each is aligned to its
/// width.
trait StdAtomic: Sync + 'static {
    /// Its size and alignment.
    const WIDTH: Width;
}

impl StdAtomic for AtomicU8 {
    const WIDTH: Width = Width::One;
}

impl StdAtomic for AtomicU16 {
    const WIDTH: Width = Width::Two;
}

impl StdAtomic for AtomicU32 {
    const WIDTH: Width = Width::Four;
}

impl StdAtomic for AtomicU64 {
    const WIDTH: Width = Width::Eight;
}

const _: () = {
    assert!(size_of::<AtomicU8>() == 1 && align_of::<AtomicU8>() == 1);
    assert!(size_of::<AtomicU16>() == 2 && align_of::<AtomicU16>() == 2);
    assert!(size_of::<AtomicU32>() == 4 && align_of::<AtomicU32>() == 4);
    assert!(size_of::<AtomicU64>() == 8 && align_of::<AtomicU64>() == 8);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_code_has_its_width() {
        for code in TypeCode::ALL {
            assert_eq!(Width::of(code).bytes(), code.size(), "{code}");
        }
        assert!(Width::Four.divides(12) && !Width::Four.divides(6) && Width::One.divides(7));
        assert_eq!(Width::from_bytes(3), None);
        assert_eq!(Width::from_bytes(16), None);
    }

    #[test]
    fn bytes_are_those_an_atomic_of_the_width_holds() {
        let words = [AtomicU64::new(0), AtomicU64::new(0)];
        let region = Region::of::<u64>(&words);
        for width in [Width::One, Width::Two, Width::Four, Width::Eight] {
            let n = width.bytes();
            // SAFETY: a test's own twins, accessed by this thread only.
            let cell = unsafe { region.cell(8, width) }.unwrap();
            cell.store(0x0102_0304_0506_0708);
            let mut mem = vec![0; n];
            // SAFETY: as above.
            unsafe { region.slice(8..8 + n).load_into(&mut mem, width) };
            let low = 0x0102_0304_0506_0708u64.to_ne_bytes()[width.low_bytes()].to_vec();
            assert_eq!(mem, low, "{width:?}");
            assert_eq!(width.decode(&mem), cell.load());
            assert_eq!(
                cell.load(),
                0x0102_0304_0506_0708 & (u64::MAX >> (64 - 8 * n))
            );
            words[1].store(0, Relaxed);
        }
    }

    #[test]
    fn runs_of_cells_are_copied_whole_and_in_memory_order() {
        let (a, b) = (
            [AtomicU64::new(0), AtomicU64::new(0)],
            [AtomicU64::new(0), AtomicU64::new(0)],
        );
        let (a, b) = (Region::of::<u64>(&a), Region::of::<u64>(&b));
        let bytes: Vec<u8> = (1..=12).collect();
        for unit in [Width::One, Width::Two, Width::Four] {
            let mut back = [0; 12];
            // SAFETY: a test's own twins, accessed by this thread only.
            unsafe {
                a.slice(4..16).store_from(&bytes, unit);
                a.slice(4..16).copy_to(b.slice(4..16), unit);
                b.slice(4..16).load_into(&mut back, unit);
                assert_eq!(back[..], bytes[..], "{unit:?}");
                assert_eq!(b.cell(0, Width::Four).unwrap().load(), 0, "{unit:?}");
                b.slice(4..16).store_from(&[0; 12], unit);
            }
        }
    }

    #[test]
    #[should_panic(expected = "not whole or not aligned")]
    fn a_run_that_is_not_whole_cells_is_refused() {
        let words = [AtomicU64::new(0)];
        // SAFETY: a test's own twins, accessed by this thread only.
        unsafe {
            Region::of::<u64>(&words)
                .slice(0..6)
                .load_into(&mut [0; 6], Width::Four)
        };
    }

    #[test]
    fn cells_outside_or_misaligned_are_refused() {
        let words = [AtomicU64::new(0), AtomicU64::new(0)];
        let region = Region::of::<u64>(&words).slice(4..16);
        // SAFETY: a test's own twins, accessed by this thread only.
        unsafe {
            assert!(region.cell(0, Width::Four).is_some());
            assert!(region.cell(0, Width::Eight).is_none()); // byte 4 of the words: misaligned
            assert!(region.cell(4, Width::Eight).is_some());
            assert!(region.cell(8, Width::Four).is_some());
            assert!(region.cell(12, Width::One).is_none());
            assert!(region.cell(usize::MAX, Width::One).is_none());
        }
    }
}
