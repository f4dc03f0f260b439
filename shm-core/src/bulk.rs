//! Bulk copies between an [`Array`](crate::Array) and ordinary memory, at close to `memcpy` speed.
//!
//! Copying element by element with relaxed atomic loads is correct but slow: the compiler never
//! merges or vectorises atomic accesses, so it moves at most eight bytes an instruction. The types
//! of [`BulkCopy`] are plain numbers, for which any bytes are a value; for them, on x86_64
//! processors with AVX, the copy uses aligned 16-byte SSE loads and stores, which those processors
//! guarantee to be single-copy atomic. One such access is indistinguishable from relaxed atomic
//! accesses of every primitive inside it, so the copy has exactly the meaning of the element-wise
//! loop, at four times its width. Elsewhere (other architectures, no AVX, Miri) it is that loop.
//!
//! [`Array::read_into`](crate::Array::read_into) wraps the copy in a seqlock read and
//! [`Array::write_from`](crate::Array::write_from) in the lock and a seqlock write (whose journal
//! copies use the same path), so a bulk copy is as consistent as `snapshot` and `update`;
//! [`Array::store_from`](crate::Array::store_from) is the plain copy, element-wise atomic.

use core::mem::{align_of, size_of};
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::{Kind, Layout, SharedLayout, TypeCode};

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

/// What a bulk copy may do with a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Numbers only, no padding, every primitive `unit` bytes wide: the fast path can copy any
    /// byte range that starts and ends on a multiple of `unit`.
    Uniform(usize),
    /// Numbers only, no padding, of several widths: copied element by element.
    Mixed,
    /// A `bool`, a `char` or padding: not a `BulkCopy` type, whatever its impl says.
    Invalid,
}

const fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Invalid, _) | (_, Shape::Invalid) => Shape::Invalid,
        (Shape::Uniform(x), Shape::Uniform(y)) if x == y => Shape::Uniform(x),
        _ => Shape::Mixed,
    }
}

const fn shape(layout: &Layout) -> Shape {
    match layout.kind {
        // A number that is no variant, bytes that are no UTF-8: not every bit pattern is a value.
        Kind::Primitive(TypeCode::Bool | TypeCode::Char)
        | Kind::Enum { .. }
        | Kind::Text { .. } => Shape::Invalid,
        Kind::Primitive(code) => Shape::Uniform(code.size()),
        Kind::Array { elem, .. } => shape(elem),
        Kind::Struct { fields } => {
            if fields.is_empty() {
                return Shape::Invalid;
            }
            let mut end = 0;
            let mut acc = shape(fields[0].layout);
            let mut i = 0;
            while i < fields.len() {
                if fields[i].offset != end {
                    return Shape::Invalid;
                }
                acc = merge(acc, shape(fields[i].layout));
                end = fields[i].offset + fields[i].layout.size;
                i += 1;
            }
            if end != layout.size {
                return Shape::Invalid;
            }
            acc
        }
    }
}

/// The shape of `T`, proved at compile time to be a real `BulkCopy` shape.
const fn checked_shape<T: BulkCopy>() -> Shape {
    assert!(
        size_of::<T>() == size_of::<T::Atomic>() && align_of::<T>() == align_of::<T::Atomic>(),
        "a BulkCopy type must have the size and alignment of its atomic twin"
    );
    let s = shape(&T::LAYOUT);
    assert!(
        !matches!(s, Shape::Invalid),
        "a BulkCopy type may hold only numbers (no bool, no char) and no padding"
    );
    s
}

