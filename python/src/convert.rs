//! Python values to and from the primitives and `Datum` trees of a segment, with the checks
//! (type, range) done before anything is stored; messages name the field.

use pyo3::exceptions::{PyKeyError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use shm_core::inspect::Datum;
use shm_core::{Descriptor, DescriptorKind, SharedLayout, TypeCode};

/// Where a value goes, for messages: `` `load` (f64) ``, or the bare type.
pub fn place(path: &str, code: TypeCode) -> String {
    if path.is_empty() {
        code.rust_name().to_owned()
    } else {
        format!("`{path}` ({code})")
    }
}

/// A primitive Python can read and write: conversion both ways, with the checks.
pub trait Prim: SharedLayout + Copy + PartialEq + Send + Sync + 'static {
    /// Its type code.
    const CODE: TypeCode;
    /// The value for `obj`, or the `TypeError` / `OverflowError` / `ValueError` saying why not.
    fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Self>;
    /// The Python value.
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
    /// As a `Datum`.
    fn to_datum(self) -> Datum;
}

fn int_of(
    obj: &Bound<'_, PyAny>,
    code: TypeCode,
    path: &str,
    lo: i128,
    hi: i128,
) -> PyResult<i128> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        if code == TypeCode::U8 && b.as_bytes().len() == 1 {
            return Ok(i128::from(b.as_bytes()[0]));
        }
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        if code == TypeCode::U8 && b.len() == 1 {
            return Ok(i128::from(b.to_vec()[0]));
        }
    }
    let v = if let Ok(v) = obj.extract::<i64>() {
        i128::from(v)
    } else if let Ok(v) = obj.extract::<u64>() {
        i128::from(v)
    } else {
        let is_int = obj.is_instance_of::<PyInt>()
            || (!obj.is_instance_of::<PyFloat>() && obj.hasattr("__index__").unwrap_or(false));
        if !is_int {
            return Err(PyTypeError::new_err(format!(
                "{} takes an int, not {}",
                place(path, code),
                obj.get_type().name()?
            )));
        }
        return Err(PyOverflowError::new_err(format!(
            "{}: {} is out of range {lo}..={hi}",
            place(path, code),
            obj.str()?
        )));
    };
    if v < lo || v > hi {
        return Err(PyOverflowError::new_err(format!(
            "{}: {v} is out of range {lo}..={hi}",
            place(path, code)
        )));
    }
    Ok(v)
}

macro_rules! int_prim {
    ($($ty:ty => $code:ident, $datum:ident);* $(;)?) => {$(
        impl Prim for $ty {
            const CODE: TypeCode = TypeCode::$code;
            #[inline]
            fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Self> {
                // Fast path: an int in range.
                if let Ok(v) = obj.extract::<$ty>() {
                    if !obj.is_instance_of::<PyFloat>() {
                        return Ok(v);
                    }
                }
                let v = int_of(obj, TypeCode::$code, path, <$ty>::MIN as i128, <$ty>::MAX as i128)?;
                Ok(v as $ty)
            }
            #[inline]
            fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                Ok(self.into_pyobject(py)?.into_any())
            }
            fn to_datum(self) -> Datum {
                Datum::$datum(self)
            }
        }
    )*};
}

int_prim! {
    i8 => I8, I8; u8 => U8, U8; i16 => I16, I16; u16 => U16, U16;
    i32 => I32, I32; u32 => U32, U32; i64 => I64, I64; u64 => U64, U64;
}

fn float_of(obj: &Bound<'_, PyAny>, code: TypeCode, path: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{} takes a number, not {}",
            place(path, code),
            obj.get_type().name()?
        )));
    }
    obj.extract::<f64>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{} takes a number, not {}",
            place(path, code),
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

impl Prim for f64 {
    const CODE: TypeCode = TypeCode::F64;
    #[inline]
    fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Self> {
        if let Ok(f) = obj.cast::<PyFloat>() {
            return Ok(f.value());
        }
        float_of(obj, TypeCode::F64, path)
    }
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyFloat::new(py, self).into_any())
    }
    fn to_datum(self) -> Datum {
        Datum::F64(self)
    }
}

