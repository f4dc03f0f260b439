//! The buffer protocol of arrays of primitives: ``memoryview(a)`` and ``numpy.frombuffer(a)``
//! see the payload itself, writable (read only for a handle attached read only, whose mapping
//! is read only), without a copy. Plain memory, as ``multiprocessing``'s
//! ctypes arrays give: no atomicity or ordering is promised for what is read or written through
//! it, and it is not seen as one change by ``snapshot()`` (use ``snapshot()`` and ``update()``
//! for that). The object stays alive, and its segment mapped, while a buffer of it exists.

use std::ffi::{c_int, c_void, CString};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use shm_core::TypeCode;

use crate::segment::SegmentBase;

fn format(code: TypeCode, as_bytes: bool) -> &'static str {
    match code {
        TypeCode::I8 => "b",
        TypeCode::U8 if as_bytes => "c",
        TypeCode::U8 => "B",
        TypeCode::I16 => "h",
        TypeCode::U16 => "H",
        TypeCode::I32 => "i",
        TypeCode::U32 => "I",
        TypeCode::I64 => "q",
        TypeCode::U64 => "Q",
        TypeCode::F32 => "f",
        TypeCode::F64 => "d",
        _ => "?",
    }
}

/// Fills `view` with the payload of the array `slf`.
///
/// # Safety
/// `view` must be a `Py_buffer` Python asks to fill (valid for writes), released later by
/// [`release`].
pub unsafe fn get(
    slf: Bound<'_, SegmentBase>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    if view.is_null() {
        return Err(PyBufferError::new_err("no buffer to fill"));
    }
    let me = slf.get();
    let (ptr, n, code) = me.export(flags & ffi::PyBUF_WRITABLE != 0)?;
    let readonly = me.is_read_only();
    let itemsize = code.size();
    let fmt = CString::new(format(code, me.as_bytes())).expect("no NUL in a format");
    // Shape and strides, freed in `release` (through `internal`).
    let dims: Box<[isize; 2]> = Box::new([n as isize, itemsize as isize]);
    let dims = Box::into_raw(dims) as *mut isize;
    // SAFETY: `view` is valid for writes (the caller's contract); `ptr..ptr + n * itemsize` is
    // the payload of the array, mapped while the exporter (`obj`, a new reference to `slf`)
    // lives, which `close()` refuses to unmap while the export is counted; `dims` points to two
    // `isize`s that live until `release` frees them.
    unsafe {
        (*view).obj = slf.into_any().into_ptr();
        (*view).buf = ptr as *mut c_void;
        (*view).len = (n * itemsize) as isize;
        (*view).readonly = c_int::from(readonly);
        (*view).itemsize = itemsize as isize;
        (*view).format = if flags & ffi::PyBUF_FORMAT != 0 {
            fmt.into_raw()
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if flags & ffi::PyBUF_ND != 0 {
            dims
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
            dims.add(1)
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = dims as *mut c_void;
    }
    Ok(())
}

/// Frees what [`get`] allocated for `view`.
///
/// # Safety
/// `view` must have been filled by [`get`] and not released before.
pub unsafe fn release(view: *mut ffi::Py_buffer) {
    // SAFETY: `format` is null or a `CString` `get` leaked; `internal` is the `Box<[isize; 2]>`
    // `get` leaked; each is freed once, here.
    unsafe {
        if !(*view).format.is_null() {
            drop(CString::from_raw((*view).format));
            (*view).format = std::ptr::null_mut();
        }
        if !(*view).internal.is_null() {
            drop(Box::from_raw((*view).internal as *mut [isize; 2]));
            (*view).internal = std::ptr::null_mut();
        }
    }
}
