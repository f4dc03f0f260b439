//! How throughput changes from 1 to 16 processes on one segment, and a plot of it.
//!
//! ```text
//! cargo bench -p perf --bench scaling                               # tables, target/scaling*.svg
//! cargo bench -p perf --bench scaling -- --svg docs/scaling.svg     # the plots PERFORMANCE.md shows
//! cargo bench -p perf --bench scaling -- --procs 1,2 --runs 1 --scale 0.01   # seconds
//! ```
//!
//! Five workloads, each run by P worker processes (copies of this binary that know only the
//! segments' names), which attach, report ready, and start together on a flag:
//!
//! - `fetch_add, one field`: every process adds 1 to the same `u64` field, `fetch_add(1, Relaxed)`;
//! - `fetch_add, own slot`: each adds 1 to its own field, 128 bytes from the next (no false
//!   sharing);
//! - `update`: `update(|n| *n += 1)` on a `Value<u64>` of its own: the segment's lock, journal
//!   and seqlock around the same increment as the next line's;
//! - `process-shared mutex`: the hand-written counterpart of `update`, a default process-shared
//!   pthread mutex in a bare `shared_memory` mapping around a plain increment;
//! - `snapshot, 1 writer`: P processes take `snapshot()`s of a 64-byte struct while one more
//!   process `update`s it without pause (its updates are not counted).
//!
//! The time runs from the start flag to the last worker's finish; the figure is operations per
//! second of all P processes together; and, from each worker's own CPU clock, the CPU time per
//! operation, which the rest of the machine's load does not inflate (but which leaves out time a
//! process spent asleep waiting for the lock). Each (workload, P) point is run several times, the
//! workloads taking turns; the tables and the two plots (`scaling.svg`, `scaling-cpu.svg`) show
//! the median and the range. Every count is
//! checked, and every snapshot is checked whole: the program fails if an increment was lost or a
//! snapshot torn.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use perf::measure::Spread;
use perf::raw::Error;
use perf::svg::{plot, Series};
use shared_memory::{Shmem, ShmemConf};
use shm_core::{Array, Shared, SharedLayout, Value};

/// The struct of `update` and `snapshot`: 64 bytes, every field the same value after a whole
/// update.
#[derive(SharedLayout, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Block {
    f: [u64; 8],
}

/// One process's slot: its counter alone in a 128-byte pair of cache lines.
#[derive(SharedLayout, Clone, Copy)]
#[repr(C)]
struct Slot {
    n: u64,
    _pad: [u64; 15],
}

/// The counters the workloads use, in one segment.
#[derive(SharedLayout, Clone, Copy)]
#[repr(C)]
struct Counters {
    shared: u64,
    _pad: [u64; 15],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    FetchAdd,
    Slots,
    Update,
    Mutex,
    Snapshot,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::FetchAdd,
        Mode::Slots,
        Mode::Update,
        Mode::Mutex,
        Mode::Snapshot,
    ];

    fn arg(self) -> &'static str {
        match self {
            Mode::FetchAdd => "fetch_add",
            Mode::Slots => "slots",
            Mode::Update => "update",
            Mode::Mutex => "mutex",
            Mode::Snapshot => "snapshot",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::FetchAdd => "fetch_add, one field",
            Mode::Slots => "fetch_add, own slot",
            Mode::Update => "update",
            Mode::Mutex => "process-shared mutex (by hand)",
            Mode::Snapshot => "snapshot, 1 writer",
        }
    }

    /// Operations per worker at `--scale 1`: about 50-500 ms a run.
    fn ops(self) -> f64 {
        match self {
            Mode::FetchAdd | Mode::Slots => 4e6,
            Mode::Update | Mode::Mutex => 4e5,
            Mode::Snapshot => 2e6,
        }
    }

    fn from_arg(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.arg() == s)
    }
}

/// Slots of the control array: workers ready, the start flag, the writer's stop flag, then one
/// finish time per worker, then the CPU time each worker spent in its loop.
const READY: usize = 0;
const GO: usize = 1;
const STOP: usize = 2;
const FINISH: usize = 3;

