//! A process killed while holding the lock, or in the middle of an update, never blocks the
//! others: the next locker is told (poisoned) and everyone carries on.

use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shm_core::{Array, Value};
use tests::{child_bin, kill9, run_child, spawn_child, wait_for_line, TestName};

const ROUNDS: usize = 50;

#[test]
fn a_holder_killed_with_sigkill_poisons_once_and_blocks_nobody() {
    let name = TestName::new("killlock");
    let v = Value::<u64>::create(&name, 0).unwrap();
    for round in 0..ROUNDS {
        let mut holder = spawn_child(&["lock-and-hang", &name]);
        wait_for_line(&mut holder, "locked");
        // While it lives, the lock is held.
        assert!(
            matches!(v.try_lock(), Err(TryLockError::WouldBlock)),
            "round {round}"
        );
        kill9(&mut holder);

        let start = Instant::now();
        let result = v.lock();
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "round {round}: lock took {took:?}"
        );
        let guard = match result {
            Err(poisoned) => poisoned.into_inner(),
            Ok(_) => panic!("round {round}: the dead holder was not reported"),
        };
        guard.fetch_add(1, Relaxed);
        drop(guard);
        // A third process locks normally: the poisoning is reported once.
        assert_eq!(
            run_child(&["lock-once", &name]).trim(),
            "clean",
            "round {round}"
        );
    }
    assert_eq!(v.load(Relaxed), 2 * ROUNDS as u64);
}

#[test]
fn try_lock_for_waits_and_gives_up() {
    let name = TestName::new("trylockfor");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let mut holder = spawn_child(&["lock-and-hang", &name]);
    wait_for_line(&mut holder, "locked");
    let start = Instant::now();
    assert!(matches!(
        v.try_lock_for(Duration::from_millis(100)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(start.elapsed() >= Duration::from_millis(100));
    kill9(&mut holder);
    match v.try_lock_for(Duration::from_secs(5)) {
        Err(TryLockError::Poisoned(_)) => {}
        other => panic!("expected poisoned, got {:?}", other.map(|_| ())),
    }
    assert!(v.try_lock().is_ok());
}

#[test]
fn a_writer_killed_inside_update_never_hangs_readers_and_the_next_update_repairs() {
    let name = TestName::new("killupdate");
    let a = Array::<i64>::create(&name, &[0, 0, 0]).unwrap();
    for round in 0..ROUNDS {
        let mut writer = std::process::Command::new(child_bin())
            .args(["update-and-hang", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut writer, "in-update");
        kill9(&mut writer);

        // Readers in other processes return, with a consistent value.
        let start = Instant::now();
        let seen = run_child(&["snapshot", &name]);
        assert!(start.elapsed() < Duration::from_secs(5), "round {round}");
        let v: Vec<i64> = seen
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(v[0] + v[1], 0, "round {round}: torn {v:?}");
        assert_eq!(v[2], v[0], "round {round}: torn {v:?}");
        // And in this one.
        let s = a.snapshot();
        assert_eq!(s, v, "round {round}");

        // The next locker is told that a writer died; the one after is not.
        assert!(
            a.lock().is_err(),
            "round {round}: the dead writer was not reported"
        );
        assert!(a.lock().is_ok(), "round {round}");
        // The next update proceeds and leaves the invariant holding.
        a.update(|v| {
            v[0] += 1;
            v[1] -= 1;
            v[2] += 1;
        });
        let s = a.snapshot();
        assert_eq!(
            s,
            vec![round as i64 + 1, -(round as i64) - 1, round as i64 + 1]
        );
    }
}