/// Copies `src` (twins in a segment) into `dst`, as relaxed atomic loads of every primitive.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn load<T: BulkCopy>(src: &[T::Atomic], dst: &mut [T]) {
    assert_eq!(
        src.len(),
        dst.len(),
        "bulk copy between slices of different lengths"
    );
    match const { checked_shape::<T>() } {
        Shape::Uniform(unit) if fast::available() => {
            let len = size_of_val(dst);
            // SAFETY: `src` and `dst` are `len` bytes each (equal lengths, and `T` and
            // `T::Atomic` have the same size, checked at compile time); `src` is a live shared
            // slice of atomic twins and `dst` a live exclusive slice, so they do not overlap.
            // Both start on a multiple of `align_of::<T>()`, which is `unit` or more (every
            // primitive of `T` is `unit` wide and naturally aligned), so every `unit`-aligned
            // offset from one is `unit`-aligned from the other; `len` is a multiple of `unit`.
            // `fast::available()` said the processor has AVX.
            unsafe { fast::load(src.as_ptr().cast(), dst.as_mut_ptr().cast(), len, unit) }
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
    assert_eq!(
        src.len(),
        dst.len(),
        "bulk copy between slices of different lengths"
    );
    match const { checked_shape::<T>() } {
        Shape::Uniform(unit) if fast::available() => {
            let len = size_of_val(src);
            // SAFETY: as in `load`, with the roles swapped: `dst` is the shared slice of twins
            // (atomics, so writing through a pointer derived from `&` is allowed: every byte of
            // it is inside an `UnsafeCell`), `src` an ordinary slice we only read.
            unsafe {
                fast::store(
                    src.as_ptr().cast(),
                    dst.as_ptr().cast_mut().cast(),
                    len,
                    unit,
                )
            }
        }
        _ => {
            for (s, d) in src.iter().zip(dst) {
                T::store(d, s, Relaxed);
            }
        }
    }
}

/// Copies the twins `from` into the twins `to` (both in a segment, not overlapping: the payload
/// into an update's journal), as relaxed atomic loads and stores of every primitive.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn copy<T: BulkCopy>(from: &[T::Atomic], to: &[T::Atomic]) {
    assert_eq!(
        from.len(),
        to.len(),
        "bulk copy between slices of different lengths"
    );
    let (src, dst) = (
        from.as_ptr().cast::<u8>(),
        to.as_ptr().cast::<u8>().cast_mut(),
    );
    match const { checked_shape::<T>() } {
        // Both sides are atomic, so both need 16-byte alignment at the same places.
        Shape::Uniform(unit) if fast::available() && (src as usize ^ dst as usize) & 15 == 0 => {
            let len = size_of_val(from);
            // SAFETY: both are live slices of `len` bytes of twins, which only atomics access;
            // `to`'s bytes are atomics, so writing through a pointer derived from `&` is
            // allowed; both start `unit`-aligned (as in `load`), at the same offset modulo 16;
            // `len` is a multiple of `unit`; the processor has AVX.
            unsafe { fast::copy(src, dst, len, unit) }
        }
        _ => crate::journal::copy_twins::<T>(from, to),
    }
}

/// Relaxed atomic loads of the `unit`-wide primitives in `shared[..len]`, written to `private`.
///
/// # Safety
/// `shared` is valid for reads of `len` bytes, holds only atomics `unit` bytes wide and is
/// `unit`-aligned; `private` is valid for writes of `len` bytes, does not overlap `shared`, and
/// is `unit`-aligned; `len` is a multiple of `unit`, which is 1, 2, 4 or 8.
unsafe fn load_units(shared: *const u8, private: *mut u8, len: usize, unit: usize) {
    macro_rules! each {
        ($atomic:ty, $int:ty) => {{
            let mut i = 0;
            while i < len {
                // SAFETY: `i + unit <= len`, so both accesses are in bounds and aligned (the
                // caller's contract); the shared bytes are an atomic of this width (reading
                // them as this std atomic is the same-width atomic access every other user
                // makes), and the private bytes are ours to write.
                unsafe {
                    let v = <$atomic>::from_ptr(shared.add(i).cast_mut().cast()).load(Relaxed);
                    private.add(i).cast::<$int>().write(v);
                }
                i += unit;
            }
        }};
    }
    match unit {
        1 => each!(AtomicU8, u8),
        2 => each!(AtomicU16, u16),
        4 => each!(AtomicU32, u32),
        _ => each!(AtomicU64, u64),
    }
}

/// Relaxed atomic stores of the `unit`-wide values in `private[..len]` into `shared`.
///
/// # Safety
/// As for [`load_units`], with `private` valid for reads and `shared` for (atomic) writes.
unsafe fn store_units(private: *const u8, shared: *mut u8, len: usize, unit: usize) {
    macro_rules! each {
        ($atomic:ty, $int:ty) => {{
            let mut i = 0;
            while i < len {
                // SAFETY: as in `load_units`, with the directions swapped.
                unsafe {
                    let v = private.add(i).cast::<$int>().read();
                    <$atomic>::from_ptr(shared.add(i).cast()).store(v, Relaxed);
                }
                i += unit;
            }
        }};
    }
    match unit {
        1 => each!(AtomicU8, u8),
        2 => each!(AtomicU16, u16),
        4 => each!(AtomicU32, u32),
        _ => each!(AtomicU64, u64),
    }
}

