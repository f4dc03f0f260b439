use shm_core::SharedLayout;

#[derive(SharedLayout, Clone, Copy)]
#[repr(u8)]
pub enum State {
    Idle,
    Busy,
}

fn main() {}
