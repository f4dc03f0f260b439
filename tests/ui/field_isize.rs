use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub balance: [isize; 4],
}

fn main() {}
