//! The `SharedLayout` trait and its impls for primitives and arrays.

use core::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
};

use crate::{AtomicBool, AtomicChar, AtomicF32, AtomicF64, Layout, TypeCode};

/// A type that can live in a shared-memory segment.
///
/// A `SharedLayout` type is a plain value type (`Stats`) paired with its *atomic twin*
/// ([`Atomic`](SharedLayout::Atomic), e.g. `AtomicStats`): the same fields at the same offsets,
/// every primitive replaced by its atomic. A segment holds the twin, so every process can use every
/// field concurrently; [`load`](SharedLayout::load) and [`store`](SharedLayout::store) copy between
/// the twin and a plain value field by field.
///
/// Implemented for `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool char`, for [`Text<N>`](crate::Text),
/// for `[T; N]` of any `SharedLayout` `T` (so `[[f32; 4]; 4]` works), and by
/// `#[derive(SharedLayout)]` for `#[repr(C)]` structs whose fields are all `SharedLayout` and for
/// fieldless enums with an integer `#[repr]` (see [`SharedEnum`](crate::SharedEnum)). Implement
/// it by hand only if the derive cannot express your type.
///
/// # Safety
///
/// An implementor promises, for every process that may map the same segment:
/// - `Self::Atomic` is made only of atomics of this crate or of `core::sync::atomic` (through
///   arrays and `#[repr(C)]` structs), so every access to its bytes is atomic and two processes
///   using it at once never race;
/// - every bit pattern, in particular all zeros, is a valid `Self::Atomic` (padding included),
///   because another process may have written anything;
/// - `Self::Atomic` holds no pointer and needs no `Drop`;
/// - [`LAYOUT`](SharedLayout::LAYOUT) describes `Self::Atomic` exactly: its size, alignment and,
///   for a struct, each field's name, offset and layout.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory",
    label = "`{Self}` does not implement `SharedLayout`",
    note = "a shared segment holds only `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool char`, `shm_core::Text<N>`, arrays `[T; N]` of these, and `#[repr(C)]` structs and fieldless `#[repr(u8)]` enums that `#[derive(SharedLayout)]`",
    note = "nothing that points into one process's memory (`String`, `Vec`, `Box`, references, `Option`) can be shared; `usize`/`isize` have no fixed width (use `u64`/`i64`); std atomics and `Mutex` belong to one process (write the plain type: every field is atomic in the segment)"
)]
pub unsafe trait SharedLayout: Sized + 'static {
    /// The atomic twin: what the segment holds.
    type Atomic: Send + Sync + 'static;

    /// The layout descriptor of [`Atomic`](SharedLayout::Atomic).
    const LAYOUT: Layout;

    /// The fingerprint of [`LAYOUT`](SharedLayout::LAYOUT), compared when a segment is opened.
    const FINGERPRINT: u64 = Self::LAYOUT.fingerprint();

    /// Reads every field of `atomic` with `order` into a plain value.
    fn load(atomic: &Self::Atomic, order: Ordering) -> Self;

    /// Writes every field of `value` into `atomic` with `order`.
    fn store(atomic: &Self::Atomic, value: &Self, order: Ordering);

    /// Writes the fields of `new` that differ from `old` into `atomic`, leaving the others alone
    /// (so an `update` does not overwrite concurrent field atomics on fields it did not change).
    /// The default writes every field.
    fn store_changed(atomic: &Self::Atomic, old: &Self, new: &Self, order: Ordering) {
        let _ = old;
        Self::store(atomic, new, order)
    }
}

/// A field-by-field copy of `value`, made through a twin on the stack: `SharedLayout` types need
/// not be `Clone`, and `update` needs two equal values (the old one, and the one `f` changes).
pub(crate) fn duplicate<T: SharedLayout>(value: &T) -> T {
    let twin = crate::__private::zeroed_twin::<T>();
    T::store(&twin, value, Ordering::Relaxed);
    T::load(&twin, Ordering::Relaxed)
}

mod sealed {
    pub trait Sealed {}
}

/// The primitive types, each with its Python type code.
///
/// Sealed: the set of primitives is fixed by the segment format.
pub trait Primitive: SharedLayout + Copy + sealed::Sealed {
    /// This primitive's type code.
    const CODE: TypeCode;
}

