//! Processes waiting on the shared value (`wait_until`): woken by another process's `update`, by
//! `notify`, and by a plain store within the bounded re-check; timeouts honoured; a writer killed
//! mid-update while four processes wait recovered by the waiters; a killed waiter and a removed
//! segment leave nobody hanging.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shm_core::{Array, Value};
use tests::{kill, Child, TestName};

tests::child_roles!();

/// The waiting words of the segment as its object holds them now (docs/FORMAT.md, "Waiting"):
/// `changes` and the two registration slots.
fn words(name: &TestName) -> (u32, [u32; 2]) {
    let f = std::fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 12];
    f.read_exact_at(&mut b, 136).unwrap();
    let w = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
    (w(0), [w(4), w(8)])
}

/// How many waiters are registered (asleep, or about to sleep) on the segment now.
fn registered(name: &TestName) -> u32 {
    let (_, slots) = words(name);
    slots.iter().map(|s| s & 0xffff).sum()
}

/// Returns once `n` waiters are registered at the same moment, so that what the test does next
/// is found by waiters that were asleep, not by their first look. Fails after a minute.
fn until_asleep(name: &TestName, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while registered(name) < n {
        assert!(Instant::now() < deadline, "{n} waiters never slept at once");
        std::thread::yield_now();
    }
}

/// `n` processes each waiting for the `Value<u64>` `name` to reach `target`.
fn waiters(name: &TestName, n: usize, target: u64) -> Vec<Child> {
    (0..n)
        .map(|_| Child::spawn(&["wait-value", name, &target.to_string(), "60000"]))
        .collect()
}

/// Every waiter says `want` and exits cleanly.
fn all_say(waiters: Vec<Child>, want: &str) {
    for mut child in waiters {
        assert_eq!(child.next_line(want), want);
        assert!(child.wait().success());
    }
}

#[test]
fn an_update_wakes_waiters_in_other_processes() {
    let name = TestName::new("wait-update");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let w = waiters(&name, 3, 5);
    until_asleep(&name, 3);
    let (changes, _) = words(&name);
    v.update(|x| *x = 5);
    assert_eq!(words(&name).0, changes.wrapping_add(1));
    all_say(w, "seen 5");
}

#[test]
fn notify_wakes_waiters_after_a_field_atomic() {
    let name = TestName::new("wait-notify");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let w = waiters(&name, 3, 7);
    until_asleep(&name, 3);
    v.fetch_add(7, Relaxed);
    v.notify();
    all_say(w, "seen 7");
}

/// A field atomic and no notify: nobody is woken, and every waiter finds the change at its next
/// re-check all the same.
#[test]
fn a_plain_store_is_seen_within_the_bounded_recheck() {
    let name = TestName::new("wait-plain");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let w = waiters(&name, 3, 9);
    until_asleep(&name, 3);
    let (changes, _) = words(&name);
    v.store(9, Relaxed);
    all_say(w, "seen 9");
    assert_eq!(words(&name).0, changes, "something announced the store");
}

/// A wait with a timeout returns `None` no earlier than its timeout, however many changes wake
/// it meanwhile that do not satisfy it.
#[test]
fn timeouts_are_honoured_through_wakes_that_do_not_satisfy() {
    let name = TestName::new("wait-timeout");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let mut quiet = Child::spawn(&["wait-value", &name, "1000000", "200"]);
    let said = quiet.next_line("timeout after");
    let ms: u64 = said
        .strip_prefix("timeout after ")
        .unwrap_or_else(|| panic!("{said}"))
        .parse()
        .unwrap();
    assert!(ms >= 200, "{said}");
    assert!(quiet.wait().success());

    let busy = Child::spawn(&["wait-value", &name, "1000000", "300"]);
    let reader = std::thread::spawn(move || (busy.next_line("timeout after"), busy));
    // Updates that wake the waiter, none reaching its target, until it gives up.
    let mut updates = 0u64;
    while !reader.is_finished() {
        v.update(|x| *x = (*x + 1) % 1000);
        updates += 1;
    }
    let (said, mut busy) = reader.join().unwrap();
    let ms: u64 = said
        .strip_prefix("timeout after ")
        .unwrap_or_else(|| panic!("{said}"))
        .parse()
        .unwrap();
    assert!(ms >= 300, "{said}");
    assert!(updates > 0);
    assert!(busy.wait().success());
}

/// The header's `seq` (offset 128): odd while a write is in progress or its writer died in it.
fn seq(name: &TestName) -> u64 {
    let f = std::fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, 128).unwrap();
    u64::from_ne_bytes(b)
}

