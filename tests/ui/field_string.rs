use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Worker {
    pub id: u32,
    pub name: String,
}

fn main() {}
