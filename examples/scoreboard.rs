//! A pool of worker processes, each owning one cache-line-aligned slot of a shared scoreboard,
//! and a monitor that prints consistent snapshots of it.
//!
//! ```text
//! cargo run --example scoreboard                                   # 4 workers, 3 seconds
//! cargo run --example scoreboard -- --seconds 60 --name scoreboard # a fixed name, a minute
//! shm watch scoreboard                                             # meanwhile, in another terminal
//! ```
//!
//! The monitor creates an `Array<Slot>` with one slot per worker and starts the workers (copies
//! of this binary). Like Apache's scoreboard, each slot says what its worker is doing — a
//! `WorkerState` enum (`shm watch` shows `Busy`, not a number) and the request it is serving, a
//! `Text<12>` — beside counters. Each worker starts every job with one `update_range` (state
//! `Busy` and the request together: a snapshot never sees a busy worker without its request)
//! and records it with another, so the slot's counters change together (`jobs == ok + failed`
//! always holds in a snapshot), and bumps a heartbeat with a plain `fetch_add`. `Slot` is
//! `#[repr(C, align(64))]`: each worker writes its own cache line, so workers do not slow each
//! other down by false sharing.
//!
//! At the end the monitor sets every slot's `stop` flag, waits for the workers, and checks that
//! each slot counted exactly the jobs its worker reports and says `Done`. Exit status 1 if any
//! check failed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shm_core::inspect;
use shm_core::{Array, Error, SharedLayout, Text};

/// What a worker is doing: one byte in its slot, shown by name by `shm inspect` and `shm watch`.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(u8)]
pub enum WorkerState {
    /// Not started yet (and what any number that is no variant reads as).
    #[default]
    Starting,
    /// Serving `request`.
    Busy,
    /// Between requests.
    Idle,
    /// Finished: told to stop, or its monitor died.
    Done,
}

/// One worker's line of the scoreboard: 64 bytes, alone on its cache line.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub struct Slot {
    /// The worker's process id.
    pub pid: u32,
    /// Set by the monitor: finish the current job and exit.
    pub stop: bool,
    /// What the worker is doing.
    pub state: WorkerState,
    /// Jobs finished: always `ok + failed` in a snapshot.
    pub jobs: u64,
    pub ok: u64,
    pub failed: u64,
    /// Time spent in jobs, in microseconds.
    pub busy_us: u64,
    /// Bumped once per job with a lone `fetch_add`, outside any update.
    pub heartbeats: u64,
    /// The request being served (or the last one), e.g. `GET /item/42`: at most 12 bytes.
    pub request: Text<12>,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

struct Args {
    seconds: f64,
    workers: usize,
    name: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        seconds: 3.0,
        workers: 4,
        name: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value"))
                .cloned()
        };
        match flag.as_str() {
            "--seconds" => {
                a.seconds = value()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or("--seconds takes a positive number")?
            }
            "--workers" => {
                a.workers = value()?
                    .parse()
                    .ok()
                    .filter(|&n| (1..=64).contains(&n))
                    .ok_or("--workers takes a number from 1 to 64")?
            }
            "--name" => a.name = Some(value()?),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: scoreboard [--seconds N] [--workers N] [--name NAME]"
                ))
            }
        }
    }
    Ok(a)
}

/// A small pseudo-random generator, so the example needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn worker(name: &str, slot: usize) -> Result<u64, Box<dyn std::error::Error>> {
    let board = Array::<Slot>::open(name)?;
    let mine = board.get(slot).ok_or("slot out of range")?;
    mine.pid.store(std::process::id(), Relaxed);
    let parent = std::os::unix::process::parent_id();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut finished = 0u64;
    // Stop when told, or if the monitor died (this process was handed to another parent).
    while !mine.stop.load(Relaxed) && std::os::unix::process::parent_id() == parent {
        let work = Duration::from_micros(200 + rng.next() % 1800);
        let request = Text::truncated(&format!("GET /item/{}", rng.next() % 1000));
        board.update_range(slot..=slot, |s| {
            s[0].state = WorkerState::Busy;
            s[0].request = request;
        });
        std::thread::sleep(work);
        let failed = rng.next().is_multiple_of(10);
        board.update_range(slot..=slot, |s| {
            let s = &mut s[0];
            s.state = WorkerState::Idle;
            s.jobs += 1;
            if failed {
                s.failed += 1;
            } else {
                s.ok += 1;
            }
            s.busy_us += work.as_micros() as u64;
        });
        mine.heartbeats.fetch_add(1, Relaxed);
        finished += 1;
    }
    mine.state.store(WorkerState::Done, Relaxed);
    Ok(finished)
}

