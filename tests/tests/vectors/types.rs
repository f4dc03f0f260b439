//! The Rust types whose layouts `docs/vectors/layouts.json` pins down, by id.

use shm_core::{SharedLayout, Text};

/// Two floats.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// The README's example: padding after `errors`, an array field.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Stats {
    pub requests: u64,
    pub errors: u32,
    pub load: f64,
    pub hist: [u32; 8],
}

/// Padding inside (after `flag`) and at the end (after `small`).
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Padded {
    pub flag: u8,
    pub big: u64,
    pub small: u16,
}

/// A tuple struct: fields named `0` and `1`.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Pair(pub u8, pub f64);

/// Nested in `Outer` and `Everything`.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Inner {
    pub x: u16,
    pub y: [i32; 3],
}

/// A nested struct, and an array of structs.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Outer {
    pub inner: Inner,
    pub tail: bool,
    pub points: [Point; 2],
}

/// Another name in the descriptor (not ASCII), and a field whose Rust name is a raw identifier.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[shm(name = "Größe")]
#[repr(C)]
pub struct Renamed {
    pub r#type: u8,
    pub value: char,
}

/// `align(64)`: one cache line per element.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C, align(64))]
pub struct Slot {
    pub jobs: u64,
    pub failed: u64,
}

/// Every primitive, a 2-D array and a nested struct.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
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

/// A `u8` enum with a gap in its values, the default not first.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(u8)]
pub enum State {
    Idle,
    #[default]
    Busy,
    Stopping = 7,
}

/// Negative values: each is sign-extended in the descriptor.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(i16)]
pub enum Level {
    Low = -300,
    #[default]
    Zero = 0,
    High = 300,
}

/// The largest `u64`: a value no `i64` holds.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(u64)]
#[shm(name = "Mark")]
pub enum Wide {
    #[default]
    Nothing,
    All = u64::MAX,
}

/// A scoreboard slot: an enum, a text, an array of texts, beside a counter.
#[derive(SharedLayout, Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct Worker {
    pub state: State,
    pub client: Text<15>,
    pub requests: u64,
    pub level: Level,
    pub lines: [Text<2>; 2],
}

/// Something done with one type, chosen at run time by its id.
pub trait Visit {
    type Out;
    fn visit<T: SharedLayout + Default>(self) -> Self::Out;
}

macro_rules! vector_types {
    ($($id:literal => $ty:ty,)*) => {
        /// Every id, in the order the vectors list them.
        pub const IDS: &[&str] = &[$($id),*];

        /// `v.visit::<T>()` for the type `T` of `id`, or `None` for an unknown id.
        pub fn visit<V: Visit>(id: &str, v: V) -> Option<V::Out> {
            match id {
                $($id => Some(v.visit::<$ty>()),)*
                _ => None,
            }
        }
    };
}

vector_types! {
    "i8" => i8,
    "u8" => u8,
    "i16" => i16,
    "u16" => u16,
    "i32" => i32,
    "u32" => u32,
    "i64" => i64,
    "u64" => u64,
    "f32" => f32,
    "f64" => f64,
    "bool" => bool,
    "char" => char,
    "[u32; 4]" => [u32; 4],
    "[[f32; 4]; 4]" => [[f32; 4]; 4],
    "Point" => Point,
    "Stats" => Stats,
    "Padded" => Padded,
    "Pair" => Pair,
    "Inner" => Inner,
    "Outer" => Outer,
    "Renamed" => Renamed,
    "Slot" => Slot,
    "Everything" => Everything,
    "State" => State,
    "Level" => Level,
    "Wide" => Wide,
    "Text<5>" => Text<5>,
    "Text<0>" => Text<0>,
    "Worker" => Worker,
}
