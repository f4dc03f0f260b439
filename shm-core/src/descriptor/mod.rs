//! Owned layout descriptors: read back from a segment, built from a compile-time [`Layout`], or
//! built at run time.
//!
//! Here: the types, [`Descriptor::from_layout`] and how a descriptor is written as Rust. `parse`:
//! descriptor bytes another process wrote, checked as hostile input; `build`: descriptors made at
//! run time (for bindings), their encoding and fingerprint; `diff`: how a descriptor found in a
//! segment differs from the one a program expects, field by field and variant by variant.

use std::fmt;

use crate::layout::{Kind, Layout};
use crate::TypeCode;

mod build;
mod diff;
mod parse;
#[cfg(test)]
mod tests;

pub use parse::ParseError;

/// An owned layout descriptor, as read from a segment header or built from a [`Layout`].
///
/// This is how a program without the Rust type (a tool, another language) learns what a segment
/// holds. [`Descriptor::parse`] treats its input as hostile: it checks every length and offset,
/// never allocates more than the input could describe, and never panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Type name (`""` for an array or a text, the Rust name for a primitive).
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
    /// A fieldless enum: a number of `repr`'s width, each variant a value of it.
    Enum {
        /// The integer type the number is stored as.
        repr: TypeCode,
        /// The variants, in declaration order (at least one).
        variants: Vec<DescriptorVariant>,
        /// Index in `variants` of the default variant: what a number that is no variant reads
        /// as.
        default: usize,
    },
    /// UTF-8 text of at most `capacity` bytes: a `u32` length, then the bytes.
    Text {
        /// The most bytes the text can hold.
        capacity: u64,
    },
}

/// One variant of an enum [`Descriptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorVariant {
    /// The variant's name.
    pub name: String,
    /// Its value, in the range of the enum's repr.
    pub value: i128,
}

impl DescriptorKind {
    /// The variant of an enum whose value is `value`; `None` if this is not an enum or no
    /// variant has that value.
    pub fn variant_of(&self, value: i128) -> Option<&DescriptorVariant> {
        match self {
            DescriptorKind::Enum { variants, .. } => variants.iter().find(|v| v.value == value),
            _ => None,
        }
    }
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
            Kind::Enum {
                repr,
                variants,
                default,
            } => DescriptorKind::Enum {
                repr,
                variants: variants
                    .iter()
                    .map(|v| DescriptorVariant {
                        name: v.name.to_owned(),
                        value: v.value,
                    })
                    .collect(),
                default,
            },
            Kind::Text { capacity } => DescriptorKind::Text {
                capacity: capacity as u64,
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
    /// Writes the type as Rust source spells it: `f64`, `[[f32; 4]; 4]`, `Stats`, `State`,
    /// `Text<64>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DescriptorKind::Primitive(code) => write!(f, "{code}"),
            DescriptorKind::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            DescriptorKind::Struct { .. } | DescriptorKind::Enum { .. } => f.write_str(&self.name),
            DescriptorKind::Text { capacity } => write!(f, "Text<{capacity}>"),
        }
    }
}
