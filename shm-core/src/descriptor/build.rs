//! Descriptors built at run time, for a program that has no Rust type (a binding for another
//! language): primitives, arrays, `#[repr(C)]` structs, enums and texts, and their encoding and
//! fingerprint.

use super::{Descriptor, DescriptorField, DescriptorKind, DescriptorVariant};
use crate::layout::{
    Layout, MAX_DEPTH, MAX_DESCRIPTOR_LEN, MAX_NAME_LEN, MAX_TEXT_CAPACITY, TAG_ARRAY, TAG_ENUM,
    TAG_PRIMITIVE, TAG_STRUCT, TAG_TEXT,
};
use crate::TypeCode;

impl Descriptor {
    /// The descriptor of one primitive (`f64` for [`TypeCode::F64`]).
    pub fn primitive(code: TypeCode) -> Descriptor {
        Descriptor {
            name: code.rust_name().to_owned(),
            size: code.size() as u64,
            align: code.size() as u64,
            kind: DescriptorKind::Primitive(code),
        }
    }

    /// The descriptor of `[elem; len]`; `None` if its size overflows.
    pub fn array(elem: Descriptor, len: u64) -> Option<Descriptor> {
        Some(Descriptor {
            name: String::new(),
            size: elem.size.checked_mul(len)?,
            align: elem.align,
            kind: DescriptorKind::Array {
                elem: Box::new(elem),
                len,
            },
        })
    }

    /// The descriptor of a `#[repr(C)]` struct whose fields are `fields`, in order, with
    /// `min_align` N for `#[repr(C, align(N))]` (else 1): each field placed at the next multiple
    /// of its alignment, the size rounded up to the struct's alignment, as Rust lays the struct out and
    /// as `#[derive(SharedLayout)]` describes it. This is how a program without the Rust type (a
    /// binding for another language) describes a struct it creates.
    ///
    /// Fails, saying why, if `min_align` is not a power of two, a field's alignment is not, or
    /// the size overflows.
    ///
    /// ```
    /// use shm_core::{Descriptor, SharedLayout, TypeCode};
    ///
    /// #[derive(SharedLayout)]
    /// #[repr(C)]
    /// struct Point {
    ///     x: u8,
    ///     y: f64,
    /// }
    ///
    /// let d = Descriptor::repr_c(
    ///     "Point",
    ///     vec![
    ///         ("x".into(), Descriptor::primitive(TypeCode::U8)),
    ///         ("y".into(), Descriptor::primitive(TypeCode::F64)),
    ///     ],
    ///     1,
    /// )?;
    /// assert_eq!(d, Descriptor::from_layout(&Point::LAYOUT));
    /// assert_eq!(d.fingerprint(), Some(Point::FINGERPRINT));
    /// # Ok::<(), String>(())
    /// ```
    pub fn repr_c(
        name: &str,
        fields: Vec<(String, Descriptor)>,
        min_align: u64,
    ) -> Result<Descriptor, String> {
        if !min_align.is_power_of_two() {
            return Err(format!(
                "a struct's alignment must be a power of two, not {min_align}"
            ));
        }
        let overflow = || format!("struct `{name}` is too large");
        let mut align = min_align;
        let mut end = 0u64;
        let mut placed = Vec::with_capacity(fields.len());
        for (field, ty) in fields {
            if !ty.align.is_power_of_two() {
                return Err(format!(
                    "field `{field}` has alignment {}, not a power of two",
                    ty.align
                ));
            }
            align = align.max(ty.align);
            let offset = end
                .checked_next_multiple_of(ty.align)
                .ok_or_else(overflow)?;
            end = offset.checked_add(ty.size).ok_or_else(overflow)?;
            placed.push(DescriptorField {
                name: field,
                offset,
                ty,
            });
        }
        Ok(Descriptor {
            name: name.to_owned(),
            size: end.checked_next_multiple_of(align).ok_or_else(overflow)?,
            align,
            kind: DescriptorKind::Struct { fields: placed },
        })
    }

    /// The descriptor of a fieldless enum stored as `repr` (an integer code), as
    /// `#[derive(SharedLayout)]` describes one: `variants` are `(name, value)` in declaration
    /// order, `default` the index of the `#[default]` one.
    ///
    /// Fails, saying why, if `repr` is not an integer code, there is no variant, a value is out of
    /// `repr`'s range, a name or a value appears twice, or `default` is not a variant's index.
    ///
    /// ```
    /// use shm_core::{Descriptor, SharedLayout, TypeCode};
    ///
    /// #[derive(SharedLayout, Default)]
    /// #[repr(i8)]
    /// enum Level {
    ///     Low = -1,
    ///     #[default]
    ///     High = 1,
    /// }
    ///
    /// let d = Descriptor::enumeration(
    ///     "Level",
    ///     TypeCode::I8,
    ///     vec![("Low".into(), -1), ("High".into(), 1)],
    ///     1,
    /// )?;
    /// assert_eq!(d, Descriptor::from_layout(&Level::LAYOUT));
    /// assert_eq!(d.fingerprint(), Some(Level::FINGERPRINT));
    /// # Ok::<(), String>(())
    /// ```
    pub fn enumeration(
        name: &str,
        repr: TypeCode,
        variants: Vec<(String, i128)>,
        default: usize,
    ) -> Result<Descriptor, String> {
        let Some((min, max)) = repr.int_range() else {
            return Err(format!(
                "enum `{name}`: its repr must be an integer type (i8 to u64), not {repr}"
            ));
        };
        if variants.is_empty() {
            return Err(format!("enum `{name}` has no variants"));
        }
        if default >= variants.len() {
            return Err(format!(
                "enum `{name}`: the default variant {default} is not one of its {} variants",
                variants.len()
            ));
        }
        let mut checked: Vec<DescriptorVariant> = Vec::with_capacity(variants.len());
        for (vname, value) in variants {
            if value < min || value > max {
                return Err(format!(
                    "enum `{name}`: variant `{vname}` = {value} is out of range for {repr} ({min} to {max})"
                ));
            }
            if checked.iter().any(|v| v.name == vname) {
                return Err(format!("enum `{name}`: variant `{vname}` appears twice"));
            }
            if let Some(twin) = checked.iter().find(|v| v.value == value) {
                return Err(format!(
                    "enum `{name}`: variants `{}` and `{vname}` have the same value {value}",
                    twin.name
                ));
            }
            checked.push(DescriptorVariant { name: vname, value });
        }
        Ok(Descriptor {
            name: name.to_owned(),
            size: repr.size() as u64,
            align: repr.size() as u64,
            kind: DescriptorKind::Enum {
                repr,
                variants: checked,
                default,
            },
        })
    }

