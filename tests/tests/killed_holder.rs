//! A process killed while holding the lock, or in the middle of an update, never blocks the
//! others. What it leaves is told truthfully: a holder that died with nothing to roll back
//! poisons the lock until `clear_poison` (an `update` meanwhile goes on and leaves it poisoned);
//! a writer killed while storing is rolled back, which poisons nothing.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shm_core::{Array, Value};
use tests::{Child, TestName};

tests::child_roles!();

const ROUNDS: usize = 50;

#[test]
fn a_holder_killed_with_sigkill_poisons_until_cleared_and_blocks_nobody() {
    let name = TestName::new("killlock");
    let v = Value::<u64>::create(&name, 0).unwrap();
    for round in 0..ROUNDS {
        let mut holder = Child::spawn(&["lock-and-hang", &name]);
        holder.wait_for("locked");
        // While it lives, the lock is held, and not poisoned.
        assert!(
            matches!(v.try_lock(), Err(TryLockError::WouldBlock)),
            "round {round}"
        );
        assert!(!v.is_poisoned(), "round {round}");
        holder.kill9();
        // Reported at once, before anyone has locked.
        assert!(
            v.is_poisoned(),
            "round {round}: the dead holder is not reported"
        );

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
        // Sticky: another process is told too, and so is this one again.
        assert_eq!(
            Child::run(&["lock-once", &name]).trim(),
            "poisoned",
            "round {round}"
        );
        assert!(v.lock().is_err(), "round {round}");
        assert!(v.is_poisoned(), "round {round}");
        // Until it is cleared: then every process locks cleanly.
        v.clear_poison();
        assert!(!v.is_poisoned(), "round {round}");
        assert_eq!(
            Child::run(&["lock-once", &name]).trim(),
            "clean",
            "round {round}"
        );
        assert!(v.lock().is_ok(), "round {round}");
    }
    assert_eq!(v.load(Relaxed), 3 * ROUNDS as u64);
}

/// The bug this pins: an `update` after a killed `lock()` holder used to clear the poisoning
/// silently, so nobody was told that the value may be half-changed.
#[test]
fn an_update_after_a_killed_holder_leaves_the_lock_poisoned_until_clear_poison() {
    let name = TestName::new("killupd");
    let v = Value::<u64>::create(&name, 10).unwrap();
    let mut holder = Child::spawn(&["lock-and-hang", &name]);
    holder.wait_for("locked");
    holder.kill9();
    assert!(v.is_poisoned());
    // Another process updates: it proceeds, and sees the lock still poisoned after its update.
    assert_eq!(Child::run(&["update-once", &name]).trim(), "poisoned");
    assert_eq!(v.load(Relaxed), 11);
    // And so does this one: told, again and again.
    assert!(v.is_poisoned());
    assert!(v.lock().is_err());
    assert!(matches!(v.try_lock(), Err(TryLockError::Poisoned(_))));
    v.update(|x| *x += 1);
    assert!(v.lock().is_err());
    // Cleared: clean everywhere.
    v.clear_poison();
    assert!(v.lock().is_ok());
    assert!(!v.is_poisoned());
    assert_eq!(Child::run(&["update-once", &name]).trim(), "clean");
    assert_eq!(v.load(Relaxed), 13);
}

#[test]
fn an_array_holder_killed_mid_change_is_not_rolled_back_and_stays_poisoned() {
    let name = TestName::new("killarrlock");
    let a = Array::<i64>::create(&name, &[1, 2, 3]).unwrap();
    let mut holder = Child::spawn(&["lock-array-and-hang", &name]);
    holder.wait_for("locked");
    holder.kill9();
    // Stores under a guard are not journaled: the half-change stays, and that is what the
    // poisoning says.
    assert!(a.is_poisoned());
    assert_eq!(a.snapshot(), [99, 2, 3]);
    assert_eq!(Child::run(&["update-array-once", &name]).trim(), "poisoned");
    assert_eq!(a.snapshot(), [100, 3, 4]);
    assert!(a.is_poisoned());
    assert!(a.lock().is_err());
    a.clear_poison();
    assert!(!a.is_poisoned());
    assert!(a.lock().is_ok());
    assert_eq!(Child::run(&["update-array-once", &name]).trim(), "clean");
}

