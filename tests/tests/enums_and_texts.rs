//! Enums and texts across processes: every repr width round trips through another process;
//! slots claimed by compare_exchange are claimed exactly once; `update` and `snapshot` move
//! whole texts; numbers that are no variant and bytes that are not UTF-8, planted through
//! /dev/shm by a peer that ignores the rules, read as the documented valid values; and a segment
//! of another version of an enum is refused naming the variant.

use std::fs;
use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Error, Shared, SharedLayout, Text};
use tests::types::{is_worker_text, I32s, I64s, I8s, State, U16s, U32s, U8s, Widths, Worker};
use tests::{Child, TestName};

tests::child_roles!();

#[test]
fn every_repr_width_round_trips_through_another_process() {
    let name = TestName::new("widths");
    let w = Shared::<Widths>::create(&name, Widths::default()).unwrap();
    let out = Child::run(&["widths", &name]);
    assert_eq!(
        out,
        format!(
            "found {:?}\nswapped [true, true, true, true, true, true, true, true]\n",
            Widths::default()
        )
    );
    assert_eq!(w.snapshot(), Widths::high());
    // The extremes of each repr are in the segment as the repr's own numbers.
    assert_eq!(w.u64_.load_raw(Relaxed), u64::MAX);
    assert_eq!(w.i64_.load_raw(Relaxed), i64::MAX);
    assert_eq!(w.i8_.load_raw(Relaxed), i8::MAX);
    w.update(|v| *v = Widths::default());
    assert_eq!(
        (
            w.i8_.load_raw(Relaxed),
            w.i16_.load_raw(Relaxed),
            w.i32_.load_raw(Relaxed),
            w.i64_.load_raw(Relaxed)
        ),
        (i8::MIN, i16::MIN, i32::MIN, i64::MIN)
    );
}

#[test]
fn planted_numbers_that_are_no_variant_read_as_the_default_in_every_width() {
    let name = TestName::new("widths-planted");
    let w = Shared::<Widths>::create(&name, Widths::high()).unwrap();
    use std::mem::offset_of;
    use tests::types::AtomicWidths;
    name.plant_in_payload(offset_of!(AtomicWidths, u8_), &[7]);
    name.plant_in_payload(offset_of!(AtomicWidths, i8_), &[7]);
    name.plant_in_payload(offset_of!(AtomicWidths, u16_), &7u16.to_ne_bytes());
    name.plant_in_payload(offset_of!(AtomicWidths, i16_), &(-7i16).to_ne_bytes());
    name.plant_in_payload(offset_of!(AtomicWidths, u32_), &7u32.to_ne_bytes());
    name.plant_in_payload(offset_of!(AtomicWidths, i32_), &(-7i32).to_ne_bytes());
    name.plant_in_payload(offset_of!(AtomicWidths, u64_), &7u64.to_ne_bytes());
    name.plant_in_payload(offset_of!(AtomicWidths, i64_), &(-7i64).to_ne_bytes());
    assert_eq!(w.snapshot(), Widths::default());
    assert_eq!(w.u8_.try_load(Relaxed), Err(7));
    assert_eq!(w.i8_.try_load(Relaxed), Err(7));
    assert_eq!(w.u16_.try_load(Relaxed), Err(7));
    assert_eq!(w.i16_.try_load(Relaxed), Err(-7));
    assert_eq!(w.u32_.try_load(Relaxed), Err(7));
    assert_eq!(w.i32_.try_load(Relaxed), Err(-7));
    assert_eq!(w.u64_.try_load(Relaxed), Err(7));
    assert_eq!(w.i64_.try_load(Relaxed), Err(-7));
    assert_eq!(w.u8_.load(Relaxed), U8s::Low);
    assert_eq!(w.i64_.load(Relaxed), I64s::Low);
    // An unknown number reads as the default, so compare_exchange from the default replaces it.
    assert_eq!(
        w.i32_
            .compare_exchange(I32s::Low, I32s::High, Relaxed, Relaxed),
        Ok(I32s::Low)
    );
    assert_eq!(w.i32_.try_load(Relaxed), Ok(I32s::High));
    assert_eq!(w.u16_.swap(U16s::High, Relaxed), U16s::Low);
    // An update that leaves an unknown number's field alone does not rewrite it.
    w.update(|v| v.u32_ = U32s::High);
    assert_eq!(w.i16_.try_load(Relaxed), Err(-7));
    assert_eq!(
        (w.u32_.load(Relaxed), w.i8_.load(Relaxed)),
        (U32s::High, I8s::default())
    );
}

#[test]
fn slots_claimed_by_compare_exchange_are_claimed_once_across_processes() {
    const SLOTS: usize = 200;
    const PROCS: usize = 4;
    let name = TestName::new("claim");
    let board = Array::<Worker>::create_zeroed(&name, SLOTS).unwrap();
    let children: Vec<_> = (0..PROCS)
        .map(|i| Child::spawn(&["claim", &name, &i.to_string()]))
        .collect();
    let mut claimed = 0;
    for c in children {
        let line = c.finish();
        claimed += line
            .trim()
            .strip_prefix("claimed ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("child said {line:?}"));
    }
    assert_eq!(claimed, SLOTS);
    for (i, slot) in board.snapshot().iter().enumerate() {
        assert_eq!(slot.state, State::Busy, "slot {i}");
        assert_eq!(slot.requests, 1, "slot {i} claimed more than once");
        let client = slot.client.as_str();
        assert!(
            client
                .strip_prefix("child-")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < PROCS),
            "slot {i}: client {client:?}"
        );
    }
}

