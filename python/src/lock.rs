//! `Lock`: the segment's lock as Python holds it (``get_lock()``), re-entrant within a thread as
//! ``multiprocessing``'s is.

use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::handle::{AnyGuard, Kind};
use crate::segment::Slot;

/// A guard held across Python calls, with the handle it borrows from.
pub struct Held {
    guard: ManuallyDrop<AnyGuard>,
    handle: Arc<Kind>,
    thread: ThreadId,
}

// SAFETY: the guard is only dropped on the thread that took it (see `Drop`); on any other thread
// it is leaked, never touched. Everything else in `Held` is `Send`.
unsafe impl Send for Held {}

impl Held {
    /// The guard, to downcast to the handle's guard type.
    pub fn guard(&self) -> &AnyGuard {
        &self.guard
    }

    /// The handle the guard belongs to.
    pub fn handle(&self) -> &Arc<Kind> {
        &self.handle
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if std::thread::current().id() == self.thread {
            // SAFETY: dropped once, here, before `handle` (a field, dropped after this body)
            // releases the handle the guard borrows from.
            unsafe { ManuallyDrop::drop(&mut self.guard) };
        }
        // Else leaked: a pthread mutex is released only by the thread that took it.
    }
}

/// A `Send` wrapper for a guard taken on this thread inside `Python::detach`, which runs its
/// closure on the calling thread.
struct OnThisThread<T>(T);
// SAFETY: only moved out of `detach`'s closure back to the same thread that created it.
unsafe impl<T> Send for OnThisThread<T> {}

/// Takes the lock of `handle`: waits (with the GIL released, in slices so that Ctrl-C is seen)
/// until `deadline` (`None`: forever), or only tries (`blocking` false). The held guard and
/// whether the lock was poisoned, or `None` if it stayed held.
pub fn acquire(
    py: Python<'_>,
    handle: Arc<Kind>,
    blocking: bool,
    deadline: Option<Instant>,
) -> PyResult<Option<(Held, bool)>> {
    // SAFETY: the reference lives as long as `handle`, which `Held` keeps alive for as long as
    // the guard made from it.
    let h: &'static Kind = unsafe { &*Arc::as_ptr(&handle) };
    // First a try, which never blocks: no need to release the GIL for it.
    let mut got = h.try_lock(None);
    loop {
        if let Some((guard, poisoned)) = got.take() {
            let held = Held {
                guard: ManuallyDrop::new(guard),
                handle,
                thread: std::thread::current().id(),
            };
            return Ok(Some((held, poisoned)));
        }
        if !blocking || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        py.check_signals()?;
        let wait = if !blocking {
            None
        } else {
            let slice = Duration::from_millis(100);
            Some(match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(slice),
                None => slice,
            })
        };
        got = py.detach(|| OnThisThread(h.try_lock(wait))).0;
    }
}

pub struct LockState {
    pub owner: Option<ThreadId>,
    pub depth: usize,
    pub held: Option<Held>,
    pub poisoned: bool,
}

/// The segment's lock (``get_lock()``): the robust, process-shared lock in the segment that
/// Rust's ``lock()`` and every ``update()`` take. ``with seg.get_lock(): ...``.
///
/// Re-entrant within a thread, as ``multiprocessing``'s lock is (``update()`` inside it works).
/// ``poisoned`` says whether the last acquire found that the previous holder died holding it,
/// or that a writer died or failed mid-update: the fields may be half-changed.
#[pyclass(frozen, module = "shm_core", name = "Lock")]
pub struct Lock {
    pub slot: Arc<Slot>,
    pub state: Mutex<LockState>,
}

impl Lock {
    pub fn new(slot: Arc<Slot>) -> Lock {
        Lock {
            slot,
            state: Mutex::new(LockState {
                owner: None,
                depth: 0,
                held: None,
                poisoned: false,
            }),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, LockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn held_here(&self) -> bool {
        self.state().owner == Some(std::thread::current().id())
    }
}

#[pymethods]
impl Lock {
    /// Takes the lock; with ``blocking=False``, or a ``timeout`` in seconds, returns False if it
    /// stayed held. Returns True once held. A blocked acquire can be interrupted with Ctrl-C.
    #[pyo3(signature = (blocking = true, timeout = -1.0))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<bool> {
        let me = std::thread::current().id();
        {
            let mut st = self.state();
            if st.owner == Some(me) {
                st.depth += 1;
                return Ok(true);
            }
        }
        let handle = self.slot.handle()?;
        let deadline = match timeout {
            Some(t) if t >= 0.0 && blocking => {
                Some(Instant::now() + Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX / 4))
            }
            _ => None,
        };
        let Some((held, poisoned)) = acquire(py, handle, blocking, deadline)? else {
            return Ok(false);
        };
        let mut st = self.state();
        st.owner = Some(me);
        st.depth = 1;
        st.held = Some(held);
        st.poisoned = poisoned;
        Ok(true)
    }

    /// Releases the lock (once per acquire); ``RuntimeError`` if this thread does not hold it.
    fn release(&self) -> PyResult<()> {
        let held = {
            let mut st = self.state();
            if st.owner != Some(std::thread::current().id()) {
                return Err(PyRuntimeError::new_err(format!(
                    "segment `{}`: release of a lock this thread does not hold",
                    self.slot.name
                )));
            }
            st.depth -= 1;
            if st.depth > 0 {
                return Ok(());
            }
            st.owner = None;
            st.held.take()
        };
        drop(held);
        Ok(())
    }

    /// Whether this thread holds the lock (through this object).
    fn held(&self) -> bool {
        self.held_here()
    }

    /// Whether the last acquire found the lock poisoned (see the class doc).
    #[getter]
    fn poisoned(&self) -> bool {
        self.state().poisoned
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().acquire(slf.py(), true, None)?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.release()
    }

    fn __repr__(&self) -> String {
        let state = if self.state().owner.is_some() {
            "held"
        } else {
            "free here"
        };
        format!("<shm_core.Lock of {:?}: {state}>", self.slot.name)
    }
}
