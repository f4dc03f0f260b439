// A type the derive cannot see through is still caught, by the trait bound.
use shm_core::SharedLayout;

type Count = usize;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub requests: Count,
}

fn main() {}
