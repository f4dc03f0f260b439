use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C, packed(2))]
pub struct Stats {
    pub flag: u8,
    pub requests: u64,
}

fn main() {}
