//! Owned layout descriptors: read back from a segment, built from a compile-time [`Layout`], or
//! built at run time.
//!
//! Here: the types, [`Descriptor::from_layout`] and how a descriptor is written as Rust. `parse`:
//! descriptor bytes another process wrote, checked as hostile input; `build`: descriptors made at
//! run time (for bindings), their encoding and fingerprint; `diff`: how a descriptor found in a
//! segment differs from the one a program expects, field by field.

use std::fmt;

use crate::layout::{Kind, Layout};
use crate::TypeCode;

mod build;
mod diff;
mod parse;

pub use parse::ParseError;

/// An owned layout descriptor, as read from a segment header or built from a [`Layout`].
///
/// This is how a program without the Rust type (a tool, another language) learns what a segment
/// holds. [`Descriptor::parse`] treats its input as hostile: it checks every length and offset,
/// never allocates more than the input could describe, and never panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Type name (`""` for an array, the Rust name for a primitive).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes.
    pub align: u64,
    /// What the bytes are.
    pub kind: DescriptorKind,
}

/// The shape of a [`Descriptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorKind {
    /// One primitive.
    Primitive(TypeCode),
    /// `len` elements of `elem`.
    Array {
        /// The element.
        elem: Box<Descriptor>,
        /// The number of elements.
        len: u64,
    },
    /// A struct, fields in order.
    Struct {
        /// The fields.
        fields: Vec<DescriptorField>,
    },
}

/// One field of a struct [`Descriptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorField {
    /// The field's name.
    pub name: String,
    /// Offset in the struct.
    pub offset: u64,
    /// The field's type.
    pub ty: Descriptor,
}

impl Descriptor {
    /// The fingerprint of encoded descriptor bytes, as a segment header stores it (see
    /// `docs/FORMAT.md`): equal to [`Layout::fingerprint`] of the layout they encode.
    pub fn fingerprint_of(encoded: &[u8]) -> u64 {
        crate::layout::fingerprint_of_encoded(encoded)
    }

    /// The descriptor of a compile-time [`Layout`].
    pub fn from_layout(l: &Layout) -> Descriptor {
        let kind = match l.kind {
            Kind::Primitive(code) => DescriptorKind::Primitive(code),
            Kind::Array { elem, len } => DescriptorKind::Array {
                elem: Box::new(Descriptor::from_layout(elem)),
                len: len as u64,
            },
            Kind::Struct { fields } => DescriptorKind::Struct {
                fields: fields
                    .iter()
                    .map(|f| DescriptorField {
                        name: f.name.to_owned(),
                        offset: f.offset as u64,
                        ty: Descriptor::from_layout(f.layout),
                    })
                    .collect(),
            },
        };
        Descriptor {
            name: l.name.to_owned(),
            size: l.size as u64,
            align: l.align as u64,
            kind,
        }
    }
}

impl fmt::Display for Descriptor {
    /// Writes the type as Rust source spells it: `f64`, `[[f32; 4]; 4]`, `Stats`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DescriptorKind::Primitive(code) => write!(f, "{code}"),
            DescriptorKind::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            DescriptorKind::Struct { .. } => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Field;
    use crate::layout::TAG_ARRAY;

    static U32: Layout = Layout::primitive(TypeCode::U32);
    static F64: Layout = Layout::primitive(TypeCode::F64);
    static F32: Layout = Layout::primitive(TypeCode::F32);
    static ROW: Layout = Layout::array(&U32, 4);

    const fn s(name: &'static str, size: usize, fields: &'static [Field]) -> Layout {
        Layout {
            name,
            size,
            align: 8,
            kind: Kind::Struct { fields },
        }
    }

    static V1: Layout = s(
        "Stats",
        32,
        &[
            Field {
                name: "count",
                offset: 0,
                layout: &U32,
            },
            Field {
                name: "load",
                offset: 8,
                layout: &F64,
            },
            Field {
                name: "hist",
                offset: 16,
                layout: &ROW,
            },
        ],
    );

