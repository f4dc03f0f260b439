//! Performance comparisons of `shm-core`, in a crate of their own, as a user's program calls the
//! library: `cargo run --release --example compare` (see `examples/compare.rs` and
//! `docs/PERFORMANCE.md`). The library part is empty; the package exists so that the comparison's
//! baseline (`shared_memory`) is built only when the comparison is.
