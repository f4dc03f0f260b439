//! `SegmentBase`: what the Python classes `Segment`, `Value` and `Array` are built on. One
//! object per open handle; every method calls shm-core.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyBufferError, PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PySlice, PyTuple};
use shm_core::inspect::{Datum, RawSegment};
use shm_core::{
    Array, Descriptor, DescriptorKind, Guard, Options, ReadOnly, ReadOnlyArray, TypeCode, Value,
};

use crate::convert::{self, datum_to_py, Prim};
use crate::descriptor::{type_code, PyDescriptor};
use crate::errors::{self, OrRaise};
use crate::handle::{AnyArray, AnyRoArray, AnyRoValue, AnyValue, Kind, ReadRange};
use crate::lock::{acquire, check_timeout, deadline, Held, Lock};
use crate::wait::Check;
use crate::{each, with_prim};

/// What a `Timeout` of `update()` says was not done.
const UPDATE_TIMED_OUT: &str = "update(): its lock was not released";

/// Primitives to store: payload offset and value.
type Stores = Vec<(u64, Datum)>;

/// What a Python object knows of its segment, and the handle until it is closed.
pub struct Slot {
    pub name: String,
    handle: RwLock<Option<Arc<Kind>>>,
    /// The layout of one element, as validated.
    pub element: Descriptor,
    pub count: usize,
    pub is_array: bool,
    pub is_owner: bool,
    pub keep: bool,
    /// The most access this handle accepts (its open mode), for pickling.
    pub mode: u32,
    /// Created or opened as `'c'`: elements read and written as one-byte `bytes`.
    pub as_bytes: bool,
    /// Attached read only: every write is refused with `ReadOnlyError`.
    pub readonly: bool,
}

impl Slot {
    /// The handle, or `ValueError` if closed.
    pub fn handle(&self) -> PyResult<Arc<Kind>> {
        let h = self.handle.read().unwrap_or_else(|p| p.into_inner());
        h.clone()
            .ok_or_else(|| PyValueError::new_err(format!("segment `{}` is closed", self.name)))
    }
}

/// A new handle, not yet in a Python object: what the factory functions return.
#[pyclass(module = "shm_core._native", name = "Handle")]
pub struct PyHandle {
    slot: Mutex<Option<Slot>>,
}

#[pymethods]
impl PyHandle {
    /// `"array"`, `"value"` (a single primitive) or `"any"`: which Python class it becomes.
    #[getter]
    fn shape(&self) -> &'static str {
        match self.slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(s) if s.is_array => "array",
            Some(s) if matches!(s.element.kind, DescriptorKind::Primitive(_)) => "value",
            _ => "any",
        }
    }
}

fn options(mode: u32, keep: bool, wait: Option<f64>) -> PyResult<Options> {
    let mut o = Options::new().mode(mode).keep(keep);
    if let Some(w) = wait {
        let w = Duration::try_from_secs_f64(w.max(0.0))
            .map_err(|_| PyValueError::new_err("wait must be a number of seconds"))?;
        o = o.wait(w);
    }
    Ok(o)
}

#[allow(clippy::too_many_arguments)] // one call per way a handle is made, each naming all
fn new_handle(
    kind: Kind,
    name: &str,
    element: Descriptor,
    count: usize,
    is_array: bool,
    owner: bool,
    keep: bool,
    mode: u32,
    as_bytes: bool,
    readonly: bool,
) -> PyHandle {
    PyHandle {
        slot: Mutex::new(Some(Slot {
            name: name.to_owned(),
            handle: RwLock::new(Some(Arc::new(kind))),
            element,
            count,
            is_array,
            is_owner: owner,
            keep,
            mode,
            as_bytes,
            readonly,
        })),
    }
}

