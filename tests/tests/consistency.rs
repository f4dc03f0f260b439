//! `update` and `snapshot` across processes: no torn value is ever seen.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Shared};
use tests::types::Balance;
use tests::{Child, TestName};

tests::child_roles!();

const WRITERS: u64 = 4;
const READERS: u64 = 4;
const UPDATES: u64 = 20_000;
/// Each reader takes at least this many: 1M in all.
const SNAPSHOTS: u64 = 250_000;

#[test]
fn four_writers_four_readers_no_torn_snapshot_exact_totals() {
    let name = TestName::new("balance");
    let s = Shared::<Balance>::create(&name, Balance::default()).unwrap();
    let (updates, writers, snaps) = (
        UPDATES.to_string(),
        WRITERS.to_string(),
        SNAPSHOTS.to_string(),
    );
    let readers: Vec<_> = (0..READERS)
        .map(|_| Child::spawn(&["balance-reader", &name, &writers, &snaps]))
        .collect();
    let writer_procs: Vec<_> = (0..WRITERS)
        .map(|_| Child::spawn(&["balance-writer", &name, &updates]))
        .collect();
    for w in writer_procs {
        w.finish();
    }
    let (mut taken, mut torn) = (0u64, 0u64);
    for r in readers {
        let line = r.finish();
        let nums: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        taken += nums[0];
        torn += nums[1];
    }
    assert!(taken >= READERS * SNAPSHOTS, "only {taken} snapshots");
    assert_eq!(torn, 0, "{torn} torn snapshots out of {taken}");

    // Each writer adds k = 1..=7 cyclically.
    let per_writer: i64 = (0..UPDATES).map(|i| (i % 7) as i64 + 1).sum();
    let end = s.snapshot();
    assert_eq!(
        end,
        Balance {
            a: per_writer * WRITERS as i64,
            b: -per_writer * WRITERS as i64,
            c: per_writer * WRITERS as i64,
            updates: UPDATES * WRITERS,
            writers_done: WRITERS as u32,
        }
    );
    assert_eq!(s.updates.load(Relaxed), UPDATES * WRITERS);
}

#[test]
fn update_leaves_fields_it_does_not_change_to_their_atomics() {
    let name = TestName::new("partial");
    let s = Shared::<Balance>::create(&name, Balance::default()).unwrap();
    s.update(|v| {
        // While the update runs, another party bumps a field the update does not touch.
        s.updates.fetch_add(10, Relaxed);
        v.a = 1;
        v.b = -1;
        v.c = 1;
    });
    let v = s.snapshot();
    assert_eq!((v.a, v.b, v.c, v.updates), (1, -1, 1, 10));
}

#[test]
fn a_panicking_update_changes_nothing_and_poisons_the_lock_until_cleared() {
    let name = TestName::new("panicupd");
    let s = Shared::<Balance>::create(&name, Balance::default()).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.update(|v| {
            v.a = 99;
            panic!("closure fails");
        })
    }));
    assert!(r.is_err());
    assert_eq!(s.snapshot(), Balance::default());
    assert!(s.is_poisoned());
    assert!(s.lock().is_err(), "the panic was not reported");
    // Sticky, as std's Mutex: an update goes on and leaves it so.
    s.update(|v| v.updates += 1);
    assert!(s.is_poisoned());
    // Cleared while holding the guard the poisoned lock() returned, as std's Mutex allows.
    let Err(poisoned) = s.lock() else {
        panic!("the poisoning did not stay")
    };
    let guard = poisoned.into_inner();
    s.clear_poison();
    assert!(!s.is_poisoned());
    drop(guard);
    assert!(s.lock().is_ok());
    assert_eq!(s.snapshot().updates, 1);
}