    fn explain(found: &Layout, want: &Layout) -> Option<String> {
        Descriptor::from_layout(found).first_difference(&Descriptor::from_layout(want))
    }

    #[test]
    fn owned_descriptors_encode_and_fingerprint_as_layouts_do() {
        for l in [&U32, &ROW, &V1] {
            let d = Descriptor::from_layout(l);
            assert_eq!(d.encode().unwrap(), l.encode());
            assert_eq!(d.fingerprint(), Some(l.fingerprint()));
        }
        let long = Descriptor {
            name: "x".repeat(256),
            ..Descriptor::from_layout(&V1)
        };
        assert!(long.encode().unwrap_err().contains("longer than 255"));
    }

    #[test]
    fn repr_c_places_fields_as_rust_does() {
        let u8_ = Descriptor::primitive(TypeCode::U8);
        let f64_ = Descriptor::primitive(TypeCode::F64);
        let row = Descriptor::array(Descriptor::primitive(TypeCode::U32), 4).unwrap();
        let d = Descriptor::repr_c(
            "Stats",
            vec![
                ("count".into(), Descriptor::primitive(TypeCode::U32)),
                ("load".into(), f64_.clone()),
                ("hist".into(), row),
            ],
            1,
        )
        .unwrap();
        assert_eq!(d, Descriptor::from_layout(&V1));
        let padded = Descriptor::repr_c("P", vec![("a".into(), u8_.clone())], 64).unwrap();
        assert_eq!((padded.size, padded.align), (64, 64));
        assert!(Descriptor::repr_c("P", vec![("a".into(), u8_)], 3).is_err());
        assert!(Descriptor::array(f64_, u64::MAX).is_none());
    }

    #[test]
    fn parse_reads_back_what_encode_wrote() {
        for l in [&U32, &ROW, &V1] {
            assert_eq!(
                Descriptor::parse(&l.encode()).unwrap(),
                Descriptor::from_layout(l)
            );
        }
        assert_eq!(Descriptor::from_layout(&V1).to_string(), "Stats");
        assert_eq!(Descriptor::from_layout(&ROW).to_string(), "[u32; 4]");
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_valid_descriptor() {
        let good = V1.encode();
        for n in 0..good.len() {
            assert!(
                Descriptor::parse(&good[..n]).is_err(),
                "prefix of {n} bytes parsed"
            );
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                if let Ok(d) = Descriptor::parse(&bad) {
                    // Whatever parses must be self-consistent.
                    assert!(d.size % d.align == 0);
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        // 40 nested one-element arrays of u8.
        let mut b = Vec::new();
        for _ in 0..40 {
            b.push(TAG_ARRAY);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(0);
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        b.extend_from_slice(&Layout::primitive(TypeCode::U8).encode());
        let e = Descriptor::parse(&b).unwrap_err();
        assert!(e.reason.contains("nested"), "{e}");
    }

    #[test]
    fn differences_name_the_field() {
        static CHANGED: Layout = s(
            "Stats",
            32,
            &[
                Field {
                    name: "count",
                    offset: 0,
                    layout: &U32,
                },
                Field {
                    name: "load",
                    offset: 8,
                    layout: &F32,
                },
                Field {
                    name: "hist",
                    offset: 16,
                    layout: &ROW,
                },
            ],
        );
        assert_eq!(
            explain(&CHANGED, &V1).unwrap(),
            "field `load`: segment has f32 at offset 8, this program expects f64 at offset 8"
        );
        static RENAMED: Layout = s("Other", 32, V1_FIELDS);
        static V1_FIELDS: &[Field] = match V1.kind {
            Kind::Struct { fields } => fields,
            _ => &[],
        };
        assert_eq!(
            explain(&RENAMED, &V1).unwrap(),
            "segment holds `Other`, this program expects `Stats`"
        );
        assert_eq!(explain(&V1, &V1), None);
    }
}
