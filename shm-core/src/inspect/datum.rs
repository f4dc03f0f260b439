//! `Datum`: a value read from a segment without its Rust type.

use std::fmt;

use crate::cell::Width;
use crate::TypeCode;

/// A value read from a segment by [`RawSegment`](super::RawSegment), shaped by the segment's
/// descriptor: one variant per type code, arrays and structs as trees.
///
/// Every primitive is read with one relaxed atomic load of its width, so whatever another process
/// wrote, a `Datum` is a valid value: a `bool` byte other than 0 reads as `true`, a `char`
/// word that is not a Unicode scalar value reads as U+FFFD, an enum's number that is no variant
/// reads as its default variant (and says so), and text is read as [`Text`](crate::Text) reads
/// it, as the typed atomics do.
///
/// `Display` writes it compactly: `17`, `0.7`, `true`, `'x'`, `Busy`, `"10.0.0.7"`,
/// `[1, 2, 3]`, `{x: 1, y: [0, 0]}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Datum {
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `h`
    I16(i16),
    /// `H`
    U16(u16),
    /// `i`
    I32(i32),
    /// `I`
    U32(u32),
    /// `q`
    I64(i64),
    /// `Q`
    U64(u64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `?`
    Bool(bool),
    /// `u`
    Char(char),
    /// A fieldless enum's value.
    Enum {
        /// The name of the variant: for a number that is no variant, the default variant's,
        /// which is what a typed `load` reads.
        variant: String,
        /// The number stored.
        value: i128,
        /// Whether `value` is a variant's. `false`: another process stored a number that is no
        /// variant.
        known: bool,
    },
    /// Text (a `Text<N>`), as [`Text::as_str`](crate::Text::as_str) reads it.
    Text(String),
    /// The elements of an array, in order.
    Array(Vec<Datum>),
    /// The fields of a struct, in declaration order, with their names.
    Struct(Vec<(String, Datum)>),
}

impl Datum {
    /// The type code of a primitive; `None` for an enum, a text, an array or a struct.
    pub fn code(&self) -> Option<TypeCode> {
        Some(match self {
            Datum::I8(_) => TypeCode::I8,
            Datum::U8(_) => TypeCode::U8,
            Datum::I16(_) => TypeCode::I16,
            Datum::U16(_) => TypeCode::U16,
            Datum::I32(_) => TypeCode::I32,
            Datum::U32(_) => TypeCode::U32,
            Datum::I64(_) => TypeCode::I64,
            Datum::U64(_) => TypeCode::U64,
            Datum::F32(_) => TypeCode::F32,
            Datum::F64(_) => TypeCode::F64,
            Datum::Bool(_) => TypeCode::Bool,
            Datum::Char(_) => TypeCode::Char,
            Datum::Enum { .. } | Datum::Text(_) | Datum::Array(_) | Datum::Struct(_) => {
                return None
            }
        })
    }

