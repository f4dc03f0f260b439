//! Bulk copies between an [`Array`](crate::Array) and ordinary memory, at close to `memcpy` speed.
//!
//! Copying element by element with relaxed atomic loads is correct but slow: the compiler never
//! merges or vectorises atomic accesses, so it moves at most eight bytes an instruction. The types
//! of [`BulkCopy`] are plain numbers, for which any bytes are a value; for them, on x86_64
//! processors with AVX, the copy uses aligned 16-byte SSE loads and stores, which those processors
//! guarantee to be single-copy atomic. One such access is indistinguishable from relaxed atomic
//! accesses of every primitive inside it, so the copy has exactly the meaning of the element-wise
//! loop, sixteen bytes an instruction. Elsewhere (other architectures, no AVX, Miri) it is that
//! loop.
//!
//! [`Array::read_into`](crate::Array::read_into) wraps the copy in a seqlock read and
//! [`Array::write_from`](crate::Array::write_from) in the lock and a seqlock write (whose journal
//! copies use the same path), so a bulk copy is as consistent as `snapshot` and `update`;
//! [`Array::store_from`](crate::Array::store_from) is the plain copy, element-wise atomic.
//!
//! This file holds the trait and the three copies (`load`, `store`, `copy`) that choose a path;
//! `shape` reads from a type's layout, at compile time, whether and how it may be copied in bulk
//! (every primitive of one width, no padding); `fast` holds the architecture-specific copies,
//! whose unaligned ends go cell by cell through [`crate::cell`].

use core::sync::atomic::Ordering::Relaxed;

use crate::cell::{Region, Width};
use crate::SharedLayout;

mod fast;
mod shape;

use shape::{checked_shape, Shape};

/// A [`SharedLayout`] type whose values can be copied to and from a segment as raw bytes: the
/// numbers `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64` and arrays of them, to any depth. It is what
/// [`Array::read_into`](crate::Array::read_into) and
/// [`Array::write_from`](crate::Array::write_from) need.
///
/// `bool` and `char` are not `BulkCopy`: another process may leave a byte in a segment that is no
/// `bool` (2) or no `char` (a surrogate), and a raw copy would put it into a Rust value.
///
/// A derived struct may implement it (`unsafe impl BulkCopy for Rgb {}`) when every field is
/// `BulkCopy` and the struct has no padding. The copies check this at compile time from the
/// struct's `LAYOUT` (a `bool` or `char` field, or a gap between fields, fails the build wherever
/// a copy of the type is used), so for a derived struct the only promise left to the implementor
/// is the one the derive already keeps. A struct whose numbers differ in width (`u64` next to
/// `u32`) is copied element by element.
///
/// ```
/// use shm_core::Array;
///
/// # let name = format!("doc-bulk-{}", std::process::id());
/// let a = Array::<f32>::create_zeroed(&name, 1 << 16)?;
/// let samples: Vec<f32> = (0..1024).map(|i| i as f32).collect();
/// a.write_from(4096, &samples); // one seqlock write, under the lock
/// let mut back = vec![0.0f32; 1024];
/// a.read_into(4096, &mut back); // one seqlock read: never half of a write_from
/// assert_eq!(back, samples);
/// # Ok::<(), shm_core::Error>(())
/// ```
///
/// # Safety
///
/// An implementor promises that:
/// - every bit pattern of `size_of::<Self>()` bytes is a valid `Self`;
/// - `Self` has no padding, so every byte of a `Self` is initialised;
/// - `Self` and `Self::Atomic` have the same size, alignment and field offsets, and the bytes of
///   a value of `Self` are the bytes that [`SharedLayout::store`] leaves in `Self::Atomic`, so
///   that copying bytes is `store`, and copying them back is `load`.
pub unsafe trait BulkCopy: SharedLayout + Copy {}

macro_rules! bulk_copy {
    ($($ty:ty),*) => {$(
        // SAFETY: a number of this width has no padding and no invalid bit pattern; its twin is
        // the std atomic of the same width (or this crate's float atomic, a `repr(transparent)`
        // wrapper of the integer atomic holding `to_bits()`), which has the same size, alignment
        // and in-memory representation.
        unsafe impl BulkCopy for $ty {}
    )*};
}
bulk_copy!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

