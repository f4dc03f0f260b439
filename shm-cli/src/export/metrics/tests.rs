//! Tests of the mapping from segments to metric families.

use super::*;
use shm_core::DescriptorField;

fn prim(code: TypeCode) -> Descriptor {
    Descriptor {
        name: code.rust_name().to_owned(),
        size: code.size() as u64,
        align: code.size() as u64,
        kind: DescriptorKind::Primitive(code),
    }
}

fn array(elem: Descriptor, len: u64) -> Descriptor {
    Descriptor {
        name: String::new(),
        size: elem.size.saturating_mul(len),
        align: elem.align,
        kind: DescriptorKind::Array {
            elem: Box::new(elem),
            len,
        },
    }
}

fn structure(name: &str, fields: Vec<(&str, Descriptor)>) -> Descriptor {
    let mut offset = 0;
    let fields = fields
        .into_iter()
        .map(|(n, ty)| {
            let f = DescriptorField {
                name: n.to_owned(),
                offset,
                ty,
            };
            offset += f.ty.size;
            f
        })
        .collect();
    Descriptor {
        name: name.to_owned(),
        size: offset,
        align: 1,
        kind: DescriptorKind::Struct { fields },
    }
}

/// `(sample name, index, text, value)` of every sample, family by family.
fn flat(f: Families) -> Vec<(String, Option<String>, Option<String>, String)> {
    f.into_vec()
        .into_iter()
        .flat_map(|fam| {
            let name = fam.sample_name();
            fam.samples.into_iter().map(move |s| {
                let label = |k: &str| {
                    s.labels
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.clone())
                };
                (
                    name.clone(),
                    label("index"),
                    label(TEXT_LABEL),
                    s.value.clone(),
                )
            })
        })
        .collect()
}

fn s(
    name: &str,
    index: Option<&str>,
    text: Option<&str>,
    value: &str,
) -> (String, Option<String>, Option<String>, String) {
    (
        name.to_owned(),
        index.map(str::to_owned),
        text.map(str::to_owned),
        value.to_owned(),
    )
}

#[test]
fn enums_and_texts_become_info_samples() {
    let state = Descriptor {
        name: "State".to_owned(),
        size: 1,
        align: 1,
        kind: DescriptorKind::Enum {
            repr: TypeCode::U8,
            variants: vec![
                shm_core::DescriptorVariant {
                    name: "Idle".to_owned(),
                    value: 0,
                },
                shm_core::DescriptorVariant {
                    name: "Busy".to_owned(),
                    value: 1,
                },
            ],
            default: 0,
        },
    };
    let client = Descriptor {
        name: String::new(),
        size: 12,
        align: 4,
        kind: DescriptorKind::Text { capacity: 8 },
    };
    let d = structure(
        "Worker",
        vec![("state", array(state, 2)), ("client", client)],
    );
    let v = Datum::Struct(vec![
        (
            "state".into(),
            Datum::Array(vec![
                Datum::Enum {
                    variant: "Busy".into(),
                    value: 1,
                    known: true,
                },
                Datum::Enum {
                    variant: "Idle".into(),
                    value: 7,
                    known: false,
                },
            ]),
        ),
        ("client".into(), Datum::Text("10.0.0.7".into())),
    ]);
    let mut f = Families::default();
    let seg = SegmentView {
        name: "board",
        descriptor: &d,
        is_array: false,
        snapshot: &v,
    };
    assert_eq!(add_segment(&mut f, &seg), vec![]);
    assert_eq!(sample_count(&d, 1), 3);
    assert_eq!(
        f.list[1].help(),
        "Read from shm segments: client (Text<8>) of Shared<Worker>."
    );
    assert_eq!(
        flat(f),
        vec![
            s("shm_state_info", Some("0"), Some("Busy"), "1"),
            s(
                "shm_state_info",
                Some("1"),
                Some("7 (no variant; reads as Idle)"),
                "1"
            ),
            s("shm_client_info", None, Some("10.0.0.7"), "1"),
        ]
    );
}

