//! `descriptors.json`: descriptor bytes, hostile or merely unusual, and what the parser says.

use shm_core::{Descriptor, SharedLayout};

use super::json::{hex64, join, J};
use crate::run::hex;
use crate::types;

fn node(tag: u8, size: u64, align: u64, name: &[u8]) -> Vec<u8> {
    let mut b = vec![tag];
    b.extend(size.to_le_bytes());
    b.extend(align.to_le_bytes());
    b.push(name.len() as u8);
    b.extend(name);
    b
}

fn prim(code: u8, size: u64, align: u64, name: &str) -> Vec<u8> {
    let mut b = node(b'P', size, align, name.as_bytes());
    b.push(code);
    b
}

pub fn p<T: SharedLayout>() -> Vec<u8> {
    T::LAYOUT.encode()
}

fn arr(size: u64, align: u64, len: u64, elem: Vec<u8>) -> Vec<u8> {
    let mut b = node(b'A', size, align, b"");
    b.extend(len.to_le_bytes());
    b.extend(elem);
    b
}

fn st_count(
    size: u64,
    align: u64,
    name: &[u8],
    count: u32,
    fields: &[(&[u8], u64, Vec<u8>)],
) -> Vec<u8> {
    let mut b = node(b'S', size, align, name);
    b.extend(count.to_le_bytes());
    for (fname, offset, ty) in fields {
        b.push(fname.len() as u8);
        b.extend(*fname);
        b.extend(offset.to_le_bytes());
        b.extend(ty);
    }
    b
}

pub fn st(size: u64, align: u64, name: &[u8], fields: &[(&[u8], u64, Vec<u8>)]) -> Vec<u8> {
    st_count(size, align, name, fields.len() as u32, fields)
}

/// An enum node: repr code, default index, and `(name, value)` variants (`count` of them said).
fn en(size: u64, code: u8, default: u32, count: u32, variants: &[(&[u8], u64)]) -> Vec<u8> {
    let mut b = node(b'E', size, size, b"E");
    b.push(code);
    b.extend(default.to_le_bytes());
    b.extend(count.to_le_bytes());
    for (name, value) in variants {
        b.push(name.len() as u8);
        b.extend(*name);
        b.extend(value.to_le_bytes());
    }
    b
}

/// A text node of `capacity` claiming `size` and `align`.
fn text(size: u64, align: u64, capacity: u64) -> Vec<u8> {
    let mut b = node(b'T', size, align, b"");
    b.extend(capacity.to_le_bytes());
    b
}

fn nested(depth: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..depth {
        b.extend(node(b'A', 1, 1, b""));
        b.extend(1u64.to_le_bytes());
    }
    b.extend(p::<u8>());
    b
}

fn cut(mut b: Vec<u8>, drop: usize) -> Vec<u8> {
    b.truncate(b.len() - drop);
    b
}

