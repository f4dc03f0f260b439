//! `shm_core::inspect`, the library under `shm ls`, `shm inspect` and `shm set`, used as a
//! program uses it: what `list`, `examine` and `stale` say of each kind of object, and what a
//! `RawSegment` reads, writes and reports of a segment it has no Rust type for.

use std::mem::size_of;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::Duration;

use shm_core::inspect::{self, Datum, EntryKind, FieldError, RawSegment};
use shm_core::{Array, Error, Shared, TypeCode, Value};
use tests::types::{Everything, Inner, Slot};
use tests::{Child, TestName};

tests::child_roles!();

fn sample() -> Everything {
    Everything {
        i8_: -8,
        u16_: 16,
        i64_: -64,
        u64_: u64::MAX,
        f64_: 0.5,
        flag: true,
        letter: 'é',
        grid: [[1, 2, 3], [4, 5, 6]],
        inner: Inner {
            x: 7,
            y: [-1, 0, 1],
        },
        ..Everything::default()
    }
}

fn this_user() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

#[test]
fn examine_and_list_describe_each_segment_by_its_handle_type_size_and_creator() {
    let (s, a, v) = (
        TestName::new("insp-s"),
        TestName::new("insp-a"),
        TestName::new("insp-v"),
    );
    let _s = Shared::<Everything>::create(&s, sample()).unwrap();
    let _a = Array::<Slot>::create_zeroed(&a, 3).unwrap();
    let _v = Value::<i32>::create(&v, 5).unwrap();

    let expect = [
        (
            &s,
            "Shared<Everything>",
            "Everything",
            false,
            1,
            size_of::<Everything>(),
        ),
        (&a, "Array<Slot>", "Slot", true, 3, 3 * size_of::<Slot>()),
        (&v, "Value<i32>", "i32", false, 1, 4),
    ];
    let listed = inspect::list().unwrap();
    for (name, rust_type, type_name, is_array, count, payload) in expect {
        let entry = inspect::examine(name).unwrap();
        assert_eq!(entry.name, **name);
        assert!(entry.is_ours());
        assert!(entry.stale().is_none(), "{}: its creator lives", &**name);
        let info = entry.info().expect("a valid segment");
        assert_eq!(info.rust_type(), rust_type);
        assert_eq!(info.type_name(), type_name);
        assert_eq!((info.is_array, info.count), (is_array, count));
        assert_eq!(info.payload_len, payload as u64);
        assert_eq!(entry.object_len, Some(info.object_len));
        // The header, the descriptor and two journal copies come on top of the payload.
        assert!(info.object_len >= 3 * info.payload_len + 64, "{info:?}");
        assert_eq!(info.creator_pid, std::process::id());
        assert!(info.creator_alive && !info.kept && !info.is_stale());
        assert_eq!((info.uid, info.mode), (this_user(), 0o600));

        // `list` says the same of it.
        let seen = listed
            .iter()
            .find(|e| e.name == **name)
            .unwrap_or_else(|| panic!("{} not listed", &**name));
        assert_eq!(seen.info().unwrap().rust_type(), rust_type);
    }
    // Sorted by name.
    assert!(listed.windows(2).all(|w| w[0].name <= w[1].name));
}