/// When a create fails because the name is taken by a segment whose creator died, say so.
fn explain_exists(py: Python<'_>, e: shm_core::Error) -> PyErr {
    if let shm_core::Error::AlreadyExists { name } = &e {
        if let Ok(entry) = shm_core::inspect::examine(name) {
            if let Some(stale) = entry.stale() {
                let msg = format!(
                    "segment `{name}` already exists, left by a creator that is dead (pid {}): remove it with shm_core.remove({name:?}) (shm_core.stale() lists such segments)",
                    stale.creator_pid
                );
                let pid = stale.creator_pid.into_pyobject(py).map(|p| p.into_any());
                let attrs: Vec<(&str, Bound<'_, PyAny>)> =
                    pid.map(|p| vec![("creator_pid", p)]).unwrap_or_default();
                return errors::shm_error(py, "AlreadyExists", name, msg, Some(17), &attrs);
            }
        }
    }
    errors::to_py(py, e)
}

fn typed_value<T: Prim>(
    py: Python<'_>,
    name: &str,
    init: Option<&Bound<'_, PyAny>>,
    o: &Options,
) -> PyResult<Value<T>> {
    let v = match init {
        Some(x) if !x.is_none() => T::from_py(x, "value")?,
        _ => T::load(&shm_core::__private::zeroed_twin::<T>(), Ordering::Relaxed),
    };
    py.detach(|| Value::<T>::create_with(name, v, o))
        .map_err(|e| explain_exists(py, e))
}

fn typed_array<T: Prim>(
    py: Python<'_>,
    name: &str,
    init: &Bound<'_, PyAny>,
    o: &Options,
) -> PyResult<Array<T>> {
    if let Ok(n) = init.extract::<i64>() {
        if init.is_instance_of::<pyo3::types::PyInt>() {
            let n = usize::try_from(n)
                .map_err(|_| PyValueError::new_err("an array cannot have a negative length"))?;
            return py
                .detach(|| Array::<T>::create_zeroed_with(name, n, o))
                .map_err(|e| explain_exists(py, e));
        }
    }
    let values = init
        .try_iter()
        .map_err(|_| PyTypeError::new_err("Array takes a length or a sequence of initial values"))?
        .enumerate()
        .map(|(i, x)| T::from_py(&x?, &format!("[{i}]")))
        .collect::<PyResult<Vec<T>>>()?;
    py.detach(|| Array::<T>::create_with(name, &values, o))
        .map_err(|e| explain_exists(py, e))
}

/// Creates `Value(typecode, value)` under `name`.
#[pyfunction]
#[pyo3(signature = (typecode, value, name, mode, keep))]
pub fn create_value(
    py: Python<'_>,
    typecode: &str,
    value: Option<Bound<'_, PyAny>>,
    name: &str,
    mode: u32,
    keep: bool,
) -> PyResult<PyHandle> {
    let code = type_code(typecode)?;
    let o = options(mode, keep, None)?;
    let kind = with_prim!(code, T => {
        let v = typed_value::<T>(py, name, value.as_ref(), &o)?;
        Kind::Value(T::wrap_value(v))
    });
    Ok(new_handle(
        kind,
        name,
        Descriptor::primitive(code),
        1,
        false,
        true,
        keep,
        mode,
        typecode == "c",
        false,
    ))
}

/// Creates `Array(typecode, size_or_initializer)` under `name`.
#[pyfunction]
pub fn create_array(
    py: Python<'_>,
    typecode: &str,
    init: Bound<'_, PyAny>,
    name: &str,
    mode: u32,
    keep: bool,
) -> PyResult<PyHandle> {
    let code = type_code(typecode)?;
    let o = options(mode, keep, None)?;
    let (kind, count) = with_prim!(code, T => {
        let a = typed_array::<T>(py, name, &init, &o)?;
        let n = a.len();
        (Kind::Array(T::wrap_array(a)), n)
    });
    Ok(new_handle(
        kind,
        name,
        Descriptor::primitive(code),
        count,
        true,
        true,
        keep,
        mode,
        typecode == "c",
        false,
    ))
}

/// Creates a segment of any layout: one `descriptor` (`count` None) or an array of `count`.
#[pyfunction]
#[pyo3(signature = (name, descriptor, init, count, mode, keep))]
pub fn create_raw(
    py: Python<'_>,
    name: &str,
    descriptor: &PyDescriptor,
    init: Option<Bound<'_, PyAny>>,
    count: Option<usize>,
    mode: u32,
    keep: bool,
) -> PyResult<PyHandle> {
    let element = descriptor.inner.clone();
    let o = options(mode, keep, None)?;
    let mut stores = Vec::new();
    if let Some(init) = init.filter(|i| !i.is_none()) {
        let root = match count {
            Some(n) => Descriptor::array(element.clone(), n as u64)
                .ok_or_else(|| PyValueError::new_err("the array is too large"))?,
            None => element.clone(),
        };
        convert::plan_assign(&root, 0, &init, "", &mut stores)?;
    }
    // Primitives go to `create_value` and `create_array`, which give typed handles.
    if let DescriptorKind::Primitive(_) = element.kind {
        return Err(PyTypeError::new_err(
            "create_raw is for layouts other than a primitive",
        ));
    }
    let raw = py
        .detach(|| RawSegment::create(name, &element, count, &stores, &o))
        .map_err(|e| explain_exists(py, e))?;
    let n = raw.len();
    Ok(new_handle(
        Kind::Raw(raw),
        name,
        element,
        n,
        count.is_some(),
        true,
        keep,
        mode,
        false,
        false,
    ))
}

/// Opens `name`: `shape` is "value" (a single primitive), "array" (an array) or "any";
/// `expect`, the element's layout if given. Primitives get typed handles. `readonly`: the
/// object is opened `O_RDONLY` and mapped `PROT_READ` (read permission suffices), and the
/// handle refuses every write.
#[pyfunction]
#[pyo3(signature = (name, expect, shape, mode, wait, as_bytes, readonly = false))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, passed through
pub fn open_segment(
    py: Python<'_>,
    name: &str,
    expect: Option<PyRef<'_, PyDescriptor>>,
    shape: &str,
    mode: u32,
    wait: Option<f64>,
    as_bytes: bool,
    readonly: bool,
) -> PyResult<PyHandle> {
    let o = options(mode, false, wait)?;
    // A typed open (`Value.open(name, "q")`, `Array.open(name, desc)`): Rust's typed open, its
    // checks in its order. (Read only: the checks below, then a typed read-only open.)
    if let (Some(want), "value" | "array", false) = (&expect, shape, readonly) {
        let is_array = shape == "array";
        let want = want.inner.clone();
        let kind = match want.kind {
            DescriptorKind::Primitive(code) => with_prim!(code, T => if is_array {
                Kind::Array(T::wrap_array(py.detach(|| Array::<T>::open_with(name, &o)).or_raise(py)?))
            } else {
                Kind::Value(T::wrap_value(py.detach(|| Value::<T>::open_with(name, &o)).or_raise(py)?))
            }),
            _ => Kind::Raw(
                py.detach(|| RawSegment::open_as(name, &want, is_array, &o))
                    .or_raise(py)?,
            ),
        };
        let count = match &kind {
            Kind::Array(a) => each!(a, AnyArray, x => x.len()),
            Kind::Raw(r) => r.len(),
            _ => 1,
        };
        return Ok(new_handle(
            kind, name, want, count, is_array, false, true, mode, as_bytes, false,
        ));
    }
    let raw = if readonly {
        py.detach(|| RawSegment::open_readonly_with(name, &o))
    } else {
        py.detach(|| RawSegment::open_with(name, &o))
    }
    .or_raise(py)?;
    let found = raw.descriptor().clone();
    let is_array = raw.is_array();
    let mismatch = |detail: String| {
        errors::to_py(
            py,
            shm_core::Error::LayoutMismatch {
                name: name.to_owned(),
                detail,
            },
        )
    };
    if let Some(want) = &expect {
        if let Some(detail) = found.first_difference(&want.inner) {
            return Err(mismatch(detail));
        }
    }
    match (shape, is_array) {
        ("value", true) => {
            return Err(mismatch(format!(
                "the segment holds an array of {} {found}, this program expects a single primitive",
                raw.len()
            )))
        }
        ("value", false) if !matches!(found.kind, DescriptorKind::Primitive(_)) => {
            return Err(mismatch(format!(
                "the segment holds a single {found}, this program expects a single primitive"
            )))
        }
        ("array", false) => {
            return Err(mismatch(format!(
                "the segment holds a single {found}, this program expects an array"
            )))
        }
        _ => {}
    }
    let count = raw.len();
    let kind = match found.kind {
        DescriptorKind::Primitive(code) => {
            drop(raw);
            // The same checks again, typed: the segment may have been replaced meanwhile, and
            // the typed open is the one that decides.
            with_prim!(code, T => match (is_array, readonly) {
                (true, false) => Kind::Array(T::wrap_array(py.detach(|| Array::<T>::open_with(name, &o)).or_raise(py)?)),
                (false, false) => Kind::Value(T::wrap_value(py.detach(|| Value::<T>::open_with(name, &o)).or_raise(py)?)),
                (true, true) => Kind::RoArray(T::wrap_ro_array(py.detach(|| Array::<T>::open_readonly_with(name, &o)).or_raise(py)?)),
                (false, true) => Kind::RoValue(T::wrap_ro_value(py.detach(|| Value::<T>::open_readonly_with(name, &o)).or_raise(py)?)),
            })
        }
        _ => Kind::Raw(raw),
    };
    let count = match &kind {
        Kind::Array(a) => each!(a, AnyArray, x => x.len()),
        Kind::RoArray(a) => each!(a, AnyRoArray, x => x.len()),
        _ => count,
    };
    Ok(new_handle(
        kind, name, found, count, is_array, false, true, mode, as_bytes, readonly,
    ))
}

/// Wraps typed handles into the enums.
pub trait Wrap: Prim + ReadRange + Sized {
    fn wrap_value(v: Value<Self>) -> AnyValue;
    fn wrap_array(a: Array<Self>) -> AnyArray;
    fn wrap_ro_value(v: ReadOnly<Self>) -> AnyRoValue;
    fn wrap_ro_array(a: ReadOnlyArray<Self>) -> AnyRoArray;
}

macro_rules! wrap {
    ($($ty:ty => $v:ident),*) => {$(
        impl Wrap for $ty {
            fn wrap_value(v: Value<Self>) -> AnyValue { AnyValue::$v(v) }
            fn wrap_array(a: Array<Self>) -> AnyArray { AnyArray::$v(a) }
            fn wrap_ro_value(v: ReadOnly<Self>) -> AnyRoValue { AnyRoValue::$v(v) }
            fn wrap_ro_array(a: ReadOnlyArray<Self>) -> AnyRoArray { AnyRoArray::$v(a) }
        }
    )*};
}
wrap!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64, bool => Bool, char => Char);

