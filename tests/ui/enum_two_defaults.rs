use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(u8)]
pub enum State {
    #[default]
    Idle,
    #[default]
    Busy,
}

fn main() {}
