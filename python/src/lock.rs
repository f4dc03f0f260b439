//! `Lock`: the segment's lock as Python holds it (``get_lock()``), re-entrant within a thread as
//! ``multiprocessing``'s is.

use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors;
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
    pub fn guard(&self) -> &dyn std::any::Any {
        self.guard.as_any()
    }

    /// Poisons the lock the guard holds: what was done under it failed (an exception).
    pub fn poison(&self) {
        self.guard.poison();
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
        // Else leaked: the lock word names the thread that took it, which alone releases it.
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

/// Who holds a handle's lock through Python, shared by every `Lock` object of the handle
/// (``get_lock()`` and ``get_lock(timeout=...)`` are the same lock).
pub struct LockState {
    pub owner: Option<ThreadId>,
    pub depth: usize,
    pub held: Option<Held>,
    pub poisoned: bool,
    /// The thread running a call that holds the lock (``update()``, ``clear_poison()``) and
    /// calls back into Python: from there, the lock cannot be taken or released again.
    pub in_call: Option<ThreadId>,
}

impl LockState {
    /// `RuntimeError` if this thread is inside a call that holds the lock of segment `name`:
    /// taking it again would wait for itself (Rust's `lock()` panics there).
    pub fn refuse_inside_call(&self, name: &str) -> PyResult<()> {
        if self.in_call == Some(std::thread::current().id()) {
            return Err(PyRuntimeError::new_err(format!(
                "segment `{name}`: this thread is inside update() of this segment, which holds its lock: the lock cannot be taken or released from there"
            )));
        }
        Ok(())
    }
}

/// A timeout in seconds as Python gives it: `None` waits as long as it takes; negative or NaN
/// is a `ValueError`.
pub fn check_timeout(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(format!(
            "timeout must be None or a number of seconds >= 0, not {t}"
        ))),
        // Too long to represent: as long as it takes.
        Some(t) => Ok(Duration::try_from_secs_f64(t).ok()),
    }
}

/// The instant a wait of `timeout` from now ends; `None`: it does not.
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// The segment's lock (``get_lock()``): the lock word in the segment's header (it names the
/// thread holding it; a dead holder is found and its lock taken over) that
/// Rust's ``lock()`` and every ``update()`` take. ``with seg.get_lock(): ...``.
///
/// Re-entrant within a thread, as ``multiprocessing``'s lock is (``update()`` inside it works).
///
/// Waiting: ``with`` waits as long as it takes for ``get_lock()``, and at most ``timeout``
/// seconds for ``get_lock(timeout=...)``, then raises ``Timeout`` naming the segment and the pid
/// holding the lock. ``acquire()`` keeps ``multiprocessing``'s contract: it returns False when
/// the lock stayed held (``blocking=False``, or after ``timeout`` seconds; without a
/// ``timeout``, that of ``get_lock(timeout=...)``; a negative one waits as long as it takes).
///
/// Poisoning (see the package documentation, "Poisoning: who is told what"): ``poisoned`` is
/// True when the segment was poisoned as this thread acquired the lock: a previous holder died
/// holding it, or failed (an exception) while holding it, and what it may have half-changed was
/// not repaired. It stays so for every locker until ``clear_poison()``. An exception that leaves
/// a ``with`` block of the lock poisons the segment, as a panic with Rust's lock guard alive
/// does: the stores made under the lock are not journaled, so nothing can undo them.
#[pyclass(frozen, module = "shm_core", name = "Lock")]
pub struct Lock {
    pub slot: Arc<Slot>,
    pub state: Arc<Mutex<LockState>>,
    /// How long ``with`` (and ``acquire()`` without a timeout) waits; `None`: as long as it
    /// takes.
    timeout: Option<Duration>,
}

impl Lock {
    pub fn new(slot: Arc<Slot>) -> Lock {
        Lock {
            slot,
            state: Arc::new(Mutex::new(LockState {
                owner: None,
                depth: 0,
                held: None,
                poisoned: false,
                in_call: None,
            })),
            timeout: None,
        }
    }

    /// The same lock, whose ``with`` waits at most `timeout`.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Lock {
        Lock {
            slot: self.slot.clone(),
            state: self.state.clone(),
            timeout,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, LockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn held_here(&self) -> bool {
        self.state().owner == Some(std::thread::current().id())
    }

    /// Takes the lock for this thread (re-entrant), waiting until `deadline` (`None`: as long
    /// as it takes) or only trying (`blocking` false); false if it stayed held.
    fn take(&self, py: Python<'_>, blocking: bool, deadline: Option<Instant>) -> PyResult<bool> {
        let me = std::thread::current().id();
        {
            let mut st = self.state();
            st.refuse_inside_call(&self.slot.name)?;
            if st.owner == Some(me) {
                st.depth += 1;
                return Ok(true);
            }
        }
        let handle = self.slot.handle()?;
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
}

#[pymethods]
impl Lock {
    /// Takes the lock; returns False if it stayed held: at once with ``blocking=False``, after
    /// ``timeout`` seconds otherwise (default: this lock's ``timeout``; negative: no limit).
    /// Returns True once held. A blocked acquire can be interrupted with Ctrl-C.
    #[pyo3(signature = (blocking = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: Option<f64>) -> PyResult<bool> {
        let wait = match timeout {
            None => self.timeout,
            // Negative (or NaN): as long as it takes, as `multiprocessing`'s.
            Some(t) if t.is_nan() || t < 0.0 => None,
            Some(t) => Duration::try_from_secs_f64(t).ok(),
        };
        self.take(py, blocking, deadline(wait))
    }

    /// Releases the lock (once per acquire); ``RuntimeError`` if this thread does not hold it.
    fn release(&self) -> PyResult<()> {
        let held = {
            let mut st = self.state();
            st.refuse_inside_call(&self.slot.name)?;
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

    /// Whether this thread holds the lock (through this handle).
    fn held(&self) -> bool {
        self.held_here()
    }

    /// Whether the segment was poisoned when this thread acquired the lock (see the class doc).
    #[getter]
    fn poisoned(&self) -> bool {
        self.state().poisoned
    }

    /// How long ``with`` (and ``acquire()`` without a timeout) waits, in seconds; None: as long
    /// as it takes.
    #[getter]
    fn timeout(&self) -> Option<f64> {
        self.timeout.map(|t| t.as_secs_f64())
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let me = slf.get();
        // No clock read unless there is a deadline: the uncontended path stays short.
        let start = me.timeout.map(|_| Instant::now());
        if !me.take(slf.py(), true, deadline(me.timeout))? {
            let holder = me.slot.handle()?.lock_holder();
            return Err(errors::lock_timeout(
                slf.py(),
                &me.slot.name,
                "its lock was not released",
                start.map_or(Duration::ZERO, |s| s.elapsed()),
                holder,
            ));
        }
        Ok(slf)
    }

    #[pyo3(signature = (exc_type, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if exc_type.is_some_and(|t| !t.is_none()) {
            // Failed holding the lock: its stores are not journaled and may be half done.
            let st = self.state();
            if st.owner == Some(std::thread::current().id()) {
                if let Some(held) = &st.held {
                    held.poison();
                }
            }
        }
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