/// Removes the segment `name`.
#[pyfunction]
pub fn remove(py: Python<'_>, name: &str) -> PyResult<()> {
    shm_core::remove(name).or_raise(py)
}

/// Segments whose creator died without removing them: `(name, creator_pid, ready)` each.
#[pyfunction]
pub fn stale(py: Python<'_>) -> PyResult<Vec<(String, u32, bool)>> {
    let list = py
        .detach(shm_core::inspect::stale)
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    Ok(list
        .into_iter()
        .map(|s| (s.name, s.creator_pid, s.ready))
        .collect())
}

/// The fingerprint of encoded descriptor bytes.
#[pyfunction]
pub fn fingerprint(data: &[u8]) -> u64 {
    Descriptor::fingerprint_of(data)
}

/// A segment attached by name: the base of `shm_core.Segment`, `Value` and `Array`.
#[pyclass(subclass, frozen, module = "shm_core._native", name = "SegmentBase")]
pub struct SegmentBase {
    slot: Arc<Slot>,
    lock: PyOnceLock<Py<Lock>>,
    /// Buffers exported (memoryviews alive): the mapping must stay while any is.
    exports: AtomicUsize,
}

/// One byte as `bytes`, for `'c'` handles.
fn byte<'py>(py: Python<'py>, v: u8) -> Bound<'py, PyAny> {
    PyBytes::new(py, &[v]).into_any()
}

