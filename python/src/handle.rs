//! The Rust handle behind a Python segment object: a typed `Value<T>` or `Array<T>` for the
//! primitives (the fast paths), or a `RawSegment` for any other layout; attached read only, a
//! `ReadOnly<T>` or `ReadOnlyArray<T>` for the primitives, or a read-only `RawSegment`.

use std::any::Any;
use std::sync::TryLockError;
use std::time::Duration;

use shm_core::inspect::{LockHolder, RawSegment};
use shm_core::{Array, Guard, ReadOnly, ReadOnlyArray, Value};

use crate::convert::Prim;

macro_rules! prim_enum {
    ($name:ident, $handle:ident) => {
        /// One handle per primitive type.
        pub enum $name {
            I8($handle<i8>),
            U8($handle<u8>),
            I16($handle<i16>),
            U16($handle<u16>),
            I32($handle<i32>),
            U32($handle<u32>),
            I64($handle<i64>),
            U64($handle<u64>),
            F32($handle<f32>),
            F64($handle<f64>),
            Bool($handle<bool>),
            Char($handle<char>),
        }
    };
}
prim_enum!(AnyValue, Value);
prim_enum!(AnyArray, Array);
prim_enum!(AnyRoValue, ReadOnly);
prim_enum!(AnyRoArray, ReadOnlyArray);

/// Runs `$body` with `$x` bound to the typed handle inside `$e` (an `AnyValue` or `AnyArray`).
#[macro_export]
macro_rules! each {
    ($e:expr, $enum:ident, $x:ident => $body:expr) => {
        match $e {
            $enum::I8($x) => $body,
            $enum::U8($x) => $body,
            $enum::I16($x) => $body,
            $enum::U16($x) => $body,
            $enum::I32($x) => $body,
            $enum::U32($x) => $body,
            $enum::I64($x) => $body,
            $enum::U64($x) => $body,
            $enum::F32($x) => $body,
            $enum::F64($x) => $body,
            $enum::Bool($x) => $body,
            $enum::Char($x) => $body,
        }
    };
}

/// What a Python segment object holds.
pub enum Kind {
    Value(AnyValue),
    Array(AnyArray),
    /// Read-write, or read only (`RawSegment::open_readonly_with`).
    Raw(RawSegment),
    /// A single primitive, attached read only.
    RoValue(AnyRoValue),
    /// An array of primitives, attached read only.
    RoArray(AnyRoArray),
}

/// A held lock: the guard of the handle's lock, type-erased (`Guard<'static, _>` of the handle
/// it came from, which the holder keeps alive).
pub type AnyGuard = Box<dyn HeldGuard>;

/// What is done with a held guard without knowing its type.
pub trait HeldGuard: Any {
    /// The guard, to downcast to the handle's guard type.
    fn as_any(&self) -> &dyn Any;
    /// Poisons the lock it holds (`Guard::poison`): the work done under it failed.
    fn poison(&self);
}

impl<A: ?Sized + 'static> HeldGuard for Guard<'static, A> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn poison(&self) {
        Guard::poison(self);
    }
}

