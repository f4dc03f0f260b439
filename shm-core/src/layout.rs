//! Layout descriptors: what a type looks like in a segment, and its fingerprint.
//!
//! Every [`SharedLayout`](crate::SharedLayout) type has a `const LAYOUT: Layout`. The descriptor is
//! encoded into each segment's header (see `docs/FORMAT.md`), and its 64-bit fingerprint, computed
//! by a `const fn` from exactly those bytes, is what a process compares when it attaches.

use crate::TypeCode;

/// Version of the segment format, the header and the descriptor encoding together.
pub const FORMAT_VERSION: u32 = 3;

/// Deepest nesting of arrays and structs a descriptor may have.
pub const MAX_DEPTH: usize = 32;

/// Longest name (of a type or a field), in bytes, a descriptor can hold.
pub const MAX_NAME_LEN: usize = 255;

/// Largest encoded descriptor, in bytes.
pub const MAX_DESCRIPTOR_LEN: usize = 64 * 1024;

/// Tag byte of a primitive node in the encoding.
pub(crate) const TAG_PRIMITIVE: u8 = b'P';
/// Tag byte of an array node.
pub(crate) const TAG_ARRAY: u8 = b'A';
/// Tag byte of a struct node.
pub(crate) const TAG_STRUCT: u8 = b'S';
/// Tag byte of an enum node.
pub(crate) const TAG_ENUM: u8 = b'E';
/// Tag byte of a text node.
pub(crate) const TAG_TEXT: u8 = b'T';

/// Width of a text's length word, in bytes: a `u32` before the text's bytes.
pub const TEXT_LEN_SIZE: usize = 4;

/// Largest capacity, in bytes, of a text: what its `u32` length word can count.
pub const MAX_TEXT_CAPACITY: usize = u32::MAX as usize;

/// How a type is laid out in a segment: name, size, alignment and shape.
///
/// `size` and `align` are those of the type's atomic twin, which is what a segment holds.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The type's name: the Rust name of a primitive (`"f64"`), the bare identifier of a derived
    /// struct or enum (or its `#[shm(name = "...")]`), and `""` for an array or a text.
    pub name: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// Alignment in bytes.
    pub align: usize,
    /// What the bytes are.
    pub kind: Kind,
}

/// The shape of a [`Layout`].
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// One primitive value.
    Primitive(TypeCode),
    /// `len` consecutive values of `elem`, without gaps.
    Array {
        /// The element's layout.
        elem: &'static Layout,
        /// The number of elements.
        len: usize,
    },
    /// A `#[repr(C)]` struct, fields in declaration order.
    Struct {
        /// The fields.
        fields: &'static [Field],
    },
    /// A fieldless enum with an integer `#[repr]`: one number of the repr's width, each variant
    /// a value of it. A number that is no variant reads as the variant `default`.
    Enum {
        /// The `#[repr]`: an integer code (`i8` to `u64`).
        repr: TypeCode,
        /// The variants, in declaration order.
        variants: &'static [Variant],
        /// Index in `variants` of the `#[default]` variant.
        default: usize,
    },
    /// UTF-8 text of at most `capacity` bytes, in place: a `u32` length, then `capacity`
    /// bytes (see [`Text`](crate::Text)).
    Text {
        /// The most bytes the text can hold.
        capacity: usize,
    },
}

/// One variant of an enum [`Layout`].
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The variant's name.
    pub name: &'static str,
    /// Its discriminant, a value of the enum's repr.
    pub value: i128,
}

/// One field of a struct [`Layout`].
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The field's name (`"0"`, `"1"`, ... for a tuple struct).
    pub name: &'static str,
    /// Offset from the start of the struct, in bytes.
    pub offset: usize,
    /// The field's layout.
    pub layout: &'static Layout,
}

impl Layout {
    /// The layout of one primitive.
    pub const fn primitive(code: TypeCode) -> Layout {
        Layout {
            name: code.rust_name(),
            size: code.size(),
            align: code.size(),
            kind: Kind::Primitive(code),
        }
    }

    /// The layout of `[elem; len]`.
    pub const fn array(elem: &'static Layout, len: usize) -> Layout {
        Layout {
            name: "",
            size: elem.size * len,
            align: elem.align,
            kind: Kind::Array { elem, len },
        }
    }

    /// The layout of a fieldless enum with the integer repr `repr`, its `variants` in
    /// declaration order and `variants[default]` the `#[default]` one: what
    /// `#[derive(SharedLayout)]` writes for an enum.
    pub const fn enumeration(
        name: &'static str,
        repr: TypeCode,
        variants: &'static [Variant],
        default: usize,
    ) -> Layout {
        Layout {
            name,
            size: repr.size(),
            align: repr.size(),
            kind: Kind::Enum {
                repr,
                variants,
                default,
            },
        }
    }