/// A primitive as Python gets it: one-byte `bytes` for a `'c'` handle (`as_bytes`).
fn out<T: Prim>(py: Python<'_>, x: T, as_bytes: bool) -> PyResult<Bound<'_, PyAny>> {
    if as_bytes {
        if let Datum::U8(b) = x.to_datum() {
            return Ok(byte(py, b));
        }
    }
    x.to_py(py)
}

/// Elements as Python gets them: a list, or `bytes` for a `'c'` handle (`as_bytes`).
fn list_out<T: Prim>(py: Python<'_>, xs: Vec<T>, as_bytes: bool) -> PyResult<Bound<'_, PyAny>> {
    if as_bytes {
        let bytes: Vec<u8> = xs
            .iter()
            .filter_map(|x| match x.to_datum() {
                Datum::U8(b) => Some(b),
                _ => None,
            })
            .collect();
        return Ok(PyBytes::new(py, &bytes).into_any());
    }
    let items = xs
        .into_iter()
        .map(|x| x.to_py(py))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any())
}

impl SegmentBase {
    /// `ReadOnlyError` naming the segment if the handle is attached read only: `what` would
    /// write to it.
    fn refuse_write(&self, py: Python<'_>, what: &str) -> PyResult<()> {
        if self.slot.readonly {
            return Err(errors::read_only(py, &self.slot.name, what));
        }
        Ok(())
    }

    fn lock_obj<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, Lock>> {
        self.lock
            .get_or_try_init(py, || Py::new(py, Lock::new(self.slot.clone())))
            .map(|l| l.bind(py))
    }

    fn holds(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(match self.lock.get(py) {
            Some(l) => l.get().held_here(),
            None => false,
        })
    }

    /// Runs `f` with the lock held: the guard this thread holds through `get_lock()`, or one
    /// taken (GIL released) for the call, waiting at most `timeout` (`None`: as long as it
    /// takes), else `Timeout` saying that `what` was not done and who holds the lock.
    fn with_lock<R>(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
        what: &str,
        f: impl FnOnce(&Held) -> PyResult<R>,
    ) -> PyResult<R> {
        let lock = self.lock_obj(py)?.get();
        let me = std::thread::current().id();
        // `f` may call back into Python, which must not take or release the lock meanwhile:
        // `in_call` says so until this returns.
        struct InCall<'a>(&'a Lock);
        impl Drop for InCall<'_> {
            fn drop(&mut self) {
                self.0.state().in_call = None;
            }
        }
        let run = |held: &Held| {
            lock.state().in_call = Some(me);
            let _in_call = InCall(lock);
            f(held)
        };
        let taken = {
            let mut st = lock.state();
            st.refuse_inside_call(&self.slot.name)?;
            if st.owner == Some(me) {
                st.depth += 1;
                st.held.take()
            } else {
                None
            }
        };
        match taken {
            Some(held) => {
                let r = run(&held);
                let mut st = lock.state();
                st.depth -= 1;
                if st.owner == Some(me) && st.depth > 0 {
                    st.held = Some(held);
                } else {
                    st.owner = None;
                    drop(st);
                    drop(held);
                }
                r
            }
            None => {
                // No clock read unless there is a deadline: the uncontended path stays short.
                let start = timeout.map(|_| Instant::now());
                let handle = self.slot.handle()?;
                match acquire(py, handle.clone(), true, deadline(timeout))? {
                    Some((held, _)) => run(&held),
                    None => Err(errors::lock_timeout(
                        py,
                        &self.slot.name,
                        what,
                        start.map_or(Duration::ZERO, |s| s.elapsed()),
                        handle.lock_holder(),
                    )),
                }
            }
        }
    }

    fn value_get<'py, T: Prim>(
        &self,
        py: Python<'py>,
        v: &Value<T>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x = T::load(v, Ordering::SeqCst);
        self.out(py, x)
    }

    fn out<'py, T: Prim>(&self, py: Python<'py>, x: T) -> PyResult<Bound<'py, PyAny>> {
        out(py, x, self.slot.as_bytes)
    }

    fn list_out<'py, T: Prim>(&self, py: Python<'py>, xs: Vec<T>) -> PyResult<Bound<'py, PyAny>> {
        list_out(py, xs, self.slot.as_bytes)
    }

    fn views<'py>(py: Python<'py>, f: &str) -> PyResult<Bound<'py, PyAny>> {
        static VIEWS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
        VIEWS
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("shm_core._views")?.unbind())
            })?
            .bind(py)
            .getattr(f)
    }

    fn array_get<'py, T: Wrap>(
        &self,
        py: Python<'py>,
        a: &Array<T>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = a.len();
        if let Ok(s) = key.cast::<PySlice>() {
            let ind = s.indices(n as isize)?;
            if ind.step == 1 {
                let (start, stop) = (ind.start as usize, (ind.stop.max(ind.start)) as usize);
                let xs = T::read_range(a, start, stop - start);
                return self.list_out(py, xs);
            }
            let xs: Vec<T> = (0..ind.slicelength)
                .map(|k| {
                    T::load(
                        &a[(ind.start + k as isize * ind.step) as usize],
                        Ordering::Relaxed,
                    )
                })
                .collect();
            return self.list_out(py, xs);
        }
        let i = convert::index(key, n as u64, "array")? as usize;
        self.out(py, T::load(&a[i], Ordering::Relaxed))
    }

    /// `a[key]` of a read-only array: an index or a slice, read consistently (a seqlock read
    /// of the elements it spans).
    fn ro_array_get<'py, T: Wrap>(
        &self,
        py: Python<'py>,
        a: &ReadOnlyArray<T>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = a.len();
        if let Ok(s) = key.cast::<PySlice>() {
            let ind = s.indices(n as isize)?;
            if ind.slicelength == 0 {
                return self.list_out(py, Vec::<T>::new());
            }
            let last = ind.start + (ind.slicelength as isize - 1) * ind.step;
            let (lo, hi) = (ind.start.min(last) as usize, ind.start.max(last) as usize);
            let span = py.detach(|| a.snapshot_range(lo..hi + 1));
            let xs: Vec<T> = (0..ind.slicelength)
                .map(|k| span[(ind.start + k as isize * ind.step) as usize - lo])
                .collect();
            return self.list_out(py, xs);
        }
        let i = convert::index(key, n as u64, "array")? as usize;
        let x = py.detach(|| a.snapshot_range(i..i + 1))[0];
        self.out(py, x)
    }

    fn array_set<T: Wrap>(
        &self,
        a: &Array<T>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let n = a.len();
        if let Ok(s) = key.cast::<PySlice>() {
            let ind = s.indices(n as isize)?;
            let values: Vec<T> = value
                .try_iter()?
                .enumerate()
                .map(|(k, x)| T::from_py(&x?, &format!("[{}]", ind.start + k as isize * ind.step)))
                .collect::<PyResult<_>>()?;
            if values.len() != ind.slicelength {
                return Err(PyValueError::new_err(format!(
                    "`array`: slice of {} elements, {} given",
                    ind.slicelength,
                    values.len()
                )));
            }
            if ind.step == 1 {
                T::store_range(a, ind.start as usize, &values);
            } else {
                for (k, v) in values.iter().enumerate() {
                    T::store(
                        &a[(ind.start + k as isize * ind.step) as usize],
                        v,
                        Ordering::Relaxed,
                    );
                }
            }
            return Ok(());
        }
        let i = convert::index(key, n as u64, "array")? as usize;
        let v = T::from_py(value, &format!("[{i}]"))?;
        T::store(&a[i], &v, Ordering::SeqCst);
        Ok(())
    }

    /// `update` of a typed value: `fn(x) -> new`, or a new value.
    fn value_update<'py, T: Prim>(
        &self,
        py: Python<'py>,
        v: &Value<T>,
        f: &Bound<'py, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let given = if f.is_callable() {
            None
        } else {
            Some(T::from_py(f, "value")?)
        };
        self.with_lock(py, timeout, UPDATE_TIMED_OUT, |held| {
            let guard = held
                .guard()
                .downcast_ref::<Guard<'static, T::Atomic>>()
                .ok_or_else(|| PyRuntimeError::new_err("internal: another guard type"))?;
            if let Some(x) = given {
                v.update_locked(guard, |old| *old = x);
                return self.out(py, x);
            }
            let r = catch_unwind(AssertUnwindSafe(|| {
                v.update_locked(guard, |old| {
                    let arg = match self.out(py, *old) {
                        Ok(a) => a,
                        Err(e) => resume_unwind(Box::new(e)),
                    };
                    match f.call1((arg,)).and_then(|n| T::from_py(&n, "value")) {
                        Ok(n) => {
                            *old = n;
                            n
                        }
                        // Nothing stored; the lock is poisoned for the next locker, as by a
                        // panic in Rust's update.
                        Err(e) => resume_unwind(Box::new(e)),
                    }
                })
            }));
            match r {
                Ok(n) => self.out(py, n),
                Err(p) => Err(reraise(p)),
            }
        })
    }

    /// `update` of a typed array: `fn(list)` changing it in place, a list, or `{index: value}`.
    fn array_update<'py, T: Wrap>(
        &self,
        py: Python<'py>,
        a: &Array<T>,
        f: &Bound<'py, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = a.len();
        // A buffer of the element type (`array.array`, numpy): every element, at memcpy speed.
        if !f.is_callable() && !self.slot.as_bytes {
            if let Some(values) = T::from_buffer(f) {
                if values.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "`the array` has {n} elements; {} given",
                        values.len()
                    )));
                }
                return self.with_lock(py, timeout, UPDATE_TIMED_OUT, |held| {
                    let guard = held
                        .guard()
                        .downcast_ref::<Guard<'static, [T::Atomic]>>()
                        .ok_or_else(|| PyRuntimeError::new_err("internal: another guard type"))?;
                    T::write_all(a, guard, &values);
                    Ok(py.None().into_bound(py))
                });
            }
        }
        let given: Option<Vec<(usize, T)>> = if f.is_callable() {
            None
        } else if let Ok(list) = f.cast::<PyList>() {
            // The common case, without a detour through the generic planner.
            if list.len() != n {
                return Err(PyValueError::new_err(format!(
                    "`the array` has {n} elements; {} given",
                    list.len()
                )));
            }
            Some(
                list.iter()
                    .enumerate()
                    .map(|(i, x)| Ok((i, T::from_py(&x, &format!("[{i}]"))?)))
                    .collect::<PyResult<_>>()?,
            )
        } else {
            let mut stores = Vec::new();
            convert::plan_assign(
                &Descriptor::array(self.slot.element.clone(), n as u64)
                    .unwrap_or(self.slot.element.clone()),
                0,
                f,
                "",
                &mut stores,
            )?;
            let size = T::CODE.size() as u64;
            Some(
                stores
                    .into_iter()
                    .map(|(off, d)| {
                        Ok((
                            (off / size) as usize,
                            T::from_py(&datum_to_py(py, &d)?, "")?,
                        ))
                    })
                    .collect::<PyResult<_>>()?,
            )
        };
        self.with_lock(py, timeout, UPDATE_TIMED_OUT, |held| {
            let guard = held
                .guard()
                .downcast_ref::<Guard<'static, [T::Atomic]>>()
                .ok_or_else(|| PyRuntimeError::new_err("internal: another guard type"))?;
            if let Some(stores) = given {
                a.update_range_locked(guard, .., |xs| {
                    for (i, x) in &stores {
                        xs[*i] = *x;
                    }
                });
                return Ok(py.None().into_bound(py));
            }
            let r = catch_unwind(AssertUnwindSafe(|| {
                a.update_range_locked(guard, .., |xs| {
                    let mut run = || -> PyResult<Py<PyAny>> {
                        let list = self.list_out(py, xs.to_vec())?;
                        let list = if self.slot.as_bytes {
                            PyList::new(py, list.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
                                .into_any()
                        } else {
                            list
                        };
                        let r = f.call1((list.clone(),))?;
                        let list = list
                            .cast::<PyList>()
                            .map_err(|_| PyValueError::new_err("internal: not a list"))?;
                        if list.len() != xs.len() {
                            return Err(PyValueError::new_err(format!(
                                "`the array` must stay a list of {}: {} elements",
                                xs.len(),
                                list.len()
                            )));
                        }
                        let new = list
                            .iter()
                            .enumerate()
                            .map(|(i, x)| T::from_py(&x, &format!("[{i}]")))
                            .collect::<PyResult<Vec<T>>>()?;
                        xs.copy_from_slice(&new);
                        Ok(r.unbind())
                    };
                    match run() {
                        Ok(r) => r,
                        Err(e) => resume_unwind(Box::new(e)),
                    }
                })
            }));
            match r {
                Ok(r) => Ok(r.into_bound(py)),
                Err(p) => Err(reraise(p)),
            }
        })
    }

    fn raw_update<'py>(
        &self,
        py: Python<'py>,
        raw: &RawSegment,
        f: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
        timeout: Option<Duration>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let root = if self.slot.is_array {
            Descriptor::array(self.slot.element.clone(), self.slot.count as u64)
                .ok_or_else(|| PyValueError::new_err("the array is too large"))?
        } else {
            self.slot.element.clone()
        };
        let given = match (f, fields) {
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err(
                    "update() takes a function or a value, or fields, not both",
                ))
            }
            (None, Some(d)) => {
                if !matches!(root.kind, DescriptorKind::Struct { .. }) {
                    return Err(PyTypeError::new_err(format!(
                        "segment `{}` holds {}: it has no named fields",
                        self.slot.name,
                        self.type_name()
                    )));
                }
                let mut stores = Vec::new();
                convert::plan_assign(&root, 0, d.as_any(), "", &mut stores)?;
                Some(stores)
            }
            (Some(v), None) if !v.is_callable() => {
                let mut stores = Vec::new();
                convert::plan_assign(&root, 0, v, "", &mut stores)?;
                Some(stores)
            }
            (None, None) => return Ok(py.None().into_bound(py)),
            _ => None,
        };
        self.with_lock(py, timeout, UPDATE_TIMED_OUT, |held| {
            let guard = held
                .guard()
                .downcast_ref::<Guard<'static, ()>>()
                .ok_or_else(|| PyRuntimeError::new_err("internal: another guard type"))?;
            if let Some(stores) = given {
                raw.write(guard, &stores)
                    .map_err(|e| errors::field_to_py(py, e))?;
                return Ok(py.None().into_bound(py));
            }
            let f = f.expect("a function");
            let run = || -> PyResult<(Stores, Bound<'py, PyAny>)> {
                let old = raw.snapshot().or_raise(py)?;
                let copy = datum_to_py(py, &old)?;
                let r = f.call1((copy.clone(),))?;
                // A single enum or text is immutable in Python: `fn` returns the new value, as
                // for a single primitive.
                let new = if self.single_enum_or_text() {
                    &r
                } else {
                    &copy
                };
                let mut stores = Vec::new();
                convert::plan_changes(&root, 0, &old, new, "", &mut stores)?;
                Ok((stores, r))
            };
            match run() {
                Ok((stores, r)) => {
                    raw.write(guard, &stores)
                        .map_err(|e| errors::field_to_py(py, e))?;
                    Ok(r)
                }
                Err(e) => {
                    // Nothing stored; poisoned, as by a panic in Rust's update closure.
                    held.poison();
                    Err(e)
                }
            }
        })
    }

    /// Whether the segment holds one enum or one text (read and written as one Python value).
    fn single_enum_or_text(&self) -> bool {
        !self.slot.is_array
            && matches!(
                self.slot.element.kind,
                DescriptorKind::Enum { .. } | DescriptorKind::Text { .. }
            )
    }

    fn type_name(&self) -> String {
        if self.slot.is_array {
            format!("[{}; {}]", self.slot.element, self.slot.count)
        } else {
            self.slot.element.to_string()
        }
    }
}

