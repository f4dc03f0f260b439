//! Derived structs across processes: every primitive, a 2-D array, a nested struct, and an
//! array of cache-line-aligned slots, with exact totals under contention; and layout mismatches
//! between two versions of a struct, each named.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Error, Shared};
use tests::types::{Everything, Inner, Slot};
use tests::{Child, TestName};

tests::child_roles!();

const PROCS: u64 = 4;

fn join_all(children: Vec<Child>) {
    for c in children {
        c.finish();
    }
}

#[test]
fn every_field_type_adds_up_exactly_across_processes() {
    const N: u64 = 10_000;
    let name = TestName::new("everything");
    let start = Everything {
        letter: 'A',
        i32_: 1_000_000,
        ..Everything::default()
    };
    let s = Shared::<Everything>::create(&name, start).unwrap();
    let n = N.to_string();
    join_all(
        (0..PROCS)
            .map(|_| Child::spawn(&["everything", &name, &n]))
            .collect(),
    );
    let total = PROCS * N;
    let v = s.snapshot();
    assert_eq!(v.i8_, total as i8); // wraps, as fetch_add does
    assert_eq!(v.u8_, total as u8);
    assert_eq!(v.i16_, (total as i16).wrapping_neg());
    assert_eq!(v.u16_, total as u16);
    assert_eq!(v.i32_, 1_000_000 - 3 * total as i32);
    assert_eq!(v.u32_, 3 * total as u32);
    assert_eq!(v.i64_, -5 * total as i64);
    assert_eq!(v.u64_, 5 * total);
    assert_eq!(v.f32_, 0.5 * total as f32);
    assert_eq!(v.f64_, 0.25 * total as f64);
    assert_eq!(v.flag, total % 2 == 1);
    assert_eq!(v.letter, char::from_u32('A' as u32 + total as u32).unwrap());
    assert_eq!(v.grid, [[total as u32; 3]; 2]);
    assert_eq!(
        v.inner,
        Inner {
            x: total as u16,
            y: [0, 0, -(total as i32)]
        }
    );
}

#[test]
fn aligned_slots_in_an_array_each_count_exactly() {
    const N: u64 = 50_000;
    assert_eq!(
        std::mem::align_of::<<Slot as shm_core::SharedLayout>::Atomic>(),
        64
    );
    let name = TestName::new("slots64");
    let a = Array::<Slot>::create_zeroed(&name, PROCS as usize + 1).unwrap();
    for w in a.iter() {
        assert_eq!(
            w as *const _ as usize % 64,
            0,
            "slot not cache-line aligned"
        );
    }
    let n = N.to_string();
    join_all(
        (0..PROCS)
            .map(|i| Child::spawn(&["slot", &name, &i.to_string(), &n]))
            .collect(),
    );
    let v = a.snapshot();
    for (i, slot) in v.iter().take(PROCS as usize).enumerate() {
        assert_eq!(slot.count, N, "slot {i}");
        assert_eq!(slot.sum, 1.5 * N as f64, "slot {i}");
        assert_eq!(slot.last, N as u32 - 1, "slot {i}");
    }
    assert_eq!(v[PROCS as usize].count, PROCS);
    assert_eq!(a[0].count.load(Relaxed), N);
}

/// Two versions of the same struct, as two builds of a program would have them.
mod v1 {
    use shm_core::SharedLayout;

    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
    }

    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Config {
        pub load: f64,
        pub hits: u64,
        pub misses: u64,
        pub origin: Point,
    }
}

mod changed_type {
    use shm_core::SharedLayout;
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Config {
        pub load: f32,
        pub hits: u64,
        pub misses: u64,
        pub origin: super::v1::Point,
    }
}

mod added_field {
    use shm_core::SharedLayout;
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Config {
        pub load: f64,
        pub hits: u64,
        pub misses: u64,
        pub origin: super::v1::Point,
        pub errors: u32,
    }
}

mod removed_field {
    use shm_core::SharedLayout;
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Config {
        pub load: f64,
        pub hits: u64,
        pub origin: super::v1::Point,
    }
}

mod swapped {
    use shm_core::SharedLayout;
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Config {
        pub load: f64,
        pub misses: u64,
        pub hits: u64,
        pub origin: super::v1::Point,
    }
}

mod nested_changed {
    use shm_core::SharedLayout;
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Point {
        pub x: i32,
        pub y: u32,
    }
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Config {
        pub load: f64,
        pub hits: u64,
        pub misses: u64,
        pub origin: Point,
    }
}

mod renamed {
    use shm_core::SharedLayout;
    #[derive(SharedLayout, Default)]
    #[repr(C)]
    pub struct Settings {
        pub load: f64,
        pub hits: u64,
        pub misses: u64,
        pub origin: super::v1::Point,
    }
}

fn mismatch<T: shm_core::SharedLayout>(name: &str) -> String {
    match Shared::<T>::open(name) {
        Err(Error::LayoutMismatch { detail, .. }) => detail,
        Err(e) => panic!("expected LayoutMismatch, got {e:?}"),
        Ok(_) => panic!("opened a segment of another layout"),
    }
}

#[test]
fn each_kind_of_layout_change_is_detected_and_named() {
    let name = TestName::new("versions");
    let _s = Shared::<v1::Config>::create(&name, v1::Config::default()).unwrap();
    assert_eq!(
        mismatch::<changed_type::Config>(&name),
        "field `load`: segment has f64 at offset 0, this program expects f32 at offset 0"
    );
    assert_eq!(
        mismatch::<added_field::Config>(&name),
        "field `errors`: missing from the segment (this program expects u32 at offset 32)"
    );
    assert_eq!(
        mismatch::<removed_field::Config>(&name),
        "field `misses`: the segment has u64 at offset 16, which this program does not expect"
    );
    assert_eq!(
        mismatch::<swapped::Config>(&name),
        "fields in another order: at offset 8 the segment has `hits`, this program expects `misses`"
    );
    assert_eq!(
        mismatch::<nested_changed::Config>(&name),
        "field `origin.y`: segment has i32 at offset 4, this program expects u32 at offset 4"
    );
    assert_eq!(
        mismatch::<renamed::Settings>(&name),
        "segment holds `Config`, this program expects `Settings`"
    );
    // The message names the segment too.
    // (`Shared<T>` is `Debug` only for a `T: Debug`, as std's `Mutex`; so no `unwrap_err`.)
    let Err(e) = Shared::<renamed::Settings>::open(&name) else {
        panic!("opened a segment of another layout")
    };
    assert!(e.to_string().contains(&*name), "{e}");
    // The right version opens.
    Shared::<v1::Config>::open(&name).unwrap();
}
