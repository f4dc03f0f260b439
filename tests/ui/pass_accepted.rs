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
}