macro_rules! primitive {
    ($($ty:ty => $atomic:ty, $code:ident;)*) => {$(
        impl sealed::Sealed for $ty {}

        impl Primitive for $ty {
            const CODE: TypeCode = TypeCode::$code;
        }

        // SAFETY: the twin is a single atomic of the same width and alignment as the code (checked
        // below at compile time); any bit pattern is a valid atomic integer, and the float, bool
        // and char atomics of this crate wrap an atomic integer and accept any bits; no pointers,
        // no `Drop`; `LAYOUT` is the primitive of this code.
        unsafe impl SharedLayout for $ty {
            type Atomic = $atomic;
            const LAYOUT: Layout = Layout::primitive(TypeCode::$code);

            #[inline]
            fn load(atomic: &$atomic, order: Ordering) -> $ty {
                atomic.load(order)
            }

            #[inline]
            fn store(atomic: &$atomic, value: &$ty, order: Ordering) {
                atomic.store(*value, order)
            }

            #[inline]
            fn store_changed(atomic: &$atomic, old: &$ty, new: &$ty, order: Ordering) {
                // Compared as bits: a NaN that stays the same NaN is not rewritten.
                if Bits::bits(*old) != Bits::bits(*new) {
                    atomic.store(*new, order)
                }
            }
        }

        const _: () = {
            assert!(core::mem::size_of::<$atomic>() == TypeCode::$code.size());
            assert!(core::mem::align_of::<$atomic>() == TypeCode::$code.size());
            assert!(core::mem::size_of::<$ty>() == TypeCode::$code.size());
        };
    )*};
}

/// A primitive's bit pattern, for comparing floats by bits.
trait Bits {
    fn bits(self) -> u64;
}

macro_rules! bits {
    ($($ty:ty),*) => {$(
        impl Bits for $ty {
            #[inline]
            fn bits(self) -> u64 {
                self as u64
            }
        }
    )*};
}
bits!(i8, u8, i16, u16, i32, u32, i64, u64, bool, char);

impl Bits for f32 {
    #[inline]
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Bits for f64 {
    #[inline]
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

primitive! {
    i8 => AtomicI8, I8;
    u8 => AtomicU8, U8;
    i16 => AtomicI16, I16;
    u16 => AtomicU16, U16;
    i32 => AtomicI32, I32;
    u32 => AtomicU32, U32;
    i64 => AtomicI64, I64;
    u64 => AtomicU64, U64;
    f32 => AtomicF32, F32;
    f64 => AtomicF64, F64;
    bool => AtomicBool, Bool;
    char => AtomicChar, Char;
}

// Every twin above must be lock-free, or two processes would each use a private lock.
static_assertions::const_assert!(cfg!(target_has_atomic = "8"));
static_assertions::const_assert!(cfg!(target_has_atomic = "16"));
static_assertions::const_assert!(cfg!(target_has_atomic = "32"));
static_assertions::const_assert!(cfg!(target_has_atomic = "64"));

// SAFETY: `[T::Atomic; N]` is `N` twins of `T` without gaps (array layout), so each of the
// conditions holds because it holds for `T`; `LAYOUT` is `N` times `T::LAYOUT` with the array's
// size and `T`'s alignment, which is the array's.
unsafe impl<T: SharedLayout, const N: usize> SharedLayout for [T; N] {
    type Atomic = [T::Atomic; N];
    const LAYOUT: Layout = Layout::array(&T::LAYOUT, N);

    #[inline]
    fn load(atomic: &[T::Atomic; N], order: Ordering) -> [T; N] {
        core::array::from_fn(|i| T::load(&atomic[i], order))
    }

    #[inline]
    fn store(atomic: &[T::Atomic; N], value: &[T; N], order: Ordering) {
        for (a, v) in atomic.iter().zip(value) {
            T::store(a, v, order);
        }
    }

    #[inline]
    fn store_changed(atomic: &[T::Atomic; N], old: &[T; N], new: &[T; N], order: Ordering) {
        for ((a, o), n) in atomic.iter().zip(old).zip(new) {
            T::store_changed(a, o, n, order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use core::mem::{align_of, size_of};

    #[test]
    fn array_layouts_match_their_twins() {
        type M = [[f32; 4]; 3];
        let l = <M as SharedLayout>::LAYOUT;
        assert_eq!(l.size, size_of::<<M as SharedLayout>::Atomic>());
        assert_eq!(l.align, align_of::<<M as SharedLayout>::Atomic>());
        match l.kind {
            Kind::Array { elem, len } => {
                assert_eq!(len, 3);
                assert!(matches!(elem.kind, Kind::Array { len: 4, .. }));
            }
            _ => panic!("not an array"),
        }
    }

    #[test]
    fn nested_array_round_trips_through_its_twin() {
        let twin: [[AtomicI64; 2]; 2] = Default::default();
        let value = [[1i64, -2], [i64::MIN, i64::MAX]];
        <[[i64; 2]; 2]>::store(&twin, &value, Ordering::Relaxed);
        assert_eq!(<[[i64; 2]; 2]>::load(&twin, Ordering::Relaxed), value);
    }
}
