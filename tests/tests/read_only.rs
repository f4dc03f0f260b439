//! Observers that cannot write: a read-only attach (`open_readonly`) by another user who may only
//! read, consistent snapshots while the owner updates, and a writer killed mid-update while
//! read-only observers read. Real processes throughout; the other-user cases need root (as CI
//! runs) to change uid.

use std::os::unix::fs::{chown, FileExt};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use shm_core::{Array, Error, Options, Shared, Value};
use tests::types::Balance;
use tests::{requires_root, run_as, Child, TestName, NOBODY};

tests::child_roles!();

const GROUP: u32 = 4243;

/// A member of the segment's group, which may only read it (mode 0o640), attaches read-only and
/// is refused read-write with a message that says a read-only attach is possible.
#[test]
fn a_group_member_who_may_only_read_attaches_read_only_and_is_refused_read_write() {
    if !requires_root("changes uid") {
        return;
    }
    let name = TestName::new("ro-group");
    let _v = Value::<i32>::create_with(&name, 41, &Options::new().mode(0o640)).unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    assert_eq!(
        run_as(NOBODY, GROUP, &["try-open-readonly", &name, "640"]),
        "ok 41"
    );
    assert_eq!(
        run_as(NOBODY, GROUP, &["try-open", &name, "660"]),
        format!(
            "err PermissionDenied: segment `{}`: permission denied: it belongs to uid 0 (group {GROUP}, mode 0o640), not to this user (uid {NOBODY}): its mode 0o640 does not give its group read and write access (its group may read it: attach read-only with `open_readonly`, `shm_core.open(name, readonly=True)`, or the `shm` read commands)",
            &*name
        )
    );
    // Outside the group, read-only is refused too, for that reason.
    assert_eq!(
        run_as(NOBODY, NOBODY, &["try-open-readonly", &name, "640"]),
        format!(
            "err PermissionDenied: segment `{}`: permission denied: it belongs to uid 0 (group {GROUP}, mode 0o640), not to this user (uid {NOBODY}): this user is not in its group {GROUP}",
            &*name
        )
    );
}

/// The other user's read-only snapshots are consistent while the owner updates.
#[test]
fn another_users_read_only_snapshots_are_consistent_while_the_owner_updates() {
    if !requires_root("changes uid") {
        return;
    }
    let name = TestName::new("ro-balance");
    let s = Shared::<Balance>::create_with(&name, Balance::default(), &Options::new().mode(0o640))
        .unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    let line = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            run_as(
                NOBODY,
                GROUP,
                &["readonly-balance", &name, "640", "1", "20000"],
            )
        });
        for i in 0..20_000 {
            let k = i % 5 + 1;
            s.update(|v| {
                v.a += k;
                v.b -= k;
                v.c = v.a;
                v.updates += 1;
            });
        }
        s.writers_done.fetch_add(1, Relaxed);
        reader.join().unwrap()
    });
    let (taken, torn) = line.split_once(' ').expect("`taken torn`");
    assert!(taken.parse::<u64>().unwrap() >= 20_000, "{line}");
    assert_eq!(torn, "0", "torn read-only snapshots: {line}");
}

/// The object is mapped read only: a read-only handle of a segment this user could write still
/// cannot, and its open wrote nothing (the object's bytes are the same before and after).
#[test]
fn a_read_only_open_writes_nothing() {
    let name = TestName::new("ro-nowrite");
    let v = Value::<u64>::create(&name, 3).unwrap();
    let before = std::fs::read(name.path()).unwrap();
    let ro = Value::<u64>::open_readonly(&name).unwrap();
    assert_eq!(ro.snapshot(), 3);
    assert_eq!((ro.name(), ro.len()), (name.as_str(), 1));
    assert!(!ro.is_poisoned());
    assert!(ro.creator_alive());
    assert_eq!(std::fs::read(name.path()).unwrap(), before);
    v.set(4);
    assert_eq!(ro.snapshot(), 4);
    // The mapping is read-only: /proc says so.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let modes: Vec<&str> = maps
        .lines()
        .filter(|l| l.ends_with(&format!("/dev/shm/{}", &*name)))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(modes.len(), 2, "{maps}");
    assert!(
        modes.contains(&"rw-s") && modes.contains(&"r--s"),
        "{modes:?}"
    );
    // A wrong type is refused as for `open`.
    assert!(matches!(
        Value::<i32>::open_readonly(&name),
        Err(Error::LayoutMismatch { .. })
    ));
    let a = Array::<u64>::open_readonly(&name);
    assert!(matches!(a, Err(Error::LayoutMismatch { .. })), "{a:?}");
}

fn u64_at(name: &TestName, offset: u64) -> u64 {
    let f = std::fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, offset).unwrap();
    u64::from_ne_bytes(b)
}

const LEN: usize = 1 << 15;

/// Whether every element is the same: what each update (`+1` to all) keeps.
fn whole(v: &[i64]) -> bool {
    v.iter().all(|x| *x == v[0])
}

/// A writer SIGKILLed mid-update while read-only observers read: no observer sees a torn value,
/// none hangs, and one whose writer died inside its write window returns the value rolled back
/// in its own copy, leaving the segment as it is (the counter still odd) until a read-write
/// reader rolls it back — to the very value the observers returned.
#[test]
fn read_only_observers_of_a_writer_killed_mid_update_see_whole_values_and_write_nothing() {
    let name = TestName::new("ro-killed");
    let a = Array::<i64>::create_zeroed(&name, LEN).unwrap();
    let observers: Vec<_> = (0..2)
        .map(|_| Array::<i64>::open_readonly(&name).unwrap())
        .collect();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let (mut rounds, mut in_window) = (0, 0);
    while rounds < 50 || (in_window < 3 && rounds < 300) {
        rounds += 1;
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let readers: Vec<_> = observers
                .iter()
                .map(|o| {
                    let stop = &stop;
                    scope.spawn(move || {
                        let mut n = 0u64;
                        while !stop.load(Relaxed) {
                            let v = o.snapshot();
                            assert!(whole(&v), "round {rounds}: torn read-only snapshot");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut writer = Child::spawn(&["update-all-forever", &name]);
            writer.wait_for("started");
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            std::thread::sleep(Duration::from_micros(rng % 20_000));
            writer.kill9();
            stop.store(true, Relaxed);
            for r in readers {
                r.join().unwrap();
            }
        });
        // After the death: every observer returns (no hang) a whole value, and all the same.
        let seen: Vec<Vec<i64>> = observers.iter().map(|o| o.snapshot()).collect();
        assert!(whole(&seen[0]), "round {rounds}");
        assert_eq!(seen[0], seen[1], "round {rounds}");
        assert_eq!(
            observers[0].snapshot_range(5..9),
            seen[0][5..9],
            "round {rounds}"
        );
        if u64_at(&name, 128) % 2 == 1 && u64_at(&name, 112) != 0 {
            // Killed while storing, and the observers wrote nothing: the write window is still
            // open, the journal still recorded.
            in_window += 1;
            // A read-write reader rolls the segment back, to what the observers returned.
            assert_eq!(a.snapshot(), seen[0], "round {rounds}");
            assert_eq!(u64_at(&name, 128) % 2, 0, "round {rounds}");
        } else {
            assert_eq!(a.snapshot(), seen[0], "round {rounds}");
        }
        // Killed inside the closure: poisoned, nothing to repair here.
        a.clear_poison();
    }
    assert!(
        in_window >= 3,
        "only {in_window} of {rounds} kills landed in the write window"
    );
}
