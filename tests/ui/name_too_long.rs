use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
#[shm(
    name = "AVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongNameAVeryLongName"
)]
pub struct Stats {
    pub requests: u64,
}

fn main() {}