/// `clock` in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; both clocks used here exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// `CLOCK_MONOTONIC`: one clock for every process of the machine.
fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The CPU time this thread has used.
fn cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// A default process-shared pthread mutex and a counter in a bare `shared_memory` mapping.
struct RawLocked {
    map: Shmem,
}

impl RawLocked {
    const COUNTER: usize = 128;

    fn create(os_id: &str) -> Result<RawLocked, Error> {
        let map = ShmemConf::new().os_id(os_id).size(4096).create()?;
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: the mapping is fresh, page-aligned and 4096 bytes, so its first bytes hold a
        // `pthread_mutex_t` that no process uses yet; `attr` is initialised before use and
        // destroyed after.
        unsafe {
            let a = attr.as_mut_ptr();
            libc::pthread_mutexattr_init(a);
            libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED);
            let rc = libc::pthread_mutex_init(map.as_ptr().cast(), a);
            libc::pthread_mutexattr_destroy(a);
            if rc != 0 {
                return Err(format!("pthread_mutex_init: {rc}").into());
            }
        }
        Ok(RawLocked { map })
    }

    fn open(os_id: &str) -> Result<RawLocked, Error> {
        Ok(RawLocked {
            map: ShmemConf::new().os_id(os_id).open()?,
        })
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: byte 128 of a 4096-byte page-aligned mapping is 8-aligned and in bounds; it
        // is only ever accessed as this atomic, and lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(Self::COUNTER).cast()) }
    }

    /// Adds 1 under the mutex, as code without shm-core would.
    fn increment(&self) {
        let m = self.map.as_ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: `m` is the process-shared mutex the creator initialised; every process locks
        // and unlocks it on one thread.
        unsafe { libc::pthread_mutex_lock(m) };
        let c = self.counter();
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        // SAFETY: as above; this thread holds it.
        unsafe { libc::pthread_mutex_unlock(m) };
    }
}

fn names(prefix: &str) -> [String; 6] {
    [
        format!("{prefix}-ctl"),
        format!("{prefix}-counters"),
        format!("{prefix}-slots"),
        format!("{prefix}-block"),
        format!("/{prefix}-raw"),
        format!("{prefix}-value"),
    ]
}

/// What a worker does. `index` is `usize::MAX` for the snapshot mode's writer.
fn worker(mode: Mode, prefix: &str, index: usize, ops: u64) -> Result<(), Error> {
    let [ctl, counters, slots, block, raw, value] = names(prefix);
    let ctl = Array::<u64>::open(&ctl)?;
    let procs = (ctl.len() - FINISH) / 2;
    let counters = Shared::<Counters>::open(&counters)?;
    let slots = Array::<Slot>::open(&slots)?;
    let block = Shared::<Block>::open(&block)?;
    let raw = RawLocked::open(&raw)?;
    let value = Value::<u64>::open(&value)?;
    let writer = index == usize::MAX;
    let finish = if writer {
        None
    } else if index < procs {
        Some((&ctl[FINISH + index], &ctl[FINISH + procs + index]))
    } else {
        return Err("worker index out of range".into());
    };
    ctl[READY].fetch_add(1, Ordering::AcqRel);
    while ctl[GO].load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let mut torn = 0u64;
    let cpu = cpu_ns();
    match mode {
        Mode::FetchAdd => {
            for _ in 0..ops {
                counters.shared.fetch_add(1, Ordering::Relaxed);
            }
        }
        Mode::Slots => {
            let mine = &slots[index].n;
            for _ in 0..ops {
                mine.fetch_add(1, Ordering::Relaxed);
            }
        }
        Mode::Update => {
            for _ in 0..ops {
                value.update(|n| *n += 1);
            }
        }
        Mode::Mutex => {
            for _ in 0..ops {
                raw.increment();
            }
        }
        Mode::Snapshot if writer => {
            let mut k = 0u64;
            while ctl[STOP].load(Ordering::Relaxed) == 0 {
                k += 1;
                block.update(|b| b.f = [k; 8]);
            }
        }
        Mode::Snapshot => {
            for _ in 0..ops {
                let b = std::hint::black_box(block.snapshot());
                torn += u64::from(b.f.iter().any(|&x| x != b.f[0]));
            }
        }
    }
    if let Some((end, used)) = finish {
        used.store(cpu_ns() - cpu, Ordering::Relaxed);
        end.store(now_ns(), Ordering::Release);
    }
    if torn != 0 {
        return Err(format!("{torn} torn snapshots").into());
    }
    Ok(())
}

