//! What `#[derive(SharedLayout)]` generates, checked in one process: the descriptor (names,
//! offsets, kinds, size, alignment), the fingerprint, and load/store through the atomic twin.

use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Field, Kind, Layout, SharedLayout, TypeCode};

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Primitives {
    pub a: i8,
    pub b: u8,
    pub c: i16,
    pub d: u16,
    pub e: i32,
    pub f: u32,
    pub g: i64,
    pub h: u64,
    pub i: f32,
    pub j: f64,
    pub k: bool,
    pub l: char,
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Body {
    pub id: u16,
    pub position: Point,
    pub transform: [[f32; 4]; 4],
    pub path: [Point; 2],
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub struct Slot {
    pub count: u64,
    pub busy: bool,
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Pair(pub u8, pub f64);

mod v1 {
    #[derive(shm_core::SharedLayout)]
    #[repr(C)]
    pub struct Counter {
        pub hits: u64,
    }
}

mod v2 {
    // Same name, same fields, another module: the descriptor never holds a module path.
    #[derive(shm_core::SharedLayout)]
    #[repr(C)]
    pub struct Counter {
        pub hits: u64,
    }
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Hits {
    pub hits: u64,
}

#[derive(SharedLayout)]
#[repr(C)]
#[shm(name = "Counter")]
pub struct RenamedCounter {
    pub hits: u64,
}

fn fields(layout: &Layout) -> &'static [Field] {
    match layout.kind {
        Kind::Struct { fields } => fields,
        other => panic!("{} is not a struct: {other:?}", layout.name),
    }
}

fn code(layout: &Layout) -> TypeCode {
    match layout.kind {
        Kind::Primitive(code) => code,
        other => panic!("not a primitive: {other:?}"),
    }
}

#[test]
fn every_primitive_is_described_with_its_code_and_offset() {
    let layout = <Primitives as SharedLayout>::LAYOUT;
    assert_eq!(layout.name, "Primitives");
    assert_eq!(layout.size, size_of::<AtomicPrimitives>());
    assert_eq!(layout.size, size_of::<Primitives>());
    assert_eq!(layout.align, align_of::<AtomicPrimitives>());
    let got: Vec<(&str, usize, TypeCode)> = fields(&layout)
        .iter()
        .map(|f| (f.name, f.offset, code(f.layout)))
        .collect();
    let want = vec![
        ("a", offset_of!(Primitives, a), TypeCode::I8),
        ("b", offset_of!(Primitives, b), TypeCode::U8),
        ("c", offset_of!(Primitives, c), TypeCode::I16),
        ("d", offset_of!(Primitives, d), TypeCode::U16),
        ("e", offset_of!(Primitives, e), TypeCode::I32),
        ("f", offset_of!(Primitives, f), TypeCode::U32),
        ("g", offset_of!(Primitives, g), TypeCode::I64),
        ("h", offset_of!(Primitives, h), TypeCode::U64),
        ("i", offset_of!(Primitives, i), TypeCode::F32),
        ("j", offset_of!(Primitives, j), TypeCode::F64),
        ("k", offset_of!(Primitives, k), TypeCode::Bool),
        ("l", offset_of!(Primitives, l), TypeCode::Char),
    ];
    assert_eq!(got, want);
    // `#[repr(C)]` places each at the next multiple of its size; `char` is 4 bytes.
    let offsets: Vec<usize> = got.iter().map(|f| f.1).collect();
    assert_eq!(offsets, [0, 1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 52]);
    assert_eq!(layout.size, 56);
}

#[test]
fn nested_structs_and_2d_arrays_are_described() {
    let layout = <Body as SharedLayout>::LAYOUT;
    let f = fields(&layout);
    assert_eq!(
        f.iter().map(|f| f.name).collect::<Vec<_>>(),
        ["id", "position", "transform", "path"]
    );
    assert_eq!(f[1].offset, offset_of!(AtomicBody, position));
    assert_eq!(f[1].offset, 4);
    assert_eq!(f[1].layout.name, "Point");
    let point = fields(f[1].layout);
    assert_eq!((point[1].name, point[1].offset), ("y", 4));

    // [[f32; 4]; 4]: an array of 4 arrays of 4 f32.
    assert_eq!(f[2].offset, 12);
    match f[2].layout.kind {
        Kind::Array { elem, len: 4 } => match elem.kind {
            Kind::Array { elem, len: 4 } => assert_eq!(code(elem), TypeCode::F32),
            other => panic!("inner is {other:?}"),
        },
        other => panic!("outer is {other:?}"),
    }
    assert_eq!(f[2].layout.size, 64);

    // [Point; 2]: an array of nested structs.
    match f[3].layout.kind {
        Kind::Array { elem, len: 2 } => assert_eq!(elem.name, "Point"),
        other => panic!("path is {other:?}"),
    }
    assert_eq!(f[3].offset, 76);
    assert_eq!(layout.size, 92);
    assert_eq!(layout.size, size_of::<Body>());
}

#[test]
fn align_64_is_kept_by_the_twin() {
    let layout = <Slot as SharedLayout>::LAYOUT;
    assert_eq!(layout.align, 64);
    assert_eq!(layout.size, 64);
    assert_eq!(align_of::<AtomicSlot>(), 64);
    assert_eq!(size_of::<[AtomicSlot; 3]>(), 192);
    assert_eq!(fields(&layout)[1].offset, 8);
}

#[test]
fn tuple_struct_fields_are_named_by_position() {
    let layout = <Pair as SharedLayout>::LAYOUT;
    let f = fields(&layout);
    assert_eq!((f[0].name, f[0].offset), ("0", 0));
    assert_eq!((f[1].name, f[1].offset), ("1", 8));
    assert_eq!(code(f[1].layout), TypeCode::F64);
}

#[test]
fn the_type_name_is_part_of_the_fingerprint_and_shm_name_sets_it() {
    // Same fields, another name: another layout.
    assert_ne!(
        <Hits as SharedLayout>::FINGERPRINT,
        <v1::Counter as SharedLayout>::FINGERPRINT
    );
    // Same name, same fields, another module: the same layout.
    assert_eq!(
        <v1::Counter as SharedLayout>::FINGERPRINT,
        <v2::Counter as SharedLayout>::FINGERPRINT
    );
    // `#[shm(name = "Counter")]` makes a differently named struct the same layout.
    assert_eq!(<RenamedCounter as SharedLayout>::LAYOUT.name, "Counter");
    assert_eq!(
        <RenamedCounter as SharedLayout>::FINGERPRINT,
        <v1::Counter as SharedLayout>::FINGERPRINT
    );
    assert_eq!(
        <RenamedCounter as SharedLayout>::LAYOUT.encode(),
        <v1::Counter as SharedLayout>::LAYOUT.encode()
    );
}

#[test]
fn load_returns_what_store_wrote() {
    let prims = Primitives {
        a: i8::MIN,
        b: u8::MAX,
        c: -300,
        d: 60_000,
        e: i32::MIN + 1,
        f: 4_000_000_000,
        g: -(1 << 40),
        h: u64::MAX - 1,
        i: -1.5,
        j: std::f64::consts::PI,
        k: true,
        l: '✓',
    };
    let twin = AtomicPrimitives::default();
    assert_eq!(Primitives::load(&twin, Relaxed), Primitives::default());
    Primitives::store(&twin, &prims, Relaxed);
    assert_eq!(Primitives::load(&twin, Relaxed), prims);
    assert_eq!(twin.l.load(Relaxed), '✓');

    let mut body = Body {
        id: 7,
        position: Point { x: 1.0, y: -2.0 },
        ..Body::default()
    };
    body.transform[3][1] = 0.25;
    body.path[1].y = 9.0;
    let twin = AtomicBody::default();
    Body::store(&twin, &body, Relaxed);
    assert_eq!(twin.transform[3][1].load(Relaxed), 0.25);
    assert_eq!(twin.path[1].y.load(Relaxed), 9.0);
    twin.position.x.fetch_add(1.0, Relaxed);
    body.position.x = 2.0;
    assert_eq!(Body::load(&twin, Relaxed), body);

    let twin = AtomicPair::default();
    Pair::store(&twin, &Pair(3, 0.5), Relaxed);
    assert_eq!(Pair::load(&twin, Relaxed), Pair(3, 0.5));
}

#[test]
fn the_twin_debugs_as_its_values() {
    let twin = AtomicPoint::default();
    twin.y.store(2.5, Relaxed);
    assert_eq!(format!("{twin:?}"), "AtomicPoint { x: 0.0, y: 2.5 }");
    let pair = AtomicPair::default();
    pair.0.store(1, Relaxed);
    assert_eq!(format!("{pair:?}"), "AtomicPair(1, 0.0)");
}

#[test]
fn the_computed_twin_layout_follows_repr_c() {
    use shm_core::__private::repr_c;
    let u8_ = &<u8 as SharedLayout>::LAYOUT;
    let u64_ = &<u64 as SharedLayout>::LAYOUT;
    let point = &<Point as SharedLayout>::LAYOUT;
    let twin = repr_c([u8_, u64_, u8_], 1);
    assert_eq!((twin.offsets, twin.size, twin.align), ([0, 8, 16], 24, 8));
    let twin = repr_c([u8_, point], 64);
    assert_eq!((twin.offsets, twin.size, twin.align), ([0, 4], 64, 64));
    assert!(shm_core::__private::lock_free(
        &<Body as SharedLayout>::LAYOUT
    ));
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(i16)]
pub enum Level {
    Low = -300,
    #[default]
    Zero,
    High = 300,
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Status {
    pub flag: bool,
    pub level: Level,
    pub note: shm_core::Text<5>,
    pub levels: [Level; 2],
}

#[test]
fn enums_and_texts_are_described_and_placed_like_their_twins() {
    let level = <Level as SharedLayout>::LAYOUT;
    assert_eq!((level.name, level.size, level.align), ("Level", 2, 2));
    let Kind::Enum {
        repr,
        variants,
        default,
    } = level.kind
    else {
        panic!("{level:?}")
    };
    assert_eq!(repr, TypeCode::I16);
    let v: Vec<(&str, i128)> = variants.iter().map(|v| (v.name, v.value)).collect();
    // An implicit discriminant follows the previous one.
    assert_eq!(v, [("Low", -300), ("Zero", -299), ("High", 300)]);
    assert_eq!(variants[default].name, "Zero");
    assert_eq!(size_of::<AtomicLevel>(), 2);

    let status = <Status as SharedLayout>::LAYOUT;
    let f = fields(&status);
    assert_eq!(
        f.iter().map(|f| (f.name, f.offset)).collect::<Vec<_>>(),
        [
            ("flag", offset_of!(AtomicStatus, flag)),
            ("level", offset_of!(AtomicStatus, level)),
            ("note", offset_of!(AtomicStatus, note)),
            ("levels", offset_of!(AtomicStatus, levels)),
        ]
    );
    assert_eq!((f[1].offset, f[2].offset, f[3].offset), (2, 4, 16));
    assert!(matches!(f[2].layout.kind, Kind::Text { capacity: 5 }));
    assert_eq!((f[2].layout.size, f[2].layout.align), (12, 4));
    assert_eq!(status.size, size_of::<AtomicStatus>());
    assert_eq!(status.align, align_of::<AtomicStatus>());

    // Load and store through the twin.
    let twin = AtomicStatus::default();
    let value = Status {
        flag: true,
        level: Level::High,
        note: "héllo".get(..5).unwrap().try_into().unwrap(),
        levels: [Level::Low, Level::Zero],
    };
    Status::store(&twin, &value, Relaxed);
    assert_eq!(Status::load(&twin, Relaxed), value);
    assert_eq!(twin.level.load_raw(Relaxed), 300);
    assert_eq!(
        format!("{twin:?}"),
        "AtomicStatus { flag: true, level: High, note: \"héll\", levels: [Low, Zero] }"
    );
}