    /// The value of an integer primitive, widened; `None` for anything else.
    ///
    /// ```
    /// use shm_core::inspect::Datum;
    /// assert_eq!(Datum::U64(u64::MAX).as_integer(), Some(u64::MAX as i128));
    /// assert_eq!(Datum::F64(1.0).as_integer(), None);
    /// ```
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Datum::I8(v) => v.into(),
            Datum::U8(v) => v.into(),
            Datum::I16(v) => v.into(),
            Datum::U16(v) => v.into(),
            Datum::I32(v) => v.into(),
            Datum::U32(v) => v.into(),
            Datum::I64(v) => v.into(),
            Datum::U64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value of a float primitive, widened; `None` for anything else.
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            Datum::F32(v) => Some(v.into()),
            Datum::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The field `name` of a struct; `None` if this is not a struct or has no such field.
    pub fn field(&self, name: &str) -> Option<&Datum> {
        match self {
            Datum::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, d)| d),
            _ => None,
        }
    }

    /// Element `i` of an array; `None` if this is not an array or `i` is out of range.
    pub fn index(&self, i: usize) -> Option<&Datum> {
        match self {
            Datum::Array(items) => items.get(i),
            _ => None,
        }
    }

    /// The primitive of type `code` whose bytes, read as an integer of its width, are `bits`
    /// (zero-extended): what a relaxed load of its [`Cell`](crate::cell::Cell) reads. As the
    /// typed atomics read them, any non-zero `bool` byte is `true` and a `char` word that is no
    /// Unicode scalar value is U+FFFD.
    pub(crate) fn from_bits(code: TypeCode, bits: u64) -> Datum {
        // The casts keep the low bytes: the primitive's own.
        match code {
            TypeCode::I8 => Datum::I8(bits as i8),
            TypeCode::U8 => Datum::U8(bits as u8),
            TypeCode::I16 => Datum::I16(bits as i16),
            TypeCode::U16 => Datum::U16(bits as u16),
            TypeCode::I32 => Datum::I32(bits as i32),
            TypeCode::U32 => Datum::U32(bits as u32),
            TypeCode::I64 => Datum::I64(bits as i64),
            TypeCode::U64 => Datum::U64(bits),
            TypeCode::F32 => Datum::F32(f32::from_bits(bits as u32)),
            TypeCode::F64 => Datum::F64(f64::from_bits(bits)),
            TypeCode::Bool => Datum::Bool(bits != 0),
            TypeCode::Char => Datum::Char(char::from_u32(bits as u32).unwrap_or('\u{FFFD}')),
        }
    }

    /// A primitive's width, and its bytes as an integer of that width (zero-extended): what a
    /// relaxed store of its [`Cell`](crate::cell::Cell) stores. `None` for an array or a struct.
    pub(crate) fn to_bits(&self) -> Option<(Width, u64)> {
        let bits = match *self {
            Datum::I8(v) => u64::from(v as u8),
            Datum::U8(v) => u64::from(v),
            Datum::I16(v) => u64::from(v as u16),
            Datum::U16(v) => u64::from(v),
            Datum::I32(v) => u64::from(v as u32),
            Datum::U32(v) => u64::from(v),
            Datum::I64(v) => v as u64,
            Datum::U64(v) => v,
            Datum::F32(v) => u64::from(v.to_bits()),
            Datum::F64(v) => v.to_bits(),
            Datum::Bool(v) => u64::from(v),
            Datum::Char(v) => u64::from(u32::from(v)),
            Datum::Enum { .. } | Datum::Text(_) | Datum::Array(_) | Datum::Struct(_) => {
                return None
            }
        };
        Some((Width::of(self.code()?), bits))
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::I8(v) => write!(f, "{v}"),
            Datum::U8(v) => write!(f, "{v}"),
            Datum::I16(v) => write!(f, "{v}"),
            Datum::U16(v) => write!(f, "{v}"),
            Datum::I32(v) => write!(f, "{v}"),
            Datum::U32(v) => write!(f, "{v}"),
            Datum::I64(v) => write!(f, "{v}"),
            Datum::U64(v) => write!(f, "{v}"),
            // Debug: the shortest text that reads back as the same value, always with a point
            // or an exponent, so a float never looks like an integer.
            Datum::F32(v) => write!(f, "{v:?}"),
            Datum::F64(v) => write!(f, "{v:?}"),
            Datum::Bool(v) => write!(f, "{v}"),
            Datum::Char(v) => write!(f, "{v:?}"),
            Datum::Enum {
                variant,
                known: true,
                ..
            } => f.write_str(variant),
            Datum::Enum { variant, value, .. } => {
                write!(f, "{value} (no variant; reads as {variant})")
            }
            Datum::Text(v) => write!(f, "{v:?}"),
            Datum::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Datum::Struct(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_compact_and_floats_look_like_floats() {
        let d = Datum::Struct(vec![
            ("x".into(), Datum::U16(3)),
            (
                "y".into(),
                Datum::Array(vec![Datum::I32(-1), Datum::I32(2)]),
            ),
            ("load".into(), Datum::F64(1.0)),
            ("c".into(), Datum::Char('é')),
            ("ok".into(), Datum::Bool(true)),
            (
                "state".into(),
                Datum::Enum {
                    variant: "Busy".into(),
                    value: 1,
                    known: true,
                },
            ),
            ("client".into(), Datum::Text("10.0.0.7 \"x\"".into())),
        ]);
        assert_eq!(
            d.to_string(),
            r#"{x: 3, y: [-1, 2], load: 1.0, c: 'é', ok: true, state: Busy, client: "10.0.0.7 \"x\""}"#
        );
        let unknown = Datum::Enum {
            variant: "Idle".into(),
            value: -7,
            known: false,
        };
        assert_eq!(unknown.to_string(), "-7 (no variant; reads as Idle)");
        assert_eq!((unknown.code(), unknown.as_integer()), (None, None));
        assert_eq!(Datum::F32(0.1).to_string(), "0.1");
        assert_eq!(Datum::F64(f64::NAN).to_string(), "NaN");
    }

    #[test]
    fn every_primitive_round_trips_through_its_bits() {
        let values = [
            Datum::I8(-2),
            Datum::U8(200),
            Datum::I16(-300),
            Datum::U16(60_000),
            Datum::I32(-70_000),
            Datum::U32(4_000_000_000),
            Datum::I64(i64::MIN),
            Datum::U64(u64::MAX),
            Datum::F32(-0.5),
            Datum::F64(f64::from_bits(0x7ff8_dead_beef_0001)),
            Datum::Bool(true),
            Datum::Char('\u{1F600}'),
        ];
        for v in values {
            let (width, bits) = v.to_bits().unwrap();
            let code = v.code().unwrap();
            assert_eq!(width.bytes(), code.size(), "{v:?}");
            // Zero-extended: nothing above the primitive's width.
            assert!(
                width == Width::Eight || bits >> (8 * width.bytes()) == 0,
                "{v:?}"
            );
            let back = Datum::from_bits(code, bits);
            assert_eq!(back.to_bits(), Some((width, bits)), "{v:?}");
            // The NaN is not equal to itself; its bits were compared above.
            assert!(back == v || v.as_float().is_some_and(f64::is_nan), "{v:?}");
        }
        assert_eq!(Datum::Array(vec![]).to_bits(), None);
        // What another process may leave: read as the typed atomics read it.
        assert_eq!(Datum::from_bits(TypeCode::Bool, 5), Datum::Bool(true));
        assert_eq!(
            Datum::from_bits(TypeCode::Char, 0xD800),
            Datum::Char('\u{FFFD}')
        );
    }

    #[test]
    fn accessors() {
        let d = Datum::Struct(vec![(
            "hist".into(),
            Datum::Array(vec![Datum::U32(5), Datum::U32(6)]),
        )]);
        assert_eq!(
            d.field("hist").and_then(|h| h.index(1)),
            Some(&Datum::U32(6))
        );
        assert_eq!(d.field("nope"), None);
        assert_eq!(Datum::I8(-1).as_integer(), Some(-1));
        assert_eq!(Datum::F32(0.5).as_float(), Some(0.5));
        assert_eq!(Datum::Bool(true).code(), Some(TypeCode::Bool));
        assert_eq!(d.code(), None);
    }
}
