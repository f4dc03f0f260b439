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
mod descriptor;
mod error;
mod header;
mod layout;
mod lock;
mod options;
mod process;
mod segment;
mod shared;
mod shared_layout;
mod type_code;

pub use array::Array;
pub use atomic::{AtomicBool, AtomicChar, AtomicF32, AtomicF64};
pub use descriptor::{Descriptor, DescriptorField, DescriptorKind, ParseError};
pub use error::{Error, Result};
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
}
