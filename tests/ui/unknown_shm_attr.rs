use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
#[shm(name = "Stats", version = 2)]
pub struct Stats {
    pub requests: u64,
}

fn main() {}
