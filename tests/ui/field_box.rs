use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Stats {
    pub load: Box<f64>,
}

fn main() {}
