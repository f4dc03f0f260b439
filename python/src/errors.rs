//! `shm_core::Error` as the Python exceptions of `shm_core._errors` (a `ShmError` subclass per
//! variant, naming the segment, the OSError ones with `errno` and `filename`).

use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use shm_core::inspect::{FieldError, LockHolder};
use shm_core::Error;

static MAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `shm_core._errors._make(kind, name, message, errno, attrs)`: builds the exception.
fn make(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    MAKE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("shm_core._errors")?.getattr("_make")?.unbind())
    })
    .map(|f| f.bind(py))
}

/// The Python exception `kind` about segment `name`.
pub fn shm_error(
    py: Python<'_>,
    kind: &str,
    name: &str,
    message: String,
    errno: Option<i32>,
    attrs: &[(&str, Bound<'_, PyAny>)],
) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let extra = PyDict::new(py);
        for (k, v) in attrs {
            extra.set_item(k, v)?;
        }
        let e = make(py)?.call1((kind, name, message, errno, extra))?;
        Ok(PyErr::from_value(e))
    })();
    built.unwrap_or_else(|e| e)
}

/// The exception for a Rust error.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let name = e.name().to_owned();
    let message = e.to_string();
    let s = |v: &str| v.into_pyobject(py).map(|o| o.into_any());
    fn attrs<'py>(
        k: &'static str,
        v: Result<Bound<'py, PyAny>, std::convert::Infallible>,
    ) -> Vec<(&'static str, Bound<'py, PyAny>)> {
        match v {
            Ok(v) => vec![(k, v)],
            Err(never) => match never {},
        }
    }
    match &e {
        Error::InvalidName { reason, .. } => shm_error(
            py,
            "InvalidName",
            &name,
            message,
            None,
            &attrs("reason", s(reason)),
        ),
        Error::AlreadyExists { .. } => shm_error(
            py,
            "AlreadyExists",
            &name,
            message,
            Some(libc_errno::EEXIST),
            &[],
        ),
        Error::NotFound { .. } => shm_error(
            py,
            "NotFound",
            &name,
            message,
            Some(libc_errno::ENOENT),
            &[],
        ),
        Error::PermissionDenied { reason, .. } => shm_error(
            py,
            "PermissionDenied",
            &name,
            message,
            Some(libc_errno::EACCES),
            &attrs("reason", s(reason)),
        ),
        Error::LayoutMismatch { detail, .. } => shm_error(
            py,
            "LayoutMismatch",
            &name,
            message,
            None,
            &attrs("detail", s(detail)),
        ),
        Error::Corrupt { reason, .. } => shm_error(
            py,
            "Corrupt",
            &name,
            message,
            None,
            &attrs("reason", s(reason)),
        ),
        Error::NoSpace { bytes, .. } => shm_error(
            py,
            "NoSpace",
            &name,
            message,
            Some(libc_errno::ENOSPC),
            &attrs("nbytes", bytes.into_pyobject(py).map(|o| o.into_any())),
        ),
        Error::CreatorDied { pid, .. } => shm_error(
            py,
            "CreatorDied",
            &name,
            message,
            None,
            &attrs("pid", pid.into_pyobject(py).map(|o| o.into_any())),
        ),
        Error::Timeout { waited, .. } => shm_error(
            py,
            "Timeout",
            &name,
            message,
            Some(libc_errno::ETIMEDOUT),
            &attrs(
                "waited",
                waited.as_secs_f64().into_pyobject(py).map(|o| o.into_any()),
            ),
        ),
        Error::Io { op, source, .. } => shm_error(
            py,
            "Io",
            &name,
            message,
            source.raw_os_error(),
            &attrs("op", s(op)),
        ),
        _ => PyRuntimeError::new_err(message),
    }
}

/// `Timeout` for a wait on the lock of segment `name` that ran out after `waited`: `what` was
/// not done, and the message and `.pid` say who held the lock when the wait ended.
pub fn lock_timeout(
    py: Python<'_>,
    name: &str,
    what: &str,
    waited: Duration,
    holder: Option<LockHolder>,
) -> PyErr {
    let mut message = format!(
        "segment `{name}`: {what} within {:.3} s",
        waited.as_secs_f64()
    );
    let who = |h: &LockHolder| {
        if h.tid == h.pid {
            format!("pid {}", h.pid)
        } else {
            format!("pid {} (thread {})", h.pid, h.tid)
        }
    };
    match &holder {
        // Shared across pid namespaces (or not in /proc): its ids may be another namespace's.
        Some(h) if !h.checked => {
            message += &format!(
                ": thread {} holds it, and whether it lives cannot be told (the segment is shared across pid namespaces, or /proc does not show it)",
                h.tid
            )
        }
        Some(h) if h.alive => message += &format!(": {} holds it and is alive", who(h)),
        // A dead holder's lock goes to the next locker: seen only in the moment between.
        Some(h) => message += &format!(": {} held it and has died", who(h)),
        None => {}
    }
    let pid = holder.filter(|h| h.alive && h.checked).map(|h| h.pid);
    let Ok(w) = waited.as_secs_f64().into_pyobject(py);
    let Ok(p) = pid.into_pyobject(py);
    let attrs = [("waited", w.into_any()), ("pid", p.into_any())];
    shm_error(
        py,
        "Timeout",
        name,
        message,
        Some(libc_errno::ETIMEDOUT),
        &attrs,
    )
}

/// `ReadOnlyError`: the handle of segment `name` is attached read only, and `what` would write
/// to it.
pub fn read_only(py: Python<'_>, name: &str, what: &str) -> PyErr {
    let message = format!(
        "segment `{name}` is attached read-only: {what} would write to it (open it read-write to write)"
    );
    shm_error(py, "ReadOnlyError", name, message, None, &[])
}

/// The exception for a field that could not be read or written.
pub fn field_to_py(py: Python<'_>, e: FieldError) -> PyErr {
    let message = e.to_string();
    match e {
        FieldError::Corrupt { segment, reason } => {
            let r = reason.into_pyobject(py).map(|o| o.into_any());
            let r = match r {
                Ok(r) => r,
                Err(never) => match never {},
            };
            shm_error(py, "Corrupt", &segment, message, None, &[("reason", r)])
        }
        FieldError::NoSuchField { .. } => pyo3::exceptions::PyKeyError::new_err(message),
        FieldError::ReadOnly { segment } => {
            shm_error(py, "ReadOnlyError", &segment, message, None, &[])
        }
        _ => pyo3::exceptions::PyValueError::new_err(message),
    }
}

/// The error numbers the exceptions carry (Linux's).
mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const ENOSPC: i32 = 28;
    pub const ETIMEDOUT: i32 = 110;
}

/// Runs `f`, turning a Rust error into its Python exception.
pub trait OrRaise<T> {
    /// The value, or the Python exception for the error.
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, Error> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
