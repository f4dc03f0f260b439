//! Typed structs in named shared memory, for processes that share live state: counters,
//! scoreboards, control flags, per-worker slots.
//!
//! What Python's `multiprocessing.Value('i', 0)` and `multiprocessing.Array('i', [1, 2, 3, 4])`
//! give a Python program, this crate gives a Rust program, for whole structs: a value lives in a
//! named POSIX shared-memory segment (`/dev/shm/<name>` on Linux) that any process can open by
//! name, every field is an atomic, and the layout is checked at compile time and again when a
//! process attaches.
//!
//! ```
//! use shm_core::{Array, Shared, SharedLayout, Value};
//! use std::sync::atomic::Ordering::Relaxed;
//!
//! #[derive(SharedLayout, Default)]
//! #[repr(C)]
//! pub struct Stats {
//!     pub requests: u64,
//!     pub errors: u32,
//!     pub load: f64,
//!     pub hist: [u32; 8],
//! }
//!
//! # let pid = std::process::id();
//! # let (stats_name, v_name, a_name) = (format!("doc-lib-s-{pid}"), format!("doc-lib-v-{pid}"), format!("doc-lib-a-{pid}"));
//! // Process A creates; the handle removes the segment when dropped.
//! let stats = Shared::<Stats>::create(&stats_name, Stats::default())?;
//! stats.requests.fetch_add(1, Relaxed);
//! stats.load.store(0.7, Relaxed);
//!
//! // Process B, started any way at all, opens by name; a segment of another layout is refused.
//! let seen = Shared::<Stats>::open(&stats_name)?;
//! assert_eq!(seen.requests.load(Relaxed), 1);
//!
//! // Python's Value and Array.
//! let counter = Value::<i32>::create(&v_name, 0)?;
//! counter.fetch_add(1, Relaxed);
//! let arr = Array::<i32>::create(&a_name, &[1, 2, 3, 4])?;
//! assert_eq!(arr[3].load(Relaxed), 4);
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # What can be shared
//!
//! Types implementing [`SharedLayout`]: the primitives `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool
//! char` (each with a Python [`TypeCode`]), arrays `[T; N]` of shareable types to any depth, and
//! `#[repr(C)]` structs that `#[derive(SharedLayout)]`. Each has an atomic twin that the segment
//! holds: std's integer atomics, and this crate's [`AtomicF32`], [`AtomicF64`], [`AtomicBool`]
//! and [`AtomicChar`].
//!
//! # Safety of shared bytes
//!
//! Another process can write anything into a segment. Every access is atomic, so there is no
//! data race; `bool` and `char` atomics check the bytes they read; and [`Shared::open`] checks the
//! object (owner, mode, size) and the header (magic, version, descriptor, fingerprint) before it
//! trusts any of it. Nothing another process or the file system does makes this crate panic.
//!
//! # Platform
//!
//! Linux (glibc) is what is built and tested. The segment format is in `docs/FORMAT.md`.

#![deny(missing_docs)]
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    unsafe_op_in_unsafe_fn
)]

mod array;
mod atomic;
mod bulk;
mod descriptor;
mod error;
mod guard;
mod header;
pub mod inspect;
mod journal;
mod layout;
mod lock;
mod options;
mod process;
mod segment;
mod seqlock;
mod shared;
mod shared_layout;
mod type_code;

pub use array::Array;
pub use atomic::{AtomicBool, AtomicChar, AtomicF32, AtomicF64};
pub use bulk::BulkCopy;
pub use descriptor::{Descriptor, DescriptorField, DescriptorKind, ParseError};
pub use error::{Error, Result};
pub use guard::Guard;
pub use layout::{Field, Kind, Layout, FORMAT_VERSION};
pub use options::Options;
pub use segment::{remove, MAX_NAME_LEN};
pub use shared::{Shared, Value};
pub use shared_layout::{Primitive, SharedLayout};
pub use type_code::TypeCode;

#[cfg(feature = "derive")]
pub use shm_derive::SharedLayout;

/// What `#[derive(SharedLayout)]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use core;
    pub use static_assertions;

    use crate::{Kind, Layout, SharedLayout};

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
            Kind::Primitive(code) => {
                let size = code.size();
                let log2 = size.trailing_zeros() as usize;
                size.is_power_of_two()
                    && log2 < LOCK_FREE_BY_LOG2_SIZE.len()
                    && LOCK_FREE_BY_LOG2_SIZE[log2]
            }
            Kind::Array { elem, .. } => lock_free(elem),
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
}
