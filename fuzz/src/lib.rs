//! Types shared by the fuzz targets and the seed maker.

use shm_core::SharedLayout;

/// The struct the `open_segment` target opens segments as.
#[derive(SharedLayout, Default)]
#[repr(C)]
pub struct Probe {
    pub count: u64,
    pub load: f64,
    pub flag: bool,
    pub grid: [[u16; 3]; 2],
}
