//! Every operation of the crate against the hand-written operation it replaces, in one run.
//!
//! `cargo bench -p shm-core --bench ops` (about two minutes); `docs/PERFORMANCE.md` has a run.
//!
//! "raw" always means the same memory reached the way one would by hand: the segment opened a
//! second time with a bare `shared_memory::ShmemConf::open`, the payload offset read from the
//! header (docs/FORMAT.md), and a pointer cast to `&AtomicU64`. Every segment's name holds the
//! pid, and each is removed when its creating handle drops at the end of its group.

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shared_memory::{Shmem, ShmemConf};
use shm_core::{Array, Shared, SharedLayout};

#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
struct Stats {
    requests: u64,
    load: f64,
}

/// 8 bytes.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
struct S8 {
    f: [u64; 1],
}

/// 64 bytes.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
struct S64 {
    f: [u64; 8],
}

/// 512 bytes.
#[derive(SharedLayout, Clone, Copy)]
#[repr(C)]
struct S512 {
    f: [u64; 64],
}

impl Default for S512 {
    fn default() -> Self {
        S512 { f: [0; 64] }
    }
}

fn name(tag: &str) -> String {
    format!("shm-bench-ops-{tag}-{}", std::process::id())
}

/// A segment mapped a second time by hand, as a program without this crate would.
struct Raw {
    map: Shmem,
    payload: usize,
}

impl Raw {
    fn open(name: &str) -> Raw {
        let map = ShmemConf::new().os_id(format!("/{name}")).open().unwrap();
        // SAFETY: the object is a segment (we created it), at least 256 bytes and page-aligned;
        // bytes 32..40 of the header are `payload_offset`, an 8-aligned u64.
        let off = unsafe { AtomicU64::from_ptr(map.as_ptr().add(32).cast()) }.load(Relaxed);
        assert!(off as usize <= map.len());
        Raw {
            map,
            payload: off as usize,
        }
    }

    fn base(&self) -> *mut u8 {
        // SAFETY: `payload <= len`, checked at open.
        unsafe { self.map.as_ptr().add(self.payload) }
    }

    /// `n` `u64` atomics at the start of the payload.
    fn u64s(&self, n: usize) -> &[AtomicU64] {
        assert!(self.payload + 8 * n <= self.map.len());
        // SAFETY: in bounds (just checked), 8-aligned (the payload is 128-aligned), any bits
        // are a valid `AtomicU64`, and the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base().cast::<AtomicU64>(), n) }
    }
}

/// Operations per iteration in the field groups: enough that the harness's own cost per
/// iteration does not blur a sub-nanosecond operation.
const BATCH: u64 = 64;

fn field_ops(c: &mut Criterion) {
    let nm = name("field");
    let s = Shared::<Stats>::create(&nm, Stats::default()).unwrap();
    let raw_map = Raw::open(&nm);
    let raw = &raw_map.u64s(2)[0];
    let raw_bits = &raw_map.u64s(2)[1];
    let mut g = c.benchmark_group("field u64");
    g.throughput(Throughput::Elements(BATCH));
    macro_rules! batch {
        ($g:ident, $name:expr, $op:expr) => {
            $g.bench_function($name, |b| {
                b.iter(|| {
                    for _ in 0..BATCH {
                        black_box($op);
                    }
                })
            });
        };
    }
    batch!(g, "twin load", s.requests.load(Relaxed));
    batch!(g, "raw load", raw.load(Relaxed));
    batch!(g, "twin store", s.requests.store(black_box(7), Relaxed));
    batch!(g, "raw store", raw.store(black_box(7), Relaxed));
    batch!(g, "twin fetch_add", s.requests.fetch_add(1, Relaxed));
    batch!(g, "raw fetch_add", raw.fetch_add(1, Relaxed));
    g.finish();

    let mut g = c.benchmark_group("field f64");
    g.throughput(Throughput::Elements(BATCH));
    batch!(
        g,
        "AtomicF64::fetch_add",
        s.load.fetch_add(black_box(0.5), Relaxed)
    );
    batch!(g, "raw CAS loop on the bits", {
        let delta = black_box(0.5f64);
        let mut cur = raw_bits.load(Relaxed);
        loop {
            let new = (f64::from_bits(cur) + delta).to_bits();
            match raw_bits.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(prev) => break prev,
                Err(now) => cur = now,
            }
        }
    });
    batch!(g, "u64 fetch_add, for scale", raw.fetch_add(1, Relaxed));
    g.finish();
}