/// Relaxed atomic loads of the `unit`-wide primitives in `from[..len]`, stored with relaxed
/// atomic stores into `to`.
///
/// # Safety
/// Both are valid for `len` bytes, hold only atomics `unit` bytes wide, are `unit`-aligned and
/// do not overlap; `len` is a multiple of `unit`, which is 1, 2, 4 or 8.
unsafe fn copy_units(from: *const u8, to: *mut u8, len: usize, unit: usize) {
    macro_rules! each {
        ($atomic:ty) => {{
            let mut i = 0;
            while i < len {
                // SAFETY: as in `load_units`, with both sides atomics of this width.
                unsafe {
                    let v = <$atomic>::from_ptr(from.add(i).cast_mut().cast()).load(Relaxed);
                    <$atomic>::from_ptr(to.add(i).cast()).store(v, Relaxed);
                }
                i += unit;
            }
        }};
    }
    match unit {
        1 => each!(AtomicU8),
        2 => each!(AtomicU16),
        4 => each!(AtomicU32),
        _ => each!(AtomicU64),
    }
}

/// Bytes from `addr` to the next multiple of 16 (0 if it is one), at most `len`.
fn head_len(addr: *const u8, len: usize) -> usize {
    ((16 - (addr as usize & 15)) & 15).min(len)
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod fast {
    use core::arch::asm;

    use super::{copy_units, head_len, load_units, store_units};

    /// Whether the processor guarantees that aligned 16-byte SSE loads and stores are atomic.
    #[inline]
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx")
    }

    /// Copies out of a segment at least this long bypass the caches for their destination (as
    /// `memcpy` implementations do above a threshold of their own): such a copy does not stay
    /// in the L2 cache anyway, and a cached store must first read each line it overwrites.
    const STREAMING: usize = 4 << 20;

    /// [`super::load_units`] over `len` bytes, the 16-byte-aligned middle in 16-byte pieces.
    ///
    /// # Safety
    /// The contract of `load_units`, and the processor has AVX.
    pub(super) unsafe fn load(shared: *const u8, private: *mut u8, len: usize, unit: usize) {
        let head = head_len(shared, len);
        let body = (len - head) & !15;
        // SAFETY: `head` and the tail are multiples of `unit`: `shared` is `unit`-aligned and
        // `unit` divides 16, so the next multiple of 16 is a multiple of `unit` away, and so is
        // `len`. Each piece is inside the caller's ranges. `shared + head` is 16-aligned, and
        // the streaming loop is used only where `private + head` is too (checked).
        unsafe {
            load_units(shared, private, head, unit);
            let (src, dst) = (shared.add(head), private.add(head));
            if body >= STREAMING && dst as usize % 16 == 0 {
                load16_streaming(src, dst, body / 16);
            } else {
                load16(src, dst, body / 16);
            }
            let done = head + body;
            load_units(shared.add(done), private.add(done), len - done, unit);
        }
    }

    /// [`super::store_units`] over `len` bytes, the 16-byte-aligned middle in 16-byte pieces.
    ///
    /// # Safety
    /// The contract of `store_units`, and the processor has AVX.
    pub(super) unsafe fn store(private: *const u8, shared: *mut u8, len: usize, unit: usize) {
        let head = head_len(shared, len);
        let body = (len - head) & !15;
        // SAFETY: as in `load`.
        unsafe {
            store_units(private, shared, head, unit);
            store16(private.add(head), shared.add(head), body / 16);
            let done = head + body;
            store_units(private.add(done), shared.add(done), len - done, unit);
        }
    }

    /// [`super::copy_units`] over `len` bytes, the 16-byte-aligned middle in 16-byte pieces.
    ///
    /// # Safety
    /// The contract of `copy_units`; `from` and `to` are equal modulo 16; the processor has AVX.
    pub(super) unsafe fn copy(from: *const u8, to: *mut u8, len: usize, unit: usize) {
        let head = head_len(from, len);
        let body = (len - head) & !15;
        // SAFETY: as in `load`; `to + head` is 16-aligned too, being equal to `from` modulo 16.
        unsafe {
            copy_units(from, to, head, unit);
            copy16(from.add(head), to.add(head), body / 16);
            let done = head + body;
            copy_units(from.add(done), to.add(done), len - done, unit);
        }
    }

    // Why the loops below are sound.
    //
    // Rust's memory model has no vector instructions; what counts is what an `asm!` block does
    // to the abstract machine. The block is opaque: without `nomem` or `readonly` the compiler
    // must assume it reads and writes any memory its pointer operands can reach, and it moves
    // no memory access across it. It is sound if its effect is one that Rust operations, which
    // would themselves be free of undefined behaviour, could have had: the argument that
    // taiki-e's atomic-maybe-uninit makes for atomics written in inline assembly, and that
    // "P1478: Byte-wise atomic memcpy" (implemented for Rust by taiki-e's atomic-memcpy) makes
    // for the copies inside a seqlock.
    //
    // Each `movdqa` here is a 16-byte access to a 16-byte-aligned address of cacheable
    // (write-back) memory. On a processor that reports AVX such an access is single-copy
    // atomic: Intel SDM vol. 3A §9.1.1 ("Processors that enumerate support for Intel AVX ...
    // guarantee that the 16-byte memory operations performed by the following instructions
    // will always be carried out atomically: MOVAPD, MOVAPS, and MOVDQA"), and AMD APM vol. 2
    // §7.3.2 (AVX processors "extend the atomicity for cacheable, naturally-aligned single loads
    // or stores from a quadword to a double quadword"). An aligned 16-byte window holds only
    // whole primitives (each is 1, 2, 4 or 8 bytes wide and naturally aligned, and its width
    // divides 16), so one such access cannot be told apart from relaxed atomic accesses of each
    // primitive in the window, each of the width that every other access in this crate (and
    // every process following docs/FORMAT.md) uses for it. Every access to the segment is thus
    // an atomic access of the right width: no non-atomic access and no mixed-size access to
    // shared memory, so no data race. Relaxed accesses need no order among themselves; the
    // seqlock's fences around the copy order it against the sequence counter.
    //
    // Shared memory is only ever accessed with `movdqa`. The private side (`movdqu`, any
    // alignment; or `movntdq`) is memory the caller holds `&mut` (loads) or `&` (stores) to,
    // which no other thread touches meanwhile: plain accesses, no race. `movntdq` stores are
    // weakly ordered; the `sfence` after them orders them before every later store of this
    // thread (such as the release that hands the buffer to another thread), so they act as the
    // ordinary stores they stand for.
    //
    // `rep movsb` would be faster to write but cannot be argued this way: fast-string
    // operations document no atomicity for any piece they move and may store out of order.

    /// Defines `unsafe fn $name(src, dst, chunks)`, which copies `chunks` 16-byte pieces from
    /// `src` to `dst` with the instructions `$load` and `$store`, 64 bytes an iteration, then
    /// runs `$end`.
    macro_rules! copy16 {
        ($(#[$doc:meta])* $name:ident, $load:literal, $store:literal, $end:literal) => {
            $(#[$doc])*
            unsafe fn $name(src: *const u8, dst: *mut u8, chunks: usize) {
                // SAFETY: see the comment above `copy16!`; the caller's contract (below) makes
                // every address the block touches, `src + k` or `dst + k` for
                // `k < 16 * chunks`, part of its ranges, and every `movdqa` or `movntdq`
                // address 16-aligned (the pointer is, and it advances by 16). The block does
                // not touch the stack and clobbers only the registers declared (and flags).
                unsafe {
                    asm!(
                        "cmp {n}, 4",
                        "jb 3f",
                        "2:",
                        concat!($load, " {a}, xmmword ptr [{src}]"),
                        concat!($load, " {b}, xmmword ptr [{src} + 16]"),
                        concat!($load, " {c}, xmmword ptr [{src} + 32]"),
                        concat!($load, " {d}, xmmword ptr [{src} + 48]"),
                        concat!($store, " xmmword ptr [{dst}], {a}"),
                        concat!($store, " xmmword ptr [{dst} + 16], {b}"),
                        concat!($store, " xmmword ptr [{dst} + 32], {c}"),
                        concat!($store, " xmmword ptr [{dst} + 48], {d}"),
                        "add {src}, 64",
                        "add {dst}, 64",
                        "sub {n}, 4",
                        "cmp {n}, 4",
                        "jae 2b",
                        "3:",
                        "test {n}, {n}",
                        "jz 5f",
                        "4:",
                        concat!($load, " {a}, xmmword ptr [{src}]"),
                        concat!($store, " xmmword ptr [{dst}], {a}"),
                        "add {src}, 16",
                        "add {dst}, 16",
                        "dec {n}",
                        "jnz 4b",
                        "5:",
                        $end,
                        src = inout(reg) src => _,
                        dst = inout(reg) dst => _,
                        n = inout(reg) chunks => _,
                        a = out(xmm_reg) _,
                        b = out(xmm_reg) _,
                        c = out(xmm_reg) _,
                        d = out(xmm_reg) _,
                        options(nostack),
                    );
                }
            }
        };
    }

    copy16!(
        /// Shared (`src`, 16-aligned) to private.
        ///
        /// # Safety
        /// `src` is 16-byte aligned, valid for reads of `16 * chunks` bytes and holds only
        /// naturally aligned atomics; `dst` is valid for writes of as many bytes and does not
        /// overlap it; the processor has AVX.
        load16,
        "movdqa",
        "movdqu",
        ""
    );
    copy16!(
        /// Shared to private like `load16`, with non-temporal stores: for copies too large to
        /// stay in the caches, it saves reading every destination line before overwriting it.
        ///
        /// # Safety
        /// As for `load16`, and `dst` is 16-byte aligned too.
        load16_streaming,
        "movdqa",
        "movntdq",
        "sfence"
    );
    copy16!(
        /// Private to shared (`dst`, 16-aligned).
        ///
        /// # Safety
        /// `dst` is 16-byte aligned, valid for writes of `16 * chunks` bytes and holds only
        /// naturally aligned atomics; `src` is valid for reads of as many bytes and does not
        /// overlap it; the processor has AVX.
        store16,
        "movdqu",
        "movdqa",
        ""
    );
    copy16!(
        /// Shared to shared, both 16-aligned.
        ///
        /// # Safety
        /// Both are 16-byte aligned, valid for `16 * chunks` bytes (reads from `src`, writes to
        /// `dst`), hold only naturally aligned atomics, and do not overlap; the processor has
        /// AVX.
        copy16,
        "movdqa",
        "movdqa",
        ""
    );
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
mod fast {
    /// No fast path on this target: copies go element by element.
    #[inline]
    pub(super) fn available() -> bool {
        false
    }

    /// Never called: `available()` is false.
    ///
    /// # Safety
    /// The contract of [`super::load_units`].
    pub(super) unsafe fn load(shared: *const u8, private: *mut u8, len: usize, unit: usize) {
        // SAFETY: the caller's contract is `load_units`'s.
        unsafe { super::load_units(shared, private, len, unit) }
    }

    /// Never called: `available()` is false.
    ///
    /// # Safety
    /// The contract of [`super::copy_units`].
    pub(super) unsafe fn copy(from: *const u8, to: *mut u8, len: usize, unit: usize) {
        // SAFETY: the caller's contract is `copy_units`'s.
        unsafe { super::copy_units(from, to, len, unit) }
    }

    /// Never called: `available()` is false.
    ///
    /// # Safety
    /// The contract of [`super::store_units`].
    pub(super) unsafe fn store(private: *const u8, shared: *mut u8, len: usize, unit: usize) {
        // SAFETY: the caller's contract is `store_units`'s.
        unsafe { super::store_units(private, shared, len, unit) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{self, PAYLOAD_ALIGN};
    use crate::{Array, Field, Shared};
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    fn name(tag: &str) -> String {
        format!("bulk-test-{tag}-{}", std::process::id())
    }

    #[test]
    fn shapes_of_layouts() {
        assert_eq!(shape(&u8::LAYOUT), Shape::Uniform(1));
        assert_eq!(shape(&<[[f32; 3]; 2]>::LAYOUT), Shape::Uniform(4));
        assert_eq!(shape(&bool::LAYOUT), Shape::Invalid);
        assert_eq!(shape(&<[char; 2]>::LAYOUT), Shape::Invalid);
        static U64: Layout = Layout::primitive(TypeCode::U64);
        static U32: Layout = Layout::primitive(TypeCode::U32);
        let strukt = |fields: &'static [Field], size| Layout {
            name: "S",
            size,
            align: 8,
            kind: Kind::Struct { fields },
        };
        let field = |offset, layout| Field {
            name: "f",
            offset,
            layout,
        };
        let tight: &'static [Field] = Box::leak(Box::new([field(0, &U64), field(8, &U64)]));
        assert_eq!(shape(&strukt(tight, 16)), Shape::Uniform(8));
        let mixed: &'static [Field] =
            Box::leak(Box::new([field(0, &U64), field(8, &U32), field(12, &U32)]));
        assert_eq!(shape(&strukt(mixed, 16)), Shape::Mixed);
        let gap: &'static [Field] = Box::leak(Box::new([field(0, &U32), field(8, &U64)]));
        assert_eq!(shape(&strukt(gap, 16)), Shape::Invalid);
        let tail: &'static [Field] = Box::leak(Box::new([field(0, &U64), field(8, &U32)]));
        assert_eq!(shape(&strukt(tail, 16)), Shape::Invalid);
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