#[test]
fn examine_tells_foreign_objects_and_missing_names_from_segments() {
    let foreign = TestName::new("insp-foreign");
    foreign.plant(b"another program's shared memory", 0o600);
    let entry = inspect::examine(&foreign).unwrap();
    let EntryKind::Foreign(why) = &entry.kind else {
        panic!("{:?}", entry.kind)
    };
    assert_eq!(why, "it does not start with the shm-core magic bytes");
    assert!(!entry.is_ours() && entry.info().is_none() && entry.stale().is_none());
    assert_eq!(entry.object_len, Some(31));

    // The magic, then garbage: one of ours, broken.
    let corrupt = TestName::new("insp-corrupt");
    let mut bytes = b"SHMCORE\0".to_vec();
    bytes.resize(4096, 0xAB);
    corrupt.plant(&bytes, 0o600);
    let entry = inspect::examine(&corrupt).unwrap();
    assert!(
        matches!(entry.kind, EntryKind::Broken(Error::Corrupt { .. })),
        "{:?}",
        entry.kind
    );
    assert!(entry.is_ours() && entry.stale().is_none());

    let missing = TestName::new("insp-missing");
    assert!(matches!(
        inspect::examine(&missing),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        inspect::examine("a/b"),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn stale_finds_what_dead_creators_left_and_remove_takes_only_that() {
    let (killed, died_in_init, live) = (
        TestName::new("insp-killed"),
        TestName::new("insp-init"),
        TestName::new("insp-live"),
    );
    let mut c = Child::spawn(&["create-then-hang", &killed]);
    c.wait_for("created");
    c.kill9();
    let killed_pid = c.pid();
    let mut c = Child::spawn(&["hang-in-init", &died_in_init]);
    c.wait_for("initializing");
    c.kill9();
    let init_pid = c.pid();
    let _live = Value::<u64>::create(&live, 1).unwrap();

    let entry = inspect::examine(&killed).unwrap();
    let info = entry.info().expect("made ready before its creator died");
    assert!(!info.creator_alive && info.is_stale());
    let entry = inspect::examine(&died_in_init).unwrap();
    assert!(
        matches!(entry.kind, EntryKind::Broken(Error::CreatorDied { pid, .. }) if pid == init_pid),
        "{:?}",
        entry.kind
    );

    let stale = inspect::stale().unwrap();
    let of = |name: &str| stale.iter().find(|s| s.name == name).cloned();
    let k = of(&killed).expect("the killed creator's segment is stale");
    assert_eq!((k.creator_pid, k.ready), (killed_pid, true));
    let i = of(&died_in_init).expect("the half-made segment is stale");
    assert_eq!((i.creator_pid, i.ready), (init_pid, false));
    assert!(of(&live).is_none());

    assert!(k.remove().unwrap(), "removed");
    assert!(!killed.exists());
    assert!(matches!(k.remove(), Err(Error::NotFound { .. })));
    // The name made again by a live process: not the stale segment any more, left alone.
    shm_core::remove(&died_in_init).unwrap();
    let _again = Value::<u64>::create(&died_in_init, 2).unwrap();
    assert!(
        !i.remove().unwrap(),
        "another segment under the name is left alone"
    );
    assert!(died_in_init.exists());
}

#[test]
fn a_raw_segment_reads_and_writes_any_field_as_the_typed_handle_sees_it() {
    let name = TestName::new("insp-raw");
    let s = Shared::<Everything>::create(&name, sample()).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    assert_eq!(raw.name(), &*name);
    assert_eq!(raw.descriptor().name, "Everything");
    assert!(!raw.is_array());
    assert_eq!((raw.len(), raw.is_empty()), (1, false));

    let whole = raw.snapshot().unwrap();
    assert_eq!(whole.field("u64_"), Some(&Datum::U64(u64::MAX)));
    assert_eq!(whole.field("letter"), Some(&Datum::Char('é')));
    assert_eq!(raw.get("grid[1][2]").unwrap(), Datum::U32(6));
    assert_eq!(raw.get("inner.y[0]").unwrap(), Datum::I32(-1));
    assert_eq!(
        raw.get("inner").unwrap().to_string(),
        "{x: 7, y: [-1, 0, 1]}"
    );
    assert_eq!(raw.get("").unwrap(), whole);

    let w = raw.set("i16_", "-300").unwrap();
    assert_eq!(
        (w.path.as_str(), &w.old, &w.new, w.poisoned),
        ("i16_", &Datum::I16(0), &Datum::I16(-300), false)
    );
    assert_eq!(s.i16_.load(Relaxed), -300);
    raw.set("inner.y[2]", "0x10").unwrap();
    raw.set("flag", "false").unwrap();
    raw.set("f32_", "-1.5").unwrap();
    let now = s.snapshot();
    assert_eq!(
        (now.inner.y, now.flag, now.f32_),
        ([-1, 0, 16], false, -1.5)
    );

    // Refusals change nothing.
    let before = s.snapshot();
    let bad = raw.set("i8_", "200").unwrap_err();
    assert!(
        matches!(
            &bad,
            FieldError::BadValue {
                code: TypeCode::I8,
                ..
            }
        ),
        "{bad}"
    );
    assert!(matches!(
        raw.set("nope", "1"),
        Err(FieldError::NoSuchField { .. })
    ));
    assert!(matches!(
        raw.set("inner", "1"),
        Err(FieldError::NotPrimitive { .. })
    ));
    assert!(matches!(
        raw.set("", "1"),
        Err(FieldError::EmptyPath { .. })
    ));
    assert!(matches!(raw.get("grid[1"), Err(FieldError::Syntax { .. })));
    assert!(matches!(
        raw.get("grid[2][0]"),
        Err(FieldError::NoSuchField { .. })
    ));
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_raw_array_is_indexed_by_element_and_read_by_range() {
    let name = TestName::new("insp-raw-arr");
    let a = Array::<Slot>::create_zeroed(&name, 3).unwrap();
    a[1].count.store(11, Relaxed);
    let raw = RawSegment::open(&name).unwrap();
    assert!(raw.is_array());
    assert_eq!(raw.len(), 3);
    assert_eq!(raw.info().unwrap().rust_type(), "Array<Slot>");
    assert_eq!(raw.get("[1].count").unwrap(), Datum::U64(11));
    raw.set("[2].sum", "2.25").unwrap();
    assert_eq!(a[2].sum.load(Relaxed), 2.25);

    // A range past the end is clipped.
    let tail = raw.snapshot_range(1..10).unwrap();
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[0].field("count"), Some(&Datum::U64(11)));
    assert_eq!(tail[1].field("sum"), Some(&Datum::F64(2.25)));
    let Datum::Array(all) = raw.snapshot().unwrap() else {
        panic!("an array segment's snapshot is an array")
    };
    assert_eq!(all.len(), 3);
    assert_eq!(&all[1..], &tail[..]);
}

#[test]
fn lock_holder_names_the_thread_that_holds_the_lock_while_it_does() {
    let name = TestName::new("insp-holder");
    let v = Value::<u64>::create(&name, 1).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    assert_eq!(raw.lock_holder(), None);
    let (locked_tx, locked) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let v = &v;
        scope.spawn(move || {
            let _guard = v.lock().unwrap();
            // SAFETY: gettid takes no arguments and cannot fail.
            locked_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = release_rx.recv();
        });
        let tid = locked.recv().unwrap();
        let holder = raw.lock_holder().expect("held");
        assert_eq!(
            (holder.pid, holder.tid, holder.alive),
            (std::process::id(), tid, true)
        );
        // A bounded write gives up and names the holder; nothing is written.
        let e = raw
            .set_timeout(".", "5", Duration::from_millis(20))
            .unwrap_err();
        let FieldError::LockTimeout {
            holder: Some(named),
            ..
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!(named, holder);
        release.send(()).unwrap();
    });
    assert_eq!(raw.lock_holder(), None);
    assert_eq!(v.load(Relaxed), 1);
}

#[test]
fn is_poisoned_says_what_the_handle_says_and_a_raw_write_leaves_it_so() {
    let name = TestName::new("insp-poison");
    let v = Value::<u64>::create(&name, 1).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    assert!(!raw.is_poisoned());

    // A holder killed with the lock: reported before anyone has locked since.
    let mut holder = Child::spawn(&["lock-and-hang", &name]);
    holder.wait_for("locked");
    holder.kill9();
    assert!(v.is_poisoned());
    assert!(raw.is_poisoned());

    // The write goes on, says so, and leaves the poisoning to the program that owns the data.
    let w = raw.set(".", "2").unwrap();
    assert!(w.poisoned);
    assert!(raw.is_poisoned() && v.is_poisoned());
    assert_eq!(v.load(Relaxed), 2);
    v.clear_poison();
    assert!(!raw.is_poisoned());

    // A panic under the lock poisons as well.
    let panicked = std::panic::catch_unwind(|| {
        let _guard = v.lock().unwrap();
        panic!("under the lock");
    });
    assert!(panicked.is_err());
    assert!(raw.is_poisoned() && v.is_poisoned());
    v.clear_poison();
    assert!(!raw.is_poisoned());
}

#[test]
fn is_removed_turns_true_when_the_name_no_longer_leads_to_the_segment() {
    let name = TestName::new("insp-removed");
    let v = Value::<u64>::create(&name, 3).unwrap();
    let raw = RawSegment::open(&name).unwrap();
    assert!(!raw.is_removed());
    shm_core::remove(&name).unwrap();
    assert!(raw.is_removed());
    // Still readable and writable through the mapping.
    raw.set(".", "4").unwrap();
    assert_eq!(v.load(Relaxed), 4);
    // Another segment under the same name is not this one.
    let _again = Value::<u64>::create(&name, 0).unwrap();
    assert!(raw.is_removed());
}
