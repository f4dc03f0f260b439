use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Slot<T> {
    pub value: T,
}

fn main() {}
