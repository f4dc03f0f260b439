//! The descriptor module's unit tests: parsing, building, encoding and explaining differences.

use super::*;
use crate::layout::{Field, Variant, TAG_ARRAY, TAG_ENUM, TAG_TEXT};

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
    let DescriptorKind::Enum { variants, .. } = Descriptor::parse(&unsigned).unwrap().kind else {
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
