// A refused struct reports the derive's error only, not one more for every use of the type.
use shm_core::{Shared, SharedLayout};

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub requests: usize,
}

fn main() {
    let _ = Shared::<Stats>::open("stats");
    let _ = AtomicStats {};
}
