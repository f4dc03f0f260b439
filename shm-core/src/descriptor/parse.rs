//! Parsing descriptor bytes another process wrote, as hostile input: every length and offset
//! checked, no allocation sized by what the bytes claim, no panic.

use std::fmt;

use super::{Descriptor, DescriptorField, DescriptorKind, DescriptorVariant};
use crate::layout::{
    Layout, MAX_DEPTH, MAX_DESCRIPTOR_LEN, MAX_TEXT_CAPACITY, TAG_ARRAY, TAG_ENUM, TAG_PRIMITIVE,
    TAG_STRUCT, TAG_TEXT,
};
use crate::TypeCode;

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
}
