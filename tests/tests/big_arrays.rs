//! Big arrays: what a segment costs in /dev/shm, measured from its objects, and writes of 16 MiB
//! whose writer is killed at a random moment: every reader, in every process, sees all of the
//! old value or all of the new, and field atomics on fields the writes leave alone are kept
//! through the rollbacks.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use shm_core::{Array, Value};
use tests::kill::{kill_at_random, seq, window_length, Rng};
use tests::types::Cell;
use tests::{Child, TestName};

tests::child_roles!();

/// The bytes allocated in /dev/shm (`st_blocks` × 512: tmpfs allocates on first touch, or when
/// reserved) to the segment `name` and its side journals.
fn footprint(name: &TestName) -> u64 {
    let blocks = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().blocks() * 512;
    let sides: u64 = name
        .side_journals()
        .into_iter()
        .map(|s| blocks(name.path().with_file_name(s)))
        .sum();
    blocks(name.path()) + sides
}

#[test]
fn a_64_mib_array_used_with_ranges_atomics_and_snapshots_costs_at_most_1_1_times_its_payload() {
    const PAYLOAD: usize = 64 << 20;
    let name = TestName::new("footprint");
    let a = Array::<u64>::create_zeroed(&name, PAYLOAD / 8).unwrap();
    // Another process uses it: update_range over 4096 elements four times, adding 1, 2, 3 and
    // 4, field atomics on 1001 elements, a snapshot.
    let n = a.len();
    let adds = (0..n).step_by(n / 1000).count() as u64;
    let want = 4096 * (1 + 2 + 3 + 4) + adds;
    assert_eq!(Child::run(&["big-use", &name]), format!("sum {want}\n"));
    // And this one: a range of 3000 elements of which every one changes, a field atomic, a
    // snapshot.
    a.update_range(100_000..103_000, |v| v.iter_mut().for_each(|x| *x += 5));
    a[7].fetch_add(2, Relaxed);
    assert_eq!(a.snapshot().iter().sum::<u64>(), want + 5 * 3000 + 2);

    let used = footprint(&name);
    let ratio = used as f64 / PAYLOAD as f64;
    eprintln!("64 MiB array: {used} bytes in /dev/shm, {ratio:.4} times its payload");
    // The payload is all reserved (posix_fallocate), so at least that; the journal area and
    // header at most 10 % more, and no side journal was needed.
    assert!(used >= PAYLOAD as u64, "{used}");
    assert!(ratio <= 1.1, "{used} bytes: {ratio:.3} times the payload");
    assert!(
        name.side_journals().is_empty(),
        "{:?}",
        name.side_journals()
    );
}

/// 20 rounds: a writer updating `v` of every element of a 16 MiB array of `Cell`s (each update
/// a side journal of old and new values) is killed at a random moment (every other round, at a
/// random moment of a write window), while another process
/// adds to `hits` with field atomics and a third takes snapshots. After each kill a read-only
/// observer (which rolls back in its own copy) and this process (which rolls the segment back)
/// see every element with the same `v`, the same one; a kill inside the write window poisons
/// nothing. At the end no snapshot was ever torn and every `hits` increment is there.
#[test]
fn a_16_mib_update_killed_at_random_is_all_old_or_all_new_and_keeps_field_atomics() {
    const CELLS: usize = (16 << 20) / 16;
    let name = TestName::new("bigkill");
    let stop = TestName::new("bigkill-stop");
    let a = Array::<Cell>::create_zeroed(&name, CELLS).unwrap();
    let stop_flag = Value::<u32>::create(&stop, 0).unwrap();
    // How long an update takes here: kills land anywhere within about two of them.
    let t = Instant::now();
    a.update(|c| c.iter_mut().for_each(|c| c.v = 1));
    let one = t.elapsed().as_micros() as u64;
    let window = window_length("big-update-forever", &name);
    a.clear_poison();
    let reader = Child::spawn(&["big-reader", &name, &stop]);
    reader.wait_for("started");
    let hitter = Child::spawn(&["big-hits", &name, &stop]);
    hitter.wait_for("started");

    let mut rng = Rng::new();
    let mut in_window = 0;
    for round in 0..20 {
        let mut writer = Child::spawn(&["big-update-forever", &name]);
        writer.wait_for("started");
        kill_at_random(&mut writer, &name, round, (2 * one, window), &mut rng);
        let killed_writing = seq(&name) % 2 == 1;
        let seen = Child::run(&["big-readonly", &name, "cell"]);
        let cells = a.snapshot();
        let v = cells[0].v;
        assert!(
            cells.iter().all(|c| c.v == v),
            "round {round}: a torn value after the kill"
        );
        assert_eq!(
            seen,
            format!("v {v}\n"),
            "round {round}: the observer saw another value"
        );
        if killed_writing {
            in_window += 1;
            assert!(
                !a.is_poisoned(),
                "round {round}: a rolled-back write poisoned the lock"
            );
        }
        // A writer killed holding the lock outside its write window poisons it (nothing to
        // roll back there); not what this test is about.
        a.clear_poison();
    }
    stop_flag.store(1, Relaxed);
    let added: u64 = hitter
        .finish()
        .trim()
        .strip_prefix("added ")
        .unwrap()
        .parse()
        .unwrap();
    let report = reader.finish();
    let (taken, torn) = report.trim().split_once(' ').unwrap();
    assert_eq!(torn, "0", "{torn} of {taken} snapshots torn");
    let hits: u64 = a.snapshot().iter().map(|c| c.hits).sum();
    assert_eq!(hits, added, "field atomics lost through the rollbacks");
    eprintln!(
        "20 writers killed, {in_window} inside a write window; {taken} snapshots, {added} increments"
    );
    assert!(in_window >= 1, "no kill landed inside a write window");
}

/// 10 rounds: a writer of 16 MiB with `write_from` (its journal: the old values, in the side
/// journal, piece by piece) killed at a random moment (every other round, inside a write window)
/// leaves every element equal, for a
/// read-only observer and for this process.
#[test]
fn a_16_mib_write_from_killed_at_random_is_all_old_or_all_new() {
    const LEN: usize = (16 << 20) / 8;
    let name = TestName::new("bigwrite");
    let a = Array::<u64>::create_zeroed(&name, LEN).unwrap();
    let t = Instant::now();
    a.write_from(0, &vec![1; LEN]);
    let one = t.elapsed().as_micros() as u64;
    let window = window_length("big-write-forever", &name);
    a.clear_poison();
    let mut rng = Rng::new();
    let mut in_window = 0;
    for round in 0..10 {
        let mut writer = Child::spawn(&["big-write-forever", &name]);
        writer.wait_for("started");
        kill_at_random(&mut writer, &name, round, (3 * one, window), &mut rng);
        in_window += seq(&name) % 2;
        let seen = Child::run(&["big-readonly", &name, "u64"]);
        let values = a.snapshot();
        assert!(
            values.iter().all(|x| *x == values[0]),
            "round {round}: a torn value after the kill"
        );
        assert_eq!(seen, format!("v {}\n", values[0]), "round {round}");
        a.clear_poison();
    }
    eprintln!("10 writers killed, {in_window} inside a write window");
    assert!(in_window >= 1, "no kill landed inside a write window");
}
