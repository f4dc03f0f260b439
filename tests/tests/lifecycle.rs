//! Who removes a segment, and when: the creator on drop; an opener never.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Error, Options, Value};
use tests::{kill9, run_child, spawn_child, wait_for_line, TestName};

#[test]
fn an_opener_that_exits_or_is_killed_leaves_the_segment_to_its_creator() {
    let name = TestName::new("opener");
    let v = Value::<i32>::create(&name, 41).unwrap();
    v.fetch_add(1, Relaxed);
    // A clean exit...
    assert_eq!(run_child(&["read-i32", &name]).trim(), "42");
    assert!(name.exists());
    // ... and a SIGKILL.
    let mut child = spawn_child(&["open-and-hang", &name]);
    wait_for_line(&mut child, "opened");
    kill9(&mut child);
    assert!(name.exists());
    // The creator and new openers still use it.
    v.fetch_add(1, Relaxed);
    assert_eq!(run_child(&["read-i32", &name]).trim(), "43");
    assert!(v.is_owner());
    drop(v);
    assert!(!name.exists(), "the creator's drop removes the segment");
}

#[test]
fn an_opener_handle_dropped_in_process_does_not_remove() {
    let name = TestName::new("dropopen");
    let v = Value::<u8>::create(&name, 1).unwrap();
    let w = Value::<u8>::open(&name).unwrap();
    assert!(!w.is_owner());
    assert_eq!(w.name(), &*name);
    drop(w);
    assert!(name.exists());
    drop(v);
    assert!(!name.exists());
}

#[test]
fn a_kept_segment_outlives_its_creator_until_removed() {
    let name = TestName::new("keep");
    let v = Value::<i64>::create_with(&name, -5, &Options::new().keep(true)).unwrap();
    drop(v);
    assert!(name.exists());
    assert_eq!(Value::<i64>::open(&name).unwrap().load(Relaxed), -5);
    shm_core::remove(&name).unwrap();
    assert!(!name.exists());
    assert!(matches!(
        Value::<i64>::open(&name),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn the_creator_does_not_remove_a_new_segment_that_reused_its_name() {
    let name = TestName::new("reuse");
    let first = Value::<i32>::create(&name, 1).unwrap();
    shm_core::remove(&name).unwrap();
    let second = Value::<i32>::create(&name, 2).unwrap();
    drop(first);
    assert!(
        name.exists(),
        "dropping the first creator removed the second segment"
    );
    assert_eq!(Value::<i32>::open(&name).unwrap().load(Relaxed), 2);
    drop(second);
    assert!(!name.exists());
}

#[test]
fn racing_open_or_create_has_exactly_one_creator() {
    for round in 0..5 {
        let name = TestName::new("race");
        let children: Vec<_> = (0..8)
            .map(|_| spawn_child(&["open-or-create", &name]))
            .collect();
        let mut owners = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", out.status);
            let line = String::from_utf8(out.stdout).unwrap();
            let (owner, value) = line.trim().split_once(' ').unwrap();
            assert_eq!(
                value, "42",
                "round {round}: a process saw an uninitialised value"
            );
            if owner == "true" {
                owners += 1;
            }
        }
        assert_eq!(owners, 1, "round {round}");
    }
}
