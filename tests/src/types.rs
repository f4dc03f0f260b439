//! Types the tests and their child processes share: both sides of a segment must agree.

use shm_core::SharedLayout;

/// Kept consistent by `update`: `a + b == 0` and `c == a`.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Balance {
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub updates: u64,
    pub writers_done: u32,
}

impl Balance {
    /// Whether the invariants `update` keeps hold.
    pub fn consistent(&self) -> bool {
        self.a + self.b == 0 && self.c == self.a
    }
}

/// A nested struct.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Inner {
    pub x: u16,
    pub y: [i32; 3],
}

/// Every primitive type, a 2-D array and a nested struct.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Everything {
    pub i8_: i8,
    pub u8_: u8,
    pub i16_: i16,
    pub u16_: u16,
    pub i32_: i32,
    pub u32_: u32,
    pub i64_: i64,
    pub u64_: u64,
    pub f32_: f32,
    pub f64_: f64,
    pub flag: bool,
    pub letter: char,
    pub grid: [[u32; 3]; 2],
    pub inner: Inner,
}

/// One round of the create race: a token the creator writes, and who joined.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Round {
    pub token: u64,
    pub joined: u64,
}

/// A per-worker slot padded to a cache line.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
pub struct Slot {
    pub count: u64,
    pub sum: f64,
    pub last: u32,
}
