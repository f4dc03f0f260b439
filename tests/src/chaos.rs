//! The chaos harness: worker processes mix every kind of operation on one derived struct and one
//! array while a supervisor kills them with SIGKILL at random moments and starts new ones. At the
//! end it checks that no operation hung, that every update a worker reported as done is counted
//! exactly once, and that no snapshot ever broke an invariant.
//!
//! Run by `cargo run --release --example chaos -- --seconds 60 --procs 8`, and for a few seconds
//! by the test suite.

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shm_core::{Array, Options, Shared, SharedLayout};

/// Kept by `update`: `a + b == 0`, `c == a`, `updates == a`.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Ledger {
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub updates: u64,
    /// Incremented by `fetch_add` only.
    pub hits: u64,
    /// Incremented under `lock()` only.
    pub locked: u64,
    /// Set by the supervisor to end the run.
    pub stop: bool,
}

impl Ledger {
    fn consistent(&self) -> bool {
        self.a + self.b == 0 && self.c == self.a && self.updates as i64 == self.a
    }
}

/// What one worker incarnation reports, one cache line each.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
pub struct Report {
    pub updates: u64,
    pub hits: u64,
    pub locks: u64,
    pub pair_updates: u64,
    pub snapshots: u64,
    pub violations: u64,
    /// Poisoned locks found, checked and cleared.
    pub recoveries: u64,
    /// CLOCK_MONOTONIC nanoseconds when the current operation started; 0 when idle.
    pub op_started: u64,
}

/// Pairs `[x, -x]` kept by `Array::update_range`.
const PAIRS: usize = 16;
/// Room for this many worker incarnations.
const MAX_WORKERS: usize = 1 << 16;
/// An operation that takes longer than this counts as hung.
const OP_BOUND: Duration = Duration::from_secs(2);

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is shared by all processes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// xorshift64: a little randomness without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn worker(prefix: &str, id: usize) -> Result<(), String> {
    let ledger = Shared::<Ledger>::open(&format!("{prefix}-ledger")).map_err(|e| e.to_string())?;
    let pairs = Array::<[i64; 2]>::open(&format!("{prefix}-pairs")).map_err(|e| e.to_string())?;
    let reports = Array::<Report>::open(&format!("{prefix}-reports")).map_err(|e| e.to_string())?;
    let me = reports.get(id).ok_or("worker id out of range")?;
    let mut rng = Rng(0x9E37_79B9 ^ ((id as u64 + 1) * 0x1000_0001));
    while !ledger.stop.load(Relaxed) {
        me.op_started.store(now_ns(), Relaxed);
        match rng.next() % 6 {
            0 => {
                ledger.update(|l| {
                    l.a += 1;
                    l.b -= 1;
                    l.c += 1;
                    l.updates += 1;
                });
                me.updates.fetch_add(1, Relaxed);
            }
            1 => {
                ledger.hits.fetch_add(1, Relaxed);
                me.hits.fetch_add(1, Relaxed);
            }
            2 => {
                let (guard, poisoned) = match ledger.lock() {
                    Ok(g) => (g, false),
                    Err(p) => (p.into_inner(), true),
                };
                if poisoned {
                    // A worker died holding the lock (in this loop's locked section, or inside an
                    // update's closure). Poisoning is sticky: the first locker to see it checks
                    // the invariants, under the lock, and clears it if they hold, which they
                    // must (a locked section is one atomic, and a closure stores nothing).
                    if ledger.snapshot().consistent() {
                        ledger.clear_poison();
                        me.recoveries.fetch_add(1, Relaxed);
                    } else {
                        me.violations.fetch_add(1, Relaxed);
                    }
                }
                guard.locked.fetch_add(1, Relaxed);
                drop(guard);
                me.locks.fetch_add(1, Relaxed);
            }
            3 => {
                let k = (rng.next() % (PAIRS as u64 - 1)) as usize;
                pairs.update_range(k..k + 2, |p| {
                    p[0][0] += 1;
                    p[0][1] -= 1;
                    p[1][0] += 1;
                    p[1][1] -= 1;
                });
                me.pair_updates.fetch_add(1, Relaxed);
            }
            4 => {
                let ok = ledger.snapshot().consistent();
                me.snapshots.fetch_add(1, Relaxed);
                if !ok {
                    me.violations.fetch_add(1, Relaxed);
                }
            }
            _ => {
                let ok = pairs.snapshot().iter().all(|p| p[0] + p[1] == 0);
                me.snapshots.fetch_add(1, Relaxed);
                if !ok {
                    me.violations.fetch_add(1, Relaxed);
                }
            }
        }
        me.op_started.store(0, Relaxed);
    }
    Ok(())
}

struct Config {
    seconds: f64,
    procs: usize,
    prefix: String,
}

fn parse(args: &[String]) -> Result<Config, String> {
    let mut c = Config {
        seconds: 10.0,
        procs: 8,
        prefix: format!("shm-chaos-{}", std::process::id()),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => c.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--procs" => c.procs = value()?.parse().map_err(|e| format!("--procs: {e}"))?,
            "--name" => c.prefix = value()?.clone(),
            other => {
                return Err(format!(
                    "unknown argument {other}; use --seconds S --procs N [--name PREFIX]"
                ))
            }
        }
    }
    if c.procs == 0 {
        return Err("--procs must be at least 1".into());
    }
    Ok(c)
}

