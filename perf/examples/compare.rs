//! P processes each add 1 to one shared counter N times, four ways, timed side by side:
//!
//! - (a) this crate's field atomic: `counter.n.fetch_add(1, Relaxed)` on a `Shared<Counter>`;
//! - (b) this crate's `update`: `counter.update(|c| c.n += 1)` (the segment's lock and seqlock);
//! - (c) the hand-written way: a bare `shared_memory` mapping cast to `&AtomicU64`;
//! - (d) Python: `with v.get_lock(): v.value += 1` on a `multiprocessing.Value('q')`.
//!
//! ```text
//! cargo run --release --example compare
//! cargo run --release --example compare -- --procs 1,2 --ops 1000 --py-ops 100 --runs 1   # quick
//! ```
//!
//! First, in this process, each field operation through the generated twin is timed against the
//! same operation on a `&AtomicU64` cast by hand from a second mapping of the same segment:
//! interleaved batches, so that a disturbance from the rest of the machine hits both alike, and
//! the median of the per-pair ratios.
//!
//! Then the parent creates the segments and starts P copies of this binary as workers, which know
//! only the segments' names. Workers attach, report ready, and wait for a start flag; the time
//! is from the flag to the last worker's finish, over the P x N increments: ns per increment of
//! the whole machine. The final count is checked: the program fails if any increment was lost.

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use perf::measure::Spread;
use shared_memory::{Shmem, ShmemConf};
use shm_core::{Array, Shared, SharedLayout};

type Error = Box<dyn std::error::Error>;

/// The shared counter of (a) and (b): a field of a derived struct.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
pub struct Counter {
    pub n: u64,
    pub other: u64,
}

/// An `f64` field for the float comparison, next to a `u64`.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
pub struct Pair {
    pub x: f64,
    pub y: u64,
}

/// Slots of the control array: workers ready, the start flag, then one finish time per worker.
const READY: usize = 0;
const GO: usize = 1;
const FINISH: usize = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    FetchAdd,
    Update,
    Raw,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::FetchAdd, Mode::Update, Mode::Raw];

    fn arg(self) -> &'static str {
        match self {
            Mode::FetchAdd => "fetch_add",
            Mode::Update => "update",
            Mode::Raw => "raw",
        }
    }

    fn from_arg(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.arg() == s)
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// The accessors and their hand-written equivalents, kept out of line so that their instructions
// can be compared in `cargo rustc --release -p perf --example compare -- --emit asm`
// (docs/PERFORMANCE.md shows both).

/// `fetch_add` on a field through the generated twin.
#[inline(never)]
pub fn twin_fetch_add(c: &Shared<Counter>) -> u64 {
    c.n.fetch_add(1, Ordering::Relaxed)
}

/// The same by hand: the payload pointer plus the field's offset, cast.
#[inline(never)]
pub fn raw_fetch_add(payload: &*mut u8) -> u64 {
    // SAFETY: `payload` points to a segment's payload, which holds a `Counter` twin: 8-aligned,
    // `n` at offset 0, any bits valid, only ever accessed atomically.
    let n =
        unsafe { AtomicU64::from_ptr(payload.add(core::mem::offset_of!(AtomicCounter, n)).cast()) };
    n.fetch_add(1, Ordering::Relaxed)
}

/// `load` of a field through the generated twin.
#[inline(never)]
pub fn twin_load(c: &Shared<Counter>) -> u64 {
    c.n.load(Ordering::Relaxed)
}

/// The same by hand.
#[inline(never)]
pub fn raw_load(payload: &*mut u8) -> u64 {
    // SAFETY: as in `raw_fetch_add`.
    let n =
        unsafe { AtomicU64::from_ptr(payload.add(core::mem::offset_of!(AtomicCounter, n)).cast()) };
    n.load(Ordering::Relaxed)
}

/// `store` to a field through the generated twin.
#[inline(never)]
pub fn twin_store(c: &Shared<Counter>, v: u64) {
    c.n.store(v, Ordering::Relaxed)
}

/// The same by hand.
#[inline(never)]
pub fn raw_store(payload: &*mut u8, v: u64) {
    // SAFETY: as in `raw_fetch_add`.
    let n =
        unsafe { AtomicU64::from_ptr(payload.add(core::mem::offset_of!(AtomicCounter, n)).cast()) };
    n.store(v, Ordering::Relaxed)
}

/// `snapshot` through the crate, as every caller compiles it (it is always inlined): both
/// fields of one consistent copy.
#[inline(never)]
pub fn twin_snapshot(c: &Shared<Counter>) -> (u64, u64) {
    let s = c.snapshot();
    (s.n, s.other)
}