// SAFETY: `[T; N]` has no padding between elements, so each condition holds for the array
// because it holds for `T`; its twin `[T::Atomic; N]` is laid out as `N` twins of `T`, at the
// offsets of the elements of `[T; N]`.
unsafe impl<T: BulkCopy, const N: usize> BulkCopy for [T; N] {}

/// `values` as the bytes they are made of.
pub(crate) fn bytes<T: BulkCopy>(values: &[T]) -> &[u8] {
    // SAFETY: `T` has no padding (`BulkCopy`'s contract), so each of the `size_of_val(values)`
    // bytes is initialised; the bytes are borrowed as long as `values`.
    unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), size_of_val(values)) }
}

/// `values` as the bytes they are made of, to overwrite.
fn bytes_mut<T: BulkCopy>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: as in `bytes`; and any bytes are a valid `T` (`BulkCopy`'s contract), so whatever
    // is written through the result leaves valid values. The borrow is exclusive for as long.
    unsafe { core::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), size_of_val(values)) }
}

/// # Panics
/// If `a` and `b` differ.
#[inline]
#[track_caller]
fn same_lengths(a: usize, b: usize) {
    assert_eq!(a, b, "bulk copy between slices of different lengths");
}

/// Reads of fewer bytes go element by element: the 16-byte path's set-up (the processor check,
/// cutting the range into its aligned middle and its ends, the call) costs more than it saves on
/// a few loads (at 256 bytes the element-wise loop measured about 1.4× faster, at 512 bytes
/// the two about the same), and the element-wise loop is small enough to be inlined where it is
/// used.
const FAST_FROM: usize = 512;

/// Copies `src` (twins in a segment) into `dst`, as relaxed atomic loads of every primitive.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn load<T: BulkCopy>(src: &[T::Atomic], dst: &mut [T]) {
    same_lengths(src.len(), dst.len());
    match const { checked_shape::<T>() } {
        Shape::Uniform(unit) if size_of_val(dst) >= FAST_FROM && fast::available() => {
            // SAFETY: every primitive of `T`, so of the twins `src` holds, is `unit` wide
            // (`checked_shape`), and every access to a twin's primitive is an atomic of its width.
            // The lengths are equal (asserted; `T` and `T::Atomic` have the same size, checked at
            // compile time), and a slice of `T` starts and ends on a multiple of `unit`.
            unsafe { fast::load(Region::of::<T>(src), bytes_mut(dst), unit) }
        }
        _ => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = T::load(s, Relaxed);
            }
        }
    }
}

/// Copies `src` into `dst` (twins in a segment), as relaxed atomic stores of every primitive.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn store<T: BulkCopy>(src: &[T], dst: &[T::Atomic]) {
    same_lengths(src.len(), dst.len());
    match const { checked_shape::<T>() } {
        Shape::Uniform(unit) if fast::available() => {
            // SAFETY: as in `load`.
            unsafe { fast::store(bytes(src), Region::of::<T>(dst), unit) }
        }
        _ => {
            for (s, d) in src.iter().zip(dst) {
                T::store(d, s, Relaxed);
            }
        }
    }
}

/// Relaxed atomic loads of the `unit`-wide cells that make up `src`, written to `dst` as they lie
/// in memory: the fast path where there is one, else cell by cell.
///
/// # Safety
/// As for [`Region::cell`]: every primitive in `src` is `unit` wide, or only the holder of the
/// segment's lock accesses `src` (a journal area).
///
/// # Panics
/// If the lengths differ, or `src` is not whole aligned cells of `unit`.
pub(crate) unsafe fn load_cells(src: Region<'_>, dst: &mut [u8], unit: Width) {
    if fast::available() {
        // SAFETY: the caller's.
        unsafe { fast::load(src, dst, unit) }
    } else {
        // SAFETY: the caller's.
        unsafe { src.load_into(dst, unit) }
    }
}