/// The cases, and how this implementation parses each.
pub fn descriptors() -> J {
    let overlap =
        |a: u64, b: u64, ty_b: Vec<u8>| st(16, 8, b"S", &[(b"a", a, p::<u64>()), (b"b", b, ty_b)]);
    let one = |size, align, offset, ty: Vec<u8>| st(size, align, b"S", &[(b"a", offset, ty)]);
    let two = |first: (&'static [u8], u64), second: (&'static [u8], u64)| {
        st(
            8,
            4,
            b"S",
            &[
                (first.0, first.1, p::<u32>()),
                (second.0, second.1, p::<u32>()),
            ],
        )
    };
    let mut bad_tag = node(b'X', 8, 8, b"u64");
    bad_tag.push(b'Q');
    let mut trailing = p::<u8>();
    trailing.push(0);
    // (id, why, bytes, a phrase the refusal says; None: accepted)
    let refuse = |id, why, bytes, reason| (id, why, bytes, Some(reason));
    let accept = |id, why, bytes| (id, why, bytes, None);
    let cases: Vec<(&str, &str, Vec<u8>, Option<&str>)> = vec![
        refuse("empty", "no node at all", vec![], "the descriptor ends"),
        refuse(
            "truncated primitive",
            "u64 without its type code",
            cut(p::<u64>(), 1),
            "the descriptor ends",
        ),
        refuse(
            "truncated field",
            "Point cut inside its second field",
            cut(p::<types::Point>(), 5),
            "the descriptor ends",
        ),
        refuse("unknown tag", "tag 'X'", bad_tag, "unknown node tag 0x58"),
        refuse(
            "unknown type code",
            "code 'z'",
            prim(b'z', 8, 8, "u64"),
            "unknown type code 0x7a",
        ),
        refuse(
            "alias code l",
            "'l' is an alias in the Python API, never a descriptor's code ('q' is)",
            prim(b'l', 8, 8, "i64"),
            "unknown type code 0x6c",
        ),
        refuse(
            "alias code c",
            "'c' is an alias of 'B' in the Python API",
            prim(b'c', 1, 1, "u8"),
            "unknown type code 0x63",
        ),
        refuse(
            "primitive of the wrong size",
            "f64 claiming 4 bytes",
            prim(b'd', 4, 4, "f64"),
            "f64 must have size and alignment 8",
        ),
        refuse(
            "primitive of the wrong alignment",
            "u64 claiming alignment 4",
            prim(b'Q', 8, 4, "u64"),
            "u64 must have size and alignment 8",
        ),
        refuse(
            "alignment not a power of two",
            "alignment 3",
            prim(b'b', 3, 3, "i8"),
            "alignment 3 is not a power of two",
        ),
        refuse(
            "alignment zero",
            "a struct of alignment 0",
            st(0, 0, b"Z", &[]),
            "alignment 0 is not a power of two",
        ),
        refuse(
            "size not a multiple of the alignment",
            "a struct of size 6, alignment 4",
            st(6, 4, b"S", &[]),
            "size 6 is not a multiple of alignment 4",
        ),
        refuse(
            "array length overflows",
            "2^61 elements of 8 bytes: the size overflows 64 bits",
            arr(8, 8, 1 << 61, p::<u64>()),
            "cannot have size 8",
        ),
        refuse(
            "array of the wrong size",
            "3 u32 claiming 16 bytes",
            arr(16, 4, 3, p::<u32>()),
            "an array of 3 elements of size 4",
        ),
        refuse(
            "array of another alignment",
            "4 u32 claiming alignment 8",
            arr(16, 8, 4, p::<u32>()),
            "cannot have size 16 and alignment 8",
        ),
        refuse(
            "field count that cannot fit",
            "4294967295 fields in 27 bytes",
            st_count(8, 8, b"S", u32::MAX, &[]),
            "4294967295 fields cannot fit",
        ),
        refuse(
            "field past the end",
            "a u8 at offset 8 of an 8-byte struct",
            one(8, 8, 8, p::<u8>()),
            "field `a` does not fit",
        ),
        refuse(
            "field offset overflows",
            "a u8 at offset 2^64 - 1",
            one(8, 8, u64::MAX, p::<u8>()),
            "field `a` does not fit",
        ),
        refuse(
            "struct smaller than its field",
            "a u64 in a 4-byte struct",
            one(4, 4, 0, p::<u64>()),
            "field `a` does not fit",
        ),
        refuse(
            "overlapping fields",
            "a u64 at 0 and a u32 at 4",
            overlap(0, 4, p::<u32>()),
            "field `b` at offset 4 overlaps another or is misaligned",
        ),
        refuse(
            "misaligned field",
            "a u32 at offset 2",
            one(8, 4, 2, p::<u32>()),
            "field `a` at offset 2 overlaps another or is misaligned",
        ),
        refuse(
            "field more aligned than its struct",
            "a u64 in a struct of alignment 4",
            one(8, 4, 0, p::<u64>()),
            "field `a` at offset 0 overlaps another or is misaligned",
        ),
        refuse(
            "fields out of order",
            "offsets must not decrease",
            two((b"a", 4), (b"b", 0)),
            "field `b` at offset 0 overlaps another or is misaligned",
        ),
        refuse(
            "duplicate field names",
            "two fields named a",
            two((b"a", 0), (b"a", 4)),
            "field `a` appears twice",
        ),
        refuse(
            "type name not UTF-8",
            "name byte 0xff",
            st(1, 1, b"\xff", &[(b"a", 0, p::<u8>())]),
            "a name is not UTF-8",
        ),
        refuse(
            "field name not UTF-8",
            "a lone UTF-8 lead byte",
            st(1, 1, b"S", &[(b"\xc3", 0, p::<u8>())]),
            "a name is not UTF-8",
        ),
        refuse(
            "nested 33 deep",
            "33 arrays around a u8: the u8 is at depth 33",
            nested(33),
            "nested more than 32 deep",
        ),
        refuse(
            "trailing byte",
            "a u8 and one more byte",
            trailing,
            "1 bytes after the end",
        ),
        refuse(
            "enum without variants",
            "a u8 enum of 0 variants",
            en(1, b'B', 0, 0, &[]),
            "an enum has no variants",
        ),
        refuse(
            "enum default past its variants",
            "default 2 of 2 variants",
            en(1, b'B', 2, 2, &[(b"A", 0), (b"B", 1)]),
            "the default variant 2 is not one of the 2 variants",
        ),
        refuse(
            "enum variant count that cannot fit",
            "4294967295 variants in no bytes",
            en(1, b'B', 0, u32::MAX, &[]),
            "4294967295 variants cannot fit",
        ),
        refuse(
            "enum of a float code",
            "repr 'd': an enum's number is an integer",
            en(8, b'd', 0, 1, &[(b"A", 0)]),
            "an enum's repr must be an integer type code, not 0x64",
        ),
        refuse(
            "enum of the bool code",
            "repr '?'",
            en(1, b'?', 0, 1, &[(b"A", 0)]),
            "an enum's repr must be an integer type code, not 0x3f",
        ),
        refuse(
            "enum of the wrong size",
            "a u8 enum claiming 2 bytes",
            en(2, b'B', 0, 1, &[(b"A", 0)]),
            "an enum of repr u8 must have size and alignment 1, not 2 and 2",
        ),
        refuse(
            "enum value out of range",
            "256 in a u8 enum",
            en(1, b'B', 0, 1, &[(b"A", 256)]),
            "variant `A` has the value 0x100, which is no u8",
        ),
        refuse(
            "enum negative value not sign-extended",
            "-1 of an i8 written as 0xff: it must be 0xffffffffffffffff",
            en(1, b'b', 0, 1, &[(b"A", 0xff)]),
            "variant `A` has the value 0xff, which is no i8",
        ),
        refuse(
            "enum variant names twice",
            "two variants named A",
            en(1, b'B', 0, 2, &[(b"A", 0), (b"A", 1)]),
            "variant `A` appears twice",
        ),
        refuse(
            "enum values twice",
            "two variants of value 3",
            en(1, b'B', 0, 2, &[(b"A", 3), (b"B", 3)]),
            "variants `A` and `B` have the same value 3",
        ),
        refuse(
            "enum variant name not UTF-8",
            "name byte 0xff",
            en(1, b'B', 0, 1, &[(b"\xff", 0)]),
            "a name is not UTF-8",
        ),
        refuse(
            "truncated enum",
            "State cut inside its last variant's value",
            cut(p::<types::State>(), 3),
            "the descriptor ends",
        ),
        refuse(
            "text of the wrong size",
            "Text<5> claiming 8 bytes: 4 + 5 rounds up to 12",
            text(8, 4, 5),
            "a text of capacity 5 must have size 12 and alignment 4, not 8 and 4",
        ),
        refuse(
            "text of the wrong alignment",
            "Text<4> claiming alignment 8",
            text(8, 8, 4),
            "a text of capacity 4 must have size 8 and alignment 4, not 8 and 8",
        ),
        refuse(
            "text capacity past u32",
            "2^32 bytes: more than its u32 length counts",
            text(1 << 33, 4, 1 << 32),
            "a text of capacity 4294967296 is longer than its u32 length can count",
        ),
        refuse(
            "truncated text",
            "Text<5> without the last byte of its capacity",
            cut(p::<shm_core::Text<5>>(), 1),
            "the descriptor ends",
        ),
        accept(
            "enum of one variant of the largest u64",
            "a u64 enum's value 2^64 - 1, which as an i64 would be -1",
            en(8, b'Q', 0, 1, &[(b"Max", u64::MAX)]),
        ),
        accept(
            "enum of the smallest i64",
            "-2^63, sign-extended to itself",
            en(8, b'q', 0, 1, &[(b"Min", i64::MIN as u64)]),
        ),
        accept(
            "text of the largest capacity",
            "2^32 - 1 bytes: size 2^32 + 4",
            text((1 << 32) + 4, 4, u32::MAX.into()),
        ),
        accept(
            "nested 32 deep",
            "32 arrays around a u8: the deepest allowed",
            nested(32),
        ),
        accept(
            "zero-sized struct",
            "no fields, size 0, alignment 1 (the derive refuses it; a reader accepts it)",
            st(0, 1, b"E", &[]),
        ),
        accept("zero-length array", "0 u32", arr(0, 4, 0, p::<u32>())),
        accept(
            "huge array of nothing",
            "2^64 - 1 zero-sized structs: size 0, no allocation",
            arr(0, 1, u64::MAX, st(0, 1, b"E", &[])),
        ),
        accept(
            "gap between fields",
            "fields need not be where repr(C) puts them, only aligned and in order",
            st(
                16,
                4,
                b"Gappy",
                &[(b"a", 0, p::<u8>()), (b"b", 8, p::<u32>())],
            ),
        ),
        accept(
            "primitive of another name",
            "a reader does not check a primitive's name against its code: the fingerprint does",
            prim(b'd', 8, 8, "whatever"),
        ),
        accept(
            "empty names",
            "a struct and a field named \"\"",
            st(1, 1, b"", &[(b"", 0, p::<u8>())]),
        ),
        accept(
            "name of 255 bytes",
            "the longest name",
            st(1, 1, &[b'n'; 255], &[(b"a", 0, p::<u8>())]),
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(id, why, bytes, reason)| {
            let outcome = match (Descriptor::parse(&bytes), reason) {
                (Err(e), Some(reason)) => {
                    assert!(
                        e.reason.contains(reason),
                        "`{id}`: \"{e}\" does not say \"{reason}\""
                    );
                    obj! { "error": obj! { "at": e.at, "reason": reason } }
                }
                (Ok(d), None) => obj! {
                    "ok": obj! {
                        "size": d.size,
                        "align": d.align,
                        "fingerprint": hex64(Descriptor::fingerprint_of(&bytes)),
                    }
                },
                (got, _) => panic!("`{id}`: parse gave {got:?}, not what the case is for"),
            };
            join(obj! { "id": id, "why": why, "hex": hex(&bytes) }, outcome)
        })
        .collect::<Vec<_>>();
    obj! { "cases": cases }
}
