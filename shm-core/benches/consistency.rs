//! Uncontended `update`, `snapshot` and `lock` against the raw operations they are built from.
//!
//! `cargo bench -p shm-core --bench consistency`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use criterion::{criterion_group, criterion_main, Criterion};
use shm_core::{Shared, SharedLayout};

/// 64 bytes: eight `u64`s.
#[derive(SharedLayout, Default, Clone, Copy)]
#[repr(C)]
struct Block {
    f: [u64; 8],
}

fn name(tag: &str) -> String {
    format!("shm-bench-{tag}-{}", std::process::id())
}

fn raw_fields(s: &Shared<Block>) -> &[AtomicU64; 8] {
    &s.f
}

fn update_and_snapshot(c: &mut Criterion) {
    let s = Shared::<Block>::create(&name("block"), Block::default()).unwrap();
    let raw = raw_fields(&s);
    let mut g = c.benchmark_group("64-byte struct, uncontended");
    g.bench_function("snapshot()", |b| b.iter(|| black_box(s.snapshot())));
    g.bench_function("8 relaxed loads", |b| {
        b.iter(|| {
            let mut out = [0u64; 8];
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
            s.update(|v| v.f = [k; 8])
        })
    });
    g.bench_function("8 relaxed stores", |b| {
        b.iter(|| {
            k += 1;
            for a in raw {
                a.store(black_box(k), Relaxed);
            }
        })
    });
    g.finish();
}

struct BareMutex(Box<std::cell::UnsafeCell<libc::pthread_mutex_t>>);

impl BareMutex {
    fn new() -> BareMutex {
        BareMutex(Box::new(std::cell::UnsafeCell::new(
            libc::PTHREAD_MUTEX_INITIALIZER,
        )))
    }
    fn lock_unlock(&self) {
        // SAFETY: a statically initialised mutex, used by one thread, locked then unlocked.
        unsafe {
            libc::pthread_mutex_lock(self.0.get());
            libc::pthread_mutex_unlock(self.0.get());
        }
    }
}

fn locks(c: &mut Criterion) {
    let s = Shared::<Block>::create(&name("lock"), Block::default()).unwrap();
    let bare = BareMutex::new();
    let mut g = c.benchmark_group("lock, uncontended");
    g.bench_function("lock() + drop", |b| b.iter(|| drop(black_box(s.lock()))));
    g.bench_function("bare pthread_mutex lock + unlock", |b| {
        b.iter(|| bare.lock_unlock())
    });
    g.finish();
}

criterion_group!(benches, update_and_snapshot, locks);
criterion_main!(benches);
