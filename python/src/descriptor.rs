//! `Descriptor`: the layout of a type in a segment, as Python sees it (`shm_core::Descriptor`).

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple};
use shm_core::{DescriptorKind, TypeCode};

/// The canonical code of a Python type-code letter (`l` is `q`, `L` is `Q`, `c` is `B`), or a
/// `ValueError` naming the known ones.
pub fn type_code(letter: &str) -> PyResult<TypeCode> {
    let mut chars = letter.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return Err(PyTypeError::new_err(format!(
            "a type code is one letter, not {letter:?}"
        )));
    };
    TypeCode::from_char(c).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown type code {letter:?}; known codes: b B h H i I q Q f d ? u l L c"
        ))
    })
}

/// A Python-side helper of `shm_core._types` (the `Code` and `Field` named tuples).
pub fn types_attr<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    TYPES
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("shm_core._types")?.unbind())
        })?
        .bind(py)
        .getattr(name)
}

/// The layout of a type in a segment, read without the Rust type: ``kind`` is ``"primitive"``
/// (``code``), ``"array"`` (``elem`` and ``length``), ``"struct"`` (``fields``), ``"enum"``
/// (``code``, the repr's, ``variants`` and ``default``) or ``"text"`` (``capacity``). ``str()``
/// spells it as Rust does: ``f64``, ``[[f32; 4]; 4]``, ``Stats``, ``State``, ``Text<64>``.
#[pyclass(frozen, module = "shm_core", name = "Descriptor")]
#[derive(Clone)]
pub struct PyDescriptor {
    pub inner: shm_core::Descriptor,
}

impl PyDescriptor {
    pub fn new(inner: shm_core::Descriptor) -> PyDescriptor {
        PyDescriptor { inner }
    }

    /// A descriptor given as a `Descriptor` or a type-code letter.
    pub fn from_any(obj: &Bound<'_, PyAny>) -> PyResult<shm_core::Descriptor> {
        if let Ok(d) = obj.cast::<PyDescriptor>() {
            return Ok(d.get().inner.clone());
        }
        if let Ok(s) = obj.extract::<String>() {
            return Ok(shm_core::Descriptor::primitive(type_code(&s)?));
        }
        Err(PyTypeError::new_err(format!(
            "a layout is a Descriptor or a type-code letter, not {}",
            obj.get_type().name()?
        )))
    }

    pub fn encoded(&self) -> PyResult<Vec<u8>> {
        self.inner.encode().map_err(PyValueError::new_err)
    }
}

#[pymethods]
impl PyDescriptor {
    /// The descriptor of one primitive: ``Descriptor.primitive('d')`` is ``f64``.
    #[staticmethod]
    fn primitive(typecode: &str) -> PyResult<PyDescriptor> {
        Ok(PyDescriptor::new(shm_core::Descriptor::primitive(
            type_code(typecode)?,
        )))
    }

    /// The descriptor of ``[elem; length]`` (``elem`` a Descriptor or a type-code letter).
    #[staticmethod]
    fn array(elem: &Bound<'_, PyAny>, length: i128) -> PyResult<PyDescriptor> {
        let elem = PyDescriptor::from_any(elem)?;
        let length = u64::try_from(length)
            .map_err(|_| PyValueError::new_err("an array length cannot be negative"))?;
        shm_core::Descriptor::array(elem, length)
            .map(PyDescriptor::new)
            .ok_or_else(|| PyOverflowError::new_err("the array is too large"))
    }

