use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Node {
    pub value: u64,
    pub next: *const Node,
}

fn main() {}
