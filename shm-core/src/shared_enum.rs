//! Fieldless enums in a segment: [`SharedEnum`], which `#[derive(SharedLayout)]` implements
//! for an enum, and [`AtomicEnum`], the enum's atomic twin.

use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
};

use crate::{Kind, Primitive, SharedLayout};

/// The integer types an enum's `#[repr]` may name: `i8 u8 i16 u16 i32 u32 i64 u64`.
///
/// Sealed (through [`Primitive`]): the set is fixed by the segment format.
pub trait EnumRepr: Primitive + Eq + fmt::Debug + fmt::Display {
    /// The value, widened.
    fn to_i128(self) -> i128;

    #[doc(hidden)]
    fn swap(atomic: &Self::Atomic, value: Self, order: Ordering) -> Self;

    #[doc(hidden)]
    fn compare_exchange(
        atomic: &Self::Atomic,
        current: Self,
        new: Self,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self, Self>;

    #[doc(hidden)]
    fn compare_exchange_weak(
        atomic: &Self::Atomic,
        current: Self,
        new: Self,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self, Self>;
}

macro_rules! enum_repr {
    ($($ty:ty => $atomic:ty),*) => {$(
        impl EnumRepr for $ty {
            #[inline]
            fn to_i128(self) -> i128 {
                self.into()
            }

            #[inline]
            fn swap(atomic: &$atomic, value: $ty, order: Ordering) -> $ty {
                atomic.swap(value, order)
            }

            #[inline]
            fn compare_exchange(
                atomic: &$atomic,
                current: $ty,
                new: $ty,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$ty, $ty> {
                atomic.compare_exchange(current, new, success, failure)
            }

            #[inline]
            fn compare_exchange_weak(
                atomic: &$atomic,
                current: $ty,
                new: $ty,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$ty, $ty> {
                atomic.compare_exchange_weak(current, new, success, failure)
            }
        }
    )*};
}

enum_repr!(
    i8 => AtomicI8,
    u8 => AtomicU8,
    i16 => AtomicI16,
    u16 => AtomicU16,
    i32 => AtomicI32,
    u32 => AtomicU32,
    i64 => AtomicI64,
    u64 => AtomicU64
);

/// `compare_exchange` or `compare_exchange_weak` of the atomic of `R`.
type Exchange<R> = fn(&<R as SharedLayout>::Atomic, R, R, Ordering, Ordering) -> Result<R, R>;

/// A fieldless enum with an integer `#[repr]` that can live in a segment: a number of the
/// repr's width, each variant one value of it.
///
/// Implemented by `#[derive(SharedLayout)]` on such an enum (together with [`SharedLayout`],
/// whose twin is [`AtomicEnum<Self>`]); there is no reason to implement it by hand.
///
/// ```
/// use shm_core::{SharedEnum, SharedLayout};
///
/// #[derive(SharedLayout, Clone, Copy, Debug, PartialEq, Default)]
/// #[repr(u8)]
/// enum State {
///     #[default]
///     Idle,
///     Busy,
///     Stopping = 9,
/// }
///
/// assert_eq!(State::Stopping.to_repr(), 9);
/// assert_eq!(State::from_repr(1), Some(State::Busy));
/// assert_eq!(State::from_repr(2), None);
/// assert_eq!(State::DEFAULT, State::Idle);
/// ```
pub trait SharedEnum: SharedLayout {
    /// The integer type of `#[repr]`.
    type Repr: EnumRepr;

    /// The `#[default]` variant: what a number that is no variant reads as.
    const DEFAULT: Self;

    /// The variant's discriminant.
    fn to_repr(&self) -> Self::Repr;

    /// The variant whose discriminant is `raw`, if there is one.
    fn from_repr(raw: Self::Repr) -> Option<Self>;
}

/// The atomic twin of a `#[derive(SharedLayout)]` enum `E` — the derive names it `Atomic<E>`
/// (`AtomicState` for `State`): the enum's number in an atomic of its repr, with std's atomic
/// API in terms of the enum.
///
/// Another process can store any number there, not only a variant's. [`load`](Self::load) (and
/// every operation that reads) then gives `E`'s `#[default]` variant, as
/// [`AtomicBool`](crate::AtomicBool) reads any non-zero byte as `true`;
/// [`try_load`](Self::try_load) gives the number instead, and [`load_raw`](Self::load_raw) gives
/// it always. Every store stores a variant.
///
/// ```
/// use shm_core::{AtomicEnum, SharedLayout};
/// use std::sync::atomic::Ordering::{Relaxed, SeqCst};
///
/// #[derive(SharedLayout, Clone, Copy, Debug, PartialEq, Default)]
/// #[repr(u8)]
/// pub enum State {
///     #[default]
///     Idle,
///     Busy,
///     Stopping,
/// }
///
/// let state: AtomicState = AtomicEnum::new(State::Idle); // = AtomicEnum<State>
/// assert_eq!(state.swap(State::Busy, Relaxed), State::Idle);
/// assert_eq!(state.compare_exchange(State::Busy, State::Stopping, SeqCst, SeqCst), Ok(State::Busy));
/// assert_eq!(state.compare_exchange(State::Busy, State::Idle, SeqCst, SeqCst), Err(State::Stopping));
/// assert_eq!(state.try_load(Relaxed), Ok(State::Stopping));
/// assert_eq!(format!("{state:?}"), "Stopping");
/// ```
#[repr(transparent)]
pub struct AtomicEnum<E: SharedEnum> {
    raw: <E::Repr as SharedLayout>::Atomic,
    /// `fn() -> E`: the twin is `Send` and `Sync` whatever `E` is (it holds a number).
    _enum: PhantomData<fn() -> E>,
}

impl<E: SharedEnum> AtomicEnum<E> {
    /// A new atomic holding `value`.
    pub fn new(value: E) -> Self {
        let a = crate::__private::zeroed_twin::<E::Repr>();
        <E::Repr as SharedLayout>::store(&a, &value.to_repr(), Ordering::Relaxed);
        AtomicEnum {
            raw: a,
            _enum: PhantomData,
        }
    }

    /// What the number `raw` reads as: its variant, or the default one.
    #[inline]
    fn reading(raw: E::Repr) -> E {
        E::from_repr(raw).unwrap_or(E::DEFAULT)
    }

    /// Loads the value; a number that is no variant reads as `E`'s `#[default]` variant.
    ///
    /// # Panics
    /// If `order` is `Release` or `AcqRel`, as std's atomic loads do.
    #[inline]
    pub fn load(&self, order: Ordering) -> E {
        Self::reading(self.load_raw(order))
    }

    /// Loads the value, or the number if it is no variant (another process wrote it).
    ///
    /// # Panics
    /// If `order` is `Release` or `AcqRel`.
    #[inline]
    pub fn try_load(&self, order: Ordering) -> Result<E, E::Repr> {
        let raw = self.load_raw(order);
        E::from_repr(raw).ok_or(raw)
    }

    /// The number, whatever it is.
    ///
    /// # Panics
    /// If `order` is `Release` or `AcqRel`.
    #[inline]
    pub fn load_raw(&self, order: Ordering) -> E::Repr {
        <E::Repr as SharedLayout>::load(&self.raw, order)
    }

    /// Stores `value`.
    ///
    /// # Panics
    /// If `order` is `Acquire` or `AcqRel`, as std's atomic stores do.
    #[inline]
    pub fn store(&self, value: E, order: Ordering) {
        self.store_ref(&value, order)
    }

    /// [`store`](Self::store) from a reference: `SharedLayout::store` of a derived enum.
    #[inline]
    pub(crate) fn store_ref(&self, value: &E, order: Ordering) {
        <E::Repr as SharedLayout>::store(&self.raw, &value.to_repr(), order)
    }

    /// Stores `value` and returns the previous value (read as by [`load`](Self::load)).
    #[inline]
    pub fn swap(&self, value: E, order: Ordering) -> E {
        Self::reading(E::Repr::swap(&self.raw, value.to_repr(), order))
    }

    /// Stores `new` if the value reads as `current` (so a number that is no variant matches the
    /// default variant); returns the previous value, `Ok` if it was replaced.
    #[inline]
    pub fn compare_exchange(
        &self,
        current: E,
        new: E,
        success: Ordering,
        failure: Ordering,
    ) -> Result<E, E> {
        self.cas(current, new, success, failure, E::Repr::compare_exchange)
    }

    /// Like [`compare_exchange`](Self::compare_exchange) but may fail spuriously; for use in a
    /// loop.
    #[inline]
    pub fn compare_exchange_weak(
        &self,
        current: E,
        new: E,
        success: Ordering,
        failure: Ordering,
    ) -> Result<E, E> {
        self.cas(
            current,
            new,
            success,
            failure,
            E::Repr::compare_exchange_weak,
        )
    }

    #[inline]
    fn cas(
        &self,
        current: E,
        new: E,
        success: Ordering,
        failure: Ordering,
        exchange: Exchange<E::Repr>,
    ) -> Result<E, E> {
        let want = current.to_repr();
        let new = new.to_repr();
        let mut raw = self.load_raw(failure);
        loop {
            let read = Self::reading(raw);
            if read.to_repr() != want {
                return Err(read);
            }
            match exchange(&self.raw, raw, new, success, failure) {
                Ok(_) => return Ok(current),
                // Another number with the same reading may be there (an unknown one instead of
                // the default's), or the exchange failed spuriously: retry with what is there.
                Err(now) => raw = now,
            }
        }
    }

    /// Replaces the value with `f(value)` until no other writer intervened, like std's
    /// `fetch_update`: returns `Ok(previous)`, or `Err(current)` if `f` returned `None`.
    pub fn fetch_update<F>(
        &self,
        set_order: Ordering,
        fetch_order: Ordering,
        mut f: F,
    ) -> Result<E, E>
    where
        F: FnMut(E) -> Option<E>,
    {
        let mut raw = self.load_raw(fetch_order);
        loop {
            let Some(new) = f(Self::reading(raw)) else {
                return Err(Self::reading(raw));
            };
            match E::Repr::compare_exchange_weak(
                &self.raw,
                raw,
                new.to_repr(),
                set_order,
                fetch_order,
            ) {
                Ok(previous) => return Ok(Self::reading(previous)),
                Err(now) => raw = now,
            }
        }
    }
}

impl<E: SharedEnum> Default for AtomicEnum<E> {
    /// The `#[default]` variant.
    fn default() -> Self {
        Self::new(E::DEFAULT)
    }
}

impl<E: SharedEnum> From<E> for AtomicEnum<E> {
    fn from(value: E) -> Self {
        Self::new(value)
    }
}

impl<E: SharedEnum> fmt::Debug for AtomicEnum<E> {
    /// The variant's name as a relaxed load reads it (`Busy`), or for a number that is no
    /// variant, the number and what it reads as.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.load_raw(Ordering::Relaxed);
        let Kind::Enum {
            variants, default, ..
        } = E::LAYOUT.kind
        else {
            return write!(f, "{raw}");
        };
        let value = raw.to_i128();
        match variants.iter().find(|v| v.value == value) {
            Some(v) => f.write_str(v.name),
            None => match variants.get(default) {
                Some(d) => write!(f, "{raw} (no variant; reads as {})", d.name),
                None => write!(f, "{raw}"),
            },
        }
    }
}
