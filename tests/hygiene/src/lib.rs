//! `#[derive(SharedLayout)]` in a crate that renamed `shm-core` and has no prelude: any path
//! the expansion hard-codes (`shm_core`, `core`, `Option`, `assert!`, ...) fails to build here.
//! (Without a prelude the extern prelude is gone too, hence `::renamed_shm`.)
#![no_implicit_prelude]

/// A nested struct.
#[derive(::renamed_shm::SharedLayout)]
#[shm(crate = "::renamed_shm")]
#[repr(C)]
pub struct Point {
    /// x.
    pub x: f32,
    /// y.
    pub y: f32,
}

/// Every primitive, a nested struct, an array of structs and a 2-D array.
#[derive(::renamed_shm::SharedLayout)]
#[shm(crate = "::renamed_shm")]
#[repr(C)]
pub struct Robot {
    /// id.
    pub id: u32,
    /// position.
    pub position: Point,
    /// path.
    pub path: [Point; 3],
    /// transform.
    pub transform: [[f64; 4]; 4],
    /// flags.
    pub flags: bool,
    /// the rest.
    pub rest: Primitives,
}

/// One field of each primitive.
#[derive(::renamed_shm::SharedLayout)]
#[shm(crate = "::renamed_shm", name = "Prims")]
#[repr(C)]
pub struct Primitives {
    a: i8,
    b: u8,
    c: i16,
    d: u16,
    e: i32,
    f: u32,
    g: i64,
    h: u64,
    i: f32,
    j: f64,
    k: bool,
    l: char,
}

/// A tuple struct.
#[derive(::renamed_shm::SharedLayout)]
#[shm(crate = "::renamed_shm")]
#[repr(C)]
pub struct Pair(pub u8, pub u64);

/// A slot on a cache line of its own.
#[derive(::renamed_shm::SharedLayout)]
#[shm(crate = "::renamed_shm")]
#[repr(C, align(64))]
pub struct Slot {
    /// count.
    pub count: u64,
}

/// A fieldless enum, with variants named like the prelude's.
#[derive(::renamed_shm::SharedLayout, Debug, PartialEq)]
#[shm(crate = "::renamed_shm")]
#[repr(i16)]
pub enum Answer {
    /// none.
    #[default]
    None = -1,
    /// some.
    Some = 7,
    /// ok.
    Ok,
}

/// An enum and a text among the fields.
#[derive(::renamed_shm::SharedLayout)]
#[shm(crate = "::renamed_shm")]
#[repr(C)]
pub struct Worker {
    /// state.
    pub state: Answer,
    /// states.
    pub history: [Answer; 2],
    /// client.
    pub client: ::renamed_shm::Text<15>,
}

/// Items named like what the expansion uses, which it must not pick up.
pub mod shadowing {
    #![allow(non_upper_case_globals, dead_code, unused_macros)]

    const atomic: u8 = 0;
    const value: u8 = 0;
    const order: u8 = 0;
    const f: u8 = 0;
    struct Layout;
    struct Field;
    struct Kind;
    struct Ordering;
    struct Variant;
    struct AtomicEnum;
    struct Option;
    const raw: u8 = 0;
    #[allow(non_camel_case_types)]
    struct i128;
    trait SharedLayout {}
    trait SharedEnum {}
    mod core {}
    macro_rules! assert {
        ($($t:tt)*) => {
            ::std::compile_error!("the expansion used the user's `assert!`")
        };
    }

    /// A struct derived among them.
    #[derive(::renamed_shm::SharedLayout)]
    #[shm(crate = "::renamed_shm")]
    #[repr(C)]
    pub struct Shadowed {
        /// value.
        pub value: u16,
        /// order.
        pub order: [super::Point; 2],
    }

    /// An enum derived among them.
    #[derive(::renamed_shm::SharedLayout)]
    #[shm(crate = "::renamed_shm")]
    #[repr(u8)]
    pub enum ShadowedEnum {
        /// value.
        #[default]
        Value,
        /// order.
        Order,
    }
}

#[cfg(test)]
mod tests {
    use ::std::convert::TryFrom;
    use ::std::default::Default;
    use ::std::iter::Iterator;
    use ::std::mem::{align_of, offset_of, size_of};
    use ::std::sync::atomic::Ordering::Relaxed;
    use ::std::{assert_eq, format};

    use ::renamed_shm::{Kind, Layout, SharedLayout};

    use super::*;

    fn fields(layout: &Layout) -> &'static [::renamed_shm::Field] {
        match layout.kind {
            Kind::Struct { fields } => fields,
            _ => ::std::panic!("{} is not a struct", layout.name),
        }
    }

    #[test]
    fn layouts_describe_the_twins() {
        let robot = <Robot as SharedLayout>::LAYOUT;
        assert_eq!(robot.name, "Robot");
        assert_eq!(robot.size, size_of::<AtomicRobot>());
        assert_eq!(robot.align, align_of::<AtomicRobot>());
        let offsets: ::std::vec::Vec<(&str, usize)> =
            fields(&robot).iter().map(|f| (f.name, f.offset)).collect();
        assert_eq!(
            offsets,
            [
                ("id", offset_of!(AtomicRobot, id)),
                ("position", offset_of!(AtomicRobot, position)),
                ("path", offset_of!(AtomicRobot, path)),
                ("transform", offset_of!(AtomicRobot, transform)),
                ("flags", offset_of!(AtomicRobot, flags)),
                ("rest", offset_of!(AtomicRobot, rest)),
            ]
        );
        assert_eq!(fields(&robot)[1].layout.name, "Point");
        assert_eq!(fields(&robot)[5].layout.name, "Prims");

        let pair = <Pair as SharedLayout>::LAYOUT;
        assert_eq!(fields(&pair)[0].name, "0");
        assert_eq!(fields(&pair)[1].name, "1");
        assert_eq!(fields(&pair)[1].offset, offset_of!(AtomicPair, 1));

        assert_eq!(<Slot as SharedLayout>::LAYOUT.align, 64);
        assert_eq!(size_of::<AtomicSlot>(), 64);
    }

    #[test]
    fn load_and_store_go_through_the_twin() {
        let twin = AtomicPair::default();
        <Pair as SharedLayout>::store(&twin, &Pair(7, u64::MAX), Relaxed);
        let back = <Pair as SharedLayout>::load(&twin, Relaxed);
        assert_eq!((back.0, back.1), (7, u64::MAX));
        assert_eq!(format!("{twin:?}"), "AtomicPair(7, 18446744073709551615)");
    }

    #[test]
    fn enums_and_texts_go_through_the_twin() {
        let twin = AtomicWorker::default();
        twin.state.store(Answer::Some, Relaxed);
        twin.history[1].store(Answer::Ok, Relaxed);
        twin.client
            .store(::renamed_shm::Text::try_from("worker").unwrap(), Relaxed);
        let back = <Worker as SharedLayout>::load(&twin, Relaxed);
        assert_eq!(back.state, Answer::Some);
        // All zeros is no variant of `Answer`: it reads as the default.
        assert_eq!(back.history, [Answer::None, Answer::Ok]);
        assert_eq!(back.client, "worker");
        assert_eq!(
            format!("{twin:?}"),
            "AtomicWorker { state: Some, history: [0 (no variant; reads as None), Ok], client: \"worker\" }"
        );
        match <Answer as SharedLayout>::LAYOUT.kind {
            Kind::Enum { variants, .. } => assert_eq!(variants[0].value, -1),
            _ => ::std::panic!("not an enum"),
        }
    }
}
