use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
#[shm]
pub struct Bare {
    pub x: u8,
}

#[derive(SharedLayout)]
#[repr(C)]
#[shm(name = "One")]
#[shm(name = "Two")]
pub struct Twice {
    pub x: u8,
}

#[derive(SharedLayout)]
#[repr(C)]
#[shm(name = "")]
pub struct Empty {
    pub x: u8,
}

#[derive(SharedLayout)]
#[repr(C)]
#[shm(crate = "not a path")]
pub struct BadPath {
    pub x: u8,
}

#[derive(SharedLayout)]
#[repr(C)]
#[shm(name = Unquoted)]
pub struct Unquoted {
    pub x: u8,
}

fn main() {}
