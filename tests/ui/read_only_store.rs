// A read-only handle has no `Deref` to the atomic twin: storing through it does not compile.
use std::sync::atomic::Ordering::Relaxed;

fn main() {
    let v = shm_core::Value::<u64>::open_readonly("read-only-store").unwrap();
    v.store(1, Relaxed);
    let a = shm_core::Array::<u64>::open_readonly("read-only-store").unwrap();
    a[0].fetch_add(1, Relaxed);
}
