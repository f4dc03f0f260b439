use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub hist: Vec<u32>,
}

fn main() {}
