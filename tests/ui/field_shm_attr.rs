use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    #[shm(name = "reqs")]
    pub requests: u64,
}

fn main() {}
