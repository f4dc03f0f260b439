use shm_core::SharedLayout;
use std::sync::atomic::AtomicU64;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub requests: AtomicU64,
}

fn main() {}
