use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(u8)]
pub struct Flag {
    pub set: bool,
}

fn main() {}