/// Relaxed atomic stores of the values `src` holds, as they lie in memory, into the `unit`-wide
/// cells that make up `dst`.
///
/// # Safety
/// As for [`load_cells`], for `dst`.
///
/// # Panics
/// As for [`load_cells`].
pub(crate) unsafe fn store_cells(src: &[u8], dst: Region<'_>, unit: Width) {
    if fast::available() {
        // SAFETY: the caller's.
        unsafe { fast::store(src, dst, unit) }
    } else {
        // SAFETY: the caller's.
        unsafe { dst.store_from(src, unit) }
    }
}

/// Relaxed atomic loads of the `unit`-wide cells of `from`, stored into the cells of `to` at the
/// same offsets.
///
/// # Safety
/// As for [`load_cells`], for both regions.
///
/// # Panics
/// If the lengths differ, or either is not whole aligned cells of `unit`.
pub(crate) unsafe fn copy_cells(from: Region<'_>, to: Region<'_>, unit: Width) {
    if fast::available() && (from.as_ptr() as usize ^ to.as_ptr() as usize) & 15 == 0 {
        // SAFETY: the caller's; both at the same offset modulo 16 (checked).
        unsafe { fast::copy(from, to, unit) }
    } else {
        // SAFETY: the caller's.
        unsafe { from.copy_to(to, unit) }
    }
}

/// [`copy_cells`] from the payload into a journal area, which only the holder of the segment's
/// lock accesses: where there is a fast path, with stores that leave the caches to the payload.
///
/// # Safety
/// As for [`copy_cells`]; and only the holder of the segment's lock accesses `to`.
///
/// # Panics
/// As for [`copy_cells`].
pub(crate) unsafe fn copy_to_journal(from: Region<'_>, to: Region<'_>, unit: Width) {
    if fast::available() && (from.as_ptr() as usize ^ to.as_ptr() as usize) & 15 == 0 {
        // SAFETY: the caller's; both at the same offset modulo 16 (checked).
        unsafe { fast::copy_to_journal(from, to, unit) }
    } else {
        // SAFETY: the caller's.
        unsafe { from.copy_to(to, unit) }
    }
}

