//! What a user's program pays: every in-process operation of shm-core against the hand-written
//! code it replaces, called from this crate (a separate crate, as every user's is), with the
//! crate's generic functions called from several places and from inside a large function, so
//! that the compiler makes the inlining decisions it makes in real programs.
//!
//! ```text
//! cargo bench -p perf --bench user                      # everything, about two minutes
//! cargo bench -p perf --bench user -- snapshot update   # groups whose name contains a word
//! cargo bench -p perf --bench user -- --rounds 101      # fewer rounds
//! ```
//!
//! Each group's cases run interleaved (see `perf::measure`): every round times one batch of
//! each, in a rotating order; the table gives the median ns per operation with its quartiles,
//! and the median of the per-round ratios to the baseline with their quartiles.

use std::collections::HashMap;
use std::fmt::{Debug, Write as _};
use std::hint::black_box as bb;
use std::sync::atomic::{fence, AtomicU64, Ordering::Acquire, Ordering::Relaxed};

use perf::measure::{print_table, Group, Spread, Timing};
use perf::mutex::{BareMutex, Kind};
use perf::raw::{Error, RawMap};
use shared_memory::ShmemConf;
use shm_core::{Array, ReadOnly, Shared, SharedLayout};

/// A struct of `u64`s, with the hand-written counterparts of what shm-core does to it.
trait Words: SharedLayout + Copy + Default + Debug + PartialEq {
    /// Its twin reached by hand: an array of `AtomicU64`.
    type Raw: ?Sized + Sync;
    /// The payload of a hand-made mapping, as `Raw`.
    fn raw(m: &RawMap) -> &Self::Raw;
    /// The relaxed loads of every field, as one writes them by hand.
    fn load_raw(raw: &Self::Raw) -> Self;
    /// The relaxed stores of every field.
    fn store_raw(raw: &Self::Raw, v: &Self);
    /// A value with every field `k`.
    fn with(k: u64) -> Self;
    /// The sum of the fields.
    fn sum(&self) -> u64;
    /// The fields.
    fn fields(&self) -> &[u64];
}

macro_rules! words {
    ($($name:ident: $n:literal),*) => {$(
        #[derive(SharedLayout, Clone, Copy, Debug, PartialEq)]
        #[repr(C)]
        struct $name {
            f: [u64; $n],
        }

        impl Default for $name {
            fn default() -> Self {
                $name { f: [0; $n] }
            }
        }

        impl Words for $name {
            type Raw = [AtomicU64; $n];
            fn raw(m: &RawMap) -> &Self::Raw {
                m.words::<$n>()
            }
            #[inline]
            fn load_raw(raw: &Self::Raw) -> Self {
                $name { f: core::array::from_fn(|i| raw[i].load(Relaxed)) }
            }
            #[inline]
            fn store_raw(raw: &Self::Raw, v: &Self) {
                for (a, x) in raw.iter().zip(&v.f) {
                    a.store(*x, Relaxed);
                }
            }
            #[inline]
            fn with(k: u64) -> Self {
                $name { f: [k; $n] }
            }
            #[inline]
            fn sum(&self) -> u64 {
                self.f.iter().fold(0u64, |a, b| a.wrapping_add(*b))
            }
            fn fields(&self) -> &[u64] {
                &self.f
            }
        }
    )*};
}
words!(S8: 1, S16: 2, S32: 4, S64: 8, S512: 64);

fn name(tag: &str) -> String {
    format!("shm-perf-{tag}-{}", std::process::id())
}

/// What [`large`] does this time.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// The timed loops: `n` snapshots, or `n` times the hand-written loads.
    Snapshot(u64),
    Loads(u64),
    /// The rest of a program's dealings with the value, each touching it some way.
    Report,
    Histogram,
    Parse(&'static str),
    Sorted,
    Moments,
    Csv,
    Bump(u64),
    Diff,
}

