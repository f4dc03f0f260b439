//! What a handle says about its segment: `Value::get`/`set`, `creator_alive`, and `Debug`.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Shared, SharedLayout, Value};
use tests::{Child, TestName};

tests::child_roles!();

#[test]
fn value_get_and_set_are_pythons_value_across_processes() {
    let name = TestName::new("getset");
    let v = Value::<i32>::create(&name, 3).unwrap();
    assert_eq!(v.get(), 3);
    v.set(-41);
    // Another process reads what `set` stored, and its increments are what `get` loads.
    assert_eq!(Child::run(&["read-i32", &name]).trim(), "-41");
    Child::run(&["add-i32", &name, "1000"]);
    assert_eq!(v.get(), 959);
    assert_eq!(v.load(Relaxed), 959);

    // Every kind of primitive.
    let f = TestName::new("getsetf");
    let f = Value::<f64>::create(&f, 0.5).unwrap();
    f.set(f.get() * 3.0);
    assert_eq!(f.get(), 1.5);
    let b = TestName::new("getsetb");
    let b = Value::<bool>::create(&b, false).unwrap();
    b.set(true);
    assert!(b.get());
    let c = TestName::new("getsetc");
    let c = Value::<char>::create(&c, 'a').unwrap();
    c.set('é');
    assert_eq!(c.get(), 'é');
    let u = TestName::new("getsetu");
    let u = Value::<u64>::create(&u, 0).unwrap();
    u.set(u64::MAX);
    assert_eq!(u.get(), u64::MAX);
}

#[test]
fn creator_alive_turns_false_when_the_creator_exits_or_is_killed() {
    // Killed: a worker's view of its parent.
    let name = TestName::new("creatorkilled");
    let mut creator = Child::spawn(&["create-kept", &name, "hang"]);
    creator.wait_for("created");
    let v = Value::<i32>::open(&name).unwrap();
    assert!(v.creator_alive());
    creator.kill9();
    assert!(!v.creator_alive());
    // The segment itself lives on (kept), and a new opener sees the same.
    assert_eq!(v.get(), 5);
    assert!(!Value::<i32>::open(&name).unwrap().creator_alive());

    // Exited normally, after keeping the segment.
    let name = TestName::new("creatorexited");
    assert_eq!(
        Child::run(&["create-kept", &name, "exit"]).trim(),
        "created"
    );
    let v = Value::<i32>::open(&name).unwrap();
    assert!(!v.creator_alive());
    let a = TestName::new("creatorself");
    let a = Array::<u8>::create(&a, &[1]).unwrap();
    assert!(a.creator_alive());
}

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Pair {
    a: i64,
    b: f32,
}

#[test]
fn debug_shows_the_name_type_and_a_snapshot_of_the_value() {
    let name = TestName::new("debug");
    let s = Shared::<Pair>::create(&name, Pair { a: -3, b: 0.5 }).unwrap();
    assert_eq!(
        format!("{s:?}"),
        format!(
            "Shared {{ name: {:?}, type: \"Pair\", owner: true, poisoned: false, value: Pair {{ a: -3, b: 0.5 }} }}",
            &*name
        )
    );
    let opened = Shared::<Pair>::open(&name).unwrap();
    opened.update(|p| p.a = 7);
    assert_eq!(
        format!("{opened:#?}"),
        format!(
            "Shared {{\n    name: {:?},\n    type: \"Pair\",\n    owner: false,\n    poisoned: false,\n    value: Pair {{\n        a: 7,\n        b: 0.5,\n    }},\n}}",
            &*name
        )
    );

    let aname = TestName::new("debugarr");
    let a = Array::<u16>::create(&aname, &[1, 2, 3]).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        a.update(|v| {
            v[0] = 9;
            panic!("poison it");
        })
    }));
    assert_eq!(
        format!("{a:?}"),
        format!(
            "Array {{ name: {:?}, type: \"u16\", len: 3, owner: true, poisoned: true, value: [1, 2, 3] }}",
            &*aname
        )
    );
    let v = TestName::new("debugval");
    let v = Value::<char>::create(&v, 'x').unwrap();
    assert!(
        format!("{v:?}").ends_with("type: \"char\", owner: true, poisoned: false, value: 'x' }")
    );
}
