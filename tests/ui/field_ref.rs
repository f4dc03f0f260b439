use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Config {
    pub name: &'static str,
}

fn main() {}
