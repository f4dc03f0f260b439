use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub enum State {
    Idle,
    Busy(u32),
}

fn main() {}