/// The width of every primitive of `T`, if `T` is numbers of one width without padding (what
/// the fast copies can move in bulk).
pub(crate) const fn uniform_width<T: SharedLayout>() -> Option<Width> {
    match shape::shape(&T::LAYOUT) {
        Shape::Uniform(w) => Some(w),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{self, PAYLOAD_ALIGN};
    use crate::{Array, Shared};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

    fn name(tag: &str) -> String {
        format!("bulk-test-{tag}-{}", std::process::id())
    }

    /// Round trips every width at every start and length around the 16-byte pieces, so the head,
    /// body and tail of the fast path are each empty and not, against the element-wise loads.
    fn round_trip<T: BulkCopy + PartialEq + core::fmt::Debug>(tag: &str, make: fn(usize) -> T) {
        const LEN: usize = 80;
        let zero = vec![make(0); LEN];
        let a = Array::<T>::create(&name(tag), &zero).unwrap();
        for start in 0..20 {
            for len in [0, 1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 47, 60] {
                if start + len > LEN {
                    continue;
                }
                let values: Vec<T> = (0..len).map(|i| make(1 + start * 100 + i)).collect();
                a.write_from(start, &values);
                let mut back = vec![make(0); len];
                a.read_into(start, &mut back);
                assert_eq!(back, values, "{tag}: start {start}, len {len}");
                assert_eq!(a.snapshot_range(start..start + len), values);
                a.store_from(start, &zero[..len]);
                assert!(a.snapshot().iter().all(|v| *v == make(0)));
                a.store_from(start, &values);
                assert_eq!(a.snapshot_range(start..start + len), values);
                // Nothing outside the range was written.
                let whole = a.snapshot();
                for (i, v) in whole.iter().enumerate() {
                    if !(start..start + len).contains(&i) {
                        assert_eq!(*v, make(0), "{tag}: start {start}, len {len}, index {i}");
                    }
                }
                a.write_from(start, &zero[..len]);
            }
        }
    }

    #[test]
    fn round_trips_every_number_type() {
        // Every byte of a value differs from its neighbours' and from zero's.
        round_trip::<u8>("u8", |i| i as u8);
        round_trip::<i8>("i8", |i| (i as i8).wrapping_neg());
        round_trip::<u16>("u16", |i| (i as u16).wrapping_mul(257));
        round_trip::<i16>("i16", |i| (i as i16).wrapping_neg());
        round_trip::<u32>("u32", |i| (i as u32).wrapping_mul(0x0101_0101));
        round_trip::<i32>("i32", |i| (i as i32).wrapping_mul(-77));
        round_trip::<u64>("u64", |i| (i as u64).wrapping_mul(0x0101_0101_0101_0101));
        round_trip::<i64>("i64", |i| (i as i64).wrapping_neg() << 20);
        round_trip::<f32>("f32", |i| i as f32 * 0.5);
        round_trip::<f64>("f64", |i| -(i as f64) * 0.25);
        round_trip::<[u8; 3]>("u8x3", |i| [i as u8, (i >> 8) as u8, 7]);
        round_trip::<[[i16; 3]; 2]>("i16x3x2", |i| {
            let k = i as i16;
            [[k, 1, 2], [3, 4, k.wrapping_neg()]]
        });
    }

    /// Large enough for the streaming loop, into a destination that allows it and one that
    /// does not (8 bytes off a multiple of 16).
    #[test]
    fn large_copies_stream_or_not_alike() {
        const LEN: usize = (5 << 20) / 8;
        let a = Array::<u64>::create_zeroed(&name("large"), LEN).unwrap();
        let values: Vec<u64> = (0..LEN as u64).map(|i| i * 0x9E37_79B9).collect();
        a.write_from(0, &values);
        let mut out = vec![0u64; LEN + 1];
        for shift in [0, 1] {
            out.fill(0);
            a.read_into(0, &mut out[shift..shift + LEN]);
            assert!(out[shift..shift + LEN] == values[..], "shift {shift}");
        }
        let mut part = vec![0u64; LEN - 3];
        a.read_into(3, &mut part);
        assert!(part[..] == values[3..]);
    }

    #[test]
    fn floats_keep_their_bits() {
        let a = Array::<f64>::create_zeroed(&name("nan"), 4).unwrap();
        let odd = [
            f64::from_bits(0x7ff8_dead_beef_0001),
            -0.0,
            f64::INFINITY,
            1e-310,
        ];
        a.write_from(0, &odd);
        let mut back = [0.0; 4];
        a.read_into(0, &mut back);
        assert_eq!(back.map(f64::to_bits), odd.map(f64::to_bits));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn read_past_the_end_panics() {
        let a = Array::<u32>::create_zeroed(&name("oob-r"), 10).unwrap();
        a.read_into(8, &mut [0; 3]);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn write_past_the_end_panics() {
        let a = Array::<u32>::create_zeroed(&name("oob-w"), 10).unwrap();
        a.write_from(11, &[]);
    }

    #[test]
    #[should_panic(expected = "overflows")]
    fn start_plus_length_overflowing_panics() {
        let a = Array::<u8>::create_zeroed(&name("oob-o"), 10).unwrap();
        a.read_into(usize::MAX, &mut [0; 2]);
    }

    #[test]
    fn empty_copies_at_the_end_are_allowed() {
        let a = Array::<u16>::create_zeroed(&name("empty"), 3).unwrap();
        a.write_from(3, &[]);
        a.read_into(3, &mut []);
        let e = Array::<u16>::create_zeroed(&name("none"), 0).unwrap();
        e.read_into(0, &mut []);
    }

    /// A writer fills the whole array with one value per write; readers in other threads, each
    /// through its own handle, must never see two values in one copy (seqlock), whether they
    /// copy in bulk or element by element, and bulk writes must not be torn for `snapshot`.
    #[test]
    fn concurrent_bulk_writes_are_never_seen_torn() {
        const LEN: usize = 4099; // not a multiple of 16 bytes: head and tail paths too
        const WRITES: u64 = 300;
        let nm = name("torn");
        let a = Array::<u64>::create_zeroed(&nm, LEN).unwrap();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            for reader in 0..2 {
                let (nm, done) = (&nm, &done);
                s.spawn(move || {
                    let r = Array::<u64>::open(nm).unwrap();
                    let mut buf = vec![0u64; LEN - 1];
                    let mut last = 0;
                    let mut reads = 0u32;
                    while !done.load(Relaxed) || reads < 10 {
                        let seen = if reader == 0 {
                            r.read_into(1, &mut buf);
                            &buf[..]
                        } else {
                            buf = r.snapshot_range(1..);
                            &buf[..]
                        };
                        let first = seen[0];
                        assert!(seen.iter().all(|&v| v == first), "torn copy at {first}");
                        assert!(first >= last, "went back from {last} to {first}");
                        last = first;
                        reads += 1;
                    }
                });
            }
            let mut values = vec![0u64; LEN];
            for k in 1..=WRITES {
                values.fill(k);
                a.write_from(0, &values);
            }
            done.store(true, Relaxed);
        });
        let mut out = vec![0; LEN];
        a.read_into(0, &mut out);
        assert!(out.iter().all(|&v| v == WRITES));
    }

    /// Without the seqlock, a bulk load racing with per-element stores still reads every element
    /// whole: each 16-byte access is atomic, so no `u64` is half old, half new.
    #[test]
    fn bulk_loads_never_tear_an_element() {
        const LEN: usize = 1024;
        let a = Array::<u64>::create_zeroed(&name("elem"), LEN).unwrap();
        let twins = a.atomics();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for round in 0..20_000u32 {
                    let v = if round % 2 == 0 { u64::MAX } else { 0 };
                    for t in twins {
                        t.store(v, Relaxed);
                    }
                }
                done.store(true, Relaxed);
            });
            let mut buf = vec![0u64; LEN];
            while !done.load(Relaxed) {
                load(twins, &mut buf);
                for &v in &buf {
                    assert!(v == 0 || v == u64::MAX, "torn element {v:#x}");
                }
            }
        });
    }

    #[test]
    fn bulk_write_waits_for_the_lock_and_is_one_update() {
        let a = Array::<i32>::create(&name("lock"), &[0; 64]).unwrap();
        let guard = a.lock().unwrap();
        std::thread::scope(|s| {
            let writer = s.spawn(|| a.write_from(0, &[5; 64]));
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!writer.is_finished(), "write_from went past a held lock");
            drop(guard);
            writer.join().unwrap();
        });
        assert_eq!(a.snapshot(), vec![5; 64]);
    }

    #[test]
    fn hot_fields_share_no_cache_line_pair_with_the_lock_or_sequence() {
        let seq = core::mem::offset_of!(header::Header, seq);
        let lock = core::mem::offset_of!(header::Header, lock);
        for desc_len in 0..=512 {
            for align in [1, 8, 64, 128, 4096] {
                let p = header::payload_offset(desc_len, align);
                assert_eq!(p % PAYLOAD_ALIGN, 0);
                // The payload starts past the 128-byte pair holding `seq` and `lock`.
                assert!(seq / 128 == lock / 128 && p >= (seq / 128 + 1) * 128);
            }
        }
        // And a real segment agrees: its header's payload offset (bytes 32..40).
        let nm = name("line");
        let _s = Shared::<u64>::create(&nm, 0).unwrap();
        let map = shared_memory::ShmemConf::new()
            .os_id(format!("/{nm}"))
            .open()
            .unwrap();
        // SAFETY: the mapping is a whole segment, at least 256 bytes, page-aligned; bytes 32..40
        // are the header's `payload_offset`, an `AtomicU64`.
        let p = unsafe { AtomicU64::from_ptr(map.as_ptr().add(32).cast()) }.load(Relaxed);
        assert!(p >= 384 && p % 128 == 0, "payload at {p}");
    }
}