/// Creates the scoreboard. A fixed name may hold the board of an earlier run whose monitor was
/// killed: that one is stale (its creator is dead), so it is removed and made anew.
fn create_board(name: &str, workers: usize) -> Result<Array<Slot>, Error> {
    match Array::<Slot>::create_zeroed(name, workers) {
        Err(Error::AlreadyExists { .. }) => {
            if let Some(stale) = inspect::examine(name)?.stale() {
                println!(
                    "removing `{name}`, left by an earlier run (pid {}, dead)",
                    stale.creator_pid
                );
                stale.remove()?;
            }
            Array::<Slot>::create_zeroed(name, workers)
        }
        other => other,
    }
}

fn monitor(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let name = args
        .name
        .unwrap_or_else(|| format!("scoreboard-{}", std::process::id()));
    let board = create_board(&name, args.workers)?;
    println!(
        "scoreboard `{name}`: {} worker processes for {} s; watch it with `shm watch {name}`",
        args.workers, args.seconds
    );

    let me = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    for slot in 0..args.workers {
        let child = Command::new(&me)
            .args(["worker", &name, &slot.to_string()])
            .stdout(Stdio::piped())
            .spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                stop_all(&board, &mut children);
                return Err(e.into());
            }
        }
    }

    let start = Instant::now();
    let run_for = Duration::from_secs_f64(args.seconds);
    let mut violations = 0u64;
    let mut last_jobs = 0u64;
    let mut last_at = start;
    while start.elapsed() < run_for {
        std::thread::sleep(Duration::from_millis(500).min(run_for - start.elapsed().min(run_for)));
        // One consistent copy of every slot: no update is half-seen, so the counters add up and
        // a busy worker has its request.
        let snap = board.snapshot();
        let bad = snap
            .iter()
            .filter(|s| {
                s.jobs != s.ok + s.failed
                    || (s.state == WorkerState::Busy && !s.request.starts_with("GET /item/"))
            })
            .count();
        violations += bad as u64;
        let jobs: u64 = snap.iter().map(|s| s.jobs).sum();
        let failed: u64 = snap.iter().map(|s| s.failed).sum();
        let now = Instant::now();
        let rate = (jobs - last_jobs) as f64 / now.duration_since(last_at).as_secs_f64();
        (last_jobs, last_at) = (jobs, now);
        let per_slot: Vec<u64> = snap.iter().map(|s| s.jobs).collect();
        let busy = snap.iter().filter(|s| s.state == WorkerState::Busy).count();
        println!(
            "t={:>5.1}s  jobs {jobs:>6} ({rate:>6.0}/s)  failed {failed:>5}  busy {busy}  per slot {per_slot:?}  {}",
            start.elapsed().as_secs_f64(),
            if bad == 0 {
                "consistent".to_owned()
            } else {
                format!("{bad} INCONSISTENT")
            }
        );
    }

    let reported = stop_all(&board, &mut children);
    let snap = board.snapshot();
    println!(
        "\nslot    pid  state   jobs     ok  failed  busy   heartbeats  last request  worker says"
    );
    let mut all_ok = violations == 0;
    for (i, (s, said)) in snap.iter().zip(&reported).enumerate() {
        let busy = s.busy_us as f64 / 1e4 / args.seconds;
        let right = *said == Some(s.jobs) && s.heartbeats == s.jobs && s.state == WorkerState::Done;
        all_ok &= right && s.jobs == s.ok + s.failed;
        println!(
            "{i:>4} {:>6}  {:<5} {:>6} {:>6} {:>7} {busy:>4.0}%  {:>11}  {:<12}  {}",
            s.pid,
            format!("{:?}", s.state),
            s.jobs,
            s.ok,
            s.failed,
            s.heartbeats,
            s.request,
            match said {
                Some(n) if right => format!("{n} (matches)"),
                Some(n) => format!("{n} (MISMATCH)"),
                None => "nothing (worker failed)".to_owned(),
            }
        );
    }
    println!(
        "{}",
        if all_ok {
            "every snapshot consistent, every job counted once"
        } else {
            "CHECK FAILED"
        }
    );
    Ok(all_ok)
}

/// Asks every worker to stop, waits for them, and returns the job count each reported.
fn stop_all(board: &Array<Slot>, children: &mut [Child]) -> Vec<Option<u64>> {
    for slot in board.iter() {
        slot.stop.store(true, Relaxed);
    }
    children
        .iter_mut()
        .map(|child| {
            let mut line = String::new();
            if let Some(out) = child.stdout.take() {
                let _ = BufReader::new(out).read_line(&mut line);
            }
            let ok = child.wait().is_ok_and(|s| s.success());
            line.trim().parse().ok().filter(|_| ok)
        })
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") if args.len() == 3 => {
            let slot = args[2].parse().unwrap_or(usize::MAX);
            worker(&args[1], slot).map(|n| {
                println!("{n}");
                true
            })
        }
        _ => match parse_args(&args) {
            Ok(a) => monitor(a),
            Err(usage) => {
                eprintln!("scoreboard: {usage}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("scoreboard: {e}");
            ExitCode::FAILURE
        }
    }
}
