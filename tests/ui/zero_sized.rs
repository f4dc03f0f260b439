use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Empty {}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Unit;

#[derive(SharedLayout)]
#[repr(C)]
pub struct ZeroLength {
    pub nothing: [u64; 0],
}

fn main() {}