impl Prim for f32 {
    const CODE: TypeCode = TypeCode::F32;
    fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Self> {
        // Rounded as Rust's `as f32` does: out of range becomes infinity.
        Ok(float_of(obj, TypeCode::F32, path)? as f32)
    }
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyFloat::new(py, f64::from(self)).into_any())
    }
    fn to_datum(self) -> Datum {
        Datum::F32(self)
    }
}

impl Prim for bool {
    const CODE: TypeCode = TypeCode::Bool;
    fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(b.is_true());
        }
        if obj.is_instance_of::<PyInt>()
            || (!obj.is_instance_of::<PyFloat>() && obj.hasattr("__index__")?)
        {
            return obj.is_truthy();
        }
        Err(PyTypeError::new_err(format!(
            "{} takes a bool, not {}",
            place(path, TypeCode::Bool),
            obj.get_type().name()?
        )))
    }
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyBool::new(py, self).to_owned().into_any())
    }
    fn to_datum(self) -> Datum {
        Datum::Bool(self)
    }
}

impl Prim for char {
    const CODE: TypeCode = TypeCode::Char;
    fn from_py(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Self> {
        let s = obj.cast::<PyString>().ok();
        let text = match s {
            Some(s) => s.to_cow().ok(),
            None => None,
        };
        let mut chars = text.as_deref().map(|t| t.chars());
        match chars.as_mut().map(|c| (c.next(), c.next())) {
            Some((Some(c), None)) => Ok(c),
            _ => {
                // A lone surrogate is a str of one character that is no Unicode scalar value.
                if let Some(s) = s {
                    if s.len()? == 1 {
                        return Err(PyValueError::new_err(format!(
                            "{}: a surrogate is not a Unicode scalar value",
                            place(path, TypeCode::Char)
                        )));
                    }
                }
                Err(PyTypeError::new_err(format!(
                    "{} takes a str of one character, not {}",
                    place(path, TypeCode::Char),
                    obj.repr()?
                )))
            }
        }
    }
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::new(py, self.encode_utf8(&mut [0; 4])).into_any())
    }
    fn to_datum(self) -> Datum {
        Datum::Char(self)
    }
}

/// Runs `$body` with `$T` the Rust type of type code `$code`.
#[macro_export]
macro_rules! with_prim {
    ($code:expr, $T:ident => $body:expr) => {
        match $code {
            shm_core::TypeCode::I8 => {
                type $T = i8;
                $body
            }
            shm_core::TypeCode::U8 => {
                type $T = u8;
                $body
            }
            shm_core::TypeCode::I16 => {
                type $T = i16;
                $body
            }
            shm_core::TypeCode::U16 => {
                type $T = u16;
                $body
            }
            shm_core::TypeCode::I32 => {
                type $T = i32;
                $body
            }
            shm_core::TypeCode::U32 => {
                type $T = u32;
                $body
            }
            shm_core::TypeCode::I64 => {
                type $T = i64;
                $body
            }
            shm_core::TypeCode::U64 => {
                type $T = u64;
                $body
            }
            shm_core::TypeCode::F32 => {
                type $T = f32;
                $body
            }
            shm_core::TypeCode::F64 => {
                type $T = f64;
                $body
            }
            shm_core::TypeCode::Bool => {
                type $T = bool;
                $body
            }
            _ => {
                type $T = char;
                $body
            }
        }
    };
}

/// The `Datum` of type `code` for `obj`.
pub fn datum_of(obj: &Bound<'_, PyAny>, code: TypeCode, path: &str) -> PyResult<Datum> {
    with_prim!(code, T => Ok(T::from_py(obj, path)?.to_datum()))
}