fn conv<G: HeldGuard>(r: std::sync::TryLockResult<G>) -> Option<(AnyGuard, bool)> {
    match r {
        Ok(g) => Some((Box::new(g), false)),
        Err(TryLockError::Poisoned(p)) => Some((Box::new(p.into_inner()), true)),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Kind {
    /// Whether the handle is attached read only: nothing may write to its mapping (no lock, no
    /// store, no notify, no repair).
    pub fn is_read_only(&self) -> bool {
        match self {
            Kind::Value(_) | Kind::Array(_) => false,
            Kind::RoValue(_) | Kind::RoArray(_) => true,
            Kind::Raw(r) => r.is_read_only(),
        }
    }

    /// Takes the lock now (`wait` `None`) or within `wait`: the guard and whether it was
    /// poisoned, or `None` if it stayed held.
    pub fn try_lock(&'static self, wait: Option<Duration>) -> Option<(AnyGuard, bool)> {
        match self {
            Kind::Value(v) => each!(v, AnyValue, x => match wait {
                None => conv(x.try_lock()),
                Some(d) => conv(x.try_lock_for(d)),
            }),
            Kind::Array(a) => each!(a, AnyArray, x => match wait {
                None => conv(x.try_lock()),
                Some(d) => conv(x.try_lock_for(d)),
            }),
            // Locking writes the lock word: a read-only handle never locks (its callers refuse
            // first; here it would only stay unlocked).
            Kind::Raw(r) if r.is_read_only() => None,
            Kind::Raw(r) => conv(r.try_lock_for(wait)),
            Kind::RoValue(_) | Kind::RoArray(_) => None,
        }
    }

    /// Whether the segment's lock is poisoned (Rust's `is_poisoned`).
    pub fn is_poisoned(&self) -> bool {
        match self {
            Kind::Value(v) => each!(v, AnyValue, x => x.is_poisoned()),
            Kind::Array(a) => each!(a, AnyArray, x => x.is_poisoned()),
            Kind::Raw(r) => r.is_poisoned(),
            Kind::RoValue(v) => each!(v, AnyRoValue, x => x.is_poisoned()),
            Kind::RoArray(a) => each!(a, AnyRoArray, x => x.is_poisoned()),
        }
    }

    /// Clears the poisoning (Rust's `clear_poison`); nothing for a read-only handle, whose
    /// callers refuse first (clearing writes the header).
    pub fn clear_poison(&self) {
        match self {
            Kind::Value(v) => each!(v, AnyValue, x => x.clear_poison()),
            Kind::Array(a) => each!(a, AnyArray, x => x.clear_poison()),
            Kind::Raw(r) if r.is_read_only() => {}
            Kind::Raw(r) => r.clear_poison(),
            Kind::RoValue(_) | Kind::RoArray(_) => {}
        }
    }

    /// Wakes every waiter of the segment (Rust's `notify`); nothing for a read-only handle,
    /// whose callers refuse first (notifying writes the header).
    pub fn notify(&self) {
        match self {
            Kind::Value(v) => each!(v, AnyValue, x => x.notify()),
            Kind::Array(a) => each!(a, AnyArray, x => x.notify()),
            Kind::Raw(r) if r.is_read_only() => {}
            Kind::Raw(r) => r.notify(),
            Kind::RoValue(_) | Kind::RoArray(_) => {}
        }
    }

    /// Who holds the segment's lock now, as its lock word says.
    pub fn lock_holder(&self) -> Option<LockHolder> {
        match self {
            Kind::Value(v) => each!(v, AnyValue, x => x.lock_holder()),
            Kind::Array(a) => each!(a, AnyArray, x => x.lock_holder()),
            Kind::Raw(r) => r.lock_holder(),
            Kind::RoValue(v) => each!(v, AnyRoValue, x => x.lock_holder()),
            Kind::RoArray(a) => each!(a, AnyRoArray, x => x.lock_holder()),
        }
    }
}

/// Reads elements `start..start + n` of a typed array consistently.
pub trait ReadRange: Prim {
    fn read_range(a: &Array<Self>, start: usize, n: usize) -> Vec<Self>;
    fn store_range(a: &Array<Self>, start: usize, values: &[Self]);
    /// The elements of a buffer of this type (an `array.array`, a numpy array), if `obj` is one.
    fn from_buffer(obj: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<Vec<Self>>;
    /// All elements, as one journaled write under the lock `guard` holds.
    fn write_all(a: &Array<Self>, guard: &shm_core::Guard<'_, [Self::Atomic]>, values: &[Self]);
}

macro_rules! bulk {
    ($($ty:ty),*) => {$(
        impl ReadRange for $ty {
            fn read_range(a: &Array<Self>, start: usize, n: usize) -> Vec<Self> {
                let mut out = vec![<$ty>::default(); n];
                a.read_into(start, &mut out);
                out
            }
            fn store_range(a: &Array<Self>, start: usize, values: &[Self]) {
                a.store_from(start, values);
            }
            #[cfg(any(Py_3_11, not(Py_LIMITED_API)))]
            fn from_buffer(obj: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<Vec<Self>> {
                let buf = pyo3::buffer::PyBuffer::<$ty>::get(obj).ok()?;
                buf.to_vec(obj.py()).ok()
            }
            #[cfg(not(any(Py_3_11, not(Py_LIMITED_API))))]
            fn from_buffer(_: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<Vec<Self>> {
                None
            }
            fn write_all(a: &Array<Self>, guard: &shm_core::Guard<'_, [Self::Atomic]>, values: &[Self]) {
                a.write_from_locked(guard, 0, values);
            }
        }
    )*};
}
bulk!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

macro_rules! by_element {
    ($($ty:ty),*) => {$(
        impl ReadRange for $ty {
            fn read_range(a: &Array<Self>, start: usize, n: usize) -> Vec<Self> {
                a.snapshot_range(start..start + n)
            }
            fn store_range(a: &Array<Self>, start: usize, values: &[Self]) {
                for (t, v) in a[start..start + values.len()].iter().zip(values) {
                    <$ty as shm_core::SharedLayout>::store(t, v, std::sync::atomic::Ordering::Relaxed);
                }
            }
            fn from_buffer(_: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<Vec<Self>> {
                None
            }
            fn write_all(a: &Array<Self>, guard: &shm_core::Guard<'_, [Self::Atomic]>, values: &[Self]) {
                a.update_range_locked(guard, .., |xs| xs.copy_from_slice(values));
            }
        }
    )*};
}
by_element!(bool, char);
