//! `wait_until()` for Python: the Rust wait runs with the GIL released, and the predicate is
//! called with it held — at once, after every change, and at least every 100 ms (the bounded
//! re-check), which is also when a pending signal (Ctrl-C's `KeyboardInterrupt`) is raised.

use pyo3::prelude::*;

/// The Python side of one wait: the predicate, and what ended the wait.
pub struct Check {
    pred: Py<PyAny>,
    /// The snapshot the predicate held for, as Python got it.
    seen: Option<Py<PyAny>>,
    /// The exception the predicate (or a signal handler) raised: it ends the wait.
    failed: Option<PyErr>,
}

impl Check {
    pub fn new(pred: Py<PyAny>) -> Check {
        Check {
            pred,
            seen: None,
            failed: None,
        }
    }

    /// Called by the Rust wait, without the GIL, for each snapshot: takes the GIL, raises a
    /// pending signal, makes the snapshot's Python value with `make` and calls the predicate on
    /// it. True ends the wait: the predicate held, or something raised.
    pub fn test(
        &mut self,
        make: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
    ) -> bool {
        Python::attach(|py| {
            let held = py.check_signals().and_then(|()| {
                let v = make(py)?;
                let ok = self.pred.bind(py).call1((&v,))?.is_truthy()?;
                Ok(ok.then(|| v.unbind()))
            });
            match held {
                Ok(Some(v)) => {
                    self.seen = Some(v);
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    self.failed = Some(e);
                    true
                }
            }
        })
    }

    /// What the wait gives Python: the snapshot, `None` after the timeout, or the exception.
    pub fn finish(self, py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.seen.map(|v| v.into_bound(py))),
        }
    }
}
