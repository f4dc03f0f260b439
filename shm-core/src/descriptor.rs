//! Descriptors read back from a segment: parsed from bytes another process wrote, and compared
//! with what this program expects to explain a mismatch field by field.

use std::fmt;

use crate::layout::{
    Kind, Layout, MAX_DEPTH, MAX_DESCRIPTOR_LEN, MAX_NAME_LEN, MAX_TEXT_CAPACITY, TAG_ARRAY,
    TAG_ENUM, TAG_PRIMITIVE, TAG_STRUCT, TAG_TEXT,
};
use crate::TypeCode;

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

/// Why descriptor bytes could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the descriptor where the problem was found.
    pub at: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "descriptor byte {}: {}", self.at, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// The fewest bytes one node can take: tag, size, align, name length, and a primitive's code.
const MIN_NODE_LEN: usize = 1 + 8 + 8 + 1 + 1;
/// The fewest bytes one struct field can take: name length, offset, and a node.
const MIN_FIELD_LEN: usize = 1 + 8 + MIN_NODE_LEN;
/// The fewest bytes one enum variant can take: name length and value.
const MIN_VARIANT_LEN: usize = 1 + 8;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            at: self.pos,
            reason: reason.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        match self.bytes.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.fail(format!("needs {n} more bytes, the descriptor ends")),
        }
    }

    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, ParseError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn name(&mut self) -> Result<String, ParseError> {
        let len = self.u8()? as usize;
        let at = self.pos;
        let raw = self.take(len)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(ParseError {
                at,
                reason: "a name is not UTF-8".into(),
            }),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn node(&mut self, depth: usize) -> Result<Descriptor, ParseError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("nested more than {MAX_DEPTH} deep"));
        }
        let at = self.pos;
        let tag = self.u8()?;
        let size = self.u64()?;
        let align = self.u64()?;
        let name = self.name()?;
        if !align.is_power_of_two() {
            return self.fail(format!("alignment {align} is not a power of two"));
        }
        if size % align != 0 {
            return self.fail(format!(
                "size {size} is not a multiple of alignment {align}"
            ));
        }
        let kind = match tag {
            TAG_PRIMITIVE => {
                let code_at = self.pos;
                let byte = self.u8()?;
                let Some(code) = TypeCode::from_byte(byte) else {
                    return Err(ParseError {
                        at: code_at,
                        reason: format!("unknown type code {byte:#04x}"),
                    });
                };
                if size != code.size() as u64 || align != code.size() as u64 {
                    return self.fail(format!(
                        "{code} must have size and alignment {}, not {size} and {align}",
                        code.size()
                    ));
                }
                DescriptorKind::Primitive(code)
            }
            TAG_ARRAY => {
                let len = self.u64()?;
                let elem = self.node(depth + 1)?;
                if elem.size.checked_mul(len) != Some(size) || elem.align != align {
                    return self.fail(format!(
                        "an array of {len} elements of size {} and alignment {} cannot have size {size} and alignment {align}",
                        elem.size, elem.align
                    ));
                }
                DescriptorKind::Array {
                    elem: Box::new(elem),
                    len,
                }
            }
            TAG_STRUCT => {
                let count = self.u32()? as usize;
                if count.saturating_mul(MIN_FIELD_LEN) > self.remaining() {
                    return self.fail(format!("{count} fields cannot fit in what remains"));
                }
                let mut fields: Vec<DescriptorField> = Vec::with_capacity(count);
                let mut end = 0u64;
                for _ in 0..count {
                    let name = self.name()?;
                    let offset = self.u64()?;
                    let ty = self.node(depth + 1)?;
                    let Some(field_end) = offset.checked_add(ty.size).filter(|&e| e <= size) else {
                        return self.fail(format!("field `{name}` does not fit in the struct"));
                    };
                    if offset < end || offset % ty.align != 0 || ty.align > align {
                        return self.fail(format!(
                            "field `{name}` at offset {offset} overlaps another or is misaligned"
                        ));
                    }
                    if fields.iter().any(|f| f.name == name) {
                        return self.fail(format!("field `{name}` appears twice"));
                    }
                    end = field_end;
                    fields.push(DescriptorField { name, offset, ty });
                }
                DescriptorKind::Struct { fields }
            }
            TAG_ENUM => self.enumeration(size, align)?,
            TAG_TEXT => {
                let capacity = self.u64()?;
                if capacity > MAX_TEXT_CAPACITY as u64 {
                    return self.fail(format!(
                        "a text of capacity {capacity} is longer than its u32 length can count"
                    ));
                }
                let want = Layout::text(capacity as usize);
                if size != want.size as u64 || align != want.align as u64 {
                    return self.fail(format!(
                        "a text of capacity {capacity} must have size {} and alignment {}, not {size} and {align}",
                        want.size, want.align
                    ));
                }
                DescriptorKind::Text { capacity }
            }
            other => {
                return Err(ParseError {
                    at,
                    reason: format!("unknown node tag {other:#04x}"),
                })
            }
        };
        Ok(Descriptor {
            name,
            size,
            align,
            kind,
        })
    }
}

