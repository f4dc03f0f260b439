use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(usize)]
pub enum State {
    #[default]
    Idle,
    Busy,
}

#[derive(SharedLayout)]
#[repr(i128)]
pub enum Wide {
    #[default]
    Small,
    Huge = 1 << 100,
}

fn main() {}