/// A pthread mutex of its own, on the heap, with the given attributes.
struct BareMutex(Box<UnsafeCell<libc::pthread_mutex_t>>);

impl BareMutex {
    /// A default (normal, process-private) mutex.
    fn plain() -> BareMutex {
        BareMutex(Box::new(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)))
    }

    /// A default mutex made process-shared: the kind a segment's lock is measured against.
    fn pshared() -> BareMutex {
        let m = BareMutex::plain();
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised by `pthread_mutexattr_init` before the setter uses it and
        // destroyed after; `m` is a fresh mutex nobody uses yet, re-initialised in place.
        unsafe {
            let a = attr.as_mut_ptr();
            assert_eq!(libc::pthread_mutexattr_init(a), 0);
            libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED);
            assert_eq!(libc::pthread_mutex_init(m.0.get(), a), 0);
            libc::pthread_mutexattr_destroy(a);
        }
        m
    }

    /// Robust, process-shared and error-checking: the attributes of the glibc mutex a segment's
    /// lock used to be.
    fn robust() -> BareMutex {
        let m = BareMutex::plain();
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised by `pthread_mutexattr_init` before the setters use it and
        // destroyed after; `m` is a fresh mutex nobody uses yet, re-initialised in place.
        unsafe {
            let a = attr.as_mut_ptr();
            assert_eq!(libc::pthread_mutexattr_init(a), 0);
            libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK);
            assert_eq!(libc::pthread_mutex_init(m.0.get(), a), 0);
            libc::pthread_mutexattr_destroy(a);
        }
        m
    }

    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: an initialised mutex, used by one thread, locked then unlocked by it.
        unsafe { libc::pthread_mutex_lock(self.0.get()) };
        let r = f();
        // SAFETY: as above.
        unsafe { libc::pthread_mutex_unlock(self.0.get()) };
        r
    }
}

fn locks(c: &mut Criterion) {
    let s = Shared::<S64>::create(&name("lock"), S64::default()).unwrap();
    let plain = BareMutex::plain();
    let pshared = BareMutex::pshared();
    let robust = BareMutex::robust();
    let mut g = c.benchmark_group("lock + unlock");
    g.bench_function("lock() + drop", |b| b.iter(|| drop(black_box(s.lock()))));
    g.bench_function("bare pthread mutex", |b| b.iter(|| plain.with(|| ())));
    g.bench_function("bare pshared pthread mutex", |b| {
        b.iter(|| pshared.with(|| ()))
    });
    g.bench_function("bare robust pshared errorcheck mutex", |b| {
        b.iter(|| robust.with(|| ()))
    });
    g.finish();
}

macro_rules! consistency_group {
    ($c:expr, $ty:ty, $n:expr, $label:expr) => {{
        let nm = name(concat!("cons", stringify!($n)));
        let s = Shared::<$ty>::create(&nm, <$ty>::default()).unwrap();
        let raw_map = Raw::open(&nm);
        let raw = raw_map.u64s($n);
        let plain = BareMutex::plain();
        let pshared = BareMutex::pshared();
        let robust = BareMutex::robust();
        let mut g = $c.benchmark_group(concat!($label, " struct"));
        g.bench_function("snapshot()", |b| b.iter(|| black_box(s.snapshot())));
        g.bench_function("raw relaxed loads", |b| {
            b.iter(|| {
                let mut out = [0u64; $n];
                for (o, a) in out.iter_mut().zip(raw) {
                    *o = a.load(Relaxed);
                }
                black_box(out)
            })
        });
        let mut k = 0u64;
        g.bench_function("update()", |b| {
            b.iter(|| {
                k += 1;
                s.update(|v| v.f = [k; $n])
            })
        });
        g.bench_function("raw relaxed stores", |b| {
            b.iter(|| {
                k += 1;
                for a in raw {
                    a.store(black_box(k), Relaxed);
                }
            })
        });
        g.bench_function("raw stores in a bare pthread lock", |b| {
            b.iter(|| {
                k += 1;
                plain.with(|| {
                    for a in raw {
                        a.store(black_box(k), Relaxed);
                    }
                })
            })
        });
        g.bench_function("raw stores in a bare pshared pthread lock", |b| {
            b.iter(|| {
                k += 1;
                pshared.with(|| {
                    for a in raw {
                        a.store(black_box(k), Relaxed);
                    }
                })
            })
        });
        g.bench_function("raw stores in a bare robust pthread lock", |b| {
            b.iter(|| {
                k += 1;
                robust.with(|| {
                    for a in raw {
                        a.store(black_box(k), Relaxed);
                    }
                })
            })
        });
        g.finish();
    }};
}

