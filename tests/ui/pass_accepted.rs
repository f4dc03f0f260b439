// Every accepted form compiles.
use shm_core::SharedLayout;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Inner {
    pub x: f32,
    pub y: f32,
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Outer {
    pub id: u32,
    pub inner: Inner,
    pub matrix: [[f32; 4]; 4],
    pub inners: [Inner; 3],
    pub(crate) hidden: u8,
    private: bool,
}

#[derive(SharedLayout)]
#[repr(C, align(64))]
pub struct Slot {
    pub count: u64,
}

#[derive(SharedLayout)]
#[repr(align(64))]
#[repr(C)]
pub struct SlotTwoAttrs {
    pub count: u64,
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Pair(pub u32, pub(crate) f32);

#[derive(SharedLayout)]
#[repr(C)]
#[shm(name = "StableName")]
pub struct Renamed {
    pub value: i64,
}

#[derive(SharedLayout)]
#[repr(C)]
#[shm(crate = "shm_core")]
pub struct WithCratePath {
    pub value: char,
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Big {
    pub many: [u8; 4096],
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct r#Raw {
    pub r#type: u16,
}

// A struct of one's own named like a refused std type is fine: the derive refuses `Box` only
// with generic arguments or a std path.
mod geometry {
    #[derive(shm_core::SharedLayout)]
    #[repr(C)]
    pub struct Box {
        pub min: [f32; 2],
        pub max: [f32; 2],
    }
}

use geometry::Box;

#[derive(SharedLayout)]
#[repr(C)]
pub struct Scene {
    pub bounds: Box,
    pub others: [geometry::Box; 2],
}

// Fieldless enums of every integer repr, with explicit and negative discriminants.
#[derive(SharedLayout, Clone, Copy, Debug, PartialEq, Default)]
#[repr(u8)]
pub enum State {
    #[default]
    Idle,
    Busy,
    Stopping = 9,
}

#[derive(SharedLayout)]
#[repr(i8)]
pub enum Signed {
    Low = -128,
    #[default]
    Zero = 0,
    High = 127,
}

#[derive(SharedLayout)]
#[repr(u16)]
pub enum Wide16 {
    #[default]
    A = 0xffff,
}

#[derive(SharedLayout)]
#[repr(i32)]
pub enum Wide32 {
    #[default]
    A = i32::MIN,
}

#[derive(SharedLayout)]
#[repr(u64)]
pub enum Wide64 {
    A,
    #[default]
    B = u64::MAX,
}

// Neither `Copy` nor `Default`: `#[default]` is the derive's own attribute too.
#[derive(SharedLayout)]
#[repr(u32)]
#[shm(name = "Mode")]
#[allow(non_camel_case_types)] // a raw keyword as a variant's name, on purpose
enum r#Renamed2 {
    #[default]
    r#type = 1 << 20,
    Other,
}

#[derive(SharedLayout)]
#[repr(i64)]
pub enum Tiny {
    #[default]
    Only,
}

#[derive(SharedLayout)]
#[repr(C)]
pub struct Worker {
    pub state: State,
    pub history: [State; 4],
    pub client: shm_core::Text<64>,
    pub lines: [shm_core::Text<3>; 2],
    pub empty: shm_core::Text<0>,
}

mod private {
    #[derive(shm_core::SharedLayout)]
    #[repr(C)]
    pub(crate) struct Local {
        pub(super) a: i8,
        b: i16,
    }
}

fn main() {
    let _ = Outer {
        id: 0,
        inner: Inner { x: 0.0, y: 0.0 },
        matrix: [[0.0; 4]; 4],
        inners: [
            Inner { x: 0.0, y: 0.0 },
            Inner { x: 0.0, y: 0.0 },
            Inner { x: 0.0, y: 0.0 },
        ],
        hidden: 0,
        private: false,
    };
    let twin = AtomicOuter::default();
    let _: &<f32 as SharedLayout>::Atomic = &twin.matrix[3][3];
    let _ = format!("{twin:?}");
    let _: AtomicPair = Default::default();
    let _ = AtomicSlot::default().count;
    let _ = AtomicBig::default();
    let _ = AtomicRaw::default().r#type;
    let _ = private::AtomicLocal::default().a;
    let _ = AtomicScene::default().others[1].max[0];
    assert_eq!(std::mem::size_of::<AtomicSlot>(), 64);
    assert_eq!(std::mem::align_of::<AtomicSlotTwoAttrs>(), 64);
    assert_eq!(<Renamed as SharedLayout>::LAYOUT.name, "StableName");
    assert_eq!(<Raw as SharedLayout>::LAYOUT.name, "Raw");
    let state: AtomicState = Default::default();
    state.store(State::Stopping, std::sync::atomic::Ordering::Relaxed);
    let _: Result<State, u8> = state.try_load(std::sync::atomic::Ordering::Relaxed);
    let _ = AtomicWorker::default().client.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(<Renamed2 as SharedLayout>::LAYOUT.name, "Mode");
    let _: AtomicRenamed2 = shm_core::AtomicEnum::new(Renamed2::Other);
    let _ = (Signed::Low, Signed::High, Wide64::A, Renamed2::r#type);
}
