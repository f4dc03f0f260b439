use shm_core::SharedLayout;

#[repr(C)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Robot {
    pub id: u32,
    pub position: Point,
}

fn main() {}
