//! Panics on misuse name the caller's line (`#[track_caller]`), not a line inside shm-core.
//!
//! One test in its own binary: it replaces the process's panic hook, which no other test may
//! share.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use shm_core::{Array, Value};
use tests::TestName;

/// Where a panic happened (file, line) and its message.
type Site = (String, u32, String);
/// What the panic hook saw.
type Seen = Arc<Mutex<Vec<Site>>>;

/// Runs `f`, which must panic, and returns where the panic says it happened and its message.
fn panic_site(hook_seen: &Seen, f: impl FnOnce()) -> Site {
    hook_seen.lock().unwrap().clear();
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    assert!(r.is_err(), "no panic");
    let seen = hook_seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    seen[0].clone()
}

#[test]
fn misuse_panics_point_at_the_callers_line() {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        // Shown, so that a failing assertion of this test is not hidden.
        eprintln!("{info}");
        let loc = info.location().expect("a location");
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        record
            .lock()
            .unwrap()
            .push((loc.file().to_owned(), loc.line(), msg));
    }));

    let name = TestName::new("misuse");
    let v = Value::<u32>::create(&name, 1).unwrap();
    let aname = TestName::new("misusearr");
    let a = Array::<u32>::create(&aname, &[1, 2, 3]).unwrap();
    let here = file!();
    let mut cases: Vec<(&str, Site, u32)> = Vec::new();

    let g = v.lock().unwrap();
    let line = line!() + 1;
    let site = panic_site(&seen, || drop(v.lock()));
    cases.push(("lock() while holding a guard", site, line));
    let line = line!() + 1;
    let site = panic_site(&seen, || v.update(|x| *x += 1));
    cases.push(("update() while holding a guard", site, line));
    drop(g);

    let line = line!() + 1;
    let site = panic_site(&seen, || v.update(|_| v.update(|x| *x += 1)));
    cases.push(("update() inside update()", site, line));
    let line = line!() + 1;
    let site = panic_site(&seen, || a.update(|_| drop(a.lock())));
    cases.push(("Array::lock() inside update()", site, line));
    let line = line!() + 1;
    let site = panic_site(&seen, || a.update(|_| a.update_range(0..1, |_| ())));
    cases.push(("Array::update_range() inside update()", site, line));
    // Poisoned by now (the panics above were in update closures): the guard all the same.
    let g = a.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let line = line!() + 1;
    let site = panic_site(&seen, || a.update(|_| ()));
    cases.push(("Array::update() while holding a guard", site, line));
    drop(g);
    let line = line!() + 1;
    let site = panic_site(&seen, || drop(a.snapshot_range(2..9)));
    cases.push(("snapshot_range() out of bounds", site, line));
    let bname = TestName::new("misusebounds");
    let b = Array::<u32>::create(&bname, &[1, 2, 3]).unwrap();
    let line = line!() + 1;
    let site = panic_site(&seen, || b.update_range(2..9, |v| v.fill(0)));
    cases.push(("update_range() out of bounds", site, line));
    let line = line!() + 1;
    let site = panic_site(&seen, || drop(b.try_update_range(..4, |v| v.fill(0))));
    cases.push(("try_update_range() out of bounds", site, line));

    panic::set_hook(previous);

    for (what, (file, at, msg), want) in &cases {
        assert_eq!((file.as_str(), *at), (here, *want), "{what}: {msg}");
    }
    // The re-entrant ones say what happened, naming the segment.
    for (what, (_, _, msg), _) in &cases[..6] {
        assert!(
            msg.contains("this thread already holds its lock") && msg.contains("shmt-misuse"),
            "{what}: {msg}"
        );
    }
    for (what, (_, _, msg), _) in &cases[6..] {
        assert!(msg.contains("out of range"), "{what}: {msg}");
    }
    // A range out of bounds is refused before the lock is taken: nothing changed, nothing
    // poisoned, the lock free.
    assert!(
        !b.is_poisoned(),
        "an update_range() out of bounds poisoned the lock"
    );
    assert!(b.try_lock().is_ok());
    assert_eq!(b.snapshot(), [1, 2, 3]);
    // A misuse inside an update's closure is a panic in that closure: it poisons, as any does.
    assert!(v.is_poisoned() && a.is_poisoned());
}
