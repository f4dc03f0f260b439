use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(u8)]
pub enum State {
    #[default]
    Idle,
    Busy(u32),
    Done { code: i32 },
}

fn main() {}
