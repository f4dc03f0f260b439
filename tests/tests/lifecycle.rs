//! Who removes a segment, and when: the creator on drop; an opener never.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Error, Options, Value};
use tests::{Child, TestName};

tests::child_roles!();

#[test]
fn an_opener_that_exits_or_is_killed_leaves_the_segment_to_its_creator() {
    let name = TestName::new("opener");
    let v = Value::<i32>::create(&name, 41).unwrap();
    v.fetch_add(1, Relaxed);
    // A clean exit...
    assert_eq!(Child::run(&["read-i32", &name]).trim(), "42");
    assert!(name.exists());
    // ... and a SIGKILL.
    let mut child = Child::spawn(&["open-and-hang", &name]);
    child.wait_for("opened");
    child.kill9();
    assert!(name.exists());
    // The creator and new openers still use it.
    v.fetch_add(1, Relaxed);
    assert_eq!(Child::run(&["read-i32", &name]).trim(), "43");
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
            .map(|_| Child::spawn(&["open-or-create", &name]))
            .collect();
        let mut owners = 0;
        for c in children {
            let line = c.finish();
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

#[test]
fn a_forked_child_dropping_the_creators_handle_does_not_remove() {
    let name = TestName::new("fork");
    let v = Value::<u32>::create(&name, 3).unwrap();
    // SAFETY: the child only drops the handle (munmap, close, no unlink) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(v);
        // SAFETY: ends the child without running the parent's state.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        name.exists(),
        "the child's drop removed the parent's segment"
    );
    assert_eq!(v.load(Relaxed), 3);
    drop(v);
    assert!(!name.exists());
}

#[test]
fn a_second_handle_in_the_same_thread_cannot_take_a_held_lock() {
    let name = TestName::new("twohandles");
    let a = Value::<u32>::create(&name, 0).unwrap();
    let b = Value::<u32>::open(&name).unwrap();
    let guard = a.lock().unwrap();
    // Same segment, same thread: a relock, refused loudly instead of stealing the lock.
    let relock = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.update(|v| *v += 1)));
    assert!(relock.is_err());
    drop(guard);
    // Nothing was poisoned or changed by the refused attempt.
    assert!(b.lock().is_ok());
    assert_eq!(b.load(Relaxed), 0);
}

#[test]
fn open_or_create_recreates_a_name_removed_while_it_waited() {
    use std::time::{Duration, Instant};
    let name = TestName::new("removedwait");
    let mut creator = Child::spawn(&["hang-in-init", &name]);
    creator.wait_for("initializing");
    let waiter = {
        let name = name.to_string();
        std::thread::spawn(move || {
            let opts = Options::new().wait(Duration::from_secs(30));
            let start = Instant::now();
            let v = Value::<i32>::open_or_create_with(&name, 9, &opts).unwrap();
            (v.is_owner(), v.load(Relaxed), start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    // The creator gives up and cleans up while the waiter waits for it.
    shm_core::remove(&name).unwrap();
    let (owner, value, took) = waiter.join().unwrap();
    creator.kill9();
    assert!(owner, "the waiter should have created the segment anew");
    assert_eq!(value, 9);
    assert!(took < Duration::from_secs(5), "{took:?}");
}
