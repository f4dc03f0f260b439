//! Four worker processes add to shared counters; the parent checks the totals.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! The parent creates three segments — a `Value<u64>` counter, a `Value<f64>` and an
//! `Array<u64>` with one slot per worker — then starts four copies of this same binary as
//! workers. The workers know nothing but the segments' names. When they are done, the parent
//! prints the totals and exits non-zero if any is wrong.

use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Value};

const WORKERS: usize = 4;
const ADDS: u64 = 250_000;

fn worker(prefix: &str, slot: usize) -> Result<(), Box<dyn std::error::Error>> {
    let counter = Value::<u64>::open(&format!("{prefix}-counter"))?;
    let total = Value::<f64>::open(&format!("{prefix}-total"))?;
    let slots = Array::<u64>::open(&format!("{prefix}-slots"))?;
    let mine = slots.get(slot).ok_or("slot out of range")?;
    for _ in 0..ADDS {
        counter.fetch_add(1, Relaxed);
        mine.fetch_add(1, Relaxed);
        total.fetch_add(0.5, Relaxed);
    }
    Ok(())
}

fn parent() -> Result<bool, Box<dyn std::error::Error>> {
    let prefix = format!("quickstart-{}", std::process::id());
    // The parent creates, so the segments are removed when these handles drop.
    let counter = Value::<u64>::create(&format!("{prefix}-counter"), 0)?;
    let total = Value::<f64>::create(&format!("{prefix}-total"), 0.0)?;
    let slots = Array::<u64>::create(&format!("{prefix}-slots"), &[0; WORKERS])?;

    let me = std::env::current_exe()?;
    let mut children = Vec::new();
    for slot in 0..WORKERS {
        children.push(
            Command::new(&me)
                .args(["worker", &prefix, &slot.to_string()])
                .spawn()?,
        );
    }
    let mut workers_ok = true;
    for mut child in children {
        workers_ok &= child.wait()?.success();
    }

    let want = WORKERS as u64 * ADDS;
    let got = counter.load(Relaxed);
    let sum = total.load(Relaxed);
    let per_slot: Vec<u64> = slots.iter().map(|s| s.load(Relaxed)).collect();
    println!("{WORKERS} worker processes x {ADDS} increments each");
    println!("counter (Value<u64>): {got} (expected {want})");
    println!(
        "total   (Value<f64>): {sum} (expected {})",
        want as f64 * 0.5
    );
    println!("slots   (Array<u64>): {per_slot:?} (expected {ADDS} each)");
    let correct = workers_ok
        && got == want
        && sum == want as f64 * 0.5
        && per_slot.iter().all(|&n| n == ADDS);
    println!(
        "{}",
        if correct {
            "all totals correct"
        } else {
            "WRONG TOTALS"
        }
    );
    Ok(correct)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("worker") if args.len() == 4 => {
            let slot = args[3].parse().unwrap_or(usize::MAX);
            worker(&args[2], slot).map(|()| true)
        }
        _ => parent(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}