/// A `Datum` as Python sees it: a scalar, a list, a dict; an enum as its variant's name (a
/// number that is no variant as the default variant's, as Rust's `load` reads it), a text as a
/// `str`.
pub fn datum_to_py<'py>(py: Python<'py>, d: &Datum) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        Datum::I8(v) => v.to_py(py)?,
        Datum::U8(v) => v.to_py(py)?,
        Datum::I16(v) => v.to_py(py)?,
        Datum::U16(v) => v.to_py(py)?,
        Datum::I32(v) => v.to_py(py)?,
        Datum::U32(v) => v.to_py(py)?,
        Datum::I64(v) => v.to_py(py)?,
        Datum::U64(v) => v.to_py(py)?,
        Datum::F32(v) => v.to_py(py)?,
        Datum::F64(v) => v.to_py(py)?,
        Datum::Bool(v) => v.to_py(py)?,
        Datum::Char(v) => v.to_py(py)?,
        Datum::Enum { variant, .. } => PyString::new(py, variant).into_any(),
        Datum::Text(t) => PyString::new(py, t).into_any(),
        Datum::Array(items) => {
            let list = PyList::empty(py);
            for i in items {
                list.append(datum_to_py(py, i)?)?;
            }
            list.into_any()
        }
        Datum::Struct(fields) => {
            let dict = PyDict::new(py);
            for (k, v) in fields {
                dict.set_item(k, datum_to_py(py, v)?)?;
            }
            dict.into_any()
        }
        _ => py.None().into_bound(py),
    })
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// An index into `n` elements, negative from the end; `IndexError` naming `path` if outside.
pub fn index(i: &Bound<'_, PyAny>, n: u64, path: &str) -> PyResult<u64> {
    let i: i128 = i.extract::<i64>().map(i128::from).map_err(|_| {
        PyTypeError::new_err(format!(
            "`{path}` is indexed by an int, not {}",
            i.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let j = if i < 0 { i + n as i128 } else { i };
    if j < 0 || j >= n as i128 {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "`{path}`: index out of range for {n} elements"
        )));
    }
    Ok(j as u64)
}

fn is_mapping(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyDict>()
        || obj.hasattr("keys").unwrap_or(false) && obj.hasattr("__getitem__").unwrap_or(false)
}

fn items_of<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    obj.call_method0("items")?
        .try_iter()?
        .map(|kv| kv?.extract())
        .collect()
}

/// The number of the variant `obj` names (a `str`) of the enum `desc`: a `TypeError` for
/// another type, a `ValueError` listing the variants for another name.
fn variant_value(desc: &Descriptor, obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Datum> {
    let DescriptorKind::Enum { repr, variants, .. } = &desc.kind else {
        return Err(PyTypeError::new_err("internal: not an enum"));
    };
    let place = if path.is_empty() {
        desc.name.clone()
    } else {
        format!("`{path}` ({})", desc.name)
    };
    let Ok(name) = obj.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "{place} takes a variant's name (a str), not {}",
            obj.get_type().name()?
        )));
    };
    let name = name.to_cow()?;
    let Some(v) = variants.iter().find(|v| v.name == *name) else {
        let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
        return Err(PyValueError::new_err(format!(
            "{place} has no variant {:?}; its variants are {}",
            name,
            names.join(", ")
        )));
    };
    // In the repr's range (the descriptor was checked), so the casts are exact.
    Ok(match repr {
        TypeCode::I8 => Datum::I8(v.value as i8),
        TypeCode::U8 => Datum::U8(v.value as u8),
        TypeCode::I16 => Datum::I16(v.value as i16),
        TypeCode::U16 => Datum::U16(v.value as u16),
        TypeCode::I32 => Datum::I32(v.value as i32),
        TypeCode::U32 => Datum::U32(v.value as u32),
        TypeCode::I64 => Datum::I64(v.value as i64),
        _ => Datum::U64(v.value as u64),
    })
}

