use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Slot<'a> {
    pub value: &'a u64,
}

fn main() {}
