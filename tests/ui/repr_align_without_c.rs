use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(align(64))]
pub struct Slot {
    pub count: u64,
}

fn main() {}