/// The UTF-8 of the `str` `obj` for the text `desc`: a `TypeError` for another type, a
/// `ValueError` if it is longer than the capacity or has no UTF-8 (a lone surrogate).
fn text_bytes(desc: &Descriptor, obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Vec<u8>> {
    let capacity = match desc.kind {
        DescriptorKind::Text { capacity } => capacity,
        _ => return Err(PyTypeError::new_err("internal: not a text")),
    };
    let place = if path.is_empty() {
        desc.to_string()
    } else {
        format!("`{path}` ({desc})")
    };
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "{place} takes a str, not {}",
            obj.get_type().name()?
        )));
    };
    let text = s.to_str().map_err(|_| {
        PyValueError::new_err(format!(
            "{place}: {} is not valid Unicode text",
            s.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    if text.len() as u64 > capacity {
        return Err(PyValueError::new_err(format!(
            "{place} holds at most {capacity} bytes of UTF-8; {text:?} is {} bytes",
            text.len()
        )));
    }
    Ok(text.as_bytes().to_vec())
}

/// A text's length word: a `u32` before its bytes (docs/FORMAT.md, the text node).
const TEXT_LEN_SIZE: u64 = 4;

/// The stores of the whole text `bytes` at `off` (a text of `capacity`): every byte (zeros
/// after the text), then the length, as Rust's `AtomicText::store` stores them.
fn text_stores(off: u64, capacity: u64, bytes: &[u8], out: &mut Vec<(u64, Datum)>) {
    let start = off + TEXT_LEN_SIZE;
    for i in 0..capacity {
        let b = bytes.get(i as usize).copied().unwrap_or(0);
        out.push((start + i, Datum::U8(b)));
    }
    out.push((off, Datum::U32(bytes.len() as u32)));
}

/// The stores that set `desc` at payload offset `off` to `value`: a scalar; for an array a
/// sequence of its length or a mapping `{index: value}`; for a struct a mapping `{field:
/// value}` (fields left out are left alone). Raises before anything is stored.
pub fn plan_assign(
    desc: &Descriptor,
    off: u64,
    value: &Bound<'_, PyAny>,
    path: &str,
    out: &mut Vec<(u64, Datum)>,
) -> PyResult<()> {
    match &desc.kind {
        DescriptorKind::Primitive(code) => {
            out.push((off, datum_of(value, *code, path)?));
        }
        DescriptorKind::Enum { .. } => {
            out.push((off, variant_value(desc, value, path)?));
        }
        DescriptorKind::Text { capacity } => {
            text_stores(off, *capacity, &text_bytes(desc, value, path)?, out);
        }
        DescriptorKind::Array { elem, len } => {
            let what = if path.is_empty() { "the array" } else { path };
            let items: Vec<(u64, Bound<'_, PyAny>)> = if is_mapping(value) {
                items_of(value)?
                    .into_iter()
                    .map(|(k, v)| Ok((index(&k, *len, what)?, v)))
                    .collect::<PyResult<_>>()?
            } else {
                let text_ok = matches!(
                    elem.kind,
                    DescriptorKind::Primitive(TypeCode::Char | TypeCode::U8)
                );
                if !text_ok
                    && (value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>())
                {
                    return Err(PyTypeError::new_err(format!(
                        "`{what}` is an array of {len}: give a list"
                    )));
                }
                let values: Vec<Bound<'_, PyAny>> = match value.try_iter() {
                    Ok(it) => it.collect::<PyResult<_>>()?,
                    Err(_) => {
                        return Err(PyTypeError::new_err(format!(
                            "`{what}` takes a sequence of {len} values or a mapping {{index: value}}, not {}",
                            value.get_type().name()?
                        )))
                    }
                };
                if values.len() as u64 != *len {
                    return Err(PyValueError::new_err(format!(
                        "`{what}` has {len} elements; {} given",
                        values.len()
                    )));
                }
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as u64, v))
                    .collect()
            };
            for (i, v) in items {
                plan_assign(elem, off + i * elem.size, &v, &format!("{path}[{i}]"), out)?;
            }
        }
        DescriptorKind::Struct { fields } => {
            if !is_mapping(value) {
                return Err(PyTypeError::new_err(format!(
                    "`{}` is a struct {}: give a mapping of its fields, not {}",
                    if path.is_empty() { &desc.name } else { path },
                    desc.name,
                    value.get_type().name()?
                )));
            }
            for (k, v) in items_of(value)? {
                let k: String = k.extract()?;
                let Some(f) = fields.iter().find(|f| f.name == k) else {
                    return Err(no_field(desc, &k));
                };
                plan_assign(&f.ty, off + f.offset, &v, &join(path, &k), out)?;
            }
        }
    }
    Ok(())
}