#[test]
fn a_panic_while_holding_a_guard_poisons_the_lock() {
    let name = TestName::new("panicguard");
    let a = Array::<i64>::create(&name, &[1, 2]).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let g = a.lock().unwrap();
        g[0].store(5, Relaxed);
        panic!("holder fails");
    }));
    assert!(r.is_err());
    // Not rolled back (a guard's stores are not journaled), and told.
    assert_eq!(a.snapshot(), [5, 2]);
    assert!(a.is_poisoned());
    assert!(a.lock().is_err());
    // A guard taken while already panicking (in a destructor during unwinding) does not poison
    // when it is dropped: only a panic that starts while it is held does, as with std's Mutex.
    a.clear_poison();
    struct LockOnDrop<'a>(&'a Array<i64>);
    impl Drop for LockOnDrop<'_> {
        fn drop(&mut self) {
            let g = self.0.lock().unwrap();
            g[1].store(7, Relaxed);
        }
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _d = LockOnDrop(&a);
        panic!("unrelated");
    }));
    assert!(r.is_err());
    assert_eq!(a.snapshot(), [5, 7]);
    assert!(!a.is_poisoned());
}

/// `snapshot` inside `update`'s closure on the same segment: the closure runs before the write
/// window, so it neither waits nor panics, and returns the stored value without the closure's
/// changes (made to a copy).
#[test]
fn snapshot_inside_update_returns_the_stored_value_without_the_closures_changes() {
    let name = TestName::new("snapinupd");
    let s = Shared::<Balance>::create(&name, Balance::default()).unwrap();
    let (inside, other) = s.update(|v| {
        v.a = 5;
        v.b = -5;
        // A field atomic of "another party" meanwhile is seen; the closure's copy is not.
        s.updates.fetch_add(1, Relaxed);
        (
            s.snapshot(),
            Shared::<Balance>::open(&name).unwrap().snapshot(),
        )
    });
    let want = Balance {
        updates: 1,
        ..Balance::default()
    };
    assert_eq!(inside, want);
    assert_eq!(other, want);
    let after = s.snapshot();
    assert_eq!((after.a, after.b, after.updates), (5, -5, 1));

    let name = TestName::new("snapinupdarr");
    let a = Array::<i64>::create(&name, &[1, 2, 3]).unwrap();
    let inside = a.update_range(1..2, |v| {
        v[0] = 20;
        (a.snapshot(), a.snapshot_range(1..3))
    });
    assert_eq!(inside, (vec![1, 2, 3], vec![2, 3]));
    assert_eq!(a.snapshot(), [1, 20, 3]);
}

#[test]
fn updates_never_undo_concurrent_fetch_adds_on_other_fields() {
    let name = TestName::new("racefields");
    let s = Shared::<Balance>::create(&name, Balance::default()).unwrap();
    const N: u64 = 200_000;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..N {
                s.updates.fetch_add(1, Relaxed);
            }
        });
        for _ in 0..N / 10 {
            s.update(|v| {
                v.a += 1;
                v.b -= 1;
                v.c = v.a;
            });
        }
    });
    let v = s.snapshot();
    assert_eq!(
        v.updates, N,
        "an update wrote back a stale value of a field it did not change"
    );
    assert_eq!(
        (v.a, v.b, v.c),
        (N as i64 / 10, -(N as i64) / 10, N as i64 / 10)
    );
}

#[test]
fn a_slow_snapshot_finishes_against_a_writer_that_never_pauses() {
    use shm_core::Array;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::time::Duration;

    let name = TestName::new("starve");
    let a = Array::<u64>::create_zeroed(&name, 1 << 20).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // A writer that updates one element back to back: a copy of a million elements never
        // fits between two of its writes.
        scope.spawn(|| {
            while !stop.load(Relaxed) {
                a.update_range(0..1, |v| v[0] += 1);
            }
        });
        let (tx, rx) = mpsc::channel();
        let a = &a;
        scope.spawn(move || {
            let copy = a.snapshot();
            let _ = tx.send(copy.len());
        });
        let got = rx.recv_timeout(Duration::from_secs(60));
        stop.store(true, Relaxed);
        assert_eq!(got, Ok(1 << 20), "the snapshot never finished");
    });
}
