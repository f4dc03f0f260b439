//! Performance measurements of `shm-core`, in a crate of their own, as a user's program calls the
//! library (see `docs/PERFORMANCE.md`):
//!
//! - `cargo bench -p perf --bench user`: every in-process figure (field operations, `snapshot`,
//!   `update`, `lock`, `open`, bulk copies) against the hand-written code it replaces, the crate's
//!   calls made from several call sites and from a large function, timed in interleaved rounds;
//! - `cargo bench -p perf --bench scaling`: 1 to 16 processes on one segment, with a plot;
//! - `cargo run --release -p perf --example compare`: the cross-process comparison with bare
//!   atomics and Python's `multiprocessing`.
//!
//! This library holds what they share: the interleaved timing, the bare baselines and the plot.

pub mod measure;
pub mod mutex;
pub mod raw;
pub mod svg;
