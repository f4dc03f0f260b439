// The compiler refuses a discriminant outside the repr's range; the derive adds nothing to it.
use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(u8)]
pub enum State {
    #[default]
    Idle,
    Busy = 256,
}

#[derive(SharedLayout)]
#[repr(i8)]
pub enum Signed {
    #[default]
    Low = -128,
    High = 127,
    Past,
}

fn main() {}
