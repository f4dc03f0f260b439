use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(transparent)]
pub struct Counter {
    pub count: u64,
}

fn main() {}
