use shm_core::SharedLayout;

#[derive(SharedLayout)]
pub struct Stats {
    pub requests: u64,
}

fn main() {}