/// 50 writers killed in the middle of an update while four processes wait: the waiters never
/// see a torn value, they themselves roll the dead writer's update back (this process does not
/// read the segment until `seq` is even again), and they go on waiting until a later update
/// satisfies them. A writer is killed at a random moment of its loop of updates (every other one
/// at a random moment of a write window, however short a part of an update that is); kills that
/// land between two updates are done again, until 50 have landed inside a write window.
#[test]
fn a_writer_killed_mid_update_while_four_processes_wait() {
    const IN_WINDOW: usize = 50;
    const MAX_ROUNDS: usize = 1000;
    const WAITERS: usize = 4;
    const LEN: usize = 20_000;
    let name = TestName::new("wait-killed-writer");
    let a = Array::<i64>::create_zeroed(&name, LEN).unwrap();
    // How long a write window lasts: every other kill lands at a random moment of one.
    let window = kill::window_length("update-forever", &name);
    let now = a.snapshot();
    assert!(now.iter().all(|x| *x == now[0]), "torn");
    a.clear_poison();
    let mut waiters: Vec<Child> = (0..WAITERS)
        .map(|_| Child::spawn(&["wait-rounds", &name]))
        .collect();
    let mut rng = kill::Rng::new();
    let (mut round, mut in_window) = (0, 0);
    while in_window < IN_WINDOW && round < MAX_ROUNDS {
        round += 1;
        let mut writer = Child::spawn(&["update-forever", &name]);
        writer.wait_for("started");
        kill::kill_at_random(&mut writer, &name, round as u32, (20_000, window), &mut rng);
        // Odd: killed while storing (unless a waiter rolled it back already, which takes it a
        // millisecond: then this round counts as one between updates, which it need not be).
        if seq(&name) % 2 == 1 {
            in_window += 1;
        }
        // The waiters find the odd `seq` and roll the dead write back; nobody else reads the
        // segment meanwhile.
        let deadline = Instant::now() + Duration::from_secs(60);
        while seq(&name) % 2 == 1 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the waiters never rolled the dead writer back"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Whole, whoever rolled it back.
        let now = a.snapshot();
        assert!(now.iter().all(|x| *x == now[0]), "round {round}: torn");
        // Killed inside the closure or after its last store: a poisoning, not this test's point.
        a.clear_poison();
        // The update they wait for.
        a.update(|v| v.fill(-(round as i64)));
        for (i, w) in waiters.iter().enumerate() {
            assert_eq!(w.next_line("round"), format!("round {round}"), "waiter {i}");
        }
    }
    a.update(|v| v.fill(i64::MIN));
    for mut child in waiters.drain(..) {
        assert_eq!(child.next_line("stopped"), "stopped");
        assert!(child.wait().success());
    }
    eprintln!("{in_window} of {round} writers were killed inside their write window");
    assert_eq!(
        in_window, IN_WINDOW,
        "only {in_window} kills landed inside a write window in {round} rounds"
    );
}

/// A waiter killed while asleep leaves its registration behind: updates go on (each paying a
/// wake call, for a second or two at most), other waiters are woken as before, and once the
/// registration is older than that a writer clears it.
#[test]
fn a_waiter_killed_while_waiting_leaves_nothing_that_hangs_anyone() {
    let name = TestName::new("wait-killed-waiter");
    let v = Value::<u64>::create(&name, 0).unwrap();
    // Killed while registered (asleep): tried again in the rare case it was between sleeps.
    let mut left = 0;
    for _ in 0..10 {
        let mut doomed = Child::spawn(&["wait-value", &name, "1000", "-"]);
        until_asleep(&name, 1);
        doomed.kill9();
        left = registered(&name);
        if left > 0 {
            break;
        }
    }
    assert_eq!(left, 1, "no waiter was killed while registered");

    // Nobody hangs: updates, snapshots, the lock, and another waiter, woken by an update.
    v.update(|x| *x = 1);
    assert_eq!(v.snapshot(), 1);
    assert!(v.lock().is_ok());
    assert!(!v.is_poisoned());
    let w = waiters(&name, 1, 2);
    until_asleep(&name, left + 1);
    v.update(|x| *x = 2);
    all_say(w, "seen 2");

    // Registrations are tagged with the second they were made in; past two seconds the dead
    // waiter's is stale, and the next write clears it.
    std::thread::sleep(Duration::from_millis(2100));
    v.update(|x| *x = 3);
    assert_eq!(registered(&name), 0, "left {left} registered");
}

/// A segment removed while waited on stays mapped: the waiter returns at its timeout.
#[test]
fn a_waiter_on_a_removed_segment_returns_at_its_timeout() {
    let name = TestName::new("wait-removed");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let mut waiter = Child::spawn(&["wait-value", &name, "1", "500"]);
    until_asleep(&name, 1);
    shm_core::remove(&name).unwrap();
    let said = waiter.next_line("timeout after");
    assert!(said.starts_with("timeout after "), "{said}");
    assert!(waiter.wait().success());
    drop(v);
}