#[test]
fn try_lock_for_waits_and_gives_up() {
    let name = TestName::new("trylockfor");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let mut holder = Child::spawn(&["lock-and-hang", &name]);
    holder.wait_for("locked");
    let start = Instant::now();
    assert!(matches!(
        v.try_lock_for(Duration::from_millis(100)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(start.elapsed() >= Duration::from_millis(100));
    holder.kill9();
    match v.try_lock_for(Duration::from_secs(5)) {
        Err(TryLockError::Poisoned(_)) => {}
        other => panic!("expected poisoned, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(v.try_lock(), Err(TryLockError::Poisoned(_))));
    v.clear_poison();
    assert!(v.try_lock().is_ok());
}

/// `update-and-hang` stops inside `update`'s closure, which runs before the write window: the
/// value was never touched, but the writer held the lock, which is a poisoning all the same.
#[test]
fn a_writer_killed_inside_the_update_closure_changes_nothing_and_poisons() {
    let name = TestName::new("killupdate");
    let a = Array::<i64>::create(&name, &[0, 0, 0]).unwrap();
    for round in 0..ROUNDS {
        let mut writer = Child::spawn(&["update-and-hang", &name]);
        writer.wait_for("in-update");
        assert!(!a.is_poisoned(), "round {round}");
        writer.kill9();
        assert!(
            a.is_poisoned(),
            "round {round}: the dead writer is not reported"
        );

        // Readers in other processes return the value from before the dead update, whole.
        let start = Instant::now();
        let seen = Child::run(&["snapshot", &name]);
        assert!(start.elapsed() < Duration::from_secs(5), "round {round}");
        let before = vec![round as i64, -(round as i64), round as i64];
        let v: Vec<i64> = seen
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(v, before, "round {round}");
        // And in this one.
        assert_eq!(a.snapshot(), before, "round {round}");

        // Every locker is told, until the poisoning is cleared.
        assert!(a.lock().is_err(), "round {round}");
        assert!(a.lock().is_err(), "round {round}");
        // The next update proceeds, leaves the invariant holding, and the lock poisoned.
        a.update(|v| {
            v[0] += 1;
            v[1] -= 1;
            v[2] += 1;
        });
        let after = vec![round as i64 + 1, -(round as i64) - 1, round as i64 + 1];
        assert_eq!(a.snapshot(), after, "round {round}");
        assert!(a.is_poisoned(), "round {round}");
        a.clear_poison();
        assert!(a.lock().is_ok(), "round {round}");
    }
}

/// The 8 bytes at `offset` of the object, as a `u64` (header fields: `seq` at 128,
/// `journal_len` at 112, `journal_offset` at 96; see docs/FORMAT.md).
fn u64_at(name: &TestName, offset: u64) -> u64 {
    let f = std::fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, offset).unwrap();
    u64::from_ne_bytes(b)
}

/// A writer killed while storing (the counter odd, the journal recorded) is rolled back by the
/// next reader: the value is exactly the one before that update, nothing is half-changed, and
/// so nothing is poisoned — before the rollback, after it, or for the next locker.
#[test]
fn a_writer_killed_inside_the_write_window_is_rolled_back_and_poisons_nothing() {
    let name = TestName::new("killwindow");
    const LEN: usize = 20_000;
    let a = Array::<i64>::create_zeroed(&name, LEN).unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let (mut rounds, mut in_window) = (0, 0);
    while in_window < 3 && rounds < 300 {
        rounds += 1;
        let mut writer = Child::spawn(&["update-forever", &name]);
        writer.wait_for("started");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 20_000));
        writer.kill9();
        let (seq, journal_len) = (u64_at(&name, 128), u64_at(&name, 112));
        if seq % 2 == 0 || journal_len == 0 {
            // Killed elsewhere: between updates (nothing to tell), or in the closure or after
            // the last store (poisoned; not what this test is about).
            a.clear_poison();
            continue;
        }
        in_window += 1;
        // The journal's copy of the old values (all equal: each update fills the array).
        let old = u64_at(&name, u64_at(&name, 96)) as i64;
        assert!(
            !a.is_poisoned(),
            "round {rounds}: a write in progress is no poisoning"
        );
        // Another process's reader rolls it back, and so does this one's: exactly the value
        // from before the killed update, in every element.
        let v = Child::run(&["snapshot", &name]);
        let seen: Vec<i64> = v.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(seen, [old; 3], "round {rounds}");
        assert!(
            a.snapshot().iter().all(|x| *x == old),
            "round {rounds}: not rolled back to {old}"
        );
        assert_eq!(u64_at(&name, 128) % 2, 0, "round {rounds}");
        assert!(
            !a.is_poisoned(),
            "round {rounds}: the rollback poisoned the lock"
        );
        assert!(
            a.lock().is_ok(),
            "round {rounds}: a repaired write was reported"
        );
        // The next update proceeds cleanly.
        a.update(|v| v.fill(-1));
        assert!(!a.is_poisoned(), "round {rounds}");
    }
    eprintln!("{rounds} writers killed, {in_window} inside the write window");
    assert!(
        in_window >= 1,
        "no kill landed inside a write window in {rounds} rounds"
    );
}