fn spawn(exe: &std::path::Path, prefix: &str, id: usize) -> std::io::Result<Child> {
    Command::new(exe)
        .args(["--chaos-worker", prefix, &id.to_string()])
        .stdin(Stdio::null())
        .spawn()
}

fn supervise(c: &Config) -> Result<bool, String> {
    let err = |e: shm_core::Error| e.to_string();
    let ledger = Shared::<Ledger>::create(&format!("{}-ledger", c.prefix), Ledger::default())
        .map_err(err)?;
    let pairs =
        Array::<[i64; 2]>::create_zeroed(&format!("{}-pairs", c.prefix), PAIRS).map_err(err)?;
    let reports = Array::<Report>::create_zeroed_with(
        &format!("{}-reports", c.prefix),
        MAX_WORKERS,
        &Options::new(),
    )
    .map_err(err)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = Rng(now_ns() | 1);
    let mut live: Vec<(usize, Child)> = Vec::new();
    let mut next_id = 0;
    let mut kills = 0u64;
    let mut hangs = 0u64;
    let mut killed_ids = Vec::new();
    for _ in 0..c.procs {
        live.push((
            next_id,
            spawn(&exe, &c.prefix, next_id).map_err(|e| e.to_string())?,
        ));
        next_id += 1;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(c.seconds);
    while Instant::now() < deadline && next_id < MAX_WORKERS {
        std::thread::sleep(Duration::from_millis(5 + rng.next() % 45));
        // A worker stuck in one operation longer than the bound has hung.
        let now = now_ns();
        for (id, _) in &live {
            let started = reports[*id].op_started.load(Relaxed);
            if started != 0 && now.saturating_sub(started) > OP_BOUND.as_nanos() as u64 {
                eprintln!("chaos: worker {id} is stuck in one operation");
                hangs += 1;
                reports[*id].op_started.store(0, Relaxed);
            }
        }
        let victim = (rng.next() % live.len() as u64) as usize;
        let (id, mut child) = live.swap_remove(victim);
        // SAFETY: sending SIGKILL to a child of ours that has not been reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
        kills += 1;
        killed_ids.push(id);
        live.push((
            next_id,
            spawn(&exe, &c.prefix, next_id).map_err(|e| e.to_string())?,
        ));
        next_id += 1;
    }
    ledger.stop.store(true, Relaxed);
    let stop_by = Instant::now() + Duration::from_secs(10);
    for (id, mut child) in live {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("chaos: worker {id} failed: {status}");
                        hangs += 1;
                    }
                    break;
                }
                Ok(None) if Instant::now() < stop_by => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    eprintln!("chaos: worker {id} did not stop");
                    hangs += 1;
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
    }

    let all: Vec<Report> = reports.snapshot_range(..next_id);
    let sum = |f: fn(&Report) -> u64| all.iter().map(f).sum::<u64>();
    let end = ledger.snapshot();
    let pair_sum: i64 = pairs.snapshot().iter().map(|p| p[0]).sum();
    let pairs_ok = pairs.snapshot().iter().all(|p| p[0] + p[1] == 0);
    let (updates, hits, locks, pair_updates) = (
        sum(|r| r.updates),
        sum(|r| r.hits),
        sum(|r| r.locks),
        sum(|r| r.pair_updates),
    );
    let ops = updates + hits + locks + pair_updates + sum(|r| r.snapshots);
    let violations = sum(|r| r.violations) + u64::from(!end.consistent()) + u64::from(!pairs_ok);
    // A worker killed after its operation took effect but before it reported it: at most one
    // unreported operation per kill, never one counted twice or lost.
    let within = |counted: u64, reported: u64| counted >= reported && counted - reported <= kills;
    let mut failures = Vec::new();
    if !within(end.updates, updates) {
        failures.push(format!(
            "updates counted {} but reported {updates}",
            end.updates
        ));
    }
    if !within(end.hits, hits) {
        failures.push(format!(
            "fetch_adds counted {} but reported {hits}",
            end.hits
        ));
    }
    if !within(end.locked, locks) {
        failures.push(format!(
            "locked sections counted {} but reported {locks}",
            end.locked
        ));
    }
    if pair_sum % 2 != 0 || !within(pair_sum as u64 / 2, pair_updates) {
        failures.push(format!(
            "array updates counted {} but reported {pair_updates}",
            pair_sum / 2
        ));
    }
    println!(
        "chaos: {} procs, {:.0} s: ops={ops} (updates={updates} fetch_adds={hits} locks={locks} array_updates={pair_updates}), kills={kills}, recoveries={}, workers={next_id}, hangs={hangs}, violations={violations}",
        c.procs,
        c.seconds,
        sum(|r| r.recoveries)
    );
    for f in &failures {
        println!("chaos: FAILED: {f}");
    }
    Ok(failures.is_empty() && hangs == 0 && violations == 0)
}

/// Runs the harness with the process's arguments (without the program name): as the
/// supervisor, or as a worker when started with `--chaos-worker PREFIX ID`.
pub fn main(args: &[String]) -> ExitCode {
    if let [flag, prefix, id] = args {
        if flag == "--chaos-worker" {
            let Ok(id) = id.parse() else {
                return ExitCode::FAILURE;
            };
            return match worker(prefix, id) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("chaos worker {id}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let result = parse(args).and_then(|c| supervise(&c));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}
