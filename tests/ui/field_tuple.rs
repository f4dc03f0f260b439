use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Point {
    pub xy: (f64, f64),
}

fn main() {}