fn consistency(c: &mut Criterion) {
    consistency_group!(c, S8, 1, "8-byte");
    consistency_group!(c, S64, 8, "64-byte");
    consistency_group!(c, S512, 64, "512-byte");
}

fn open(c: &mut Criterion) {
    let nm = name("open");
    let _owner = Shared::<S64>::create(&nm, S64::default()).unwrap();
    let os_id = format!("/{nm}");
    let mut g = c.benchmark_group("open + close");
    g.bench_function("Shared::open (attach + validate)", |b| {
        b.iter(|| drop(black_box(Shared::<S64>::open(&nm).unwrap())))
    });
    g.bench_function("bare ShmemConf::open", |b| {
        b.iter(|| drop(black_box(ShmemConf::new().os_id(&os_id).open().unwrap())))
    });
    g.finish();
}

fn bulk(c: &mut Criterion) {
    const BYTES: usize = 64 << 20;
    const LEN: usize = BYTES / 8;
    let nm = name("bulk");
    let a = Array::<u64>::create_zeroed(&nm, LEN).unwrap();
    let raw_map = Raw::open(&nm);
    let raw = raw_map.u64s(LEN);
    let src: Vec<u64> = (0..LEN as u64).collect();
    let mut dst = vec![1u64; LEN];
    a.write_from(0, &src);

    let mut g = c.benchmark_group("Array<u64> 64 MiB");
    g.throughput(Throughput::Bytes(BYTES as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function(BenchmarkId::new("read", "read_into"), |b| {
        b.iter(|| a.read_into(0, black_box(&mut dst)))
    });
    g.bench_function(
        BenchmarkId::new("read", "relaxed loads, element by element"),
        |b| {
            b.iter(|| {
                for (d, s) in dst.iter_mut().zip(raw) {
                    *d = s.load(Relaxed);
                }
                black_box(&mut dst);
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("read", "snapshot_range (allocates)"),
        |b| b.iter(|| black_box(a.snapshot_range(..))),
    );
    g.bench_function(BenchmarkId::new("read", "memcpy"), |b| {
        b.iter(|| {
            // SAFETY: `LEN` u64s at the payload, inside the mapping, into a buffer of as many;
            // nothing else touches the segment during the benchmark, so this plain read races
            // with nothing. It is the baseline, not something the crate does.
            unsafe {
                std::ptr::copy_nonoverlapping(raw_map.base().cast::<u64>(), dst.as_mut_ptr(), LEN)
            };
            black_box(&mut dst);
        })
    });
    g.bench_function(BenchmarkId::new("write", "write_from"), |b| {
        b.iter(|| a.write_from(0, black_box(&src)))
    });
    g.bench_function(BenchmarkId::new("write", "store_from"), |b| {
        b.iter(|| a.store_from(0, black_box(&src)))
    });
    g.bench_function(
        BenchmarkId::new("write", "relaxed stores, element by element"),
        |b| {
            b.iter(|| {
                for (d, s) in raw.iter().zip(black_box(&src)) {
                    d.store(*s, Relaxed);
                }
            })
        },
    );
    g.bench_function(BenchmarkId::new("write", "memcpy"), |b| {
        b.iter(|| {
            // SAFETY: as for the read baseline, the other way.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    black_box(&src).as_ptr(),
                    raw_map.base().cast::<u64>(),
                    LEN,
                )
            };
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(50);
    targets = field_ops, consistency, locks, open, bulk
}
criterion_main!(benches);
