//! Roles on big arrays and in a full /dev/shm: what a segment costs, its journal, and writers of
//! many megabytes to kill.

use std::sync::atomic::Ordering::Relaxed;

use super::{fail, ok, say};
use crate::types::Cell;
use shm_core::{Array, Value};

/// In a 1 MiB /dev/shm: a segment too large is `NoSpace` and leaves nothing; one that fits can
/// be written in full without SIGBUS. A write too large for its journal area, whose side journal
/// finds no room, is `NoSpace` through `try_update` and `try_write_from` (storing nothing, leaving
/// no side journal), and goes ahead without a journal through `update` and `write_from`. The next
/// segment that does not fit is `NoSpace` too.
fn full_dev_shm(name: &str) {
    let leftovers = || {
        std::fs::read_dir("/dev/shm")
            .map(|d| d.count())
            .unwrap_or(usize::MAX)
    };
    if leftovers() != 0 {
        fail("/dev/shm is not the fresh private tmpfs");
    }
    match Array::<u8>::create_zeroed(name, 2 << 20) {
        Err(e @ shm_core::Error::NoSpace { .. }) => say(&format!("too-large {}", e)),
        Err(e) => fail(&format!("2 MiB segment: expected NoSpace, got {e}")),
        Ok(_) => fail("a 2 MiB segment was created in a 1 MiB /dev/shm"),
    }
    if leftovers() != 0 {
        fail("the failed create left an object behind");
    }
    // 640 KiB of payload and a 64 KiB journal area: no room left for a side journal of 640 KiB.
    const N: usize = 80 << 10;
    let fits = ok(Array::<u64>::create_zeroed(name, N));
    for (i, x) in fits.iter().enumerate() {
        x.store(i as u64, Relaxed);
    }
    let sum = |a: &Array<u64>| a.snapshot().iter().sum::<u64>();
    let before = sum(&fits);
    match fits.try_update(|all| all.iter_mut().for_each(|x| *x += 1)) {
        Err(e @ shm_core::Error::NoSpace { .. }) => say(&format!("try_update {e}")),
        Err(e) => fail(&format!("try_update: expected NoSpace, got {e}")),
        Ok(()) => fail("try_update found room for a 640 KiB journal"),
    }
    let plus_one: Vec<u64> = (1..=N as u64).collect();
    match fits.try_write_from(0, &plus_one) {
        Err(shm_core::Error::NoSpace { .. }) => say("try_write_from NoSpace"),
        Err(e) => fail(&format!("try_write_from: expected NoSpace, got {e}")),
        Ok(()) => fail("try_write_from found room for a 640 KiB journal"),
    }
    if sum(&fits) != before || leftovers() != 1 {
        fail("a refused write stored something, or left a side journal");
    }
    fits.update(|all| all.iter_mut().for_each(|x| *x += 1));
    say(&format!("updated {}", sum(&fits)));
    fits.write_from(0, &plus_one);
    // A write that fits in the journal area needs no side journal.
    fits.try_write_from(0, &plus_one[..1024])
        .unwrap_or_else(|e| fail(&format!("a small write: {e}")));
    say(&format!(
        "written {}, poisoned {}",
        sum(&fits),
        fits.is_poisoned()
    ));
    match Array::<u64>::create_zeroed(&format!("{name}-2"), N) {
        Err(shm_core::Error::NoSpace { .. }) => say("second NoSpace"),
        Err(e) => fail(&format!("second segment: expected NoSpace, got {e}")),
        Ok(_) => say("second fits"),
    }
    drop(fits);
    if leftovers() != 0 {
        fail("segments left behind");
    }
}

/// Plays the role `args[0]` if it is one of these; whether it was.
pub(super) fn play(args: &[&str]) -> bool {
    match args {
        ["full-dev-shm", name] => full_dev_shm(name),
        // Set `v` of every element of the `Cell` array NAME to 1, 2, 3, ... in one `update` each
        // (never touching `hits`), until killed.
        ["big-update-forever", name] => {
            let a = ok(Array::<Cell>::open(name));
            say("started");
            for k in 1.. {
                a.update(|cells| cells.iter_mut().for_each(|c| c.v = k));
            }
        }
        // Write K, K+1, ... into every element of the `u64` array NAME, one `write_from` each,
        // from K = what element 0 holds + 1, until killed.
        ["big-write-forever", name] => {
            let a = ok(Array::<u64>::open(name));
            let mut values = vec![0u64; a.len()];
            say("started");
            for k in a[0].load(Relaxed) + 1.. {
                values.fill(k);
                a.write_from(0, &values);
            }
        }
        // Add 1 to `hits` of elements of the `Cell` array NAME, spread over it, with field
        // atomics, until the `Value<u32>` STOP is not 0; say how many it added.
        ["big-hits", name, stop] => {
            let a = ok(Array::<Cell>::open(name));
            let stop = ok(Value::<u32>::open(stop));
            say("started");
            let (mut n, mut at) = (0u64, 0x9E37_79B9u64);
            while n < 1000 || stop.load(Relaxed) == 0 {
                at = at.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                a[(at >> 33) as usize % a.len()].hits.fetch_add(1, Relaxed);
                n += 1;
            }
            say(&format!("added {n}"));
        }
        // Take snapshots of the `Cell` array NAME until the `Value<u32>` STOP is not 0; say how
        // many, and how many held more than one `v` (torn).
        ["big-reader", name, stop] => {
            let a = ok(Array::<Cell>::open(name));
            let stop = ok(Value::<u32>::open(stop));
            say("started");
            let (mut taken, mut torn) = (0u64, 0u64);
            while taken < 2 || stop.load(Relaxed) == 0 {
                let cells = a.snapshot();
                taken += 1;
                torn += u64::from(cells.iter().any(|c| c.v != cells[0].v));
            }
            say(&format!("{taken} {torn}"));
        }
        // One snapshot of the `Cell` (or, with `u64`, `u64`) array NAME through a read-only
        // handle: `v K` if every element holds K, else `torn`.
        ["big-readonly", name, kind] => {
            let values: Vec<u64> = if *kind == "u64" {
                ok(Array::<u64>::open_readonly(name)).snapshot()
            } else {
                ok(Array::<Cell>::open_readonly(name))
                    .snapshot()
                    .iter()
                    .map(|c| c.v)
                    .collect()
            };
            if values.iter().all(|v| *v == values[0]) {
                say(&format!("v {}", values[0]));
            } else {
                say("torn");
            }
        }
        // Open the `u64` array NAME of 64 MiB and use it as a program does: `update_range` over
        // a few thousand elements here and there, field atomics, snapshots.
        ["big-use", name] => {
            let a = ok(Array::<u64>::open(name));
            let n = a.len();
            for (i, start) in [0, n / 3, n / 2, n - 4096].into_iter().enumerate() {
                a.update_range(start..start + 4096, |v| {
                    v.iter_mut().for_each(|x| *x += i as u64 + 1)
                });
            }
            for i in (0..n).step_by(n / 1000) {
                a[i].fetch_add(1, Relaxed);
            }
            let sum: u64 = a.snapshot().iter().sum();
            say(&format!("sum {sum}"));
        }
        _ => return false,
    }
    true
}
