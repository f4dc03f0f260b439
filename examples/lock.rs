//! Why `counter += 1` written as a load and a store loses updates when processes share the
//! counter, and the three ways that do not: `fetch_add`, `update`, and `lock()`.
//!
//! ```text
//! cargo run --example lock
//! ```
//!
//! Python's documentation warns about the same thing: `counter.value += 1` on a
//! `multiprocessing.Value` is a read and a write, and needs `with counter.get_lock():`.
//!
//! For each way, four worker processes (copies of this binary) add 1 to a shared `Value<u64>`,
//! 100 000 times each. A load followed by a store lets two processes read the same value and
//! both write value + 1: one addition is lost. The right ways make each addition one indivisible
//! step: a single atomic instruction (`fetch_add`), or a load and store under the segment's lock
//! (`update`, or `lock()` and the guard). Exit status 1 if a right way lost anything.

use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::PoisonError;
use std::time::Instant;

use shm_core::Value;

const WORKERS: u64 = 4;
const ADDS: u64 = 100_000;

/// The four ways to add one, as a worker runs them.
const WAYS: [(&str, &str); 4] = [
    ("racy", "let v = c.load(); c.store(v + 1)   // WRONG"),
    ("fetch_add", "c.fetch_add(1, Relaxed)"),
    ("update", "c.update(|v| *v += 1)"),
    ("lock", "let g = c.lock()?; g.store(g.load() + 1)"),
];

fn add(way: &str, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let c = Value::<u64>::open(name)?;
    match way {
        "racy" => {
            for _ in 0..ADDS {
                // Another process can store between this load and this store: its addition
                // is then overwritten.
                let v = c.load(Relaxed);
                c.store(v + 1, Relaxed);
            }
        }
        "fetch_add" => {
            for _ in 0..ADDS {
                c.fetch_add(1, Relaxed);
            }
        }
        "update" => {
            for _ in 0..ADDS {
                c.update(|v| *v += 1);
            }
        }
        "lock" => {
            for _ in 0..ADDS {
                // Python: `with counter.get_lock(): counter.value += 1`. A poisoned lock (a
                // holder died) still excludes the others; this example just carries on.
                let g = c.lock().unwrap_or_else(PoisonError::into_inner);
                g.store(g.load(Relaxed) + 1, Relaxed);
            }
        }
        other => return Err(format!("unknown way {other}").into()),
    }
    Ok(())
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let me = std::env::current_exe()?;
    let want = WORKERS * ADDS;
    println!(
        "{WORKERS} processes each add 1, {ADDS} times, to one shared Value<u64>; expected {want}\n"
    );
    let mut all_right = true;
    for (way, code) in WAYS {
        let name = format!("lock-example-{}-{way}", std::process::id());
        let counter = Value::<u64>::create(&name, 0)?;
        let start = Instant::now();
        let children = (0..WORKERS)
            .map(|_| Command::new(&me).args(["add", way, &name]).spawn())
            .collect::<Result<Vec<_>, _>>()?;
        let mut workers_ok = true;
        for mut child in children {
            workers_ok &= child.wait()?.success();
        }
        let took = start.elapsed();
        let got = counter.load(Relaxed);
        let lost = want - got.min(want);
        let verdict = match (way, lost) {
            ("racy", 0) => {
                "lost none this time: a race shows only when two processes collide".to_owned()
            }
            ("racy", n) => format!("lost {n} updates ({:.1}%)", n as f64 * 100.0 / want as f64),
            (_, 0) if workers_ok => "every update counted".to_owned(),
            (_, n) => {
                all_right = false;
                format!("WRONG: lost {n} updates")
            }
        };
        println!(
            "{way:<10} {code:<45} {got:>8} in {:>6.0} ms  {verdict}",
            took.as_secs_f64() * 1e3
        );
    }
    println!(
        "\nfetch_add is one atomic instruction; update and lock take the segment's lock, so they\n\
         are slower but can change several fields at once (update also makes the change\n\
         indivisible for snapshot())."
    );
    Ok(all_right)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, way, name] if cmd == "add" => add(way, name).map(|()| true),
        [] => run(),
        _ => {
            eprintln!("usage: lock");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lock: {e}");
            ExitCode::FAILURE
        }
    }
}