/// A large function, as programs have: the timed loop is one arm of a `match` whose other arms
/// format, parse, sort, hash and update. The compiler weighs inlining `snapshot` into it as it
/// would in such a function.
#[inline(never)]
fn large<T: Words, const K: usize>(
    op: Op,
    s: &Shared<T>,
    raw: &T::Raw,
    sink: &mut Sink<T>,
    log: &mut Vec<String>,
) -> u64 {
    place::<K>();
    match op {
        Op::Snapshot(n) => {
            for _ in 0..n {
                sink.put(s.snapshot());
            }
            0
        }
        Op::Loads(n) => {
            for _ in 0..n {
                sink.put(T::load_raw(raw));
            }
            0
        }
        Op::Report => {
            let v = s.snapshot();
            let line = format!("{} = {:?} (sum {})", s.name(), v, v.sum());
            let len = line.len() as u64;
            log.push(line);
            len
        }
        Op::Histogram => {
            let v = s.snapshot();
            let mut h: HashMap<u64, usize> = HashMap::new();
            for f in v.fields() {
                *h.entry(f % 7).or_default() += 1;
            }
            let mut keys: Vec<_> = h.into_iter().collect();
            keys.sort_unstable();
            log.push(format!("{keys:?}"));
            keys.len() as u64
        }
        Op::Parse(text) => {
            let mut total = 0u64;
            for word in text.split([',', ' ']).filter(|w| !w.is_empty()) {
                match word.trim().parse::<u64>() {
                    Ok(k) => total = total.wrapping_add(k),
                    Err(e) => log.push(format!("bad number {word:?}: {e}")),
                }
            }
            s.update(|v| *v = T::with(total));
            total
        }
        Op::Sorted => {
            let v = T::load_raw(raw);
            let mut f = v.fields().to_vec();
            f.sort_unstable_by(|a, b| b.cmp(a));
            f.dedup();
            log.push(format!("{} distinct, largest {:?}", f.len(), f.first()));
            f.len() as u64
        }
        Op::Moments => {
            let v = s.snapshot();
            let n = v.fields().len() as f64;
            let mean = v.fields().iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v
                .fields()
                .iter()
                .map(|&x| (x as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            log.push(format!("mean {mean:.3} sd {:.3}", var.sqrt()));
            (mean + var) as u64
        }
        Op::Csv => {
            let v = T::load_raw(raw);
            let mut out = String::new();
            for (i, f) in v.fields().iter().enumerate() {
                let _ = writeln!(out, "{i},{f:#x},{}", f.count_ones());
            }
            let len = out.len() as u64;
            log.push(out);
            len
        }
        Op::Bump(k) => s.update(|v| {
            let old = v.sum();
            *v = T::with(old.wrapping_add(k) % 1000);
            old
        }),
        Op::Diff => {
            let a = s.snapshot();
            let b = T::load_raw(raw);
            let d = a
                .fields()
                .iter()
                .zip(b.fields())
                .filter(|(x, y)| x != y)
                .count();
            if d > 0 {
                log.push(format!("{d} fields differ between {a:?} and {b:?}"));
            }
            d as u64
        }
    }
}

/// The program's other uses of `large`, run once so that every arm is live code.
fn exercise_large<T: Words, const K: usize>(s: &Shared<T>, raw: &T::Raw) -> u64 {
    let mut log = Vec::new();
    let mut sink = Sink::new();
    let mut sum = 0u64;
    for op in [
        Op::Report,
        Op::Histogram,
        Op::Parse("1, 2 3,x"),
        Op::Sorted,
        Op::Moments,
        Op::Csv,
        Op::Bump(3),
        Op::Diff,
    ] {
        sum = sum.wrapping_add(large::<T, K>(bb(op), s, raw, &mut sink, &mut log));
    }
    sum.wrapping_add(log.len() as u64)
}

/// Other call sites of `snapshot`, as a program has several.
#[inline(never)]
fn sum_now<T: Words>(s: &Shared<T>) -> u64 {
    s.snapshot().sum()
}

#[inline(never)]
fn changed<T: Words>(s: &Shared<T>, before: &T) -> bool {
    s.snapshot() != *before
}

/// Another call site, of the read-only handle's `snapshot`.
#[inline(never)]
fn ro_sum<T: Words>(s: &ReadOnly<T>) -> u64 {
    s.snapshot().sum()
}

/// `snapshot()` of `T` against the same relaxed loads by hand, from several call sites and from
/// inside [`large`], each loop in its four placements (see [`place`]).
fn snapshot_group<T: Words>(tag: &str, label: &str, rounds: usize) -> Result<Vec<Timing>, Error> {
    let nm = name(tag);
    let owner = Held::new(Shared::<T>::create(&nm, T::default())?);
    let s = &owner.handle;
    let map = RawMap::open(&nm)?;
    let (raw, seq) = (T::raw(&map), map.seq());
    // The other call sites, run so that they are live.
    bb(sum_now(s));
    bb(changed(s, &T::default()));
    // An observer's handle, for the read that never writes. Borrowed, as `s` is: a handle moved
    // into the closure would put the closure's other captures (the sink) behind the same
    // pointer, which escapes into the cold path and is then loaded again in every iteration: a
    // cost of the benchmark's own code, not of `snapshot`.
    let observer = Held::new(Shared::<T>::open_readonly(&nm)?);
    let ro = &observer.handle;
    bb(ro_sum(ro));
    let mut g = Group::new(format!("snapshot of {label}"));
    snapshot_cases::<T, 0>(&mut g, label, s, raw, seq, ro);
    snapshot_cases::<T, 1>(&mut g, label, s, raw, seq, ro);
    snapshot_cases::<T, 2>(&mut g, label, s, raw, seq, ro);
    snapshot_cases::<T, 3>(&mut g, label, s, raw, seq, ro);
    Ok(g.run(rounds, 20_000.0))
}

/// The cases of [`snapshot_group`], with their loops in placement `K`.
fn snapshot_cases<'a, T: Words, const K: usize>(
    g: &mut Group<'a>,
    label: &str,
    s: &'a Shared<T>,
    raw: &'a T::Raw,
    seq: &'a AtomicU64,
    ro: &'a ReadOnly<T>,
) {
    bb(exercise_large::<T, K>(s, raw));
    let at = placed(K);
    // Each loop hands every copy to the optimiser as used (`black_box`), in a place that does
    // not alias the segment (see `Sink`).
    let mut sink = Sink::new();
    g.case(format!("{label}: snapshot(){at}"), move |n| {
        place::<K>();
        for _ in 0..n {
            sink.put(s.snapshot());
        }
    });
    let mut sink = Sink::new();
    g.case(format!("{label}: relaxed loads{at}"), move |n| {
        place::<K>();
        for _ in 0..n {
            sink.put(T::load_raw(raw));
        }
    });
    let mut sink = Sink::new();
    g.case(format!("{label}: a seqlock by hand{at}"), move |n| {
        place::<K>();
        for _ in 0..n {
            sink.put(seqlock_by_hand(seq, || T::load_raw(raw)));
        }
    });
    let (mut sink, by_hand) = (Sink::new(), Held::new(HandHandle { seq, raw }));
    g.case(
        format!("{label}: a seqlock by hand, borrowed struct{at}"),
        move |n| {
            place::<K>();
            let h = &by_hand.handle;
            for _ in 0..n {
                sink.put(seqlock_by_hand(h.seq, || T::load_raw(h.raw)));
            }
        },
    );
    let mut sink = Sink::new();
    g.case(format!("{label}: read-only snapshot(){at}"), move |n| {
        place::<K>();
        for _ in 0..n {
            sink.put(ro.snapshot());
        }
    });
    let (mut log, mut sink) = (Vec::new(), Sink::new());
    g.case(
        format!("{label}: snapshot() in a large function{at}"),
        move |n| {
            bb(large::<T, K>(
                bb(Op::Snapshot(n)),
                s,
                raw,
                &mut sink,
                &mut log,
            ));
        },
    );
    let (mut log, mut sink) = (Vec::new(), Sink::new());
    g.case(
        format!("{label}: relaxed loads in a large function{at}"),
        move |n| {
            bb(large::<T, K>(bb(Op::Loads(n)), s, raw, &mut sink, &mut log));
        },
    );
}

/// How many placements each timed loop of the `snapshot` and `array` groups is compiled in.
const PLACEMENTS: usize = 4;

/// Moves the code after it by `K` × 16 bytes from a 64-byte boundary, `K` < [`PLACEMENTS`]:
/// called first in a function that holds a timed loop, it makes that loop start at a different
/// one of the four 16-byte positions of a 64-byte line of the instruction cache for each `K`
/// (the compiler starts every loop at a multiple of 16 bytes; the code between this call and
/// the loop is the same in each copy). A loop of a few nanoseconds runs at very different
/// speeds depending on whether it fits in one 64-byte line or straddles two, and which of its
/// loops straddles changes with anything else in the binary; so the `snapshot` and `array`
/// groups compile every loop, the library's and the hand-written one alike, in all four
/// placements and give each case's mean over them ([`placement_means`]): the cost averaged over
/// where the compiler may put the loop, with the spread over placements shown as well. The
/// padding is executed once per batch, outside the loop. (On x86-64 only, where 0x90 is a
/// one-byte `nop`; elsewhere the four copies are compiled alike.)
#[inline(always)]
fn place<const K: usize>() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the assembly is padding only: it aligns what follows to 64 bytes with `nop`s and
    // adds `K * 16` one-byte `nop`s (0x90 on x86-64); it reads and writes no memory and changes
    // no register or flag.
    unsafe {
        core::arch::asm!(
            ".p2align 6",
            ".skip {pad}, 0x90",
            pad = const K * 16,
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// The suffix naming placement `k` in a case's name.
fn placed(k: usize) -> String {
    format!(" @{}", k * 16)
}

/// Each case of `timings` (named with a [`placed`] suffix, in [`PLACEMENTS`] placements) as one
/// case: per round, the mean of its placements' times in that round (all timed within the
/// round); and, for each, its median ns per operation in every placement.
fn placement_means(timings: &[Timing]) -> (Vec<Timing>, Vec<(String, Vec<f64>)>) {
    let mut means = Vec::new();
    let mut each = Vec::new();
    for t in timings {
        let Some(name) = t.name.strip_suffix(&placed(0)) else {
            continue;
        };
        let copies: Vec<&Timing> = (0..PLACEMENTS)
            .map(|k| {
                let n = format!("{name}{}", placed(k));
                timings
                    .iter()
                    .find(|x| x.name == n)
                    .expect("every placement of a case")
            })
            .collect();
        let samples: Vec<f64> = (0..t.samples.len())
            .map(|r| copies.iter().map(|c| c.samples[r]).sum::<f64>() / PLACEMENTS as f64)
            .collect();
        means.push(Timing {
            name: name.to_owned(),
            ns: Spread::of(&samples),
            samples,
        });
        each.push((
            name.to_owned(),
            copies.iter().map(|c| c.ns.median).collect(),
        ));
    }
    (means, each)
}

/// Prints the median ns per operation of each case in each placement (see [`place`]).
fn print_placements(each: &[(String, Vec<f64>)]) {
    let head: Vec<String> = (0..PLACEMENTS)
        .map(|k| format!("{:>7}", placed(k)))
        .collect();
    println!("{:<56} | median ns in each placement:{}", "", head.join(""));
    for (name, ns) in each {
        let v: Vec<String> = ns.iter().map(|x| format!("{x:>7.2}")).collect();
        println!("{name:<56} | {:>28}{}", "", v.join(""));
    }
}

/// Where the timed loops put each value they read, so that the compiler must produce it: 2048
/// bytes into a page of its own, for the reason given at [`Page`].
#[repr(C, align(4096))]
struct Sink<T> {
    _pad: [u8; 2048],
    slot: T,
}

impl<T: Words> Sink<T> {
    fn new() -> Box<Sink<T>> {
        Box::new(Sink {
            _pad: [0; 2048],
            slot: T::default(),
        })
    }

    #[inline(always)]
    fn put(&mut self, v: T) {
        self.slot = v;
        used(&mut self.slot);
    }
}

/// Makes the compiler treat `*p` as read by code it cannot see: an empty `asm!` that takes the
/// pointer in a register and may read memory but not write it, as a loop that hands each value
/// on and otherwise leaves memory alone. (`black_box` would also make every load of the loop's
/// own state, such as the handle's pointers, be done again in each iteration, and it hands its
/// operand over through a stack slot: one more store in each iteration, at an address whose
/// offset in its page changes from build to build and can slow the next loads by "4K
/// aliasing".)
#[inline(always)]
fn used<T: ?Sized>(p: &mut T) {
    let p = p as *mut T as *mut u8;
    // SAFETY: the assembly is empty: it reads and writes no memory and changes no register or
    // flag; the operand (and `readonly`, which says it may read memory) only keeps the compiler
    // from dropping the stores to `*p` before it.
    unsafe {
        core::arch::asm!("/* {0} */", in(reg) p, options(readonly, nostack, preserves_flags))
    };
}

/// `x`, which the compiler cannot see through, as an input read at run time: an empty `asm!`
/// that returns its input and touches no memory. (`black_box` would pass it through memory and
/// make every load of the loop's own state, such as the handle's pointers, be done again in
/// each iteration, which the hand-written side, its pointer in a register, does not pay.)
#[inline(always)]
fn opaque(mut x: u64) -> u64 {
    // SAFETY: the assembly is empty: it reads and writes no memory and leaves the register
    // holding `x` as it was.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    x
}

/// Makes the compiler produce `x` (a result the loop does nothing else with), without memory
/// traffic: an empty `asm!` that takes it in a register and has no outputs, so it is kept.
#[inline(always)]
fn keep(x: u64) {
    // SAFETY: the assembly is empty: it reads and writes no memory and changes no register.
    unsafe { core::arch::asm!("/* {0} */", in(reg) x, options(nomem, nostack, preserves_flags)) };
}

/// A seqlock read written by hand, the least any seqlock read can be: the counter (acquire),
/// `read`'s loads, an acquire fence, the counter again and one comparison, with a retry out of
/// line. Its loops hold the counter's and the payload's addresses in the closure itself, where
/// they stay in registers: the floor under `snapshot()` and `read_into` in a closure.
#[inline(always)]
fn seqlock_by_hand<R>(seq: &AtomicU64, mut read: impl FnMut() -> R) -> R {
    loop {
        let before = seq.load(Acquire);
        let r = read();
        fence(Acquire);
        if seq.load(Relaxed) == before & !1 {
            return r;
        }
        lost_race();
    }
}

/// [`seqlock_by_hand`]'s out-of-line path: a pause before the retry (never taken here: no
/// writer runs during the benchmark).
#[cold]
#[inline(never)]
fn lost_race() {
    std::hint::spin_loop();
}

/// The two addresses [`seqlock_by_hand`] needs, kept together as a handle keeps them: a loop
/// that borrows this struct reaches them through a pointer, as it reaches a `Shared` handle.
struct HandHandle<'a, R: ?Sized> {
    seq: &'a AtomicU64,
    raw: &'a R,
}

/// A handle 1024 bytes into a page of its own. In a closure that borrows it, the fields of the
/// handle a `snapshot` or `read_into` needs are loaded in every iteration, after the previous
/// iteration's stores to the sink or buffer; where the handle lay on the stack, its offset in
/// its page changed from run to run, and when it matched a store's (2048 bytes in, see [`Sink`]
/// and [`Page`]) the loads waited for the stores ("4K aliasing"): the same binary measured
/// `read_into` of 32 bytes at 2.8 ns in one run and 11 ns in the next. Here the offset is fixed
/// and matches none of the stores' or the payload's (384 bytes into its page).
#[repr(C, align(4096))]
struct Held<H> {
    _pad: [u8; 1024],
    handle: H,
}

impl<H> Held<H> {
    fn new(handle: H) -> Box<Held<H>> {
        Box::new(Held {
            _pad: [0; 1024],
            handle,
        })
    }
}

/// A page for the buffers `read_into` fills: they start 2048 bytes into it, where no store can
/// "4K-alias" the loads of the segment's payload (which starts 384 bytes into its page), whereas
/// a buffer on the stack lands at a random offset in its page each run, and a store to it
/// delays the next loads of the same offset in another page.
#[repr(C, align(4096))]
struct Page([u64; 512]);

impl Page {
    fn new() -> Box<Page> {
        Box::new(Page([0; 512]))
    }

    fn buffer<const N: usize>(&mut self) -> &mut [u64; N] {
        (&mut self.0[256..256 + N]).try_into().expect("N <= 256")
    }
}

/// What [`large_array`] does this time.
#[derive(Clone, Copy, Debug)]
enum ArrayOp {
    SnapshotRange(u64),
    CollectLoads(u64),
    ReadInto(u64),
    LoadInto(u64),
    Report,
    Scale(u64),
    Top,
}

/// [`large`] for an `Array<u64>`: `snapshot_range` and `read_into` of `N` elements.
#[inline(never)]
fn large_array<const N: usize, const K: usize>(
    op: ArrayOp,
    a: &Array<u64>,
    raw: &[AtomicU64],
    page: &mut Page,
    log: &mut Vec<String>,
) -> u64 {
    place::<K>();
    match op {
        ArrayOp::SnapshotRange(n) => {
            for _ in 0..n {
                bb(a.snapshot_range(opaque(0) as usize..N));
            }
            0
        }
        ArrayOp::CollectLoads(n) => {
            for _ in 0..n {
                bb(raw[opaque(0) as usize..N]
                    .iter()
                    .map(|x| x.load(Relaxed))
                    .collect::<Vec<u64>>());
            }
            0
        }
        ArrayOp::ReadInto(n) => {
            let buf = page.buffer::<N>();
            for _ in 0..n {
                a.read_into(opaque(0) as usize, buf);
                used(&mut *buf);
            }
            0
        }
        ArrayOp::LoadInto(n) => {
            let buf = page.buffer::<N>();
            for _ in 0..n {
                let start = opaque(0) as usize;
                for (o, x) in buf.iter_mut().zip(&raw[start..start + N]) {
                    *o = x.load(Relaxed);
                }
                used(&mut *buf);
            }
            0
        }
        ArrayOp::Report => {
            let v = a.snapshot_range(..N);
            log.push(format!("{} = {v:?}", a.name()));
            v.len() as u64
        }
        ArrayOp::Scale(k) => {
            let mut buf = [0u64; N];
            a.read_into(0, &mut buf);
            let scaled: Vec<u64> = buf.iter().map(|x| x.wrapping_mul(k) % 97).collect();
            a.write_from(0, &scaled);
            scaled.iter().sum()
        }
        ArrayOp::Top => {
            let mut v = a.snapshot_range(..N);
            v.sort_unstable();
            let text: Vec<String> = v.iter().rev().take(3).map(|x| x.to_string()).collect();
            log.push(text.join(" "));
            v.last().copied().unwrap_or(0)
        }
    }
}

/// `snapshot_range` and `read_into` of `N` `u64`s against the same loads by hand (into a `Vec`,
/// and into a buffer), from several call sites and from inside [`large_array`], each loop in its
/// four placements (see [`place`]).
fn array_group<const N: usize>(rounds: usize) -> Result<Vec<Timing>, Error> {
    let nm = name(&format!("array{N}"));
    let owner = Held::new(Array::<u64>::create_zeroed(&nm, 64)?);
    let a = &owner.handle;
    let map = RawMap::open(&nm)?;
    let (raw, seq) = (map.u64s(64), map.seq());
    let bytes = N * 8;
    let mut g = Group::new(format!("Array<u64>, {N} elements ({bytes} B)"));
    array_cases::<N, 0>(&mut g, a, raw, seq);
    array_cases::<N, 1>(&mut g, a, raw, seq);
    array_cases::<N, 2>(&mut g, a, raw, seq);
    array_cases::<N, 3>(&mut g, a, raw, seq);
    Ok(g.run(rounds, 20_000.0))
}

/// The cases of [`array_group`], with their loops in placement `K`.
fn array_cases<'a, const N: usize, const K: usize>(
    g: &mut Group<'a>,
    a: &'a Array<u64>,
    raw: &'a [AtomicU64],
    seq: &'a AtomicU64,
) {
    let mut log = Vec::new();
    for op in [ArrayOp::Report, ArrayOp::Scale(3), ArrayOp::Top] {
        bb(large_array::<N, K>(
            bb(op),
            a,
            raw,
            &mut Page::new(),
            &mut log,
        ));
    }
    let (bytes, at) = (N * 8, placed(K));
    g.case(format!("{bytes} B: snapshot_range{at}"), move |n| {
        place::<K>();
        for _ in 0..n {
            bb(a.snapshot_range(opaque(0) as usize..N));
        }
    });
    g.case(
        format!("{bytes} B: relaxed loads collected{at}"),
        move |n| {
            place::<K>();
            for _ in 0..n {
                bb(raw[opaque(0) as usize..N]
                    .iter()
                    .map(|x| x.load(Relaxed))
                    .collect::<Vec<u64>>());
            }
        },
    );
    let mut page = Page::new();
    g.case(format!("{bytes} B: read_into{at}"), move |n| {
        place::<K>();
        let buf = page.buffer::<N>();
        for _ in 0..n {
            a.read_into(opaque(0) as usize, buf);
            used(&mut *buf);
        }
    });
    let mut page = Page::new();
    g.case(
        format!("{bytes} B: relaxed loads into a buffer{at}"),
        move |n| {
            place::<K>();
            let buf = page.buffer::<N>();
            for _ in 0..n {
                let start = opaque(0) as usize;
                for (o, x) in buf.iter_mut().zip(&raw[start..start + N]) {
                    *o = x.load(Relaxed);
                }
                used(&mut *buf);
            }
        },
    );
    let mut page = Page::new();
    g.case(
        format!("{bytes} B: a seqlock by hand into a buffer{at}"),
        move |n| {
            place::<K>();
            let buf = page.buffer::<N>();
            for _ in 0..n {
                let start = opaque(0) as usize;
                let from = &raw[start..start + N];
                seqlock_by_hand(seq, || {
                    for (o, x) in buf.iter_mut().zip(from) {
                        *o = x.load(Relaxed);
                    }
                });
                used(&mut *buf);
            }
        },
    );
    let (mut page, by_hand) = (Page::new(), Held::new(HandHandle { seq, raw }));
    g.case(
        format!("{bytes} B: a seqlock by hand into a buffer, borrowed struct{at}"),
        move |n| {
            place::<K>();
            let (buf, h) = (page.buffer::<N>(), &by_hand.handle);
            for _ in 0..n {
                let start = opaque(0) as usize;
                let from = &h.raw[start..start + N];
                seqlock_by_hand(h.seq, || {
                    for (o, x) in buf.iter_mut().zip(from) {
                        *o = x.load(Relaxed);
                    }
                });
                used(&mut *buf);
            }
        },
    );
    for (case, op) in [
        (
            "snapshot_range in a large function",
            ArrayOp::SnapshotRange as fn(u64) -> ArrayOp,
        ),
        (
            "relaxed loads collected in a large function",
            ArrayOp::CollectLoads,
        ),
        ("read_into in a large function", ArrayOp::ReadInto),
        (
            "relaxed loads into a buffer in a large function",
            ArrayOp::LoadInto,
        ),
    ] {
        let (mut log, mut page) = (Vec::new(), Page::new());
        g.case(format!("{bytes} B: {case}{at}"), move |n| {
            large_array::<N, K>(bb(op(n)), a, raw, &mut page, &mut log);
        });
    }
}

/// `update` of `T`, and `update_locked` under a held guard (the write alone), against the same
/// stores: bare, and inside bare mutexes of three kinds.
fn update_group<T: Words>(tag: &str, label: &str, rounds: usize) -> Result<Vec<Timing>, Error> {
    let nm = name(tag);
    let owner = Shared::<T>::create(&nm, T::default())?;
    let s = &owner;
    let map = RawMap::open(&nm)?;
    let raw = T::raw(&map);
    let mut log = Vec::new();
    bb(large::<T, 0>(
        bb(Op::Bump(1)),
        s,
        raw,
        &mut Sink::new(),
        &mut log,
    ));
    let mutexes = [
        (Kind::Private, "a default mutex"),
        (Kind::Shared, "a process-shared mutex"),
        (Kind::Robust, "a robust mutex"),
    ]
    .map(|(k, what)| (BareMutex::new(k), what));
    // The write alone: `update_locked` under a guard held for the whole group, on a segment of
    // its own (the `update` case takes the other one's lock).
    let held = Shared::<T>::create(&name(&format!("{tag}-held")), T::default())?;
    let guard = held
        .lock()
        .map_err(|_| "a new segment's lock is poisoned")?;
    let mut g = Group::new(format!("update of {label}"));
    let mut k = 0u64;
    g.case(format!("{label}: update()"), move |n| {
        for _ in 0..n {
            k += 1;
            s.update(|v| *v = T::with(opaque(k)));
        }
    });
    let (mut k, held, guard) = (0u64, &held, &guard);
    g.case(
        format!("{label}: update_locked() (the write alone)"),
        move |n| {
            for _ in 0..n {
                k += 1;
                held.update_locked(guard, |v| *v = T::with(opaque(k)));
            }
        },
    );
    let mut k = 0u64;
    g.case(format!("{label}: relaxed stores"), move |n| {
        for _ in 0..n {
            k += 1;
            T::store_raw(raw, &T::with(opaque(k)));
        }
    });
    for (m, what) in &mutexes {
        let mut k = 0u64;
        g.case(format!("{label}: stores in {what}"), move |n| {
            for _ in 0..n {
                k += 1;
                m.with(|| T::store_raw(raw, &T::with(opaque(k))));
            }
        });
    }
    Ok(g.run(rounds, 20_000.0))
}

fn lock_group(rounds: usize) -> Result<Vec<Timing>, Error> {
    let s = Shared::<S64>::create(&name("lock"), S64::default())?;
    let mut g = Group::new("lock, uncontended");
    g.case("lock() + drop", |n| {
        for _ in 0..n {
            drop(s.lock());
        }
    });
    for (kind, what) in [
        (Kind::Private, "default"),
        (Kind::Shared, "process-shared"),
        (Kind::Robust, "robust"),
    ] {
        let m = BareMutex::new(kind);
        g.case(format!("bare {what} mutex lock + unlock"), move |n| {
            for _ in 0..n {
                m.with(|| ());
            }
        });
    }
    Ok(g.run(rounds, 20_000.0))
}

/// A struct with an `f64` for the float atomic.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
struct Stats {
    requests: u64,
    load: f64,
}

fn field_group(rounds: usize) -> Result<Vec<Timing>, Error> {
    let nm = name("field");
    let s = Shared::<Stats>::create(&nm, Stats::default())?;
    let map = RawMap::open(&nm)?;
    let [raw, raw_bits] = map.words::<2>();
    let mut g = Group::new("field operations, twin vs a hand-cast &AtomicU64");
    g.case("twin load", |n| {
        for _ in 0..n {
            keep(s.requests.load(Relaxed));
        }
    });
    g.case("raw load", |n| {
        for _ in 0..n {
            keep(raw.load(Relaxed));
        }
    });
    g.case("twin store", |n| {
        for _ in 0..n {
            s.requests.store(opaque(7), Relaxed);
        }
    });
    g.case("raw store", |n| {
        for _ in 0..n {
            raw.store(opaque(7), Relaxed);
        }
    });
    g.case("twin fetch_add", |n| {
        for _ in 0..n {
            keep(s.requests.fetch_add(1, Relaxed));
        }
    });
    g.case("raw fetch_add", |n| {
        for _ in 0..n {
            keep(raw.fetch_add(1, Relaxed));
        }
    });
    g.case("AtomicF64::fetch_add", |n| {
        for _ in 0..n {
            keep(
                s.load
                    .fetch_add(f64::from_bits(opaque(0.5f64.to_bits())), Relaxed)
                    .to_bits(),
            );
        }
    });
    g.case("raw CAS loop on the bits", |n| {
        for _ in 0..n {
            let delta = f64::from_bits(opaque(0.5f64.to_bits()));
            let mut cur = raw_bits.load(Relaxed);
            let prev = loop {
                let new = (f64::from_bits(cur) + delta).to_bits();
                match raw_bits.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                    Ok(prev) => break prev,
                    Err(now) => cur = now,
                }
            };
            keep(prev);
        }
    });
    Ok(g.run(rounds, 20_000.0))
}