    /// The descriptor of a ``#[repr(C)]`` struct (``#[repr(C, align(N))]`` with ``align``):
    /// fields placed in order as Rust lays them out, so Rust's ``Shared::<T>::open`` accepts
    /// a segment made with it. ``fields``: ``[(name, Descriptor or type-code letter), ...]``.
    #[staticmethod]
    #[pyo3(signature = (name, fields, align = 1))]
    fn r#struct(
        name: &str,
        fields: Vec<(String, Bound<'_, PyAny>)>,
        align: i64,
    ) -> PyResult<PyDescriptor> {
        if align <= 0 || align & (align - 1) != 0 || align > 4096 {
            return Err(PyValueError::new_err(format!(
                "a struct's alignment is a power of two up to 4096, not {align}"
            )));
        }
        let fields = fields
            .into_iter()
            .map(|(n, t)| Ok((n, PyDescriptor::from_any(&t)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let d = shm_core::Descriptor::repr_c(name, fields, align as u64)
            .map_err(PyValueError::new_err)?;
        d.encode().map_err(PyValueError::new_err)?;
        Ok(PyDescriptor::new(d))
    }

    /// The descriptor of a fieldless enum with the integer ``#[repr]`` ``repr`` (a type-code
    /// letter such as ``'B'`` or a Rust name such as ``'u8'``), as ``#[derive(SharedLayout)]``
    /// describes it: ``variants`` in declaration order, each a name (numbered as Rust numbers
    /// it: one more than the previous, from 0) or ``(name, value)``; ``default`` the
    /// ``#[default]`` variant, by name or index. ``Descriptor.enum("State", "u8", ["Idle",
    /// "Busy"])``.
    #[staticmethod]
    #[pyo3(signature = (name, repr, variants, default = None))]
    fn r#enum(
        name: &str,
        repr: &str,
        variants: Vec<Bound<'_, PyAny>>,
        default: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyDescriptor> {
        let code = TypeCode::ALL
            .into_iter()
            .find(|c| c.rust_name() == repr)
            .map_or_else(|| type_code(repr), Ok)?;
        let mut placed: Vec<(String, i128)> = Vec::with_capacity(variants.len());
        let mut next: i128 = 0;
        for v in &variants {
            let (vname, value) = match v.extract::<String>() {
                Ok(n) => (n, next),
                Err(_) => v.extract::<(String, i128)>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "a variant is a name or (name, value), not {}",
                        v.repr().map(|r| r.to_string()).unwrap_or_default()
                    ))
                })?,
            };
            next = value.saturating_add(1);
            placed.push((vname, value));
        }
        let default = match default {
            None => 0,
            Some(d) => match d.extract::<String>() {
                Ok(n) => placed.iter().position(|(v, _)| *v == n).ok_or_else(|| {
                    PyValueError::new_err(format!("the default `{n}` is not a variant of {name}"))
                })?,
                Err(_) => d.extract::<usize>()?,
            },
        };
        let d = shm_core::Descriptor::enumeration(name, code, placed, default)
            .map_err(PyValueError::new_err)?;
        d.encode().map_err(PyValueError::new_err)?;
        Ok(PyDescriptor::new(d))
    }

    /// The descriptor of Rust's ``Text<capacity>``: UTF-8 text of at most ``capacity`` bytes.
    #[staticmethod]
    fn text(capacity: i128) -> PyResult<PyDescriptor> {
        let capacity = u64::try_from(capacity)
            .map_err(|_| PyValueError::new_err("a text's capacity cannot be negative"))?;
        shm_core::Descriptor::text(capacity)
            .map(PyDescriptor::new)
            .map_err(PyValueError::new_err)
    }

    /// Parses descriptor bytes as a segment holds them, with every check of docs/FORMAT.md;
    /// raises ``DescriptorError`` (a ``ValueError``) on anything malformed or inconsistent.
    #[staticmethod]
    fn parse(py: Python<'_>, data: &[u8]) -> PyResult<PyDescriptor> {
        shm_core::Descriptor::parse(data)
            .map(PyDescriptor::new)
            .map_err(|e| {
                let cls = match py
                    .import("shm_core._errors")
                    .and_then(|m| m.getattr("DescriptorError"))
                {
                    Ok(c) => c,
                    Err(err) => return err,
                };
                match cls.call1((e.at, e.reason)) {
                    Ok(v) => PyErr::from_value(v),
                    Err(err) => err,
                }
            })
    }

    /// The descriptor bytes as written into a segment header.
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.encoded()?))
    }

    /// The 64-bit layout fingerprint, as Rust's ``T::FINGERPRINT``.
    #[getter]
    fn fingerprint(&self) -> PyResult<u64> {
        Ok(shm_core::Descriptor::fingerprint_of(&self.encoded()?))
    }

    /// The first way in which this descriptor (found in a segment) differs from ``expected``,
    /// in the words of Rust's ``LayoutMismatch``, or ``None``.
    fn first_difference(&self, expected: &PyDescriptor) -> Option<String> {
        self.inner.first_difference(&expected.inner)
    }

    /// The type's name (``""`` for an array, the Rust name for a primitive).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }

    /// Alignment in bytes.
    #[getter]
    fn align(&self) -> u64 {
        self.inner.align
    }

    /// ``"primitive"``, ``"array"``, ``"struct"``, ``"enum"`` or ``"text"``.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            DescriptorKind::Primitive(_) => "primitive",
            DescriptorKind::Array { .. } => "array",
            DescriptorKind::Struct { .. } => "struct",
            DescriptorKind::Enum { .. } => "enum",
            DescriptorKind::Text { .. } => "text",
        }
    }

    /// A primitive's ``Code`` (letter, Rust name, size, memoryview format), or an enum's
    /// repr's; ``None`` otherwise.
    #[getter]
    fn code<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.inner.kind {
            DescriptorKind::Primitive(code) | DescriptorKind::Enum { repr: code, .. } => {
                let letter = code.as_char().to_string();
                Ok(Some(types_attr(py, "CODES")?.get_item(letter)?))
            }
            _ => Ok(None),
        }
    }

    /// An array's element.
    #[getter]
    fn elem(&self) -> Option<PyDescriptor> {
        match &self.inner.kind {
            DescriptorKind::Array { elem, .. } => Some(PyDescriptor::new((**elem).clone())),
            _ => None,
        }
    }

    /// An array's number of elements (0 for others).
    #[getter]
    fn length(&self) -> u64 {
        match &self.inner.kind {
            DescriptorKind::Array { len, .. } => *len,
            _ => 0,
        }
    }

    /// An enum's variants: ``Variant(name, value)`` named tuples, in declaration order (empty
    /// for others).
    #[getter]
    fn variants<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let variant = types_attr(py, "Variant")?;
        let items = match &self.inner.kind {
            DescriptorKind::Enum { variants, .. } => variants
                .iter()
                .map(|v| variant.call1((v.name.clone(), v.value)))
                .collect::<PyResult<Vec<_>>>()?,
            _ => Vec::new(),
        };
        PyTuple::new(py, items)
    }

    /// An enum's default variant, by index in ``variants``: what a number that is no variant
    /// reads as. ``None`` for others.
    #[getter]
    fn default(&self) -> Option<usize> {
        match &self.inner.kind {
            DescriptorKind::Enum { default, .. } => Some(*default),
            _ => None,
        }
    }

    /// A text's capacity in bytes (0 for others).
    #[getter]
    fn capacity(&self) -> u64 {
        match &self.inner.kind {
            DescriptorKind::Text { capacity } => *capacity,
            _ => 0,
        }
    }

    /// A struct's fields: ``Field(name, offset, type)`` named tuples, in order.
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let field = types_attr(py, "Field")?;
        let items = match &self.inner.kind {
            DescriptorKind::Struct { fields } => fields
                .iter()
                .map(|f| field.call1((f.name.clone(), f.offset, PyDescriptor::new(f.ty.clone()))))
                .collect::<PyResult<Vec<_>>>()?,
            _ => Vec::new(),
        };
        PyTuple::new(py, items)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PyDescriptor>() else {
            return Ok(py.NotImplemented());
        };
        let same = self.inner == other.get().inner;
        match op {
            CompareOp::Eq => Ok(same.into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => Ok((!same).into_pyobject(py)?.to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self) -> PyResult<u64> {
        Ok(shm_core::Descriptor::fingerprint_of(&self.encoded()?))
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        match &self.inner.kind {
            DescriptorKind::Struct { fields } => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}@{}: {}", f.name, f.offset, f.ty))
                    .collect();
                format!(
                    "<Descriptor struct {} {{{}}} size={} align={}>",
                    self.inner.name,
                    inner.join(", "),
                    self.inner.size,
                    self.inner.align
                )
            }
            _ => format!(
                "<Descriptor {} size={} align={}>",
                self.inner, self.inner.size, self.inner.align
            ),
        }
    }

    /// Pickles as its encoding.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let parse = py.get_type::<PyDescriptor>().getattr("parse")?;
        Ok((parse, (PyBytes::new(py, &self.encoded()?),)))
    }
}
