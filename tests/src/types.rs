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

/// A worker's state: an enum in a segment.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    #[default]
    Idle,
    Busy,
    Stopping,
}

/// A scoreboard slot: a state and a text beside a counter.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Worker {
    pub state: State,
    pub client: shm_core::Text<24>,
    pub requests: u64,
}

macro_rules! width_enums {
    ($($name:ident: $repr:ident = $low:expr, $high:expr;)*) => {$(
        /// An enum whose variants are the smallest and the largest of its repr.
        #[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq, Eq)]
        #[repr($repr)]
        pub enum $name {
            #[default]
            Low = $low,
            High = $high,
        }
    )*};
}

width_enums! {
    U8s: u8 = 0, u8::MAX;
    I8s: i8 = i8::MIN, i8::MAX;
    U16s: u16 = 0, u16::MAX;
    I16s: i16 = i16::MIN, i16::MAX;
    U32s: u32 = 0, u32::MAX;
    I32s: i32 = i32::MIN, i32::MAX;
    U64s: u64 = 0, u64::MAX;
    I64s: i64 = i64::MIN, i64::MAX;
}

/// An enum of every repr width.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Widths {
    pub u8_: U8s,
    pub i8_: I8s,
    pub u16_: U16s,
    pub i16_: I16s,
    pub u32_: U32s,
    pub i32_: I32s,
    pub u64_: U64s,
    pub i64_: I64s,
}

/// The text the `worker-updates` child writes in its update `k`: `ID:k` repeated, cut at a
/// length that varies with `k`, so two texts of different updates never mix into one that
/// passes [`is_worker_text`].
pub fn worker_text(id: &str, k: u64) -> String {
    let unit = format!("{id}:{k};");
    unit.repeat(8).chars().take(8 + (k % 16) as usize).collect()
}

/// Whether `text` is one that [`worker_text`] makes, whole.
pub fn is_worker_text(text: &str) -> bool {
    let Some((id, rest)) = text.split_once(':') else {
        return text.is_empty();
    };
    let k: Option<u64> = rest.split(';').next().and_then(|k| k.parse().ok());
    k.is_some_and(|k| worker_text(id, k) == text)
}

impl Widths {
    /// Every field its `High` variant.
    pub fn high() -> Widths {
        Widths {
            u8_: U8s::High,
            i8_: I8s::High,
            u16_: U16s::High,
            i16_: I16s::High,
            u32_: U32s::High,
            i32_: I32s::High,
            u64_: U64s::High,
            i64_: I64s::High,
        }
    }
}

/// A per-worker slot padded to a cache line.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
pub struct Slot {
    pub count: u64,
    pub sum: f64,
    pub last: u32,
}