    /// The layout of text of at most `capacity` bytes: a `u32` length, then the bytes, the
    /// size rounded up to a multiple of 4 (the length's alignment).
    pub const fn text(capacity: usize) -> Layout {
        Layout {
            name: "",
            size: (TEXT_LEN_SIZE + capacity).next_multiple_of(TEXT_LEN_SIZE),
            align: TEXT_LEN_SIZE,
            kind: Kind::Text { capacity },
        }
    }

    /// The 64-bit fingerprint of this layout: FNV-1a over the format version, the byte order,
    /// the pointer width and the encoded descriptor. Equal fingerprints mean equal layouts.
    pub const fn fingerprint(&self) -> u64 {
        encode(self, &mut [], 0, FINGERPRINT_SEED, 0).1
    }

    /// Number of bytes of the encoded descriptor.
    pub const fn encoded_len(&self) -> usize {
        encode(self, &mut [], 0, FINGERPRINT_SEED, 0).0
    }

    /// Deepest nesting of arrays and structs below this layout (0 for a primitive, an enum or a
    /// text).
    pub const fn depth(&self) -> usize {
        match self.kind {
            Kind::Primitive(_) | Kind::Enum { .. } | Kind::Text { .. } => 0,
            Kind::Array { elem, .. } => 1 + elem.depth(),
            Kind::Struct { fields } => {
                let mut deepest = 0;
                let mut i = 0;
                while i < fields.len() {
                    let d = fields[i].layout.depth();
                    if d > deepest {
                        deepest = d;
                    }
                    i += 1;
                }
                1 + deepest
            }
        }
    }

