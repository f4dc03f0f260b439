//! Segments created and written without their Rust type (`RawSegment::create`, `lock`, `write`,
//! `load`, `store`, `clear_poison`, `Guard::poison`), as a binding for another language does,
//! seen by typed handles.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::inspect::{Datum, RawSegment};
use shm_core::{Array, Descriptor, Error, Guard, Options, Shared, SharedLayout, TypeCode, Value};
use tests::TestName;

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
struct Pair {
    a: u8,
    b: f64,
    c: [i16; 3],
}

fn pair() -> Descriptor {
    Descriptor::repr_c(
        "Pair",
        vec![
            ("a".into(), Descriptor::primitive(TypeCode::U8)),
            ("b".into(), Descriptor::primitive(TypeCode::F64)),
            (
                "c".into(),
                Descriptor::array(Descriptor::primitive(TypeCode::I16), 3).unwrap(),
            ),
        ],
        1,
    )
    .unwrap()
}

#[test]
fn a_struct_created_from_a_descriptor_is_the_rust_type() {
    let name = TestName::new("rawcreate");
    let raw = RawSegment::create(
        &name,
        &pair(),
        None,
        &[(0, Datum::U8(7)), (20, Datum::I16(-2))],
        &Options::new(),
    )
    .unwrap();
    assert!(raw.is_owner());
    let typed = Shared::<Pair>::open(&name).unwrap();
    assert_eq!(
        typed.snapshot(),
        Pair {
            a: 7,
            b: 0.0,
            c: [0, 0, -2]
        }
    );
    // One field at a time: plain atomics, both ways.
    raw.store(8, &Datum::F64(1.5)).unwrap();
    assert_eq!(typed.b.load(Relaxed), 1.5);
    typed.c[0].store(9, Relaxed);
    assert_eq!(raw.load(16, TypeCode::I16), Some(Datum::I16(9)));
    // Out of the payload, misaligned, or not a primitive: refused.
    assert_eq!(raw.load(40, TypeCode::U8), None);
    assert_eq!(raw.store(9, &Datum::F64(0.0)), None);
    assert_eq!(raw.store(0, &Datum::Array(vec![])), None);
    drop(typed);
    drop(raw);
    assert!(!name.exists(), "the creating handle removes it");
}

#[test]
fn an_array_of_structs_and_of_primitives_is_the_typed_array() {
    let name = TestName::new("rawarray");
    let raw = RawSegment::create(
        &name,
        &pair(),
        Some(2),
        &[(24, Datum::U8(5))],
        &Options::new(),
    )
    .unwrap();
    let typed = Array::<Pair>::open(&name).unwrap();
    assert_eq!((typed.len(), typed.snapshot()[1].a), (2, 5));
    assert!(matches!(
        Shared::<Pair>::open(&name),
        Err(Error::LayoutMismatch { .. })
    ));
    drop(raw);
    let name = TestName::new("rawprims");
    let _raw = RawSegment::create(
        &name,
        &Descriptor::primitive(TypeCode::U32),
        Some(3),
        &[(8, Datum::U32(3))],
        &Options::new(),
    )
    .unwrap();
    assert_eq!(Array::<u32>::open(&name).unwrap().snapshot(), [0, 0, 3]);
}

#[test]
fn a_write_is_one_update_and_needs_the_guard() {
    let name = TestName::new("rawwrite");
    let typed = Shared::<Pair>::create(&name, Pair::default()).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    let guard = raw.lock().unwrap();
    raw.write(
        &guard,
        &[(0, Datum::U8(1)), (8, Datum::F64(2.5)), (20, Datum::I16(3))],
    )
    .unwrap();
    // A bad store changes nothing, not even the good ones beside it.
    assert!(raw
        .write(&guard, &[(0, Datum::U8(9)), (100, Datum::U8(1))])
        .is_err());
    drop(guard);
    assert_eq!(
        typed.snapshot(),
        Pair {
            a: 1,
            b: 2.5,
            c: [0, 0, 3]
        }
    );
    // The same lock as the typed handle's: held here, busy there.
    let held = raw.lock().unwrap();
    assert!(typed.try_lock().is_err());
    drop(held);
    let g = typed.lock().unwrap();
    assert!(raw.try_lock_for(None).is_err());
    typed.update_locked(&g, |p| p.a = 4);
    drop(g);
    assert_eq!(typed.snapshot().a, 4);
}

/// A binding whose work under the lock failed (an exception, not a panic) poisons through the
/// guard; every handle, typed or raw, then says so until one of them clears it.
#[test]
fn a_failure_under_the_raw_lock_poisons_for_every_handle_until_cleared() {
    let name = TestName::new("rawpoison");
    let typed = Shared::<Pair>::create(&name, Pair::default()).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    let guard = raw.lock().unwrap();
    // Held by this thread: both handles name it.
    let me = std::process::id();
    assert_eq!(
        raw.lock_holder().map(|h| (h.pid, h.alive)),
        Some((me, true))
    );
    assert_eq!(
        typed.lock_holder().map(|h| (h.pid, h.alive)),
        Some((me, true))
    );
    raw.write(&guard, &[(0, Datum::U8(3))]).unwrap();
    Guard::poison(&guard);
    drop(guard);
    assert_eq!((typed.lock_holder(), raw.lock_holder()), (None, None));
    assert!(typed.is_poisoned() && raw.is_poisoned());
    // Sticky: every locker is told, a write goes through and leaves it so.
    for _ in 0..2 {
        assert!(typed.lock().is_err());
        assert!(raw.lock().is_err());
    }
    raw.write(
        &raw.lock().unwrap_or_else(|p| p.into_inner()),
        &[(0, Datum::U8(4))],
    )
    .unwrap();
    assert!(typed.is_poisoned());
    assert_eq!(typed.snapshot().a, 4);
    // Cleared through the raw handle, while holding its (poisoned) guard.
    let guard = raw.lock().unwrap_err().into_inner();
    raw.clear_poison();
    drop(guard);
    assert!(!typed.is_poisoned() && !raw.is_poisoned());
    assert!(typed.lock().is_ok());
    // And through the typed array handle's guard, seen by the raw one.
    drop(typed);
    drop(raw);
    let a = Array::<u32>::create(&name, &[1, 2]).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    let g = a.lock().unwrap();
    Guard::poison(&g);
    drop(g);
    assert!(raw.is_poisoned());
    raw.clear_poison();
    assert!(!a.is_poisoned() && a.lock().is_ok());
}

#[test]
fn inconsistent_layouts_and_init_outside_the_payload_are_refused() {
    let name = TestName::new("rawbad");
    let mut bad = pair();
    bad.size = 4;
    let e = RawSegment::create(&name, &bad, None, &[], &Options::new()).unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e}");
    let e = RawSegment::create(&name, &pair(), None, &[(32, Datum::U8(1))], &Options::new())
        .unwrap_err();
    assert!(e.to_string().contains("payload offset 32"), "{e}");
    assert!(!name.exists(), "nothing was created");
    let v = Value::<u8>::create(&name, 1).unwrap();
    let info = v.info().unwrap();
    assert_eq!(
        (info.creator_pid, info.creator_alive),
        (std::process::id(), true)
    );
}
