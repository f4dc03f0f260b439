//! `shm_core._native`: the Python bindings of shm-core. Every segment operation (create, open and
//! its checks, the lock, the seqlock, the journal) is shm-core's; this crate converts values and
//! errors. The Python package `shm_core` (python/shm_core) is the public face.

#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(any(Py_3_11, not(Py_LIMITED_API)))]
mod buffer;
mod convert;
mod descriptor;
mod errors;
mod handle;
mod lock;
mod segment;

use pyo3::prelude::*;

/// The module `shm_core._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<descriptor::PyDescriptor>()?;
    m.add_class::<segment::SegmentBase>()?;
    m.add_class::<segment::PyHandle>()?;
    m.add_class::<lock::Lock>()?;
    m.add_function(wrap_pyfunction!(segment::create_value, m)?)?;
    m.add_function(wrap_pyfunction!(segment::create_array, m)?)?;
    m.add_function(wrap_pyfunction!(segment::create_raw, m)?)?;
    m.add_function(wrap_pyfunction!(segment::open_segment, m)?)?;
    m.add_function(wrap_pyfunction!(segment::remove, m)?)?;
    m.add_function(wrap_pyfunction!(segment::stale, m)?)?;
    m.add_function(wrap_pyfunction!(segment::fingerprint, m)?)?;
    m.add("FORMAT_VERSION", shm_core::FORMAT_VERSION)?;
    m.add("BUFFER_PROTOCOL", cfg!(any(Py_3_11, not(Py_LIMITED_API))))?;
    Ok(())
}