    /// The descriptor bytes as written into a segment header.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.encoded_len()];
        let (len, _) = encode(self, &mut buf, 0, FINGERPRINT_SEED, 0);
        debug_assert_eq!(len, buf.len());
        buf
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

/// The hash state before the first descriptor byte: it folds in what makes two processes unable
/// to share a segment even when their descriptors agree.
const FINGERPRINT_SEED: u64 = {
    let h = fnv(FNV_OFFSET, b"shm-core layout");
    let h = fnv(h, &FORMAT_VERSION.to_le_bytes());
    let endian: u8 = if cfg!(target_endian = "little") {
        b'l'
    } else {
        b'b'
    };
    let h = fnv(h, &[endian]);
    fnv(h, &[(usize::BITS / 8) as u8])
};

/// The fingerprint of descriptor bytes read from a segment.
pub(crate) fn fingerprint_of_encoded(bytes: &[u8]) -> u64 {
    fnv(FINGERPRINT_SEED, bytes)
}

/// Appends `bytes` at `pos`: written into `buf` where it is long enough (an empty `buf` only
/// measures), always hashed. Returns the new position and hash.
const fn put(buf: &mut [u8], pos: usize, h: u64, bytes: &[u8]) -> (usize, u64) {
    let mut i = 0;
    while i < bytes.len() {
        if pos + i < buf.len() {
            buf[pos + i] = bytes[i];
        }
        i += 1;
    }
    (pos + bytes.len(), fnv(h, bytes))
}

const fn put_name(buf: &mut [u8], pos: usize, h: u64, name: &str) -> (usize, u64) {
    assert!(
        name.len() <= MAX_NAME_LEN,
        "a type, field or variant name in a shared layout is longer than 255 bytes"
    );
    let (pos, h) = put(buf, pos, h, &[name.len() as u8]);
    put(buf, pos, h, name.as_bytes())
}

const fn put_u64(buf: &mut [u8], pos: usize, h: u64, v: usize) -> (usize, u64) {
    put(buf, pos, h, &(v as u64).to_le_bytes())
}

/// The one walker behind [`Layout::fingerprint`], [`Layout::encoded_len`] and
/// [`Layout::encode`], so the bytes hashed are by construction the bytes written.
const fn encode(l: &Layout, buf: &mut [u8], pos: usize, h: u64, depth: usize) -> (usize, u64) {
    assert!(
        depth <= MAX_DEPTH,
        "a shared layout nests arrays and structs more than 32 deep"
    );
    let tag = match l.kind {
        Kind::Primitive(_) => TAG_PRIMITIVE,
        Kind::Array { .. } => TAG_ARRAY,
        Kind::Struct { .. } => TAG_STRUCT,
        Kind::Enum { .. } => TAG_ENUM,
        Kind::Text { .. } => TAG_TEXT,
    };
    let (pos, h) = put(buf, pos, h, &[tag]);
    let (pos, h) = put_u64(buf, pos, h, l.size);
    let (pos, h) = put_u64(buf, pos, h, l.align);
    let (pos, h) = put_name(buf, pos, h, l.name);
    match l.kind {
        Kind::Primitive(code) => put(buf, pos, h, &[code.as_char() as u8]),
        Kind::Array { elem, len } => {
            let (pos, h) = put_u64(buf, pos, h, len);
            encode(elem, buf, pos, h, depth + 1)
        }
        Kind::Struct { fields } => {
            let (mut pos, mut h) = put(buf, pos, h, &(fields.len() as u32).to_le_bytes());
            let mut i = 0;
            while i < fields.len() {
                let f = &fields[i];
                (pos, h) = put_name(buf, pos, h, f.name);
                (pos, h) = put_u64(buf, pos, h, f.offset);
                (pos, h) = encode(f.layout, buf, pos, h, depth + 1);
                i += 1;
            }
            (pos, h)
        }
        Kind::Enum {
            repr,
            variants,
            default,
        } => {
            assert!(
                repr.is_integer(),
                "an enum in a shared layout has an integer repr"
            );
            assert!(
                default < variants.len() && variants.len() <= u32::MAX as usize,
                "an enum in a shared layout has its default among its variants"
            );
            let (pos, h) = put(buf, pos, h, &[repr.as_char() as u8]);
            let (pos, h) = put(buf, pos, h, &(default as u32).to_le_bytes());
            let (mut pos, mut h) = put(buf, pos, h, &(variants.len() as u32).to_le_bytes());
            let mut i = 0;
            while i < variants.len() {
                let v = &variants[i];
                assert!(
                    repr.holds(v.value),
                    "an enum variant's value is out of its repr's range"
                );
                (pos, h) = put_name(buf, pos, h, v.name);
                // Two's complement, 64 bits: sign-extended for a signed repr.
                (pos, h) = put(buf, pos, h, &(v.value as u64).to_le_bytes());
                i += 1;
            }
            (pos, h)
        }
        Kind::Text { capacity } => {
            assert!(
                capacity <= MAX_TEXT_CAPACITY,
                "a text in a shared layout holds at most u32::MAX bytes"
            );
            put_u64(buf, pos, h, capacity)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static F64: Layout = Layout::primitive(TypeCode::F64);
    static I32: Layout = Layout::primitive(TypeCode::I32);
    static ROW: Layout = Layout::array(&I32, 3);

    #[test]
    fn fingerprint_is_the_hash_of_the_encoded_bytes() {
        for l in [&F64, &I32, &ROW] {
            let bytes = l.encode();
            assert_eq!(bytes.len(), l.encoded_len());
            assert_eq!(fingerprint_of_encoded(&bytes), l.fingerprint());
        }
    }

    #[test]
    fn different_layouts_have_different_fingerprints() {
        let row4 = Layout::array(&I32, 4);
        assert_ne!(ROW.fingerprint(), row4.fingerprint());
        assert_ne!(F64.fingerprint(), I32.fingerprint());
    }

    #[test]
    fn enum_and_text_encodings_are_as_documented() {
        // docs/FORMAT.md's examples.
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
                ],
                default: 0,
            },
        };
        let mut want = vec![b'E'];
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(b"\x05State");
        want.push(b'B');
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(&2u32.to_le_bytes());
        want.extend_from_slice(b"\x04Idle");
        want.extend_from_slice(&0u64.to_le_bytes());
        want.extend_from_slice(b"\x04Busy");
        want.extend_from_slice(&1u64.to_le_bytes());
        assert_eq!(STATE.encode(), want);

        let text = Layout::text(5);
        assert_eq!((text.size, text.align), (12, 4));
        let mut want = vec![b'T'];
        want.extend_from_slice(&12u64.to_le_bytes());
        want.extend_from_slice(&4u64.to_le_bytes());
        want.push(0);
        want.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(text.encode(), want);
        assert_ne!(text.fingerprint(), Layout::text(6).fingerprint());
    }

    #[test]
    fn a_signed_enum_value_is_sign_extended() {
        static SIGNED: Layout = Layout {
            name: "S",
            size: 1,
            align: 1,
            kind: Kind::Enum {
                repr: TypeCode::I8,
                variants: &[Variant {
                    name: "M",
                    value: -1,
                }],
                default: 0,
            },
        };
        assert!(SIGNED
            .encode()
            .ends_with(&[b'M', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    }

    #[test]
    fn primitive_encoding_is_as_documented() {
        let bytes = F64.encode();
        let mut want = vec![b'P'];
        want.extend_from_slice(&8u64.to_le_bytes());
        want.extend_from_slice(&8u64.to_le_bytes());
        want.extend_from_slice(&[3, b'f', b'6', b'4', b'd']);
        assert_eq!(bytes, want);
    }
}
