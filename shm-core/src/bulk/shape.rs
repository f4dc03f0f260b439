//! What a bulk copy may do with a type, read from its layout at compile time.

use core::mem::{align_of, size_of};

use super::BulkCopy;
use crate::cell::Width;
use crate::{Kind, Layout, TypeCode};

/// What a bulk copy may do with a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// Numbers only, no padding, every primitive this wide: the fast path can copy any byte
    /// range that starts and ends on a multiple of the width.
    Uniform(Width),
    /// Numbers only, no padding, of several widths: copied element by element.
    Mixed,
    /// A `bool`, a `char`, an enum, a text or padding: not a `BulkCopy` type, whatever its impl
    /// says.
    Invalid,
}

const fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Invalid, _) | (_, Shape::Invalid) => Shape::Invalid,
        (Shape::Uniform(x), Shape::Uniform(y)) if x as usize == y as usize => Shape::Uniform(x),
        _ => Shape::Mixed,
    }
}

const fn shape(layout: &Layout) -> Shape {
    match layout.kind {
        // A number that is no variant, bytes that are no UTF-8: not every bit pattern is a value.
        Kind::Primitive(TypeCode::Bool | TypeCode::Char)
        | Kind::Enum { .. }
        | Kind::Text { .. } => Shape::Invalid,
        Kind::Primitive(code) => Shape::Uniform(Width::of(code)),
        Kind::Array { elem, .. } => shape(elem),
        Kind::Struct { fields } => {
            if fields.is_empty() {
                return Shape::Invalid;
            }
            let mut end = 0;
            let mut acc = shape(fields[0].layout);
            let mut i = 0;
            while i < fields.len() {
                if fields[i].offset != end {
                    return Shape::Invalid;
                }
                acc = merge(acc, shape(fields[i].layout));
                end = fields[i].offset + fields[i].layout.size;
                i += 1;
            }
            if end != layout.size {
                return Shape::Invalid;
            }
            acc
        }
    }
}

/// The shape of `T`, proved at compile time to be a real `BulkCopy` shape.
pub(super) const fn checked_shape<T: BulkCopy>() -> Shape {
    assert!(
        size_of::<T>() == size_of::<T::Atomic>() && align_of::<T>() == align_of::<T::Atomic>(),
        "a BulkCopy type must have the size and alignment of its atomic twin"
    );
    let s = shape(&T::LAYOUT);
    assert!(
        !matches!(s, Shape::Invalid),
        "a BulkCopy type may hold only numbers (no bool, no char) and no padding"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Field, SharedLayout};

    #[test]
    fn shapes_of_layouts() {
        assert_eq!(shape(&u8::LAYOUT), Shape::Uniform(Width::One));
        assert_eq!(shape(&<[[f32; 3]; 2]>::LAYOUT), Shape::Uniform(Width::Four));
        assert_eq!(shape(&bool::LAYOUT), Shape::Invalid);
        assert_eq!(shape(&<[char; 2]>::LAYOUT), Shape::Invalid);
        static U64: Layout = Layout::primitive(TypeCode::U64);
        static U32: Layout = Layout::primitive(TypeCode::U32);
        let strukt = |fields: &'static [Field], size| Layout {
            name: "S",
            size,
            align: 8,
            kind: Kind::Struct { fields },
        };
        let field = |offset, layout| Field {
            name: "f",
            offset,
            layout,
        };
        let tight: &'static [Field] = Box::leak(Box::new([field(0, &U64), field(8, &U64)]));
        assert_eq!(shape(&strukt(tight, 16)), Shape::Uniform(Width::Eight));
        let mixed: &'static [Field] =
            Box::leak(Box::new([field(0, &U64), field(8, &U32), field(12, &U32)]));
        assert_eq!(shape(&strukt(mixed, 16)), Shape::Mixed);
        let gap: &'static [Field] = Box::leak(Box::new([field(0, &U32), field(8, &U64)]));
        assert_eq!(shape(&strukt(gap, 16)), Shape::Invalid);
        let tail: &'static [Field] = Box::leak(Box::new([field(0, &U64), field(8, &U32)]));
        assert_eq!(shape(&strukt(tail, 16)), Shape::Invalid);
    }
}
