//! What `#[derive(SharedLayout)]` expands to refers to, as `shm_core::__private`; not a public
//! API. The derive's compile-time helpers live here once, so that the macro only calls them:
//! the all-zero twin, the `#[repr(C)]` layout computed from the fields' layouts, and whether a
//! layout's atomics are lock-free. `core` and `static_assertions` are re-exported so that
//! generated code needs no dependency of the user's crate and no prelude.

pub use core;
pub use static_assertions;

use core::sync::atomic::Ordering;

use crate::{AtomicEnum, Kind, Layout, SharedEnum, SharedLayout};

/// The all-zero twin of `T`: the twin's `Default`.
#[inline]
pub fn zeroed_twin<T: SharedLayout>() -> T::Atomic {
    // SAFETY: `SharedLayout`'s contract makes every bit pattern, all zeros included, a valid
    // `T::Atomic`.
    unsafe { core::mem::zeroed() }
}

/// The `#[repr(C)]` layout of a struct whose fields have the layouts `fields`, in order, and
/// whose `#[repr]` asks for at least `min_align` (1 without `align(N)`): the offset of every
/// field, the size and the alignment, placed as the reference's C layout rule places them.
pub struct ReprC<const N: usize> {
    /// Offset of each field.
    pub offsets: [usize; N],
    /// Size, a multiple of `align`.
    pub size: usize,
    /// Alignment.
    pub align: usize,
}

/// The layout of a derived struct's atomic twin, computed from its fields' layouts.
///
/// The derive compares it with the plain struct where the struct is defined, so a mismatch
/// is reported there, naming the field; the real twin is compared again in its `LAYOUT`.
pub const fn repr_c<const N: usize>(fields: [&Layout; N], min_align: usize) -> ReprC<N> {
    let mut offsets = [0; N];
    let mut end: usize = 0;
    let mut align = min_align;
    let mut i = 0;
    while i < N {
        let field = fields[i];
        if field.align > align {
            align = field.align;
        }
        offsets[i] = end.next_multiple_of(field.align);
        end = offsets[i] + field.size;
        i += 1;
    }
    ReprC {
        offsets,
        size: end.next_multiple_of(align),
        align,
    }
}

/// Whether this target has lock-free atomics of 1, 2, 4 and 8 bytes.
const LOCK_FREE_BY_LOG2_SIZE: [bool; 4] = [
    cfg!(target_has_atomic = "8"),
    cfg!(target_has_atomic = "16"),
    cfg!(target_has_atomic = "32"),
    cfg!(target_has_atomic = "64"),
];

/// Whether every primitive in `layout` has a lock-free atomic on this target.
pub const fn lock_free(layout: &Layout) -> bool {
    match layout.kind {
        Kind::Primitive(code) | Kind::Enum { repr: code, .. } => {
            let size = code.size();
            let log2 = size.trailing_zeros() as usize;
            size.is_power_of_two()
                && log2 < LOCK_FREE_BY_LOG2_SIZE.len()
                && LOCK_FREE_BY_LOG2_SIZE[log2]
        }
        Kind::Array { elem, .. } => lock_free(elem),
        // A `u32` length and bytes.
        Kind::Text { .. } => LOCK_FREE_BY_LOG2_SIZE[0] && LOCK_FREE_BY_LOG2_SIZE[2],
        Kind::Struct { fields } => {
            let mut i = 0;
            while i < fields.len() {
                if !lock_free(fields[i].layout) {
                    return false;
                }
                i += 1;
            }
            true
        }
    }
}

/// `SharedLayout::load` of a derived enum.
#[inline]
pub fn enum_load<E: SharedEnum>(atomic: &AtomicEnum<E>, order: Ordering) -> E {
    atomic.load(order)
}

/// `SharedLayout::store` of a derived enum.
#[inline]
pub fn enum_store<E: SharedEnum>(atomic: &AtomicEnum<E>, value: &E, order: Ordering) {
    atomic.store_ref(value, order)
}

/// `SharedLayout::store_changed` of a derived enum: stores `new` if it is another variant.
#[inline]
pub fn enum_store_changed<E: SharedEnum>(
    atomic: &AtomicEnum<E>,
    old: &E,
    new: &E,
    order: Ordering,
) {
    if old.to_repr() != new.to_repr() {
        atomic.store_ref(new, order)
    }
}