fn no_field(desc: &Descriptor, k: &str) -> PyErr {
    let names: Vec<&str> = match &desc.kind {
        DescriptorKind::Struct { fields } => fields.iter().map(|f| f.name.as_str()).collect(),
        _ => Vec::new(),
    };
    PyKeyError::new_err(format!(
        "{} has no field `{k}` (fields: {})",
        desc.name,
        names.join(", ")
    ))
}

fn same_bits(a: &Datum, b: &Datum) -> bool {
    match (a, b) {
        (Datum::F32(x), Datum::F32(y)) => x.to_bits() == y.to_bits(),
        (Datum::F64(x), Datum::F64(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// The stores for the primitives that differ between `old` (as read) and `new` (as an update
/// function left the copy it was given): only those are written, as Rust's `update` does.
pub fn plan_changes(
    desc: &Descriptor,
    off: u64,
    old: &Datum,
    new: &Bound<'_, PyAny>,
    path: &str,
    out: &mut Vec<(u64, Datum)>,
) -> PyResult<()> {
    match (&desc.kind, old) {
        (DescriptorKind::Primitive(code), _) => {
            let d = datum_of(new, *code, path)?;
            if !same_bits(&d, old) {
                out.push((off, d));
            }
        }
        // An enum as read (a number that is no variant reads as the default) and left as read
        // is not stored: the number stays.
        (DescriptorKind::Enum { .. }, Datum::Enum { variant, .. }) => {
            let d = variant_value(desc, new, path)?;
            let name = new.cast::<PyString>()?.to_cow()?;
            if *name != **variant {
                out.push((off, d));
            }
        }
        // A changed text is stored whole, as Rust's `update` stores it.
        (DescriptorKind::Text { capacity }, Datum::Text(text)) => {
            let bytes = text_bytes(desc, new, path)?;
            if bytes != text.as_bytes() {
                text_stores(off, *capacity, &bytes, out);
            }
        }
        (DescriptorKind::Array { elem, len }, Datum::Array(olds)) => {
            let seq = new
                .cast::<PyList>()
                .map(|l| l.iter().collect::<Vec<_>>())
                .or_else(|_| new.cast::<PyTuple>().map(|t| t.iter().collect::<Vec<_>>()));
            let what = if path.is_empty() { "the array" } else { path };
            let items = match seq {
                Ok(items) if items.len() as u64 == *len => items,
                Ok(items) => {
                    return Err(PyValueError::new_err(format!(
                        "`{what}` must stay a list of {len}: {} elements",
                        items.len()
                    )))
                }
                Err(_) => {
                    return Err(PyValueError::new_err(format!(
                        "`{what}` must stay a list of {len}: {}",
                        new.get_type().name()?
                    )))
                }
            };
            for (i, (o, n)) in olds.iter().zip(&items).enumerate() {
                plan_changes(
                    elem,
                    off + i as u64 * elem.size,
                    o,
                    n,
                    &format!("{path}[{i}]"),
                    out,
                )?;
            }
        }
        (DescriptorKind::Struct { fields }, Datum::Struct(olds)) => {
            let Ok(dict) = new.cast::<PyDict>() else {
                return Err(PyTypeError::new_err(format!(
                    "`{}` must stay a dict of its fields",
                    if path.is_empty() { &desc.name } else { path }
                )));
            };
            for k in dict.keys() {
                let k: String = k.extract()?;
                if !fields.iter().any(|f| f.name == k) {
                    return Err(no_field(desc, &k));
                }
            }
            for (f, (_, o)) in fields.iter().zip(olds) {
                let Some(n) = dict.get_item(&f.name)? else {
                    return Err(PyKeyError::new_err(format!(
                        "field `{}` was removed from the dict",
                        join(path, &f.name)
                    )));
                };
                plan_changes(&f.ty, off + f.offset, o, &n, &join(path, &f.name), out)?;
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "`{path}`: the segment's value does not have its descriptor's shape"
            )))
        }
    }
    Ok(())
}
