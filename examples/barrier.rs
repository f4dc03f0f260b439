//! A supervisor and worker processes that wait for each other on the shared state itself: a
//! start barrier, a "all jobs done" condition and a shutdown flag, with no sleeps and no polling.
//!
//! ```text
//! cargo run --example barrier                          # 4 workers, 20 000 jobs
//! cargo run --example barrier -- --workers 8 --jobs 100000
//! ```
//!
//! The supervisor creates a `Shared<Control>` and starts the workers (copies of this binary).
//! Each worker reports at the barrier with `update` (which wakes the supervisor) and waits there
//! with `wait_until(|c| c.go)`. The supervisor waits until every worker is there, opens the
//! barrier with one `update` (which wakes them all at once), and waits until every job is done.
//! Workers take jobs with a lone `fetch_add` and count them with another; such field atomics wake
//! nobody, so the worker that completes the last job calls `notify()`. Then the supervisor sets
//! `shutdown`, which wakes the workers waiting for it; each adds what it did to the totals as it
//! leaves, and the supervisor checks them: every job done exactly once. Exit status 1 if a check
//! failed.
//!
//! A worker whose supervisor dies would wait for ever; so workers wait in slices of a second and
//! give up when `creator_alive()` says the supervisor is gone.
//!
//! From a shell, `shm wait` does what `wait_until` does: `shm wait barrier-<pid> finished '>=' 4`.

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shm_core::{Shared, SharedLayout};

/// What the supervisor and the workers share.
#[derive(SharedLayout, Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Control {
    /// Workers waiting at the barrier.
    pub ready: u32,
    /// The barrier is open: start working.
    pub go: bool,
    /// Finish and leave.
    pub shutdown: bool,
    /// Workers that have left, having added what they did to `done` and `checksum`.
    pub finished: u32,
    /// The next job to hand out (workers take one with `fetch_add`).
    pub next_job: u64,
    /// Jobs completed (a `fetch_add` per job).
    pub completed: u64,
    /// Jobs done, added up by the workers as they leave.
    pub done: u64,
    /// The sum of the numbers of the jobs done: each job done exactly once gives `n(n-1)/2`.
    pub checksum: u64,
    /// Of every job's result, to keep the work from being optimised away.
    pub results: u64,
}

struct Args {
    workers: u32,
    jobs: u64,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        workers: 4,
        jobs: 20_000,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" => {
                a.workers = value?
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or("--workers takes a number from 1 to 64")?
            }
            "--jobs" => {
                a.jobs = value?
                    .parse()
                    .ok()
                    .filter(|n| (1..=100_000_000).contains(n))
                    .ok_or("--jobs takes a number from 1 to 100000000")?
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: barrier [--workers N] [--jobs N]"
                ))
            }
        }
    }
    Ok(a)
}

/// One job: the number of Collatz steps from `n + 1` to 1.
fn work(n: u64) -> u64 {
    let (mut x, mut steps) = (n + 1, 0);
    while x != 1 {
        x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
        steps += 1;
    }
    steps
}

/// `wait_until`, in slices of a second, giving up when the supervisor (the segment's creator)
/// has died: `None` then.
fn wait_or_orphaned(
    c: &Shared<Control>,
    mut pred: impl FnMut(&Control) -> bool,
) -> Option<Control> {
    loop {
        if let Some(seen) = c.wait_until_timeout(&mut pred, Duration::from_secs(1)) {
            return Some(seen);
        }
        if !c.creator_alive() {
            return None;
        }
    }
}