#[test]
fn fields_become_families_named_by_path() {
    let d = structure(
        "Stats",
        vec![
            ("hits_total", prim(TypeCode::U64)),
            ("load", prim(TypeCode::F32)),
            ("ok", prim(TypeCode::Bool)),
            ("grade", prim(TypeCode::Char)),
            ("grid", array(array(prim(TypeCode::I16), 2), 2)),
            (
                "inner",
                structure("Inner", vec![("größe", prim(TypeCode::I8))]),
            ),
        ],
    );
    let v = Datum::Struct(vec![
        ("hits_total".into(), Datum::U64(u64::MAX)),
        ("load".into(), Datum::F32(0.1)),
        ("ok".into(), Datum::Bool(true)),
        ("grade".into(), Datum::Char('"')),
        (
            "grid".into(),
            Datum::Array(vec![
                Datum::Array(vec![Datum::I16(1), Datum::I16(2)]),
                Datum::Array(vec![Datum::I16(3), Datum::I16(-4)]),
            ]),
        ),
        (
            "inner".into(),
            Datum::Struct(vec![("größe".into(), Datum::I8(-1))]),
        ),
    ]);
    let mut f = Families::default();
    let seg = SegmentView {
        name: "web",
        descriptor: &d,
        is_array: false,
        snapshot: &v,
    };
    assert_eq!(add_segment(&mut f, &seg), vec![]);
    let kinds: Vec<(String, Kind)> = f.list.iter().map(|x| (x.name.clone(), x.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("shm_hits".to_owned(), Kind::Counter),
            ("shm_load".to_owned(), Kind::Gauge),
            ("shm_ok".to_owned(), Kind::Gauge),
            ("shm_grade".to_owned(), Kind::Info),
            ("shm_grid".to_owned(), Kind::Gauge),
            ("shm_inner_gr__e".to_owned(), Kind::Gauge),
        ]
    );
    assert_eq!(
        f.list[4].help(),
        "Read from shm segments: grid[i][j] (i16) of Shared<Stats>."
    );
    assert_eq!(
        flat(f),
        vec![
            s("shm_hits_total", None, None, "18446744073709551615"),
            s("shm_load", None, None, "0.1"),
            s("shm_ok", None, None, "1"),
            s("shm_grade_info", None, Some("\""), "1"),
            s("shm_grid", Some("0,0"), None, "1"),
            s("shm_grid", Some("0,1"), None, "2"),
            s("shm_grid", Some("1,0"), None, "3"),
            s("shm_grid", Some("1,1"), None, "-4"),
            s("shm_inner_gr__e", None, None, "-1"),
        ]
    );
}

#[test]
fn array_and_value_segments_are_named_value() {
    let mut f = Families::default();
    let u = prim(TypeCode::U32);
    let items = Datum::Array(vec![Datum::U32(5), Datum::U32(6)]);
    let arr = SegmentView {
        name: "counts",
        descriptor: &u,
        is_array: true,
        snapshot: &items,
    };
    assert_eq!(add_segment(&mut f, &arr), vec![]);
    let d = prim(TypeCode::F64);
    let one = Datum::F64(f64::NEG_INFINITY);
    let val = SegmentView {
        name: "ratio",
        descriptor: &d,
        is_array: false,
        snapshot: &one,
    };
    assert_eq!(add_segment(&mut f, &val), vec![]);
    // The segment's name does not make a counter.
    let q = prim(TypeCode::U64);
    let n = Datum::U64(3);
    let named = SegmentView {
        name: "requests_total",
        descriptor: &q,
        is_array: false,
        snapshot: &n,
    };
    assert_eq!(add_segment(&mut f, &named), vec![]);
    assert_eq!(
        f.list[0].help(),
        "Read from shm segments: [i] (u32) of Array<u32>; value (f64) of Value<f64>; value (u64) of Value<u64>."
    );
    assert_eq!(
        flat(f),
        vec![
            s("shm_value", Some("0"), None, "5"),
            s("shm_value", Some("1"), None, "6"),
            s("shm_value", None, None, "-Inf"),
            s("shm_value", None, None, "3"),
        ]
    );
}

#[test]
fn colliding_names_keep_the_first_field() {
    let d = structure(
        "Clash",
        vec![
            ("a_b", prim(TypeCode::U8)),
            ("a", structure("A", vec![("b", prim(TypeCode::U8))])),
            ("c_total", prim(TypeCode::U8)),
            ("c", prim(TypeCode::U8)),
            ("export_x", prim(TypeCode::U8)),
        ],
    );
    let v = Datum::Struct(vec![
        ("a_b".into(), Datum::U8(1)),
        ("a".into(), Datum::Struct(vec![("b".into(), Datum::U8(2))])),
        ("c_total".into(), Datum::U8(3)),
        ("c".into(), Datum::U8(4)),
        ("export_x".into(), Datum::U8(5)),
    ]);
    let mut f = Families::default();
    let seg = SegmentView {
        name: "x",
        descriptor: &d,
        is_array: false,
        snapshot: &v,
    };
    let clashes: Vec<(String, String)> = add_segment(&mut f, &seg)
        .into_iter()
        .map(|c| (c.path, c.metric))
        .collect();
    assert_eq!(
        clashes,
        vec![
            ("a.b".to_owned(), "shm_a_b".to_owned()),
            ("c".to_owned(), "shm_c".to_owned()),
            ("export_x".to_owned(), "shm_export_x".to_owned()),
        ]
    );
    assert_eq!(
        flat(f),
        vec![
            s("shm_a_b", None, None, "1"),
            s("shm_c_total", None, None, "3"),
        ]
    );
}

#[test]
fn sample_count_saturates() {
    let huge = array(array(prim(TypeCode::U8), u64::MAX), 3);
    assert_eq!(sample_count(&huge, 2), u64::MAX);
    let d = structure(
        "S",
        vec![
            ("a", prim(TypeCode::U8)),
            ("b", array(prim(TypeCode::U8), 4)),
        ],
    );
    assert_eq!(sample_count(&d, 10), 50);
}
