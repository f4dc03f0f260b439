use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub last_error: Option<u32>,
}

fn main() {}
