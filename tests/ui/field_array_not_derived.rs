use shm_core::SharedLayout;

#[repr(C)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Path {
    pub len: u32,
    pub points: [Point; 16],
}

fn main() {}
