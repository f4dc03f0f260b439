//! Types shared by the fuzz targets and the seed maker.

use shm_core::{SharedLayout, Text};

/// An enum in the probe: its descriptor node and its number, both for the fuzzer to mutate.
#[derive(SharedLayout, Default, Clone, Copy, Debug, PartialEq)]
#[repr(i16)]
pub enum ProbeState {
    #[default]
    Idle,
    Busy = -2,
    Stopping = 300,
}

/// The struct the `open_segment` target opens segments as: every kind of descriptor node.
#[derive(SharedLayout, Default)]
#[repr(C)]
pub struct Probe {
    pub count: u64,
    pub load: f64,
    pub flag: bool,
    pub grid: [[u16; 3]; 2],
    pub state: ProbeState,
    pub note: Text<6>,
}