fn open_group(rounds: usize) -> Result<Vec<Timing>, Error> {
    let nm = name("open");
    let _owner = Shared::<S64>::create(&nm, S64::default())?;
    let os_id = format!("/{nm}");
    let mut g = Group::new("open + drop");
    g.case("Shared::open + drop", |n| {
        for _ in 0..n {
            drop(bb(Shared::<S64>::open(&nm).expect("open")));
        }
    });
    g.case("bare ShmemConf::open + drop", |n| {
        for _ in 0..n {
            drop(bb(ShmemConf::new().os_id(&os_id).open().expect("open")));
        }
    });
    Ok(g.run(rounds, 500_000.0))
}

fn bulk_group(rounds: usize) -> Result<Vec<Timing>, Error> {
    const BYTES: usize = 64 << 20;
    const LEN: usize = BYTES / 8;
    let nm = name("bulk");
    let a = Array::<u64>::create_zeroed(&nm, LEN)?;
    let map = RawMap::open(&nm)?;
    let raw = map.u64s(LEN);
    let src: Vec<u64> = (0..LEN as u64).collect();
    let mut dst = vec![1u64; LEN];
    let dst = &mut dst;
    a.write_from(0, &src);
    let (a, src) = (&a, &src);
    let base = map.base().cast::<u64>();
    let mut g = Group::new("Array<u64>, 64 MiB");
    // The reads share one destination buffer; the cases run one at a time.
    let dst = std::cell::RefCell::new(dst);
    let dst = &dst;
    g.case("read: read_into", move |n| {
        for _ in 0..n {
            a.read_into(0, bb(&mut dst.borrow_mut()[..]));
        }
    });
    g.case("read: relaxed loads, element by element", move |n| {
        for _ in 0..n {
            for (d, s) in dst.borrow_mut().iter_mut().zip(raw) {
                *d = s.load(Relaxed);
            }
            bb(&mut dst.borrow_mut()[..]);
        }
    });
    g.case("read: snapshot_range(..) (allocates)", move |n| {
        for _ in 0..n {
            bb(a.snapshot_range(..));
        }
    });
    g.case("read: memcpy", move |n| {
        for _ in 0..n {
            // SAFETY: `LEN` u64s of the payload, inside the mapping, into a buffer of as many;
            // nothing writes the segment while this case runs (the cases run one at a time), so
            // this plain read races with nothing. It is the baseline, not what the crate does.
            unsafe { std::ptr::copy_nonoverlapping(base, dst.borrow_mut().as_mut_ptr(), LEN) };
            bb(&mut dst.borrow_mut()[..]);
        }
    });
    g.case("write: write_from", move |n| {
        for _ in 0..n {
            a.write_from(0, bb(src));
        }
    });
    g.case("write: store_from", move |n| {
        for _ in 0..n {
            a.store_from(0, bb(src));
        }
    });
    g.case("write: relaxed stores, element by element", move |n| {
        for _ in 0..n {
            for (d, s) in raw.iter().zip(bb(src)) {
                d.store(*s, Relaxed);
            }
        }
    });
    g.case("write: memcpy", move |n| {
        for _ in 0..n {
            // SAFETY: as for the read baseline, the other way: nothing else reads or writes the
            // segment meanwhile.
            unsafe { std::ptr::copy_nonoverlapping(bb(src).as_ptr(), base, LEN) };
        }
    });
    Ok(g.run(rounds, 1_000_000.0))
}

