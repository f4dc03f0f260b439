use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C, packed)]
pub struct Stats {
    pub flag: u8,
    pub requests: u64,
}

fn main() {}
