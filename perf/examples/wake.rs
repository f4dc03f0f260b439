//! How fast a waiting process hears of a change, and what waiting costs the writer.
//!
//! ```text
//! cargo run --release --example wake                                  # about 30 s
//! cargo run --release --example wake -- --rounds 200 --runs 1         # a few seconds
//! strace -f -c -e trace=futex target/release/examples/wake updates 100000   # no waiter: no futex call
//! ```
//!
//! Wake latency, one way: a sender process changes something and a receiver process, asleep,
//! returns from its wait; the receiver subtracts the sender's `CLOCK_MONOTONIC` time, taken just
//! before the change, from its own on return. Before each round the sender pauses 200 µs, so the
//! receiver is asleep in the kernel when the change comes (the case a waiter is for), and after it
//! waits for the receiver's acknowledgement. Four ways:
//!
//! - (a) `update` in the sender, `wait_until` returning in the receiver;
//! - (b) a field atomic and `notify()` in the sender, `wait_until` in the receiver;
//! - (c) an 8-byte `write` to a pipe, the receiver's `read` returning;
//! - (d) Python: `multiprocessing.Event.set()`, the other process's `wait()` returning.
//!
//! The cost to the writer: `update` and `notify` of a segment nobody waits on (no system call),
//! and of one a process waits on (each makes a `FUTEX_WAKE` call and wakes it), in batches.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shm_core::{Shared, SharedLayout};

type Error = Box<dyn std::error::Error>;

/// What the sender and the receiver share.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
pub struct Ball {
    /// The round the sender has started.
    pub round: u64,
    /// `CLOCK_MONOTONIC` in ns, taken by the sender just before the change.
    pub sent_ns: u64,
    /// The round the receiver has seen.
    pub ack: u64,
    /// Set to end an idle waiter.
    pub stop: bool,
}

