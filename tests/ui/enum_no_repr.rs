use shm_core::SharedLayout;

#[derive(SharedLayout)]
pub enum State {
    #[default]
    Idle,
    Busy,
}

fn main() {}