/// The same two relaxed loads by hand, without the seqlock: not consistent, the baseline.
#[inline(never)]
pub fn raw_loads(payload: &*mut u8) -> (u64, u64) {
    // SAFETY: as in `raw_fetch_add`, for `n` at offset 0 and `other` at 8.
    let (n, other) = unsafe {
        (
            AtomicU64::from_ptr(payload.cast()),
            AtomicU64::from_ptr(payload.add(8).cast()),
        )
    };
    (n.load(Ordering::Relaxed), other.load(Ordering::Relaxed))
}

/// A raw mapping made by hand, as (c) uses: a bare `shared_memory` object holding one `u64`.
struct RawCounter {
    map: Shmem,
}

impl RawCounter {
    fn create(name: &str) -> Result<RawCounter, Error> {
        let map = ShmemConf::new().os_id(name).size(4096).create()?;
        Ok(RawCounter { map })
    }

    fn open(name: &str) -> Result<RawCounter, Error> {
        let map = ShmemConf::new().os_id(name).open()?;
        Ok(RawCounter { map })
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the mapping is at least 4096 bytes (we created it so), page-aligned; its first
        // 8 bytes are only ever accessed as an `AtomicU64`, for which any bits are valid; the
        // mapping lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().cast()) }
    }
}

fn worker(mode: Mode, prefix: &str, index: usize, ops: u64) -> Result<(), Error> {
    let ctl = Array::<u64>::open(&format!("{prefix}-ctl"))?;
    let slot = ctl.get(FINISH + index).ok_or("worker index out of range")?;
    // Attach first, so that the timed part is the increments alone.
    let shared = Shared::<Counter>::open(&format!("{prefix}-shm"))?;
    let raw = RawCounter::open(&format!("/{prefix}-raw"))?;
    let raw = raw.counter();
    ctl[READY].fetch_add(1, Ordering::AcqRel);
    while ctl[GO].load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    match mode {
        Mode::FetchAdd => {
            for _ in 0..ops {
                shared.n.fetch_add(1, Ordering::Relaxed);
            }
        }
        Mode::Update => {
            for _ in 0..ops {
                shared.update(|c| c.n += 1);
            }
        }
        Mode::Raw => {
            for _ in 0..ops {
                raw.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    slot.store(now_ns(), Ordering::Release);
    Ok(())
}

/// Runs one mode with `procs` worker processes; returns ns per increment.
fn run(mode: Mode, procs: usize, ops: u64) -> Result<f64, Error> {
    let prefix = format!("shm-compare-{}", std::process::id());
    let ctl = Array::<u64>::create_zeroed(&format!("{prefix}-ctl"), FINISH + procs)?;
    let shared = Shared::<Counter>::create(&format!("{prefix}-shm"), Counter::default())?;
    let raw = RawCounter::create(&format!("/{prefix}-raw"))?;

    let me = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..procs {
        let child = Command::new(&me)
            .args([
                "worker",
                mode.arg(),
                &prefix,
                &i.to_string(),
                &ops.to_string(),
            ])
            .spawn()?;
        children.push(child);
    }
    // Every worker attached (or one failed: then wait for all and report it).
    let mut failed = false;
    while ctl[READY].load(Ordering::Acquire) < procs as u64 {
        for c in &mut children {
            failed |= c.try_wait()?.is_some_and(|s| !s.success());
        }
        if failed {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let start = now_ns();
    ctl[GO].store(1, Ordering::Release);
    for mut c in children {
        failed |= !c.wait()?.success();
    }
    if failed {
        return Err(format!("a {} worker failed", mode.arg()).into());
    }
    let end = (0..procs)
        .map(|i| ctl[FINISH + i].load(Ordering::Acquire))
        .max()
        .unwrap_or(start);
    let total = procs as u64 * ops;
    let got = match mode {
        Mode::FetchAdd | Mode::Update => shared.snapshot().n,
        Mode::Raw => raw.counter().load(Ordering::Relaxed),
    };
    if got != total {
        return Err(format!("{}: counted {got}, expected {total}", mode.arg()).into());
    }
    Ok(end.saturating_sub(start) as f64 / total as f64)
}

/// Python's `multiprocessing.Value('q')`, incremented under `get_lock()` by `procs` processes.
/// Prints the nanoseconds from the start barrier to the last worker's finish.
const PYTHON: &str = r#"
import multiprocessing as mp, sys, time

def work(v, n, barrier, ends, i):
    barrier.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    ends[i] = time.monotonic_ns()

if __name__ == "__main__":
    p, n = int(sys.argv[1]), int(sys.argv[2])
    ctx = mp.get_context("fork")
    v = ctx.Value("q", 0)
    ends = ctx.Array("q", p, lock=False)
    barrier = ctx.Barrier(p + 1)
    procs = [ctx.Process(target=work, args=(v, n, barrier, ends, i)) for i in range(p)]
    for pr in procs:
        pr.start()
    barrier.wait()
    start = time.monotonic_ns()
    for pr in procs:
        pr.join()
    if v.value != p * n or any(pr.exitcode != 0 for pr in procs):
        sys.exit("python: counted %d, expected %d" % (v.value, p * n))
    print(max(ends) - start)
"#;

/// Runs the Python version; `Ok(None)` if there is no `python3`.
fn run_python(procs: usize, ops: u64) -> Result<Option<f64>, Error> {
    let out = match Command::new("python3")
        .args(["-c", PYTHON, &procs.to_string(), &ops.to_string()])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !out.status.success() {
        return Err(format!("python3 failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let ns: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(Some(ns / (procs as u64 * ops) as f64))
}

/// Operations per timed batch, and batches per side, of the field comparison.
const BATCH: u32 = 10_000;
const PAIRS: usize = 301;

/// Times `a` and `b` (each one operation) in alternating batches; returns the median ns per
/// operation of each and the spread of the per-pair ratios a/b.
fn paired(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64, Spread) {
    // Generic, so that each operation is inlined into its batch loop, as in a user's loop.
    fn batch(f: &mut impl FnMut()) -> f64 {
        let t = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        t.elapsed().as_nanos() as f64 / f64::from(BATCH)
    }
    let (mut ta, mut tb, mut ratio) = (vec![], vec![], vec![]);
    for i in 0..PAIRS {
        // Alternate which goes first, so that neither always follows the other.
        let (x, y) = if i % 2 == 0 {
            let x = batch(&mut a);
            (x, batch(&mut b))
        } else {
            let y = batch(&mut b);
            (batch(&mut a), y)
        };
        ta.push(x);
        tb.push(y);
        ratio.push(x / y);
    }
    (median(ta), median(tb), Spread::of(&ratio))
}

/// The field comparison: returns the largest twin/raw ratio.
fn field_ops() -> Result<f64, Error> {
    let name = format!("shm-compare-{}-field", std::process::id());
    let shared = Shared::<Counter>::create(&name, Counter::default())?;
    // The hand-written way: map the object again, read the payload offset from the header
    // (docs/FORMAT.md: bytes 32..40), cast.
    let map = ShmemConf::new().os_id(format!("/{name}")).open()?;
    // SAFETY: the object is a segment we just created, at least 256 bytes, page-aligned; bytes
    // 32..40 of its header are `payload_offset`, an 8-aligned u64, only accessed atomically.
    let offset =
        unsafe { AtomicU64::from_ptr(map.as_ptr().add(32).cast()) }.load(Ordering::Relaxed);
    if offset as usize + 16 > map.len() {
        return Err("payload offset out of range".into());
    }
    // SAFETY: the payload holds a `Counter` twin (checked in range just above): `n` at offset 0
    // and `other` at 8, 8-aligned, any bits valid, only accessed atomically; the mapping lives
    // until the end of this function.
    let (raw, raw_bits) = unsafe {
        let p = map.as_ptr().add(offset as usize);
        (
            AtomicU64::from_ptr(p.cast()),
            AtomicU64::from_ptr(p.add(8).cast()),
        )
    };
    let twin_f64 = Shared::<Pair>::create(&format!("{name}-f"), Pair::default())?;
    use std::hint::black_box as bb;
    let rows: [(&str, (f64, f64, Spread)); 4] = [
        (
            "load",
            paired(
                || {
                    bb(shared.n.load(Ordering::Relaxed));
                },
                || {
                    bb(raw.load(Ordering::Relaxed));
                },
            ),
        ),
        (
            "store",
            paired(
                || shared.n.store(bb(7), Ordering::Relaxed),
                || raw.store(bb(7), Ordering::Relaxed),
            ),
        ),
        (
            "fetch_add",
            paired(
                || {
                    bb(shared.n.fetch_add(1, Ordering::Relaxed));
                },
                || {
                    bb(raw.fetch_add(1, Ordering::Relaxed));
                },
            ),
        ),
        (
            "f64 fetch_add (CAS loop)",
            paired(
                || {
                    bb(twin_f64.x.fetch_add(bb(0.5), Ordering::Relaxed));
                },
                || {
                    let delta = bb(0.5f64);
                    let mut cur = raw_bits.load(Ordering::Relaxed);
                    let prev = loop {
                        let new = (f64::from_bits(cur) + delta).to_bits();
                        match raw_bits.compare_exchange_weak(
                            cur,
                            new,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        ) {
                            Ok(prev) => break prev,
                            Err(now) => cur = now,
                        }
                    };
                    bb(prev);
                },
            ),
        ),
    ];
    println!(
        "Field operations in one process, twin vs a hand-cast &AtomicU64 (median of {PAIRS} interleaved batches of {BATCH}):\n"
    );
    println!(
        "{:>26} | {:>8} | {:>8} | {:>24}",
        "", "twin ns", "raw ns", "twin/raw [IQR]"
    );
    println!("{}", "-".repeat(76));
    let mut worst: f64 = 0.0;
    for (op, (t, r, ratio)) in rows {
        println!("{op:>26} | {t:>8.2} | {r:>8.2} | {:>24}", ratio.iqr(3));
        worst = worst.max(ratio.median);
    }
    println!();
    Ok(worst)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

struct Args {
    procs: Vec<usize>,
    ops: u64,
    py_ops: u64,
    runs: usize,
}

fn parse_args(args: &[String]) -> Result<Args, Error> {
    let mut a = Args {
        procs: vec![1, 2, 4, 8],
        ops: 1_000_000,
        py_ops: 50_000,
        runs: 3,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--procs" => {
                a.procs = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--ops" => a.ops = value()?.parse()?,
            "--py-ops" => a.py_ops = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "-h" | "--help" => {
                println!("compare [--procs 1,2,4,8] [--ops 1000000] [--py-ops 50000] [--runs 3]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    if a.procs.is_empty() || a.procs.contains(&0) || a.ops == 0 || a.py_ops == 0 || a.runs == 0 {
        return Err("process counts and operation counts must be positive".into());
    }
    Ok(a)
}

fn parent(args: &Args) -> Result<(), Error> {
    // Keep the out-of-line accessors in the binary, for the assembly comparison.
    std::hint::black_box(twin_fetch_add as fn(&Shared<Counter>) -> u64);
    std::hint::black_box(raw_fetch_add as fn(&*mut u8) -> u64);
    std::hint::black_box(twin_load as fn(&Shared<Counter>) -> u64);
    std::hint::black_box(raw_load as fn(&*mut u8) -> u64);
    std::hint::black_box(twin_store as fn(&Shared<Counter>, u64));
    std::hint::black_box(raw_store as fn(&*mut u8, u64));
    std::hint::black_box(twin_snapshot as fn(&Shared<Counter>) -> (u64, u64));
    std::hint::black_box(raw_loads as fn(&*mut u8) -> (u64, u64));

    field_ops()?;

    println!(
        "{} increments per process for (a)-(c), {} for (d); {} CPUs; ns per increment, machine-wide, median (min-max) of {} runs\n",
        args.ops,
        args.py_ops,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.runs
    );
    println!(
        "{:>3} | {:>19} | {:>19} | {:>19} | {:>22} | {:>5} {:>5} | {:>5} {:>5}",
        "P",
        "(a) fetch_add",
        "(b) update",
        "(c) raw atomic",
        "(d) Python",
        "a/c",
        "b/c",
        "d/a",
        "d/b"
    );
    println!("{}", "-".repeat(125));
    let mut python_missing = false;
    for &p in &args.procs {
        // The modes take turns within each run, so that a disturbance hits them alike.
        let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
        for _ in 0..args.runs {
            a.push(run(Mode::FetchAdd, p, args.ops)?);
            b.push(run(Mode::Update, p, args.ops)?);
            c.push(run(Mode::Raw, p, args.ops)?);
            if !python_missing {
                match run_python(p, args.py_ops)? {
                    Some(ns) => d.push(ns),
                    None => python_missing = true,
                }
            }
        }
        let (a, b, c) = (Spread::of(&a), Spread::of(&b), Spread::of(&c));
        let d = (!d.is_empty()).then(|| Spread::of(&d));
        let (d_col, da, db) = match d {
            Some(d) => (
                d.range(0),
                format!("{:.0}x", d.median / a.median),
                format!("{:.0}x", d.median / b.median),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{p:>3} | {:>19} | {:>19} | {:>19} | {d_col:>22} | {:>5.2} {:>5.2} | {da:>5} {db:>5}",
            a.range(1),
            b.range(1),
            c.range(1),
            a.median / c.median,
            b.median / c.median
        );
    }
    if python_missing {
        println!("\n(d) skipped: python3 was not found on PATH");
    }
    println!("\na/c, b/c: this crate / hand-written atomics (1.00 = same cost); d/a, d/b: how many times faster than Python");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") if args.len() == 5 => match Mode::from_arg(&args[1]) {
            Some(mode) => args[3]
                .parse()
                .map_err(Error::from)
                .and_then(|i| Ok((i, args[4].parse()?)))
                .and_then(|(i, ops)| worker(mode, &args[2], i, ops)),
            None => Err(format!("unknown mode {}", args[1]).into()),
        },
        _ => parse_args(&args).and_then(|a| parent(&a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}
