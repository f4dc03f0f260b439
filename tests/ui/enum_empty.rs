use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(u8)]
pub enum Never {}

fn main() {}
