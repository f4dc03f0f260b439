use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub enum State {
    #[default]
    Idle,
    Busy,
}

fn main() {}
