use shm_core::SharedLayout;
use std::sync::Mutex;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub requests: Mutex<u64>,
}

fn main() {}