/// A 64-byte value, as `compare` and the criterion benchmarks update.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
pub struct Eight {
    pub v: [u64; 8],
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock every process of the machine shares (Python's
/// `time.monotonic_ns()` reads it too).
fn mono_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

const PAUSE: Duration = Duration::from_micros(200);

/// Median, 90th and 99th percentile, in microseconds.
fn summary(mut ns: Vec<u64>) -> (f64, f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    (at(0.5), at(0.9), at(0.99))
}

fn parse_latencies(text: &str) -> Result<Vec<u64>, Error> {
    let v = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<u64>, _>>()?;
    if v.is_empty() {
        return Err("no latencies".into());
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Receivers (this binary run again)

/// (a), (b): waits for each round and acknowledges it; prints the latencies.
fn shm_receiver(name: &str, rounds: u64) -> Result<(), Error> {
    let ball = Shared::<Ball>::open(name)?;
    let mut lat = Vec::with_capacity(rounds as usize);
    for r in 1..=rounds {
        let seen = ball.wait_until(|b| b.round == r);
        lat.push(mono_ns().saturating_sub(seen.sent_ns));
        ball.update(|b| b.ack = r);
    }
    println!("{}", join(&lat));
    Ok(())
}

/// (c): reads each round's time from stdin and acknowledges it with a byte on stdout; then
/// prints the latencies.
fn pipe_receiver(rounds: u64) -> Result<(), Error> {
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut lat = Vec::with_capacity(rounds as usize);
    let mut buf = [0u8; 8];
    for _ in 0..rounds {
        input.read_exact(&mut buf)?;
        lat.push(mono_ns().saturating_sub(u64::from_ne_bytes(buf)));
        output.write_all(b"k")?;
        output.flush()?;
    }
    writeln!(output, "{}", join(&lat))?;
    Ok(())
}

/// Waits until `stop`, woken by every change meanwhile (each one re-checks and sleeps again).
fn idle_waiter(name: &str) -> Result<(), Error> {
    let ball = Shared::<Ball>::open(name)?;
    println!("waiting");
    ball.wait_until(|b| b.stop);
    Ok(())
}

/// `n` updates of a fresh segment nobody waits on: run under `strace -c -e trace=futex`.
fn updates(n: u64) -> Result<(), Error> {
    let name = format!("wake-strace-{}", std::process::id());
    let s = Shared::<Eight>::create(&name, Eight::default())?;
    for i in 0..n {
        s.update(|e| e.v[(i % 8) as usize] += 1);
    }
    s.notify();
    println!("{n} updates: {:?}", s.snapshot().v);
    Ok(())
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Senders

#[derive(Clone, Copy, PartialEq)]
enum How {
    Update,
    Notify,
}

/// (a) or (b): `rounds` rounds to a receiver process; its latencies.
fn shm_latency(how: How, rounds: u64) -> Result<Vec<u64>, Error> {
    let name = format!("wake-{}", std::process::id());
    let ball = Shared::<Ball>::create(&name, Ball::default())?;
    let child = Command::new(std::env::current_exe()?)
        .args(["shm-receiver", &name, &rounds.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    for r in 1..=rounds {
        std::thread::sleep(PAUSE);
        match how {
            How::Update => ball.update(|b| {
                b.round = r;
                b.sent_ns = mono_ns();
            }),
            How::Notify => {
                ball.sent_ns.store(mono_ns(), Relaxed);
                ball.round.store(r, Relaxed);
                ball.notify();
            }
        }
        ball.wait_until(|b| b.ack == r);
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err("the receiver failed".into());
    }
    parse_latencies(&String::from_utf8_lossy(&out.stdout))
}

/// (c): `rounds` rounds through a pipe to a receiver process; its latencies.
fn pipe_latency(rounds: u64) -> Result<Vec<u64>, Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["pipe-receiver", &rounds.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to = child.stdin.take().ok_or("no stdin")?;
    let mut from = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut ack = [0u8; 1];
    for _ in 0..rounds {
        std::thread::sleep(PAUSE);
        to.write_all(&mono_ns().to_ne_bytes())?;
        to.flush()?;
        from.read_exact(&mut ack)?;
    }
    let mut rest = String::new();
    from.read_to_string(&mut rest)?;
    if !child.wait()?.success() {
        return Err("the receiver failed".into());
    }
    parse_latencies(&rest)
}

/// (d): Python's `multiprocessing.Event`, the same rounds; prints the latencies.
const PYTHON: &str = r#"
import multiprocessing as mp, sys, time

def receive(ev, ack, sent, lat, n):
    for r in range(n):
        ev.wait()
        lat[r] = time.monotonic_ns() - sent.value
        ev.clear()
        ack.set()

if __name__ == "__main__":
    n = int(sys.argv[1])
    ctx = mp.get_context("fork")
    ev, ack = ctx.Event(), ctx.Event()
    sent, lat = ctx.RawValue("q", 0), ctx.RawArray("q", n)
    p = ctx.Process(target=receive, args=(ev, ack, sent, lat, n))
    p.start()
    for r in range(n):
        time.sleep(0.0002)
        sent.value = time.monotonic_ns()
        ev.set()
        ack.wait()
        ack.clear()
    p.join()
    if p.exitcode != 0:
        sys.exit("python: the receiver failed")
    print(" ".join(map(str, lat)))
"#;

/// (d); `Ok(None)` if there is no `python3`.
fn python_latency(rounds: u64) -> Result<Option<Vec<u64>>, Error> {
    let out = match Command::new("python3")
        .args(["-c", PYTHON, &rounds.to_string()])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !out.status.success() {
        return Err(format!("python3 failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(Some(parse_latencies(&String::from_utf8_lossy(
        &out.stdout,
    ))?))
}

/// Median ns per call of `f`, over `batches` batches of `per` calls.
fn per_call(batches: usize, per: u32, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(per)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// `update` of a 64-byte value and `notify`, nobody waiting, then one waiter process asleep on
/// the segment: ns per call (medians).
fn writer_cost() -> Result<[f64; 4], Error> {
    let name = format!("wake-cost-{}", std::process::id());
    let ball = Shared::<Ball>::create(&name, Ball::default())?;
    let eight = Shared::<Eight>::create(&format!("{name}-8"), Eight::default())?;
    let mut i = 0usize;
    let update = |s: &Shared<Eight>, i: &mut usize| {
        *i = i.wrapping_add(1);
        s.update(|e| e.v[*i % 8] += 1);
    };
    let alone_update = per_call(51, 20_000, || update(&eight, &mut i));
    let alone_notify = per_call(51, 20_000, || eight.notify());
    // One process waits on the segment (for `stop`) and is woken by every change.
    drop(eight);
    let mut waiter = Command::new(std::env::current_exe()?)
        .args(["idle-waiter", &name])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(waiter.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    std::thread::sleep(Duration::from_millis(20));
    let watched_update = per_call(51, 2_000, || ball.update(|b| b.round += 1));
    let watched_notify = per_call(51, 2_000, || ball.notify());
    ball.update(|b| b.stop = true);
    if !waiter.wait()?.success() {
        return Err("the waiter failed".into());
    }
    Ok([alone_update, alone_notify, watched_update, watched_notify])
}

struct Args {
    rounds: u64,
    py_rounds: u64,
    runs: usize,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        rounds: 2000,
        py_rounds: 2000,
        runs: 3,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value: u64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("{flag} takes a positive number"))?;
        match flag.as_str() {
            "--rounds" => a.rounds = value,
            "--py-rounds" => a.py_rounds = value,
            "--runs" => a.runs = value as usize,
            other => {
                return Err(format!(
                "unknown argument `{other}`; usage: wake [--rounds N] [--py-rounds N] [--runs N]"
            ))
            }
        }
    }
    Ok(a)
}

fn run(args: &Args) -> Result<(), Error> {
    println!(
        "wake latency, one way, receiver asleep ({} rounds a run, {} runs; µs: median / p90 / p99)",
        args.rounds, args.runs
    );
    let show = |what: &str, lat: Vec<u64>| {
        let (p50, p90, p99) = summary(lat);
        println!("  {what:<44} {p50:>7.1} / {p90:>7.1} / {p99:>7.1}");
    };
    for run in 1..=args.runs {
        println!(" run {run}");
        show(
            "(a) update -> wait_until",
            shm_latency(How::Update, args.rounds)?,
        );
        show(
            "(b) fetch_add + notify -> wait_until",
            shm_latency(How::Notify, args.rounds)?,
        );
        show("(c) pipe write -> read", pipe_latency(args.rounds)?);
        match python_latency(args.py_rounds)? {
            Some(lat) => show("(d) Python multiprocessing.Event set -> wait", lat),
            None => println!("  (d) Python: no python3 on this machine"),
        }
    }
    println!("writer's cost, ns per call (median of 51 batches)");
    for run in 1..=args.runs {
        let [u, n, wu, wn] = writer_cost()?;
        println!(
            " run {run}: nobody waiting: update (64 B) {u:.1}, notify {n:.1}; one process waiting: update {wu:.0}, notify {wn:.0}"
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let role = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["shm-receiver", name, rounds] => Some(
            rounds
                .parse()
                .map_err(Error::from)
                .and_then(|r| shm_receiver(name, r)),
        ),
        ["pipe-receiver", rounds] => {
            Some(rounds.parse().map_err(Error::from).and_then(pipe_receiver))
        }
        ["idle-waiter", name] => Some(idle_waiter(name)),
        ["updates", n] => Some(n.parse().map_err(Error::from).and_then(updates)),
        _ => None,
    };
    let result = match role {
        Some(r) => r,
        None => match parse_args(&args) {
            Ok(a) => run(&a),
            Err(e) => {
                eprintln!("wake: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wake: {e}");
            ExitCode::FAILURE
        }
    }
}
