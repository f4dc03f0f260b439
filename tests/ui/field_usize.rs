use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub requests: usize,
}

fn main() {}