struct Args {
    filters: Vec<String>,
    rounds: usize,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        filters: Vec::new(),
        rounds: 301,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            "--rounds" => {
                a.rounds = it.next().ok_or("--rounds needs a value")?.parse()?;
                if a.rounds == 0 {
                    return Err("--rounds must be positive".into());
                }
            }
            "-h" | "--help" => {
                println!("user [--rounds 301] [GROUP-WORD ...]   groups: field snapshot array update lock open bulk");
                std::process::exit(0);
            }
            other if other.starts_with('-') => {
                return Err(format!("unknown option `{other}`").into())
            }
            word => a.filters.push(word.to_owned()),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let wanted = |group: &str| {
        args.filters.is_empty() || args.filters.iter().any(|f| group.contains(f.as_str()))
    };
    let r = args.rounds;
    println!(
        "{} CPUs; {r} interleaved rounds per group; ns per operation, median [first-third quartile]; ratio: median [quartiles] of the per-round ratios",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let same_prefix_base = |suffix: &'static str| {
        move |case: &str| {
            case.split_once(": ")
                .map(|(label, _)| format!("{label}: {suffix}"))
        }
    };
    if wanted("field") {
        let t = field_group(r)?;
        print_table("field operations", &t, |c| {
            Some(match c {
                "AtomicF64::fetch_add" => "raw CAS loop on the bits".to_owned(),
                c => c.replace("twin", "raw"),
            })
        });
    }
    if wanted("snapshot") {
        for t in [
            snapshot_group::<S8>("snap8", "8 B", r)?,
            snapshot_group::<S16>("snap16", "16 B", r)?,
            snapshot_group::<S32>("snap32", "32 B", r)?,
            snapshot_group::<S64>("snap64", "64 B", r)?,
            snapshot_group::<S512>("snap512", "512 B", r)?,
        ] {
            let (means, each) = placement_means(&t);
            print_table("snapshot (mean of the four placements)", &means, |c| {
                let (label, what) = c.split_once(": ")?;
                Some(if what.contains("large") {
                    format!("{label}: relaxed loads in a large function")
                } else {
                    format!("{label}: relaxed loads")
                })
            });
            print_placements(&each);
        }
    }
    if wanted("array") {
        for t in [
            array_group::<1>(r)?,
            array_group::<4>(r)?,
            array_group::<8>(r)?,
            array_group::<32>(r)?,
            array_group::<64>(r)?,
        ] {
            let (t, each) = placement_means(&t);
            print_table("Array ranges (mean of the four placements)", &t, |c| {
                let (label, what) = c.split_once(": ")?;
                let large = if what.contains("large") {
                    " in a large function"
                } else {
                    ""
                };
                Some(
                    if what.starts_with("snapshot_range")
                        || what.starts_with("relaxed loads collected")
                    {
                        format!("{label}: relaxed loads collected{large}")
                    } else {
                        format!("{label}: relaxed loads into a buffer{large}")
                    },
                )
            });
            print_placements(&each);
        }
    }
    if wanted("update") {
        for t in [
            update_group::<S8>("upd8", "8 B", r)?,
            update_group::<S64>("upd64", "64 B", r)?,
            update_group::<S512>("upd512", "512 B", r)?,
        ] {
            print_table(
                "update",
                &t,
                same_prefix_base("stores in a process-shared mutex"),
            );
        }
    }
    if wanted("lock") {
        let t = lock_group(r)?;
        print_table("lock", &t, |_| {
            Some("bare process-shared mutex lock + unlock".to_owned())
        });
    }
    if wanted("open") {
        let t = open_group(r.min(101))?;
        print_table("open", &t, |_| {
            Some("bare ShmemConf::open + drop".to_owned())
        });
    }
    if wanted("bulk") {
        let t = bulk_group(r.min(21))?;
        print_table("bulk copies", &t, |c| {
            Some(
                if c.starts_with("read") {
                    "read: memcpy"
                } else {
                    "write: memcpy"
                }
                .to_owned(),
            )
        });
    }
    Ok(())
}