fn worker(name: &str, jobs: u64) -> Result<(), Box<dyn std::error::Error>> {
    let c = Shared::<Control>::open(name)?;
    // At the barrier: `update` wakes the supervisor, who waits for everyone.
    c.update(|c| c.ready += 1);
    if wait_or_orphaned(&c, |c| c.go || c.shutdown).is_none() {
        return Err("the supervisor died".into());
    }
    let (mut mine, mut sum, mut results) = (0u64, 0u64, 0u64);
    while !c.shutdown.load(Relaxed) {
        let job = c.next_job.fetch_add(1, Relaxed);
        if job >= jobs {
            // Nothing left: wait for the word to leave.
            if wait_or_orphaned(&c, |c| c.shutdown).is_none() {
                return Err("the supervisor died".into());
            }
            break;
        }
        results = results.wrapping_add(work(job));
        mine += 1;
        sum += job;
        // A field atomic wakes nobody: the worker that completes the last job says so.
        if c.completed.fetch_add(1, Relaxed) + 1 == jobs {
            c.notify();
        }
    }
    // Leaving: what this worker did, added to the totals in one update (which wakes the
    // supervisor, waiting for everyone to leave).
    c.update(|c| {
        c.done += mine;
        c.checksum += sum;
        c.results = c.results.wrapping_add(results);
        c.finished += 1;
    });
    Ok(())
}

/// Waits at most a minute for `pred`; an error naming `what` if it never held.
fn wait_for(
    c: &Shared<Control>,
    what: &str,
    pred: impl FnMut(&Control) -> bool,
) -> Result<Control, String> {
    c.wait_until_timeout(pred, Duration::from_secs(60))
        .ok_or_else(|| format!("{what}: not within a minute"))
}

fn supervise(args: &Args, c: &Shared<Control>, name: &str) -> Result<bool, String> {
    let n = args.workers;
    let start = Instant::now();
    wait_for(c, "all workers at the barrier", |c| c.ready == n)?;
    println!(
        "all {n} workers at the barrier after {:.1} ms; opening it",
        start.elapsed().as_secs_f64() * 1e3
    );
    let opened = Instant::now();
    c.update(|c| c.go = true);
    let jobs = args.jobs;
    wait_for(c, "every job done", |c| c.completed >= jobs)?;
    let worked = opened.elapsed();
    c.update(|c| c.shutdown = true);
    let end = wait_for(c, "every worker gone", |c| c.finished == n)?;
    println!(
        "{jobs} jobs done in {:.1} ms by {n} workers; all left {:.1} ms after shutdown (`{name}`)",
        worked.as_secs_f64() * 1e3,
        (opened.elapsed() - worked).as_secs_f64() * 1e3,
    );
    let want_sum = jobs * (jobs - 1) / 2;
    let ok = end.done == jobs && end.checksum == want_sum;
    println!(
        "check: {} jobs done (want {jobs}), job numbers summing to {} (want {want_sum}): {}",
        end.done,
        end.checksum,
        if ok {
            "each done exactly once"
        } else {
            "WRONG"
        }
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, name, jobs] = args.as_slice() {
        if role == "worker" {
            let jobs = jobs.parse().unwrap_or(0);
            return match worker(name, jobs) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("worker {}: {e}", std::process::id());
                    ExitCode::FAILURE
                }
            };
        }
    }
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("barrier: {e}");
            return ExitCode::from(2);
        }
    };
    let name = format!("barrier-{}", std::process::id());
    let c = match Shared::<Control>::create(&name, Control::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("barrier: {e}");
            return ExitCode::FAILURE;
        }
    };
    let me = std::env::current_exe().expect("the example's own path");
    let mut children: Vec<Child> = Vec::new();
    for _ in 0..args.workers {
        match Command::new(&me)
            .args(["worker", &name, &args.jobs.to_string()])
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(child) => children.push(child),
            Err(e) => {
                eprintln!("barrier: cannot start a worker: {e}");
                break;
            }
        }
    }
    let result = if children.len() == args.workers as usize {
        supervise(&args, &c, &name)
    } else {
        Err("not every worker started".to_owned())
    };
    if result.is_err() {
        // Whatever went wrong, let the workers go.
        c.update(|c| c.shutdown = true);
    }
    let mut workers_ok = true;
    for mut child in children {
        workers_ok &= child.wait().is_ok_and(|s| s.success());
    }
    match result {
        Ok(true) if workers_ok => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("barrier: a check failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("barrier: {e}");
            ExitCode::FAILURE
        }
    }
}
