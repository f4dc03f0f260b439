//! `update` and `snapshot` across processes: no torn value is ever seen.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::Shared;
use tests::types::Balance;
use tests::{spawn_child, TestName};

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
        .map(|_| spawn_child(&["balance-reader", &name, &writers, &snaps]))
        .collect();
    let writer_procs: Vec<_> = (0..WRITERS)
        .map(|_| spawn_child(&["balance-writer", &name, &updates]))
        .collect();
    for w in writer_procs {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "writer failed: {}", out.status);
    }
    let (mut taken, mut torn) = (0u64, 0u64);
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "reader failed: {}", out.status);
        let line = String::from_utf8(out.stdout).unwrap();
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
fn a_panicking_update_changes_nothing_and_poisons_the_lock_once() {
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
    assert!(s.lock().is_err(), "the panic was not reported");
    assert!(s.lock().is_ok());
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
