//! Exact totals when several processes add to the same segment at once.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Value};
use tests::{Child, TestName};

tests::child_roles!();

const PROCS: usize = 4;
const ADDS: u64 = 100_000;

fn join_all(children: Vec<Child>) {
    for c in children {
        c.finish();
    }
}

fn run(role: &str, name: &str) {
    let n = ADDS.to_string();
    join_all(
        (0..PROCS)
            .map(|_| Child::spawn(&[role, name, &n]))
            .collect(),
    );
}

#[test]
fn i32_fetch_add_from_four_processes_is_exact() {
    let name = TestName::new("i32");
    let v = Value::<i32>::create(&name, -7).unwrap();
    run("add-i32", &name);
    assert_eq!(v.load(Relaxed), -7 + (PROCS as i32) * (ADDS as i32));
}

#[test]
fn u64_fetch_add_from_four_processes_is_exact() {
    let name = TestName::new("u64");
    let v = Value::<u64>::create(&name, u64::from(u32::MAX)).unwrap();
    run("add-u64", &name);
    assert_eq!(v.load(Relaxed), u64::from(u32::MAX) + PROCS as u64 * ADDS);
}

#[test]
fn f64_fetch_add_from_four_processes_loses_nothing() {
    let name = TestName::new("f64");
    let v = Value::<f64>::create(&name, 0.25).unwrap();
    run("add-f64", &name);
    // Sums of halves are exact in f64 at this size: any lost CAS would show.
    assert_eq!(v.load(Relaxed), 0.25 + 0.5 * (PROCS as u64 * ADDS) as f64);
}

#[test]
fn each_process_adds_to_its_own_array_slot_and_to_a_shared_one() {
    let name = TestName::new("slots");
    let a = Array::<u64>::create_zeroed(&name, PROCS + 1).unwrap();
    let n = ADDS.to_string();
    let mut children = Vec::new();
    for slot in 0..PROCS {
        let s = slot.to_string();
        children.push(Child::spawn(&["add-slot", &name, &s, &n]));
        children.push(Child::spawn(&["add-slot", &name, &PROCS.to_string(), &n]));
    }
    join_all(children);
    for slot in 0..PROCS {
        assert_eq!(a[slot].load(Relaxed), ADDS, "slot {slot}");
    }
    assert_eq!(a[PROCS].load(Relaxed), PROCS as u64 * ADDS);
}