#[test]
fn update_and_snapshot_move_whole_texts_between_processes() {
    const N: u64 = 3_000;
    let name = TestName::new("texts");
    let w = Shared::<Worker>::create(&name, Worker::default()).unwrap();
    let writers: Vec<_> = ["a", "b"]
        .iter()
        .map(|id| Child::spawn(&["worker-updates", &name, id, &N.to_string()]))
        .collect();
    let mut seen = 0u64;
    loop {
        let s = w.snapshot();
        assert!(
            is_worker_text(s.client.as_str()),
            "a snapshot saw a mixed text {:?}",
            s.client
        );
        seen += 1;
        if s.requests == 2 * N {
            break;
        }
    }
    for c in writers {
        c.finish();
    }
    assert!(seen > 0);
    let last = w.snapshot();
    assert_eq!(last.requests, 2 * N);
    assert!(is_worker_text(last.client.as_str()), "{:?}", last.client);
    assert_eq!(
        last.state,
        State::Stopping,
        "the last update of each is odd"
    );
}

#[test]
fn planted_bytes_that_are_not_utf8_read_as_the_valid_prefix() {
    use std::mem::offset_of;
    use tests::types::AtomicWorker;
    let name = TestName::new("text-planted");
    let w = Shared::<Worker>::create(
        &name,
        Worker {
            client: Text::try_from("10.0.0.7").unwrap(),
            ..Worker::default()
        },
    )
    .unwrap();
    let client = offset_of!(AtomicWorker, client);
    // A length past the capacity, and a lone continuation byte after "ok".
    name.plant_in_payload(client, &1000u32.to_ne_bytes());
    name.plant_in_payload(client + 4, b"ok\x80 and more");
    assert_eq!(w.client.load(Relaxed), "ok");
    assert_eq!(w.snapshot().client, "ok");
    // The whole capacity of valid bytes, with a length past it: the capacity counts.
    name.plant_in_payload(client + 4, &[b'x'; 24]);
    assert_eq!(w.snapshot().client.as_str(), "x".repeat(24));
    // A multi-byte character cut by the length: not part of the text.
    name.plant_in_payload(client, &2u32.to_ne_bytes());
    name.plant_in_payload(client + 4, "aé".as_bytes());
    assert_eq!(w.snapshot().client, "a");
    // An update that changes the text writes it whole: length, bytes, and zeros after them,
    // where the planted bytes were.
    w.update(|v| v.client = Text::try_from("fixed").unwrap());
    let bytes = fs::read(name.path()).unwrap();
    let payload = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let at = payload + client;
    assert_eq!(&bytes[at..at + 4], &5u32.to_ne_bytes());
    assert_eq!(
        &bytes[at + 4..at + 4 + 24],
        b"fixed\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
    );
}

mod v1 {
    #[derive(shm_core::SharedLayout, Clone, Copy, Default)]
    #[repr(u8)]
    pub enum State {
        #[default]
        Idle,
        Busy,
    }

    #[derive(shm_core::SharedLayout, Clone, Copy, Default)]
    #[repr(C)]
    pub struct Slot {
        pub state: State,
        pub client: shm_core::Text<16>,
    }
}

mod v2 {
    #[derive(shm_core::SharedLayout, Clone, Copy, Default)]
    #[repr(u8)]
    pub enum State {
        #[default]
        Idle,
        Busy,
        Draining,
    }

    #[derive(shm_core::SharedLayout, Clone, Copy, Default)]
    #[repr(C)]
    pub struct Slot {
        pub state: State,
        pub client: shm_core::Text<16>,
    }

    #[derive(shm_core::SharedLayout, Clone, Copy, Default)]
    #[repr(C)]
    #[shm(name = "Slot")]
    pub struct LongerText {
        pub state: super::v1::State,
        pub client: shm_core::Text<32>,
    }
}

/// The message of opening `name` as `T`, which must be a `LayoutMismatch`.
fn mismatch<T: SharedLayout>(name: &str) -> String {
    match Shared::<T>::open(name) {
        Err(e @ Error::LayoutMismatch { .. }) => e.to_string(),
        Err(e) => panic!("not a layout mismatch: {e}"),
        Ok(_) => panic!("opened a segment of another layout"),
    }
}

#[test]
fn another_version_of_an_enum_or_a_text_is_refused_naming_what_differs() {
    let name = TestName::new("enum-versions");
    let _v1 = Shared::<v1::Slot>::create(&name, v1::Slot::default()).unwrap();
    let e = mismatch::<v2::Slot>(&name);
    assert!(
        e.contains("field `state`: variant `Draining` of `State` (2) is missing from the segment"),
        "{e}"
    );
    let e = mismatch::<v2::LongerText>(&name);
    assert!(
        e.contains(
            "field `client`: segment has Text<16> at offset 4, this program expects Text<32> at offset 4"
        ),
        "{e}"
    );
    let single = TestName::new("enum-versions-single");
    let _v2 = Shared::<v2::State>::create(&single, v2::State::Draining).unwrap();
    let e = mismatch::<v1::State>(&single);
    assert!(
        e.contains(
            "the segment's `State` has variant `Draining` (2), which this program does not know"
        ),
        "{e}"
    );
    // The same enum opens, and reads what the other handle stored.
    assert!(matches!(
        Shared::<v2::State>::open(&single).unwrap().load(Relaxed),
        v2::State::Draining
    ));
}