impl Reader<'_> {
    /// The body of an enum node of `size` and `align`.
    fn enumeration(&mut self, size: u64, align: u64) -> Result<DescriptorKind, ParseError> {
        let code_at = self.pos;
        let byte = self.u8()?;
        let Some(repr) = TypeCode::from_byte(byte).filter(|c| c.is_integer()) else {
            return Err(ParseError {
                at: code_at,
                reason: format!("an enum's repr must be an integer type code, not {byte:#04x}"),
            });
        };
        if size != repr.size() as u64 || align != repr.size() as u64 {
            return self.fail(format!(
                "an enum of repr {repr} must have size and alignment {}, not {size} and {align}",
                repr.size()
            ));
        }
        let default = self.u32()? as usize;
        let count = self.u32()? as usize;
        if count == 0 {
            return self.fail("an enum has no variants");
        }
        if count.saturating_mul(MIN_VARIANT_LEN) > self.remaining() {
            return self.fail(format!("{count} variants cannot fit in what remains"));
        }
        if default >= count {
            return self.fail(format!(
                "the default variant {default} is not one of the {count} variants"
            ));
        }
        let mut variants: Vec<DescriptorVariant> = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.name()?;
            let raw = self.u64()?;
            let value = match repr {
                TypeCode::I8 | TypeCode::I16 | TypeCode::I32 | TypeCode::I64 => {
                    i128::from(raw as i64)
                }
                _ => i128::from(raw),
            };
            if !repr.holds(value) {
                return self.fail(format!(
                    "variant `{name}` has the value {raw:#x}, which is no {repr}"
                ));
            }
            if variants.iter().any(|v| v.name == name) {
                return self.fail(format!("variant `{name}` appears twice"));
            }
            if let Some(twin) = variants.iter().find(|v| v.value == value) {
                return self.fail(format!(
                    "variants `{}` and `{name}` have the same value {value}",
                    twin.name
                ));
            }
            variants.push(DescriptorVariant { name, value });
        }
        Ok(DescriptorKind::Enum {
            repr,
            variants,
            default,
        })
    }
}

impl Descriptor {
    /// Parses descriptor bytes as written in a segment header (see `docs/FORMAT.md`).
    ///
    /// Checks that the bytes are exactly one well-formed node and that every size, alignment and
    /// offset is consistent, so a caller can trust them as far as they go.
    pub fn parse(bytes: &[u8]) -> Result<Descriptor, ParseError> {
        if bytes.len() > MAX_DESCRIPTOR_LEN {
            return Err(ParseError {
                at: 0,
                reason: format!(
                    "{} bytes, more than the {MAX_DESCRIPTOR_LEN} allowed",
                    bytes.len()
                ),
            });
        }
        let mut r = Reader { bytes, pos: 0 };
        let d = r.node(0)?;
        if r.remaining() != 0 {
            return r.fail(format!("{} bytes after the end", r.remaining()));
        }
        Ok(d)
    }

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