/// The Python exception a callback raised, carried through Rust's update as a panic payload;
/// any other panic as a `RuntimeError`.
fn reraise(p: Box<dyn std::any::Any + Send>) -> PyErr {
    match p.downcast::<PyErr>() {
        Ok(e) => *e,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic in shm-core".to_owned());
            PyRuntimeError::new_err(msg)
        }
    }
}

#[pymethods]
impl SegmentBase {
    #[new]
    fn new(handle: &PyHandle) -> PyResult<SegmentBase> {
        let slot = handle
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyValueError::new_err("this handle was used already"))?;
        Ok(SegmentBase {
            slot: Arc::new(slot),
            lock: PyOnceLock::new(),
            exports: AtomicUsize::new(0),
        })
    }

    /// The segment's name.
    #[getter]
    fn name(&self) -> &str {
        &self.slot.name
    }

    /// The layout of one element.
    #[getter]
    fn descriptor(&self) -> PyDescriptor {
        PyDescriptor::new(self.slot.element.clone())
    }

    /// Number of elements (1 for a single value).
    #[getter]
    fn count(&self) -> usize {
        self.slot.count
    }

    /// Whether the segment holds an array.
    #[getter]
    fn is_array(&self) -> bool {
        self.slot.is_array
    }

    /// Whether this handle created the segment (and removes it when closed, unless kept).
    #[getter]
    fn is_owner(&self) -> bool {
        self.slot.is_owner
    }

    /// Whether the segment outlives its creating handle.
    #[getter]
    fn keep(&self) -> bool {
        self.slot.keep
    }

    /// The most access this handle accepted when it opened the segment.
    #[getter]
    fn mode(&self) -> u32 {
        self.slot.mode
    }

    /// Whether the handle is attached read only (``open(name, readonly=True)``): the operating
    /// system stops every store, and every method that would write raises ``ReadOnlyError``.
    #[getter]
    fn readonly(&self) -> bool {
        self.slot.readonly
    }

    /// What the segment holds, as Rust spells it: ``f64``, ``Stats``, ``[i32; 4]``.
    #[getter]
    fn r#type(&self) -> String {
        self.type_name()
    }

    /// The element's type code (``'c'`` if made or opened as ``'c'``), ``None`` if it is not a
    /// primitive.
    #[getter]
    fn typecode(&self) -> Option<String> {
        match self.slot.element.kind {
            DescriptorKind::Primitive(_) if self.slot.as_bytes => Some("c".to_owned()),
            DescriptorKind::Primitive(c) => Some(c.as_char().to_string()),
            _ => None,
        }
    }

    /// The layout fingerprint.
    #[getter]
    fn fingerprint(&self) -> u64 {
        self.slot.element.fingerprint().unwrap_or(0)
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.slot
            .handle
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// The header's facts: creator and whether it lives, creation time, shape, flags, size (of
    /// the segment's object), footprint (bytes it takes in /dev/shm with its side journal).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let h = self.slot.handle()?;
        let info = match &*h {
            Kind::Value(v) => each!(v, AnyValue, x => x.info()),
            Kind::Array(a) => each!(a, AnyArray, x => x.info()),
            Kind::Raw(r) => r.info(),
            Kind::RoValue(v) => each!(v, AnyRoValue, x => x.info()),
            Kind::RoArray(a) => each!(a, AnyRoArray, x => x.info()),
        }
        .or_raise(py)?;
        let d = PyDict::new(py);
        d.set_item("name", &self.slot.name)?;
        d.set_item("type", self.type_name())?;
        d.set_item("element", self.slot.element.to_string())?;
        d.set_item("count", self.slot.count)?;
        d.set_item("array", self.slot.is_array)?;
        d.set_item("fingerprint", format!("{:#018x}", info.fingerprint))?;
        d.set_item("creator_pid", info.creator_pid)?;
        d.set_item("creator_alive", info.creator_alive)?;
        d.set_item(
            "created_at",
            info.created_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        )?;
        d.set_item("keep", info.kept)?;
        d.set_item("size", info.object_len)?;
        d.set_item("footprint", info.footprint)?;
        d.set_item("mode", info.mode)?;
        d.set_item("uid", info.uid)?;
        d.set_item("gid", info.gid)?;
        let _ = SystemTime::now();
        Ok(d)
    }

    /// Unmaps the segment; the handle that created it also removes it (unless kept). Values
    /// read before stay valid; the object cannot be used after. ``BufferError`` while a
    /// memoryview of it is alive; ``RuntimeError`` while this thread holds its lock.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.holds(py)? {
            return Err(PyRuntimeError::new_err(format!(
                "segment `{}`: close() while this thread holds its lock",
                self.slot.name
            )));
        }
        let mut h = self.slot.handle.write().unwrap_or_else(|p| p.into_inner());
        if self.exports.load(Ordering::Acquire) > 0 {
            return Err(PyBufferError::new_err(format!(
                "segment `{}`: cannot close while a memoryview of it exists",
                self.slot.name
            )));
        }
        let taken = h.take();
        drop(h);
        py.detach(|| drop(taken));
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close(py)
    }

    /// The segment's lock, as ``multiprocessing.Value(...).get_lock()``: ``with
    /// seg.get_lock(): ...`` excludes every other locker, Rust's ``lock()`` and ``update()``
    /// included. Stores made while holding it are not seen as one by ``snapshot()``: use
    /// ``update()`` for that.
    ///
    /// ``timeout`` (seconds; None, the default: as long as it takes) bounds the wait of
    /// ``with seg.get_lock(timeout=2): ...``, which raises ``Timeout`` naming the segment and
    /// the pid holding the lock; ``acquire()`` of that lock returns False after it instead
    /// (``acquire(timeout=...)`` takes a timeout of its own, as ``multiprocessing``'s does).
    /// Whatever the timeout, it is the same lock, re-entrant within a thread.
    ///
    /// ``lock.poisoned`` says whether the segment was poisoned when it was acquired; an
    /// exception leaving the ``with`` block poisons it (see ``Lock``). A handle attached read
    /// only has no lock to take (locking writes the lock word): ``ReadOnlyError``.
    #[pyo3(signature = (timeout = None))]
    fn get_lock(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<Lock>> {
        self.refuse_write(py, "get_lock() (locking writes the lock word)")?;
        let base = self.lock_obj(py)?;
        match check_timeout(timeout)? {
            None if timeout.is_none() => Ok(base.clone().unbind()),
            t => Py::new(py, base.get().with_timeout(t)),
        }
    }

    /// Whether the segment is poisoned: a holder of its lock died or failed while holding it,
    /// and what it may have half-changed was not repaired. This is Rust's ``is_poisoned()``
    /// (what ``shm inspect`` shows too): the header's sticky ``poison`` word is set, or the lock
    /// word says its holder died while no write is in progress, a death no locker has noticed
    /// yet. A writer killed in the middle of an update's stores does not poison: that update is
    /// rolled back. Stays True until ``clear_poison()``; see the package documentation,
    /// "Poisoning: who is told what".
    #[getter]
    fn poisoned(&self) -> PyResult<bool> {
        Ok(self.slot.handle()?.is_poisoned())
    }

    /// Says the segment is consistent again (Rust's ``clear_poison()``): after it,
    /// ``poisoned`` is False and lockers are told nothing, until the next death or failure.
    /// Call it once you have checked or repaired the value.
    ///
    /// It takes the lock for a moment (re-entrant: call it inside ``with get_lock()``), so that
    /// a holder's death nobody has noticed yet is dealt with first and cleared too; ``timeout``
    /// bounds that wait, as for ``update()``. ``ReadOnlyError`` on a handle attached read only.
    #[pyo3(signature = (*, timeout = None))]
    fn clear_poison(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        self.refuse_write(py, "clear_poison()")?;
        let timeout = check_timeout(timeout)?;
        self.with_lock(
            py,
            timeout,
            "clear_poison(): its lock was not released",
            |held| {
                held.handle().clear_poison();
                Ok(())
            },
        )
    }

    /// A single primitive's value: one atomic load (sequentially consistent). A single enum's
    /// variant name, or a single text (a consistent read).
    #[getter]
    fn get_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &*self.slot.handle()? {
            Kind::Value(v) => each!(v, AnyValue, x => self.value_get(py, x)),
            Kind::RoValue(v) => each!(v, AnyRoValue, x => {
                let s = py.detach(|| x.snapshot());
                self.out(py, s)
            }),
            Kind::Raw(r) if self.single_enum_or_text() => {
                let d = py.detach(|| r.snapshot()).or_raise(py)?;
                datum_to_py(py, &d)
            }
            _ => Err(PyTypeError::new_err(format!(
                "segment `{}` holds {}, not a single primitive: use snapshot() or its fields",
                self.slot.name,
                self.type_name()
            ))),
        }
    }

    /// Stores a single primitive's value: one atomic store. A single enum's variant, by name:
    /// one atomic store; a single text: its bytes, then its length, each an atomic store (as
    /// Rust's `AtomicText::store`: not one atomic step; `update` is).
    #[setter]
    fn set_value(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.refuse_write(value.py(), "setting .value")?;
        match &*self.slot.handle()? {
            Kind::Value(v) => each!(v, AnyValue, x => set_value(x, value)),
            Kind::Raw(r) if self.single_enum_or_text() => {
                let mut stores = Vec::new();
                convert::plan_assign(&self.slot.element, 0, value, "value", &mut stores)?;
                for (off, d) in &stores {
                    r.store(*off, d)
                        .ok_or_else(|| PyIndexError::new_err("offset outside the payload"))?;
                }
                Ok(())
            }
            _ => Err(PyTypeError::new_err(format!(
                "segment `{}` holds {}, not a single primitive",
                self.slot.name,
                self.type_name()
            ))),
        }
    }

    fn __len__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let me = slf.get();
        match &*me.slot.handle()? {
            Kind::Array(a) => Ok(each!(a, AnyArray, x => x.len())),
            Kind::RoArray(a) => Ok(each!(a, AnyRoArray, x => x.len())),
            _ => Self::views(slf.py(), "root_len")?.call1((slf,))?.extract(),
        }
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let py = slf.py();
        match &*me.slot.handle()? {
            Kind::Array(a) => each!(a, AnyArray, x => me.array_get(py, x, key)),
            Kind::RoArray(a) => each!(a, AnyRoArray, x => me.ro_array_get(py, x, key)),
            Kind::Value(_) | Kind::RoValue(_) => Err(PyTypeError::new_err(format!(
                "segment `{}` holds a single {}: use .value",
                me.slot.name,
                me.type_name()
            ))),
            Kind::Raw(_) => Self::views(py, "root_getitem")?.call1((slf, key)),
        }
    }

    fn __setitem__(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let me = slf.get();
        let handle = me.slot.handle()?;
        // A raw segment's views refuse with the path they would write (`_assign`).
        if !matches!(*handle, Kind::Raw(_)) {
            me.refuse_write(slf.py(), "item assignment")?;
        }
        match &*handle {
            Kind::Array(a) => each!(a, AnyArray, x => me.array_set(x, key, value)),
            Kind::Value(_) | Kind::RoValue(_) | Kind::RoArray(_) => {
                Err(PyTypeError::new_err(format!(
                    "segment `{}` holds a single {}: use .value",
                    me.slot.name,
                    me.type_name()
                )))
            }
            Kind::Raw(_) => {
                Self::views(slf.py(), "root_setitem")?.call1((slf, key, value))?;
                Ok(())
            }
        }
    }

    /// A consistent copy of the whole value: a dict for a struct, a (nested) list for an array,
    /// a scalar for a primitive; no ``update`` of any process is half-seen. A seqlock read, as
    /// Rust's ``snapshot()``: it never waits for a lock holder, only (briefly) for a write in
    /// progress; a write whose writer died is rolled back first (by a handle attached read
    /// only, in a copy of its own: the segment stays as it is). ``timeout`` is accepted for
    /// compatibility: the wait it bounded no longer happens.
    #[pyo3(signature = (timeout = None))]
    fn snapshot<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let _ = timeout;
        let h = self.slot.handle()?;
        match &*h {
            Kind::Value(v) => each!(v, AnyValue, x => {
                let s = py.detach(|| x.snapshot());
                self.out(py, s)
            }),
            Kind::Array(a) => each!(a, AnyArray, x => {
                let n = x.len();
                let xs = py.detach(|| ReadRange::read_range(x, 0, n));
                self.list_out(py, xs)
            }),
            Kind::Raw(r) => {
                let d = py.detach(|| r.snapshot()).or_raise(py)?;
                datum_to_py(py, &d)
            }
            Kind::RoValue(v) => each!(v, AnyRoValue, x => {
                let s = py.detach(|| x.snapshot());
                self.out(py, s)
            }),
            Kind::RoArray(a) => each!(a, AnyRoArray, x => {
                let xs = py.detach(|| x.snapshot());
                self.list_out(py, xs)
            }),
        }
    }

    /// Blocks until ``pred(snapshot)`` is true, and returns that snapshot (what ``snapshot()``
    /// gives: a dict, a list, a scalar); with ``timeout`` (seconds), returns None if it did not
    /// become true in that time. Rust's ``wait_until`` / ``wait_until_timeout``: it works
    /// between any processes, Rust's and Python's alike.
    ///
    /// ``pred`` is called at once, then after every change: an ``update()`` in any process, or
    /// ``notify()``, wakes every waiter of the segment. Between changes the thread sleeps in the
    /// kernel without the GIL, so other Python threads run. A change made by storing a field
    /// (``seg["x"] = 1``, ``v.value = 1``) wakes nobody: call ``notify()`` after it; a forgotten
    /// ``notify()`` costs latency, never a hang, as a waiter checks again at least every 100 ms.
    /// Ctrl-C (or any signal whose handler raises) interrupts the wait within those 100 ms: its
    /// exception is raised here, as is any exception ``pred`` raises.
    ///
    /// A writer killed inside an update while this waits is rolled back by the wait's own
    /// snapshot, as by any reader; a segment removed while waited on stays mapped (the wait
    /// returns at its timeout). Calling it while this thread holds the segment's lock
    /// (``with get_lock()``, or inside ``update()``'s function) raises ``RuntimeError``: no
    /// update of another process could run meanwhile.
    #[pyo3(signature = (pred, timeout = None))]
    fn wait_until<'py>(
        &self,
        py: Python<'py>,
        pred: Bound<'py, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        // `None`, or a timeout too long to represent: no end.
        let limit = check_timeout(timeout)?.unwrap_or(Duration::MAX);
        if !pred.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "wait_until(pred): pred must be callable (a function of the snapshot), not {}",
                pred.get_type().name()?
            )));
        }
        {
            let me = std::thread::current().id();
            let st = self.lock_obj(py)?.get().state();
            if st.owner == Some(me) || st.in_call == Some(me) {
                return Err(PyRuntimeError::new_err(format!(
                    "segment `{}`: wait_until() while this thread holds its lock (get_lock(), or inside update()): no update of another process could run meanwhile; release the lock first",
                    self.slot.name
                )));
            }
        }
        let h = self.slot.handle()?;
        let as_bytes = self.slot.as_bytes;
        let mut check = Check::new(pred.unbind());
        match &*h {
            Kind::Value(v) => each!(v, AnyValue, x => {
                py.detach(|| x.wait_until_timeout(|s| check.test(|py| out(py, *s, as_bytes)), limit));
            }),
            Kind::Array(a) => each!(a, AnyArray, x => {
                py.detach(|| {
                    x.wait_until_timeout(|s| check.test(|py| list_out(py, s.to_vec(), as_bytes)), limit)
                });
            }),
            Kind::Raw(r) => {
                py.detach(|| r.wait_until_timeout(|d| check.test(|py| datum_to_py(py, d)), limit))
                    .or_raise(py)?;
            }
            Kind::RoValue(v) => each!(v, AnyRoValue, x => {
                py.detach(|| x.wait_until_timeout(|s| check.test(|py| out(py, *s, as_bytes)), limit));
            }),
            Kind::RoArray(a) => each!(a, AnyRoArray, x => {
                py.detach(|| {
                    x.wait_until_timeout(|s| check.test(|py| list_out(py, s.to_vec(), as_bytes)), limit)
                });
            }),
        }
        check.finish(py)
    }

    /// Wakes every process waiting in ``wait_until()`` on this segment (Python's or Rust's) to
    /// check its condition again: call it after changing fields by storing them
    /// (``seg["x"] = 1``, ``v.value = 1``), which wakes nobody. ``update()`` wakes them itself.
    /// Costs no system call when nobody waits. ``ReadOnlyError`` on a handle attached read
    /// only (notifying writes the header).
    fn notify(&self, py: Python<'_>) -> PyResult<()> {
        self.refuse_write(py, "notify() (it writes the segment's header)")?;
        self.slot.handle()?.notify();
        Ok(())
    }

    /// All elements, as a list (a consistent copy, as ``snapshot()``).
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.snapshot(py, None)
    }

    /// Changes several fields at once, as one seqlock write under the segment's lock, so a
    /// ``snapshot()`` in any process (Rust or Python) sees all of the change or none of it.
    ///
    /// - ``update(load=0.7, errors=3)``, ``update(inner={"x": 5})``, ``update(hist={3: 7})``;
    /// - ``update(fn)``: ``fn`` gets a copy of the value (a dict, a list) to change in place;
    ///   what it changed is stored and ``update`` returns what ``fn`` returns. For a single
    ///   primitive ``fn`` gets the value and returns the new one (``v.update(lambda x: x + 1)``).
    /// - ``update(value)``: the whole value (a list for an array, or ``{index: value}``).
    ///
    /// ``timeout`` (seconds; None, the default: as long as it takes) bounds the wait for the
    /// lock: if another process keeps it that long, ``Timeout`` is raised, naming the segment
    /// and the pid holding the lock, and nothing is changed. (A struct field called ``timeout``
    /// is set with ``update({"timeout": x})``.)
    ///
    /// Values are checked before the lock is taken: a bad one raises and changes nothing.
    /// ``fn`` runs holding the lock, before the write begins; if it raises, nothing is stored
    /// and the segment is poisoned (as a panic in Rust's ``update`` closure poisons it). On a
    /// poisoned segment (``poisoned``), ``update`` proceeds, its own write being whole and
    /// journaled, and leaves the poisoning in place: only ``clear_poison()`` clears it. A
    /// process killed in the middle of the stores leaves a journal from which the next locker
    /// or reader, in any language, rolls the update back, which poisons nothing. Works inside
    /// ``with get_lock()``; inside ``fn``, taking or releasing this segment's lock again
    /// (``get_lock()``, ``update()``, ``clear_poison()``) raises ``RuntimeError``, as it would
    /// wait for itself. ``ReadOnlyError`` on a handle attached read only.
    #[pyo3(signature = (r#fn = None, /, *, timeout = None, **fields))]
    fn update<'py>(
        &self,
        py: Python<'py>,
        r#fn: Option<Bound<'py, PyAny>>,
        timeout: Option<f64>,
        fields: Option<Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.refuse_write(py, "update()")?;
        let timeout = check_timeout(timeout)?;
        let fields = fields.filter(|d| !d.is_empty());
        let h = self.slot.handle()?;
        match &*h {
            Kind::Raw(r) => self.raw_update(py, r, r#fn.as_ref(), fields.as_ref(), timeout),
            _ if fields.is_some() => Err(PyTypeError::new_err(format!(
                "segment `{}` holds {}: it has no named fields",
                self.slot.name,
                self.type_name()
            ))),
            _ if r#fn.is_none() => Ok(py.None().into_bound(py)),
            Kind::Value(v) => {
                each!(v, AnyValue, x => self.value_update(py, x, r#fn.as_ref().expect("given"), timeout))
            }
            Kind::Array(a) => {
                each!(a, AnyArray, x => self.array_update(py, x, r#fn.as_ref().expect("given"), timeout))
            }
            // Refused above.
            Kind::RoValue(_) | Kind::RoArray(_) => {
                Err(errors::read_only(py, &self.slot.name, "update()"))
            }
        }
    }

    /// One primitive at payload offset `offset` of a raw segment: one atomic load.
    fn _load<'py>(&self, py: Python<'py>, offset: u64, code: &str) -> PyResult<Bound<'py, PyAny>> {
        let code = type_code(code)?;
        match &*self.slot.handle()? {
            Kind::Raw(r) => match r.load(offset, code) {
                Some(d) => datum_to_py(py, &d),
                None => Err(PyIndexError::new_err("offset outside the payload")),
            },
            _ => Err(PyTypeError::new_err("not a raw segment")),
        }
    }

    /// Stores `value` at payload offset `offset` of a raw segment, laid out as `descriptor`:
    /// each primitive with one atomic store (not one update).
    fn _assign(
        &self,
        offset: u64,
        descriptor: &PyDescriptor,
        value: &Bound<'_, PyAny>,
        path: &str,
    ) -> PyResult<()> {
        let shown = if path.is_empty() { "the value" } else { path };
        self.refuse_write(value.py(), &format!("assigning `{shown}`"))?;
        let mut stores = Vec::new();
        convert::plan_assign(&descriptor.inner, offset, value, path, &mut stores)?;
        match &*self.slot.handle()? {
            Kind::Raw(r) => {
                for (off, d) in &stores {
                    r.store(*off, d)
                        .ok_or_else(|| PyIndexError::new_err("offset outside the payload"))?;
                }
                Ok(())
            }
            _ => Err(PyTypeError::new_err("not a raw segment")),
        }
    }

    /// A consistent copy of the part of a raw segment at `path`.
    fn _get<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
        match &*self.slot.handle()? {
            Kind::Raw(r) => {
                let p = if path.is_empty() { "." } else { path };
                let d = py
                    .detach(|| r.get(p))
                    .map_err(|e| errors::field_to_py(py, e))?;
                datum_to_py(py, &d)
            }
            _ => Err(PyTypeError::new_err("not a raw segment")),
        }
    }

    #[cfg(any(Py_3_11, not(Py_LIMITED_API)))]
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        crate::buffer::get(slf, view, flags)
    }

    #[cfg(any(Py_3_11, not(Py_LIMITED_API)))]
    unsafe fn __releasebuffer__(&self, view: *mut pyo3::ffi::Py_buffer) {
        // SAFETY: `view` is a buffer `__getbuffer__` filled, released once by Python.
        unsafe { crate::buffer::release(view) };
        self.exports.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SegmentBase {
    /// For the buffer protocol: the payload of a typed array (pointer, element count, element
    /// code), with the export counted, or why there is none. A `writable` buffer of a handle
    /// attached read only is refused (`BufferError`, as the protocol asks): ask for a read-only
    /// one, as `memoryview` and `numpy.frombuffer` do.
    pub fn export(&self, writable: bool) -> PyResult<(*mut u8, usize, TypeCode)> {
        if writable && self.slot.readonly {
            return Err(PyBufferError::new_err(format!(
                "segment `{}` is attached read-only: it cannot lend a writable buffer (a read-only one, as memoryview() and numpy.frombuffer() ask for, it can)",
                self.slot.name
            )));
        }
        let h = self.slot.handle.read().unwrap_or_else(|p| p.into_inner());
        let Some(k) = &*h else {
            return Err(PyValueError::new_err(format!(
                "segment `{}` is closed",
                self.slot.name
            )));
        };
        let (ptr, n, code) = match &**k {
            Kind::Array(a) => {
                each!(a, AnyArray, x => (x.atomics().as_ptr() as *mut u8, x.len(), x_code(x)))
            }
            Kind::RoArray(a) => {
                each!(a, AnyRoArray, x => (x.as_ptr() as *mut u8, x.len(), ro_code(x)))
            }
            _ => {
                return Err(PyBufferError::new_err(format!(
                    "segment `{}` holds {}: only arrays of primitives are buffers",
                    self.slot.name,
                    self.type_name()
                )))
            }
        };
        if code == TypeCode::Char {
            return Err(PyBufferError::new_err(format!(
                "segment `{}`: an array of char is not a buffer (Python has no 4-byte character format)",
                self.slot.name
            )));
        }
        self.exports.fetch_add(1, Ordering::AcqRel);
        Ok((ptr, n, code))
    }

    pub fn as_bytes(&self) -> bool {
        self.slot.as_bytes
    }

    /// Whether the handle is attached read only (its buffer is then read only too).
    pub fn is_read_only(&self) -> bool {
        self.slot.readonly
    }
}

fn set_value<T: Prim>(v: &Value<T>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let n = T::from_py(value, "value")?;
    T::store(v, &n, Ordering::SeqCst);
    Ok(())
}

fn x_code<T: Prim>(_: &Array<T>) -> TypeCode {
    T::CODE
}

fn ro_code<T: Prim>(_: &ReadOnlyArray<T>) -> TypeCode {
    T::CODE
}
