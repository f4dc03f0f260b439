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

/// `(sample name, index, text or state, value)` of every sample, family by family.
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
                    label(TEXT_LABEL).or_else(|| s.state.clone()),
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

fn state_enum() -> Descriptor {
    Descriptor {
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
                shm_core::DescriptorVariant {
                    name: "Draining".to_owned(),
                    value: 5,
                },
            ],
            default: 0,
        },
    }
}

/// What a read of an enum holding `value` gives, as `RawSegment` reads it: a number that is no
/// variant reads as the default variant, `known` false.
fn state_datum(value: i128) -> Datum {
    let (variant, known) = match value {
        0 => ("Idle", true),
        1 => ("Busy", true),
        5 => ("Draining", true),
        _ => ("Idle", false),
    };
    Datum::Enum {
        variant: variant.to_owned(),
        value,
        known,
    }
}

#[test]
fn enums_become_state_sets_and_texts_info_samples() {
    let client = Descriptor {
        name: String::new(),
        size: 12,
        align: 4,
        kind: DescriptorKind::Text { capacity: 8 },
    };
    let d = structure(
        "Worker",
        vec![("state", array(state_enum(), 3)), ("client", client)],
    );
    let states = [1, 7, 5];
    let v = Datum::Struct(vec![
        (
            "state".into(),
            Datum::Array(states.iter().map(|&n| state_datum(n)).collect()),
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
    // The number 7 is no variant: reported, with the path to it.
    assert_eq!(
        add_segment(&mut f, &seg),
        Added {
            clashes: vec![],
            unknown: vec![UnknownState {
                path: "state[1]".to_owned(),
                enum_name: "State".to_owned(),
                value: 7,
            }],
        }
    );
    // One sample per variant.
    assert_eq!(sample_count(&d, 1), 3 * 3 + 1);
    assert_eq!(f.list[0].kind, Kind::StateSet);
    assert_eq!(f.list[0].sample_name(), "shm_state");
    assert_eq!(
        f.list[1].help(),
        "Read from shm segments: client (Text<8>) of Shared<Worker>."
    );
    // Each element's state set: 1 for the variant the snapshot holds, 0 for the others; all 0
    // for the number that is no variant.
    let mut want = Vec::new();
    for (i, &n) in states.iter().enumerate() {
        let Datum::Enum { variant, known, .. } = state_datum(n) else {
            unreachable!()
        };
        for name in ["Idle", "Busy", "Draining"] {
            let on = known && variant == name;
            want.push(s(
                "shm_state",
                Some(&i.to_string()),
                Some(name),
                if on { "1" } else { "0" },
            ));
        }
    }
    want.push(s("shm_client_info", None, Some("10.0.0.7"), "1"));
    assert_eq!(flat(f), want);
}

#[test]
fn a_state_set_family_name_is_shared_by_segments_not_by_other_kinds() {
    // The same enum field in two segments: one family; a gauge of that name elsewhere clashes.
    let d = structure("S", vec![("state", state_enum())]);
    let g = structure("G", vec![("state", prim(TypeCode::U8))]);
    let mut f = Families::default();
    for name in ["a", "b"] {
        let v = Datum::Struct(vec![("state".into(), state_datum(5))]);
        let seg = SegmentView {
            name,
            descriptor: &d,
            is_array: false,
            snapshot: &v,
        };
        assert_eq!(add_segment(&mut f, &seg), Added::default());
    }
    let v = Datum::Struct(vec![("state".into(), Datum::U8(1))]);
    let seg = SegmentView {
        name: "c",
        descriptor: &g,
        is_array: false,
        snapshot: &v,
    };
    let added = add_segment(&mut f, &seg);
    assert_eq!(added.clashes.len(), 1);
    assert_eq!(added.clashes[0].metric, "shm_state");
    let families = f.into_vec();
    assert_eq!(families.len(), 1);
    assert_eq!(families[0].samples.len(), 6);
    let on: Vec<(&str, &str)> = families[0]
        .samples
        .iter()
        .filter(|x| x.value == "1")
        .map(|x| (x.labels[0].1.as_str(), x.state.as_deref().unwrap()))
        .collect();
    assert_eq!(on, vec![("a", "Draining"), ("b", "Draining")]);
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
    assert_eq!(add_segment(&mut f, &seg), Added::default());
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
    assert_eq!(add_segment(&mut f, &arr), Added::default());
    let d = prim(TypeCode::F64);
    let one = Datum::F64(f64::NEG_INFINITY);
    let val = SegmentView {
        name: "ratio",
        descriptor: &d,
        is_array: false,
        snapshot: &one,
    };
    assert_eq!(add_segment(&mut f, &val), Added::default());
    // The segment's name does not make a counter.
    let q = prim(TypeCode::U64);
    let n = Datum::U64(3);
    let named = SegmentView {
        name: "requests_total",
        descriptor: &q,
        is_array: false,
        snapshot: &n,
    };
    assert_eq!(add_segment(&mut f, &named), Added::default());
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
        .clashes
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