    /// The descriptor of [`Text<capacity>`](crate::Text); fails if `capacity` is more than a
    /// `u32` length counts.
    pub fn text(capacity: u64) -> Result<Descriptor, String> {
        if capacity > MAX_TEXT_CAPACITY as u64 {
            return Err(format!(
                "a text holds at most {MAX_TEXT_CAPACITY} bytes (its length is a u32), not {capacity}"
            ));
        }
        let l = Layout::text(capacity as usize);
        Ok(Descriptor {
            name: String::new(),
            size: l.size as u64,
            align: l.align as u64,
            kind: DescriptorKind::Text { capacity },
        })
    }

    /// The descriptor bytes as a segment header holds them (see `docs/FORMAT.md`): for a
    /// descriptor made by [`from_layout`](Self::from_layout), exactly [`Layout::encode`]'s bytes.
    ///
    /// Fails, saying why, if a name is longer than 255 bytes, the nesting is deeper than 32, or
    /// the result would be larger than 64 KiB. What it returns is not checked for consistency:
    /// [`parse`](Self::parse) does that.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        fn name(out: &mut Vec<u8>, name: &str) -> Result<(), String> {
            let len = u8::try_from(name.len()).map_err(|_| {
                format!(
                    "a type, field or variant name is longer than {MAX_NAME_LEN} bytes: {name:?}"
                )
            })?;
            out.push(len);
            out.extend_from_slice(name.as_bytes());
            Ok(())
        }
        fn node(out: &mut Vec<u8>, d: &Descriptor, depth: usize) -> Result<(), String> {
            if depth > MAX_DEPTH {
                return Err(format!(
                    "a layout nests arrays and structs more than {MAX_DEPTH} deep"
                ));
            }
            if out.len() > MAX_DESCRIPTOR_LEN {
                return Err(format!(
                    "the descriptor is larger than {MAX_DESCRIPTOR_LEN} bytes"
                ));
            }
            let tag = match d.kind {
                DescriptorKind::Primitive(_) => TAG_PRIMITIVE,
                DescriptorKind::Array { .. } => TAG_ARRAY,
                DescriptorKind::Struct { .. } => TAG_STRUCT,
                DescriptorKind::Enum { .. } => TAG_ENUM,
                DescriptorKind::Text { .. } => TAG_TEXT,
            };
            out.push(tag);
            out.extend_from_slice(&d.size.to_le_bytes());
            out.extend_from_slice(&d.align.to_le_bytes());
            name(out, &d.name)?;
            match &d.kind {
                DescriptorKind::Primitive(code) => out.push(code.as_char() as u8),
                DescriptorKind::Array { elem, len } => {
                    out.extend_from_slice(&len.to_le_bytes());
                    node(out, elem, depth + 1)?;
                }
                DescriptorKind::Struct { fields } => {
                    let count = u32::try_from(fields.len())
                        .map_err(|_| "a struct has too many fields".to_owned())?;
                    out.extend_from_slice(&count.to_le_bytes());
                    for f in fields {
                        name(out, &f.name)?;
                        out.extend_from_slice(&f.offset.to_le_bytes());
                        node(out, &f.ty, depth + 1)?;
                    }
                }
                DescriptorKind::Enum {
                    repr,
                    variants,
                    default,
                } => {
                    let count = u32::try_from(variants.len())
                        .map_err(|_| "an enum has too many variants".to_owned())?;
                    let default = u32::try_from(*default)
                        .map_err(|_| "an enum's default is not one of its variants".to_owned())?;
                    out.push(repr.as_char() as u8);
                    out.extend_from_slice(&default.to_le_bytes());
                    out.extend_from_slice(&count.to_le_bytes());
                    for v in variants {
                        name(out, &v.name)?;
                        // Two's complement, 64 bits: sign-extended for a signed repr.
                        out.extend_from_slice(&(v.value as u64).to_le_bytes());
                    }
                }
                DescriptorKind::Text { capacity } => {
                    out.extend_from_slice(&capacity.to_le_bytes());
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        node(&mut out, self, 0)?;
        if out.len() > MAX_DESCRIPTOR_LEN {
            return Err(format!(
                "the descriptor is {} bytes, larger than {MAX_DESCRIPTOR_LEN}",
                out.len()
            ));
        }
        Ok(out)
    }

    /// The 64-bit layout fingerprint, as a segment header holds it: equal to
    /// [`Layout::fingerprint`] for a descriptor made by [`from_layout`](Self::from_layout).
    /// `None` if the descriptor cannot be encoded (see [`encode`](Self::encode)).
    pub fn fingerprint(&self) -> Option<u64> {
        self.encode().ok().map(|b| Self::fingerprint_of(&b))
    }
}
