use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[shm(rename = "Stats")]
pub struct Stats {
    pub requests: usize,
    pub name: String,
    pub load: f64,
    pub peers: Vec<u32>,
}

fn main() {}