    /// The first way in which `self` (found in a segment) differs from `expected`, in words, or
    /// `None` if they are the same.
    pub fn first_difference(&self, expected: &Descriptor) -> Option<String> {
        diff(self, expected, "")
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

fn field_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn diff(found: &Descriptor, want: &Descriptor, path: &str) -> Option<String> {
    use DescriptorKind as K;
    let at = |what: String| {
        if path.is_empty() {
            what
        } else {
            format!("field `{path}`: {what}")
        }
    };
    match (&found.kind, &want.kind) {
        (K::Primitive(a), K::Primitive(b)) if a == b => None,
        (K::Array { elem: fe, len: fl }, K::Array { elem: we, len: wl }) if fl == wl => {
            diff(fe, we, &format!("{path}[]"))
        }
        (K::Struct { fields: ff }, K::Struct { fields: wf }) if found.name == want.name => {
            for (i, w) in wf.iter().enumerate() {
                let fpath = field_path(path, &w.name);
                let Some(f) = ff.get(i) else {
                    return Some(format!(
                        "field `{fpath}`: missing from the segment (this program expects {} at offset {})",
                        w.ty, w.offset
                    ));
                };
                if f.name != w.name {
                    let wanted_elsewhere = ff.iter().any(|x| x.name == w.name);
                    let found_elsewhere = wf.iter().any(|x| x.name == f.name);
                    return Some(match (wanted_elsewhere, found_elsewhere) {
                        (true, true) => format!(
                            "fields in another order: at offset {} the segment has `{}`, this program expects `{fpath}`",
                            f.offset,
                            field_path(path, &f.name)
                        ),
                        (false, _) => format!(
                            "field `{fpath}`: missing from the segment (this program expects {} at offset {}; the segment has `{}` there)",
                            w.ty, w.offset, f.name
                        ),
                        (true, false) => format!(
                            "field `{}`: the segment has {} at offset {}, which this program does not expect",
                            field_path(path, &f.name),
                            f.ty,
                            f.offset
                        ),
                    });
                }
                if f.offset != w.offset || f.ty.to_string() != w.ty.to_string() {
                    return Some(format!(
                        "field `{fpath}`: segment has {} at offset {}, this program expects {} at offset {}",
                        f.ty, f.offset, w.ty, w.offset
                    ));
                }
                if let Some(d) = diff(&f.ty, &w.ty, &fpath) {
                    return Some(d);
                }
            }
            if let Some(extra) = ff.get(wf.len()) {
                return Some(format!(
                    "field `{}`: the segment has {} at offset {}, which this program does not expect",
                    field_path(path, &extra.name),
                    extra.ty,
                    extra.offset
                ));
            }
            (found.size != want.size || found.align != want.align).then(|| {
                at(format!(
                    "`{}` has size {} and alignment {} in the segment, this program expects size {} and alignment {}",
                    want.name, found.size, found.align, want.size, want.align
                ))
            })
        }
        (
            K::Enum {
                repr: fr,
                variants: fv,
                default: fd,
            },
            K::Enum {
                repr: wr,
                variants: wv,
                default: wd,
            },
        ) if found.name == want.name => diff_enum(&want.name, (fr, fv, *fd), (wr, wv, *wd)).map(at),
        (K::Text { capacity: a }, K::Text { capacity: b }) if a == b => None,
        (K::Struct { .. }, K::Struct { .. }) | (K::Enum { .. }, K::Enum { .. }) => {
            Some(at(format!(
                "segment holds `{}`, this program expects `{}`",
                found.name, want.name
            )))
        }
        _ => Some(at(format!(
            "segment holds {found}, this program expects {want}"
        ))),
    }
}

/// How an enum found in a segment differs from the one expected (of the same name), naming the
/// first variant that differs; `None` if they are the same.
fn diff_enum(
    name: &str,
    (found_repr, found, found_default): (&TypeCode, &[DescriptorVariant], usize),
    (want_repr, want, want_default): (&TypeCode, &[DescriptorVariant], usize),
) -> Option<String> {
    if found_repr != want_repr {
        return Some(format!(
            "`{name}` is stored as {found_repr} in the segment, this program stores it as {want_repr}"
        ));
    }
    for w in want {
        match found.iter().find(|f| f.name == w.name) {
            None => {
                return Some(format!(
                    "variant `{}` of `{name}` ({}) is missing from the segment",
                    w.name, w.value
                ))
            }
            Some(f) if f.value != w.value => {
                return Some(format!(
                    "variant `{}` of `{name}` is {} in the segment, {} in this program",
                    w.name, f.value, w.value
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found
        .iter()
        .find(|f| !want.iter().any(|w| w.name == f.name))
    {
        return Some(format!(
            "the segment's `{name}` has variant `{}` ({}), which this program does not know",
            extra.name, extra.value
        ));
    }
    if let Some((f, w)) = found.iter().zip(want).find(|(f, w)| f.name != w.name) {
        return Some(format!(
            "the variants of `{name}` are in another order: the segment has `{}` where this program has `{}`",
            f.name, w.name
        ));
    }
    let default_of = |variants: &[DescriptorVariant], i: usize| {
        variants.get(i).map_or_else(String::new, |v| v.name.clone())
    };
    (found_default != want_default).then(|| {
        format!(
            "the default variant of `{name}` is `{}` in the segment, `{}` in this program",
            default_of(found, found_default),
            default_of(want, want_default)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Field, Variant};

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
        for l in [&U32, &ROW, &V1, &STATE, &TEXT, &WORKER] {
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
    fn hostile_counts_do_not_allocate() {
        let mut b = vec![TAG_STRUCT];
        b.extend_from_slice(&8u64.to_le_bytes());
        b.extend_from_slice(&8u64.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = Descriptor::parse(&b).unwrap_err();
        assert!(e.reason.contains("cannot fit"), "{e}");
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

    static STATE: Layout = Layout {
        name: "State",
        size: 1,
        align: 1,
        kind: Kind::Enum {
            repr: TypeCode::U8,
            variants: &[
                Variant {
                    name: "Idle",
                    value: 0,
                },
                Variant {
                    name: "Busy",
                    value: 1,
                },
                Variant {
                    name: "Stopping",
                    value: 2,
                },
            ],
            default: 0,
        },
    };
    static TEXT: Layout = Layout::text(64);
    static WORKER: Layout = Layout {
        name: "Worker",
        size: 72,
        align: 4,
        kind: Kind::Struct {
            fields: &[
                Field {
                    name: "state",
                    offset: 0,
                    layout: &STATE,
                },
                Field {
                    name: "client",
                    offset: 4,
                    layout: &TEXT,
                },
            ],
        },
    };

    /// An enum node named `E` of the type code `repr` (its size if it is one, else 1).
    fn enum_bytes(repr: u8, default: u32, variants: &[(&str, u64)]) -> Vec<u8> {
        let size = TypeCode::from_byte(repr).map_or(1, |c| c.size() as u64);
        let mut b = vec![TAG_ENUM];
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(b"\x01E");
        b.push(repr);
        b.extend_from_slice(&default.to_le_bytes());
        b.extend_from_slice(&(variants.len() as u32).to_le_bytes());
        for (name, value) in variants {
            b.push(name.len() as u8);
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b
    }

    #[test]
    fn enums_and_texts_parse_back_and_display_as_rust_spells_them() {
        let d = Descriptor::parse(&WORKER.encode()).unwrap();
        assert_eq!(d, Descriptor::from_layout(&WORKER));
        let DescriptorKind::Struct { fields } = &d.kind else {
            panic!("{d:?}")
        };
        assert_eq!(fields[0].ty.to_string(), "State");
        assert_eq!(fields[1].ty.to_string(), "Text<64>");
        assert_eq!(
            fields[0].ty.kind.variant_of(2).map(|v| v.name.as_str()),
            Some("Stopping")
        );
        assert_eq!(fields[0].ty.kind.variant_of(3), None);
        // Negative values of a signed repr, and the largest of an unsigned one, come back.
        let signed = enum_bytes(b'q', 1, &[("Min", i64::MIN as u64), ("Neg", u64::MAX)]);
        let DescriptorKind::Enum { variants, .. } = Descriptor::parse(&signed).unwrap().kind else {
            panic!()
        };
        assert_eq!(
            (variants[0].value, variants[1].value),
            (i64::MIN.into(), -1)
        );
        let unsigned = enum_bytes(b'Q', 0, &[("Max", u64::MAX)]);
        let DescriptorKind::Enum { variants, .. } = Descriptor::parse(&unsigned).unwrap().kind
        else {
            panic!()
        };
        assert_eq!(variants[0].value, u64::MAX.into());
    }

    #[test]
    fn hostile_enums_and_texts_are_refused_with_the_reason() {
        let text = |capacity: u64, size: u64, align: u64| {
            let mut b = vec![TAG_TEXT];
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&align.to_le_bytes());
            b.push(0);
            b.extend_from_slice(&capacity.to_le_bytes());
            b
        };
        let mut wrong_size = enum_bytes(b'B', 0, &[("A", 0)]);
        wrong_size[1] = 2;
        wrong_size[9] = 2;
        for (bytes, why) in [
            (enum_bytes(b'B', 0, &[]), "no variants"),
            (
                enum_bytes(b'B', 2, &[("A", 0), ("B", 1)]),
                "default variant 2",
            ),
            (
                enum_bytes(b'B', 0, &[("A", 0), ("A", 1)]),
                "`A` appears twice",
            ),
            (enum_bytes(b'B', 0, &[("A", 0), ("B", 0)]), "same value 0"),
            (enum_bytes(b'B', 0, &[("A", 256)]), "0x100, which is no u8"),
            // -1 of an i8 must be sign-extended.
            (enum_bytes(b'b', 0, &[("A", 0xff)]), "0xff, which is no i8"),
            (enum_bytes(b'd', 0, &[("A", 0)]), "integer type code"),
            (enum_bytes(b'?', 0, &[("A", 0)]), "integer type code"),
            (wrong_size, "must have size and alignment 1"),
            (text(5, 16, 4), "must have size 12 and alignment 4"),
            (text(5, 16, 8), "must have size 12 and alignment 4"),
            (text(1 << 32, 1 << 32, 4), "longer than its u32 length"),
        ] {
            let e = Descriptor::parse(&bytes).unwrap_err();
            assert!(e.reason.contains(why), "{e} does not say {why:?}");
        }
        let mut huge = enum_bytes(b'B', 0, &[]);
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Descriptor::parse(&huge)
            .unwrap_err()
            .reason
            .contains("cannot fit"));
    }

    #[test]
    fn enums_and_texts_built_at_run_time_are_the_derives() {
        let state = Descriptor::enumeration(
            "State",
            TypeCode::U8,
            vec![
                ("Idle".into(), 0),
                ("Busy".into(), 1),
                ("Stopping".into(), 2),
            ],
            0,
        )
        .unwrap();
        assert_eq!(state, Descriptor::from_layout(&STATE));
        assert_eq!(
            Descriptor::text(64).unwrap(),
            Descriptor::from_layout(&TEXT)
        );
        for (repr, variants, default, why) in [
            (
                TypeCode::F32,
                vec![("A".into(), 0)],
                0,
                "must be an integer",
            ),
            (TypeCode::U8, vec![], 0, "has no variants"),
            (TypeCode::U8, vec![("A".into(), 0)], 1, "default variant 1"),
            (
                TypeCode::I8,
                vec![("A".into(), 128)],
                0,
                "out of range for i8",
            ),
            (
                TypeCode::U8,
                vec![("A".into(), 0), ("A".into(), 1)],
                0,
                "appears twice",
            ),
            (
                TypeCode::U8,
                vec![("A".into(), 1), ("B".into(), 1)],
                0,
                "same value 1",
            ),
        ] {
            let e = Descriptor::enumeration("E", repr, variants, default).unwrap_err();
            assert!(e.contains(why), "{e} does not say {why:?}");
        }
        assert!(Descriptor::text(u64::from(u32::MAX) + 1).is_err());
    }

    #[test]
    fn enum_differences_name_the_variant() {
        let variants = |v: &'static [Variant], default| Layout {
            kind: Kind::Enum {
                repr: TypeCode::U8,
                variants: v,
                default,
            },
            ..STATE
        };
        static RENUMBERED: [Variant; 3] = [
            Variant {
                name: "Idle",
                value: 0,
            },
            Variant {
                name: "Busy",
                value: 5,
            },
            Variant {
                name: "Stopping",
                value: 2,
            },
        ];
        assert_eq!(
            explain(&variants(&RENUMBERED, 0), &STATE).unwrap(),
            "variant `Busy` of `State` is 5 in the segment, 1 in this program"
        );
        static FEWER: [Variant; 2] = [
            Variant {
                name: "Idle",
                value: 0,
            },
            Variant {
                name: "Busy",
                value: 1,
            },
        ];
        assert_eq!(
            explain(&variants(&FEWER, 0), &STATE).unwrap(),
            "variant `Stopping` of `State` (2) is missing from the segment"
        );
        assert_eq!(
            explain(&STATE, &variants(&FEWER, 0)).unwrap(),
            "the segment's `State` has variant `Stopping` (2), which this program does not know"
        );
        assert_eq!(
            explain(&variants(&FEWER, 1), &variants(&FEWER, 0)).unwrap(),
            "the default variant of `State` is `Busy` in the segment, `Idle` in this program"
        );
        // In a struct, the field's path comes first.
        static OTHER_WORKER: Layout = Layout {
            kind: Kind::Struct {
                fields: &[
                    Field {
                        name: "state",
                        offset: 0,
                        layout: &FEWER_STATE,
                    },
                    Field {
                        name: "client",
                        offset: 4,
                        layout: &TEXT,
                    },
                ],
            },
            ..WORKER
        };
        static FEWER_STATE: Layout = Layout {
            kind: Kind::Enum {
                repr: TypeCode::U8,
                variants: &FEWER,
                default: 0,
            },
            ..STATE
        };
        assert_eq!(
            explain(&OTHER_WORKER, &WORKER).unwrap(),
            "field `state`: variant `Stopping` of `State` (2) is missing from the segment"
        );
        static SHORT_TEXT: Layout = Layout::text(32);
        assert_eq!(
            explain(&SHORT_TEXT, &TEXT).unwrap(),
            "segment holds Text<32>, this program expects Text<64>"
        );
        assert_eq!(explain(&WORKER, &WORKER), None);
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