/// Kills and reaps the children when dropped (a failed run leaves no process behind).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// The figures of one run.
struct Figures {
    /// Million operations per second, all workers together.
    mops: f64,
    /// CPU nanoseconds the workers spent per operation.
    cpu_ns: f64,
}

/// One run of `mode` with `procs` workers.
fn run(mode: Mode, procs: usize, ops: u64) -> Result<Figures, Error> {
    let prefix = format!("shm-scaling-{}", std::process::id());
    let [ctl_n, counters_n, slots_n, block_n, raw_n, value_n] = names(&prefix);
    let ctl = Array::<u64>::create_zeroed(&ctl_n, FINISH + 2 * procs)?;
    let counters = Shared::<Counters>::create(
        &counters_n,
        Counters {
            shared: 0,
            _pad: [0; 15],
        },
    )?;
    let slots = Array::<Slot>::create_zeroed(&slots_n, procs)?;
    let _block = Shared::<Block>::create(&block_n, Block { f: [0; 8] })?;
    let raw = RawLocked::create(&raw_n)?;
    let value = Value::<u64>::create(&value_n, 0)?;

    let me = std::env::current_exe()?;
    let spawn = |index: usize| {
        Command::new(&me)
            .args([
                "worker",
                mode.arg(),
                &prefix,
                &index.to_string(),
                &ops.to_string(),
            ])
            .spawn()
    };
    let mut children = Children(Vec::new());
    for i in 0..procs {
        children.0.push(spawn(i)?);
    }
    let writer = (mode == Mode::Snapshot)
        .then(|| spawn(usize::MAX))
        .transpose()?;
    let mut writer = Children(writer.into_iter().collect());
    let expected = procs as u64 + writer.0.len() as u64;
    while ctl[READY].load(Ordering::Acquire) < expected {
        for c in children.0.iter_mut().chain(&mut writer.0) {
            if let Some(status) = c.try_wait()? {
                return Err(format!("a {} worker exited early: {status}", mode.arg()).into());
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let start = now_ns();
    ctl[GO].store(1, Ordering::Release);
    let mut failed = false;
    for c in &mut children.0 {
        failed |= !c.wait()?.success();
    }
    ctl[STOP].store(1, Ordering::Release);
    for c in &mut writer.0 {
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
    let counted = match mode {
        Mode::FetchAdd => counters.shared.load(Ordering::Relaxed),
        Mode::Update => value.get(),
        Mode::Slots => slots.iter().map(|s| s.n.load(Ordering::Relaxed)).sum(),
        Mode::Mutex => raw.counter().load(Ordering::Relaxed),
        Mode::Snapshot => total,
    };
    if counted != total {
        return Err(format!("{}: counted {counted}, expected {total}", mode.arg()).into());
    }
    let cpu: u64 = (0..procs)
        .map(|i| ctl[FINISH + procs + i].load(Ordering::Relaxed))
        .sum();
    Ok(Figures {
        mops: total as f64 / end.saturating_sub(start).max(1) as f64 * 1e3,
        cpu_ns: cpu as f64 / total as f64,
    })
}

struct Args {
    procs: Vec<usize>,
    runs: usize,
    scale: f64,
    svg: PathBuf,
}

fn parse_args(args: &[String]) -> Result<Args, Error> {
    let mut a = Args {
        procs: vec![1, 2, 3, 4, 6, 8, 12, 16],
        runs: 5,
        scale: 1.0,
        svg: PathBuf::from("target/scaling.svg"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bench" => {}
            "--procs" => {
                a.procs = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--runs" => a.runs = value()?.parse()?,
            "--scale" => a.scale = value()?.parse()?,
            "--svg" => a.svg = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("scaling [--procs 1,2,3,4,6,8,12,16] [--runs 5] [--scale 1] [--svg target/scaling.svg]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    if a.procs.is_empty()
        || a.procs.contains(&0)
        || a.runs == 0
        || !a.scale.is_finite()
        || a.scale <= 0.0
    {
        return Err("process counts, runs and scale must be positive".into());
    }
    // Relative to the workspace, wherever cargo runs the bench from.
    if a.svg.is_relative() {
        a.svg = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(&a.svg);
    }
    Ok(a)
}

fn parent(args: &Args) -> Result<(), Error> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let header = || {
        print!("{:>3}", "P");
        for m in Mode::ALL {
            print!(" | {:>30}", m.label());
        }
        println!();
        println!("{}", "-".repeat(3 + 33 * Mode::ALL.len()));
    };
    println!(
        "{cpus} CPUs; million operations per second, all processes together: median (min-max) of {} runs",
        args.runs
    );
    header();
    let mut series: Vec<Series> = Mode::ALL
        .iter()
        .map(|m| Series {
            name: m.label().to_owned(),
            points: Vec::new(),
        })
        .collect();
    let mut cpu_rows = Vec::new();
    for &p in &args.procs {
        let mut mops = vec![Vec::new(); Mode::ALL.len()];
        let mut cpu = vec![Vec::new(); Mode::ALL.len()];
        for r in 0..args.runs {
            // The workloads take turns, starting with another one each run.
            for k in 0..Mode::ALL.len() {
                let i = (r + k) % Mode::ALL.len();
                let m = Mode::ALL[i];
                let ops = (m.ops() * args.scale).max(1.0) as u64;
                let f = run(m, p, ops)?;
                mops[i].push(f.mops);
                cpu[i].push(f.cpu_ns);
            }
        }
        print!("{p:>3}");
        for (i, s) in mops.iter().enumerate() {
            let sp = Spread::of(s);
            print!(" | {:>30}", sp.range(1));
            series[i].points.push((p as f64, sp));
        }
        println!();
        cpu_rows.push((p, cpu));
    }
    println!("\nCPU nanoseconds per operation, all processes' CPU time over all operations: median (min-max)");
    header();
    for (p, cpu) in &cpu_rows {
        print!("{p:>3}");
        for s in cpu {
            print!(" | {:>30}", Spread::of(s).range(1));
        }
        println!();
    }
    let most = args.procs.iter().max().unwrap_or(&1);
    let throughput = plot(
        &format!("One segment, 1 to {most} processes, {cpus} CPUs: throughput"),
        "processes",
        "million operations per second (all processes)",
        &series,
    );
    let cpu_series: Vec<Series> = Mode::ALL
        .iter()
        .enumerate()
        .map(|(i, m)| Series {
            name: m.label().to_owned(),
            points: cpu_rows
                .iter()
                .map(|(p, cpu)| (*p as f64, Spread::of(&cpu[i])))
                .collect(),
        })
        .collect();
    let cost = plot(
        &format!("One segment, 1 to {most} processes, {cpus} CPUs: CPU time"),
        "processes",
        "CPU nanoseconds per operation",
        &cpu_series,
    );
    if let Some(dir) = args.svg.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let cpu_path = args.svg.with_file_name(format!(
        "{}-cpu.svg",
        args.svg
            .file_stem()
            .map_or("scaling".into(), |s| s.to_string_lossy())
    ));
    std::fs::write(&args.svg, throughput)?;
    std::fs::write(&cpu_path, cost)?;
    println!(
        "\nplots written to {} and {}",
        args.svg.display(),
        cpu_path.display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
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
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scaling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
