//! Big arrays: what a consistent write of 64 MiB costs against `memcpy` of as many bytes.
//!
//! `cargo bench -p shm-core --bench big` (about a minute); `docs/PERFORMANCE.md` has a run.
//!
//! For `u64` and `u8` elements: `write_from` of the whole array (one consistent, journaled
//! write), `Array::update` of the whole array whose closure changes one element, `update_range`
//! of one element, and `memcpy` of 64 MiB into the payload through a second, bare mapping of the
//! segment (the baseline). Every segment's name holds the pid and is removed when its group ends.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shared_memory::{Shmem, ShmemConf};
use shm_core::{Array, BulkCopy};

const BYTES: usize = 64 << 20;

fn name(tag: &str) -> String {
    format!("shm-bench-big-{tag}-{}", std::process::id())
}

/// The payload of a segment mapped a second time by hand, as a program without this crate would.
struct Raw {
    map: Shmem,
}

impl Raw {
    fn open(name: &str) -> Raw {
        let map = ShmemConf::new().os_id(format!("/{name}")).open().unwrap();
        Raw { map }
    }

    fn payload(&self) -> *mut u8 {
        // SAFETY: bytes 32..40 of the header are `payload_offset` (docs/FORMAT.md), an aligned
        // u64 inside the mapping; the segment is ours and nobody writes its header meanwhile.
        unsafe {
            let at = self.map.as_ptr().add(32).cast::<u64>().read();
            self.map.as_ptr().add(at as usize)
        }
    }
}

fn group<T: BulkCopy + Default + std::fmt::Debug>(
    c: &mut Criterion,
    label: &str,
    make: fn(usize) -> T,
) {
    let len = BYTES / size_of::<T>();
    let nm = name(label);
    let a = Array::<T>::create_zeroed(&nm, len).unwrap();
    let raw = Raw::open(&nm);
    let src: Vec<T> = (0..len).map(make).collect();
    a.write_from(0, &src);

    let mut g = c.benchmark_group(format!("Array<{label}> 64 MiB"));
    g.throughput(Throughput::Bytes(BYTES as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function(BenchmarkId::new("write", "write_from"), |b| {
        b.iter(|| a.write_from(0, black_box(&src)))
    });
    g.bench_function(BenchmarkId::new("write", "memcpy"), |b| {
        b.iter(|| {
            // SAFETY: `BYTES` bytes at the payload, inside the mapping, from a buffer of as many;
            // nothing else touches the segment during the benchmark, so this plain write races
            // with nothing. It is the baseline, not something the crate does.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    black_box(&src).as_ptr().cast::<u8>(),
                    raw.payload(),
                    BYTES,
                )
            };
        })
    });
    let mut k = 0usize;
    g.bench_function(BenchmarkId::new("change one element", "update"), |b| {
        b.iter(|| {
            k = (k + 4099) % len;
            a.update(|v| v[k] = make(k + 1))
        })
    });
    g.bench_function(
        BenchmarkId::new("change one element", "update_range of it"),
        |b| {
            b.iter(|| {
                k = (k + 4099) % len;
                a.update_range(k..k + 1, |v| v[0] = make(k + 2))
            })
        },
    );
    g.finish();
}

fn big(c: &mut Criterion) {
    group::<u64>(c, "u64", |i| i as u64);
    group::<u8>(c, "u8", |i| i as u8);
}

criterion_group!(benches, big);
criterion_main!(benches);
