//! Atomics for the primitives std has none for (`f32`, `f64`), and for `bool` and `char`, whose
//! std forms would trust bytes that another process may have written.
//!
//! Each is a wrapper around a std integer atomic of the same size and alignment, so it can be
//! placed in a segment and has the memory layout of the plain type.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Ordering for the load that starts a compare-and-swap loop, derived from the ordering asked for
/// the whole read-modify-write (the failure ordering may not be `Release` or `AcqRel`).
#[inline]
fn load_order(order: Ordering) -> Ordering {
    match order {
        Ordering::Release | Ordering::Relaxed => Ordering::Relaxed,
        Ordering::AcqRel | Ordering::Acquire => Ordering::Acquire,
        _ => Ordering::SeqCst,
    }
}

macro_rules! atomic_float {
    ($(#[$doc:meta])* $name:ident, $float:ty, $bits:ty, $atomic_bits:ty) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Default)]
        pub struct $name {
            bits: $atomic_bits,
        }

        impl $name {
            /// A new atomic holding `value`.
            #[inline]
            pub const fn new(value: $float) -> Self {
                Self { bits: <$atomic_bits>::new(value.to_bits()) }
            }

            /// Loads the value.
            #[inline]
            pub fn load(&self, order: Ordering) -> $float {
                <$float>::from_bits(self.bits.load(order))
            }

            /// Stores `value`.
            #[inline]
            pub fn store(&self, value: $float, order: Ordering) {
                self.bits.store(value.to_bits(), order)
            }

            /// Stores `value` and returns the previous value.
            #[inline]
            pub fn swap(&self, value: $float, order: Ordering) -> $float {
                <$float>::from_bits(self.bits.swap(value.to_bits(), order))
            }

            /// Stores `new` if the value is bit-for-bit `current` (so `0.0` and `-0.0` differ,
            /// and a NaN matches a NaN with the same bits). Returns the previous value: `Ok` if
            /// it was replaced.
            #[inline]
            pub fn compare_exchange(
                &self,
                current: $float,
                new: $float,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$float, $float> {
                self.bits
                    .compare_exchange(current.to_bits(), new.to_bits(), success, failure)
                    .map(<$float>::from_bits)
                    .map_err(<$float>::from_bits)
            }

            /// Like [`compare_exchange`](Self::compare_exchange) but may fail spuriously; for
            /// use in a loop.
            #[inline]
            pub fn compare_exchange_weak(
                &self,
                current: $float,
                new: $float,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$float, $float> {
                self.bits
                    .compare_exchange_weak(current.to_bits(), new.to_bits(), success, failure)
                    .map(<$float>::from_bits)
                    .map_err(<$float>::from_bits)
            }

            /// Replaces the value with `f(value)` until no other writer intervened, like std's
            /// `fetch_update`: returns `Ok(previous)`, or `Err(current)` if `f` returned `None`.
            #[inline]
            pub fn fetch_update<F>(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                mut f: F,
            ) -> Result<$float, $float>
            where
                F: FnMut($float) -> Option<$float>,
            {
                self.bits
                    .fetch_update(set_order, fetch_order, |bits| {
                        f(<$float>::from_bits(bits)).map(<$float>::to_bits)
                    })
                    .map(<$float>::from_bits)
                    .map_err(<$float>::from_bits)
            }

            #[inline]
            fn rmw(&self, order: Ordering, f: impl Fn($float) -> $float) -> $float {
                match self.fetch_update(order, load_order(order), |v| Some(f(v))) {
                    Ok(previous) | Err(previous) => previous,
                }
            }

            /// Adds `delta` and returns the previous value. A compare-and-swap loop: no
            /// concurrent addition is lost.
            #[inline]
            pub fn fetch_add(&self, delta: $float, order: Ordering) -> $float {
                self.rmw(order, |v| v + delta)
            }

            /// Subtracts `delta` and returns the previous value.
            #[inline]
            pub fn fetch_sub(&self, delta: $float, order: Ordering) -> $float {
                self.rmw(order, |v| v - delta)
            }

            /// Stores the maximum of the value and `value` (NaN loses, as in
            #[doc = concat!("[`", stringify!($float), "::max`]", ")")]
            /// and returns the previous value.
            #[inline]
            pub fn fetch_max(&self, value: $float, order: Ordering) -> $float {
                self.rmw(order, |v| v.max(value))
            }

            /// Stores the minimum of the value and `value` (NaN loses, as in
            #[doc = concat!("[`", stringify!($float), "::min`]", ")")]
            /// and returns the previous value.
            #[inline]
            pub fn fetch_min(&self, value: $float, order: Ordering) -> $float {
                self.rmw(order, |v| v.min(value))
            }

            /// The value, from an owned atomic.
            #[inline]
            pub fn into_inner(self) -> $float {
                <$float>::from_bits(self.bits.into_inner())
            }

            /// The underlying bits, as the integer atomic that holds them.
            #[inline]
            pub fn as_bits(&self) -> &$atomic_bits {
                &self.bits
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
            }
        }

        impl From<$float> for $name {
            fn from(value: $float) -> Self {
                Self::new(value)
            }
        }
    };
}

atomic_float!(
    /// An `f32` that can be shared between threads and processes: the bits live in an
    /// [`AtomicU32`], and arithmetic is a compare-and-swap loop.
    ///
    /// ```
    /// use shm_core::AtomicF32;
    /// use std::sync::atomic::Ordering::Relaxed;
    ///
    /// let x = AtomicF32::new(1.5);
    /// assert_eq!(x.fetch_add(2.0, Relaxed), 1.5);
    /// assert_eq!(x.fetch_max(1.0, Relaxed), 3.5);
    /// assert_eq!(x.load(Relaxed), 3.5);
    /// ```
    AtomicF32,
    f32,
    u32,
    AtomicU32
);

atomic_float!(
    /// An `f64` that can be shared between threads and processes: the bits live in an
    /// [`AtomicU64`], and arithmetic is a compare-and-swap loop.
    ///
    /// ```
    /// use shm_core::AtomicF64;
    /// use std::sync::atomic::Ordering::Relaxed;
    ///
    /// let x = AtomicF64::new(3.14);
    /// x.fetch_sub(0.14, Relaxed);
    /// assert!((x.load(Relaxed) - 3.0).abs() < 1e-12);
    /// ```
    AtomicF64,
    f64,
    u64,
    AtomicU64
);

/// A `bool` in one byte that can be shared between processes.
///
/// Unlike std's `AtomicBool`, it does not assume that the byte is 0 or 1: another process (or
/// another language) may have written anything there. Any non-zero byte reads as `true`, and
/// every operation computes on that reading, so it never yields an invalid `bool`. It always
/// stores 0 or 1.
///
/// ```
/// use shm_core::AtomicBool;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// let stop = AtomicBool::new(false);
/// assert!(!stop.fetch_or(true, Relaxed));
/// assert!(stop.load(Relaxed));
/// ```
#[repr(transparent)]
#[derive(Default)]
pub struct AtomicBool {
    byte: AtomicU8,
}

impl AtomicBool {
    /// A new atomic holding `value`.
    #[inline]
    pub const fn new(value: bool) -> Self {
        Self {
            byte: AtomicU8::new(value as u8),
        }
    }

    /// Loads the value: `true` for any non-zero byte.
    #[inline]
    pub fn load(&self, order: Ordering) -> bool {
        self.byte.load(order) != 0
    }

    /// Stores `value` (as 0 or 1).
    #[inline]
    pub fn store(&self, value: bool, order: Ordering) {
        self.byte.store(value as u8, order)
    }

    /// Stores `value` and returns the previous value.
    #[inline]
    pub fn swap(&self, value: bool, order: Ordering) -> bool {
        self.byte.swap(value as u8, order) != 0
    }

    /// Stores `new` if the value reads as `current`; returns the previous value, `Ok` if it was
    /// replaced.
    #[inline]
    pub fn compare_exchange(
        &self,
        current: bool,
        new: bool,
        success: Ordering,
        failure: Ordering,
    ) -> Result<bool, bool> {
        let mut raw = self.byte.load(failure);
        loop {
            if (raw != 0) != current {
                return Err(raw != 0);
            }
            match self.byte.compare_exchange(raw, new as u8, success, failure) {
                Ok(_) => return Ok(current),
                // Another byte with the same reading (say 2 instead of 1) may be there: retry.
                Err(now) => raw = now,
            }
        }
    }

    /// Replaces the value with `f(value)` until no other writer intervened: `Ok(previous)`, or
    /// `Err(current)` if `f` returned `None`.
    #[inline]
    pub fn fetch_update<F>(
        &self,
        set_order: Ordering,
        fetch_order: Ordering,
        mut f: F,
    ) -> Result<bool, bool>
    where
        F: FnMut(bool) -> Option<bool>,
    {
        self.byte
            .fetch_update(set_order, fetch_order, |raw| f(raw != 0).map(u8::from))
            .map(|raw| raw != 0)
            .map_err(|raw| raw != 0)
    }

    #[inline]
    fn rmw(&self, order: Ordering, f: impl Fn(bool) -> bool) -> bool {
        match self.fetch_update(order, load_order(order), |v| Some(f(v))) {
            Ok(previous) | Err(previous) => previous,
        }
    }

    /// Logical and with `value`; returns the previous value.
    #[inline]
    pub fn fetch_and(&self, value: bool, order: Ordering) -> bool {
        self.rmw(order, |v| v & value)
    }

    /// Logical or with `value`; returns the previous value.
    #[inline]
    pub fn fetch_or(&self, value: bool, order: Ordering) -> bool {
        self.rmw(order, |v| v | value)
    }

    /// Logical xor with `value`; returns the previous value.
    #[inline]
    pub fn fetch_xor(&self, value: bool, order: Ordering) -> bool {
        self.rmw(order, |v| v ^ value)
    }

    /// Logical nand with `value`; returns the previous value.
    #[inline]
    pub fn fetch_nand(&self, value: bool, order: Ordering) -> bool {
        self.rmw(order, |v| !(v & value))
    }

    /// Flips the value; returns the previous value.
    #[inline]
    pub fn fetch_not(&self, order: Ordering) -> bool {
        self.rmw(order, |v| !v)
    }

    /// The raw byte, which another process may have set to something other than 0 or 1.
    #[inline]
    pub fn load_raw(&self, order: Ordering) -> u8 {
        self.byte.load(order)
    }
}

impl fmt::Debug for AtomicBool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
    }
}

/// A `char` in four bytes that can be shared between processes.
///
/// The four bytes are a `u32` that another process may have set to a value that is not a Unicode
/// scalar value (a surrogate, or above `0x10FFFF`). [`load`](Self::load) then returns
/// `char::REPLACEMENT_CHARACTER` (`'\u{FFFD}'`), [`try_load`](Self::try_load) returns the raw
/// number as an error; no operation ever yields an invalid `char`.
///
/// ```
/// use shm_core::AtomicChar;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// let c = AtomicChar::new('a');
/// assert_eq!(c.swap('ß', Relaxed), 'a');
/// assert_eq!(c.try_load(Relaxed), Ok('ß'));
/// ```
#[repr(transparent)]
#[derive(Default)]
pub struct AtomicChar {
    raw: AtomicU32,
}

#[inline]
fn to_char(raw: u32) -> char {
    char::from_u32(raw).unwrap_or(char::REPLACEMENT_CHARACTER)
}

impl AtomicChar {
    /// A new atomic holding `value`.
    #[inline]
    pub const fn new(value: char) -> Self {
        Self {
            raw: AtomicU32::new(value as u32),
        }
    }

    /// Loads the value; a number that is not a `char` reads as `'\u{FFFD}'`.
    #[inline]
    pub fn load(&self, order: Ordering) -> char {
        to_char(self.raw.load(order))
    }

    /// Loads the value, or the raw number if it is not a `char`.
    #[inline]
    pub fn try_load(&self, order: Ordering) -> Result<char, u32> {
        let raw = self.raw.load(order);
        char::from_u32(raw).ok_or(raw)
    }

    /// The raw number, whatever it is.
    #[inline]
    pub fn load_raw(&self, order: Ordering) -> u32 {
        self.raw.load(order)
    }

    /// Stores `value`.
    #[inline]
    pub fn store(&self, value: char, order: Ordering) {
        self.raw.store(value as u32, order)
    }

    /// Stores `value` and returns the previous value (read as by [`load`](Self::load)).
    #[inline]
    pub fn swap(&self, value: char, order: Ordering) -> char {
        to_char(self.raw.swap(value as u32, order))
    }

    /// Stores `new` if the value reads as `current`; returns the previous value, `Ok` if it was
    /// replaced.
    #[inline]
    pub fn compare_exchange(
        &self,
        current: char,
        new: char,
        success: Ordering,
        failure: Ordering,
    ) -> Result<char, char> {
        let mut raw = self.raw.load(failure);
        loop {
            if to_char(raw) != current {
                return Err(to_char(raw));
            }
            match self.raw.compare_exchange(raw, new as u32, success, failure) {
                Ok(_) => return Ok(current),
                Err(now) => raw = now,
            }
        }
    }

    /// Replaces the value with `f(value)` until no other writer intervened: `Ok(previous)`, or
    /// `Err(current)` if `f` returned `None`.
    #[inline]
    pub fn fetch_update<F>(
        &self,
        set_order: Ordering,
        fetch_order: Ordering,
        mut f: F,
    ) -> Result<char, char>
    where
        F: FnMut(char) -> Option<char>,
    {
        self.raw
            .fetch_update(set_order, fetch_order, |raw| f(to_char(raw)).map(u32::from))
            .map(to_char)
            .map_err(to_char)
    }
}

impl fmt::Debug for AtomicChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering::{Relaxed, SeqCst};

    #[test]
    fn float_arithmetic_and_extremes() {
        let x = AtomicF64::new(1.0);
        assert_eq!(x.fetch_add(0.5, SeqCst), 1.0);
        assert_eq!(x.fetch_sub(2.0, SeqCst), 1.5);
        assert_eq!(x.load(Relaxed), -0.5);
        assert_eq!(x.fetch_max(f64::NAN, Relaxed), -0.5);
        assert_eq!(x.load(Relaxed), -0.5);
        assert_eq!(x.fetch_min(-7.0, Relaxed), -0.5);
        assert_eq!(x.swap(2.0, Relaxed), -7.0);
        assert_eq!(x.compare_exchange(-0.0, 1.0, SeqCst, SeqCst), Err(2.0));
        assert_eq!(x.compare_exchange(2.0, 1.0, SeqCst, SeqCst), Ok(2.0));
        assert_eq!(x.fetch_update(SeqCst, SeqCst, |_| None), Err(1.0));
        assert_eq!(x.into_inner(), 1.0);

        let y = AtomicF32::new(0.0);
        y.store(-0.0, Relaxed);
        assert_eq!(y.as_bits().load(Relaxed), (-0.0f32).to_bits());
        assert_eq!(y.compare_exchange(0.0, 1.0, SeqCst, SeqCst), Err(-0.0));
    }

    #[test]
    fn float_fetch_add_loses_nothing_across_threads() {
        let x = AtomicF64::new(0.0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        x.fetch_add(1.0, Relaxed);
                    }
                });
            }
        });
        assert_eq!(x.load(Relaxed), 40_000.0);
    }

    #[test]
    fn bool_reads_any_foreign_byte_as_a_valid_bool() {
        let b = AtomicBool::new(false);
        b.byte.store(0x80, Relaxed); // what a foreign writer may leave
        assert!(b.load(Relaxed));
        assert_eq!(b.load_raw(Relaxed), 0x80);
        // xor on the reading, not on the byte: 0x80 ^ 1 would still be "true".
        assert!(b.fetch_xor(true, Relaxed));
        assert!(!b.load(Relaxed));
        assert_eq!(b.load_raw(Relaxed), 0);
        b.byte.store(2, Relaxed);
        assert_eq!(b.compare_exchange(true, false, SeqCst, SeqCst), Ok(true));
        assert_eq!(b.load_raw(Relaxed), 0);
        assert_eq!(b.compare_exchange(true, false, SeqCst, SeqCst), Err(false));
        b.byte.store(7, Relaxed);
        assert!(b.fetch_and(true, Relaxed));
        assert_eq!(b.load_raw(Relaxed), 1);
        assert!(b.fetch_nand(true, Relaxed));
        assert!(!b.fetch_not(Relaxed));
        assert!(b.fetch_or(false, Relaxed));
        assert!(b.swap(false, Relaxed));
    }

    #[test]
    fn char_never_yields_an_invalid_char() {
        let c = AtomicChar::new('x');
        for bad in [0xD800u32, 0xDFFF, 0x11_0000, u32::MAX] {
            c.raw.store(bad, Relaxed);
            assert_eq!(c.load(Relaxed), char::REPLACEMENT_CHARACTER);
            assert_eq!(c.try_load(Relaxed), Err(bad));
            assert_eq!(c.load_raw(Relaxed), bad);
        }
        assert_eq!(
            c.compare_exchange(char::REPLACEMENT_CHARACTER, 'y', SeqCst, SeqCst),
            Ok(char::REPLACEMENT_CHARACTER)
        );
        assert_eq!(c.load(Relaxed), 'y');
        assert_eq!(c.compare_exchange('x', 'z', SeqCst, SeqCst), Err('y'));
        assert_eq!(
            c.fetch_update(SeqCst, SeqCst, |c| c.to_uppercase().next()),
            Ok('y')
        );
        assert_eq!(c.swap('😀', Relaxed), 'Y');
        assert_eq!(c.try_load(Relaxed), Ok('😀'));
    }
}
