//! `#[derive(SharedLayout)]` for `shm-core`: structs that live in shared memory. Use it through
//! `shm-core`, which re-exports it (feature `derive`, on by default); the derive's documentation
//! is on `shm_core::SharedLayout`.
//!
//! The crate reads the input into a small model (`parse`), refuses what cannot be shared with
//! every problem reported in one build (`check`), and expands what passed (`expand`); a refused
//! input expands to its errors and a stand-in (`fallback`).
#![deny(missing_docs)]

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod check;
mod errors;
mod expand;
mod expand_enum;
mod fallback;
mod parse;

/// Lets a `#[repr(C)]` struct, or a fieldless enum with an integer `#[repr]`, live in a
/// shared-memory segment: generates its *atomic twin* and implements `SharedLayout`, with
/// compile-time proofs that the two are laid out alike.
///
/// ```
/// use shm_core::SharedLayout;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// #[derive(SharedLayout, Debug, Default, PartialEq)]
/// #[repr(C)]
/// pub struct Stats {
///     pub requests: u64,
///     pub load: f64,
///     pub hist: [u32; 8],
/// }
///
/// // The twin `AtomicStats` is what a segment holds (`Shared<Stats>` derefs to it):
/// // every field is an atomic, so any process can update any field at any time.
/// let twin = AtomicStats::default();
/// twin.requests.fetch_add(1, Relaxed);
/// twin.hist[3].fetch_add(2, Relaxed);
/// twin.load.store(0.5, Relaxed);
///
/// // Whole values go in and out field by field.
/// let copy = Stats::load(&twin, Relaxed);
/// assert_eq!((copy.requests, copy.hist[3], copy.load), (1, 2, 0.5));
/// Stats::store(&twin, &Stats::default(), Relaxed);
/// assert_eq!(Stats::load(&twin, Relaxed), Stats::default());
///
/// // The descriptor every process compares when it attaches.
/// assert_eq!(Stats::LAYOUT.name, "Stats");
/// assert_eq!(Stats::LAYOUT.size, std::mem::size_of::<AtomicStats>());
/// ```
///
/// # Accepted
///
/// - A struct with `#[repr(C)]`, or `#[repr(C, align(N))]`: the twin gets the same `align(N)`,
///   so `#[repr(C, align(64))]` gives each element of an `Array` a cache line of its own (no
///   false sharing between workers' slots).
/// - Fields whose types are `SharedLayout`: `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool char`,
///   arrays of them to any depth (`[[f32; 4]; 4]`), and other derived structs, so structs nest.
/// - Any visibility, of the struct and of each field: the twin `Atomic<Name>` has the struct's,
///   and each of its fields the field's (and the field's doc comments).
/// - Fields of type `shm_core::Text<N>`: UTF-8 text of at most `N` bytes, in place.
/// - Tuple structs: the twin is a tuple struct too (`struct Pair(u8, f64)` gives
///   `struct AtomicPair(AtomicU8, AtomicF64)`), and the descriptor names the fields `"0"`,
///   `"1"`, ... Naming the fields later changes the layout: a process built with the names does
///   not attach to a segment created without them.
///
/// The twin implements `Default` (every atomic zero: `0`, `0.0`, `false`, `'\0'`) and `Debug`
/// (each field loaded with `Relaxed`, e.g. `AtomicPair(1, 0.5)`), whatever the struct has.
///
/// # Enums
///
/// A fieldless enum with an integer `#[repr]` (`u8 u16 u32 u64 i8 i16 i32 i64`; explicit
/// discriminants, negative ones included, as the compiler allows them) and one `#[default]`
/// variant is one number in the segment, and can be a field, an array element, a
/// `Shared<State>` or an `Array<State>`:
///
/// ```
/// use shm_core::{SharedEnum, SharedLayout};
/// use std::sync::atomic::Ordering::Relaxed;
///
/// #[derive(SharedLayout, Clone, Copy, Debug, PartialEq, Default)]
/// #[repr(u8)]
/// pub enum State {
///     #[default]
///     Idle,
///     Busy,
///     Stopping = 10,
/// }
///
/// // The twin `AtomicState` is `shm_core::AtomicEnum<State>`: std's atomic API, in `State`s.
/// let state = AtomicState::new(State::Idle);
/// assert_eq!(state.swap(State::Busy, Relaxed), State::Idle);
///
/// // Another process may store a number that is no variant: it reads as the `#[default]` one.
/// state.store(State::Stopping, Relaxed);
/// assert_eq!(State::LAYOUT.size, 1);
/// assert_eq!(state.try_load(Relaxed), Ok(State::Stopping));
/// assert_eq!(State::from_repr(3), None);
/// ```
///
/// The `#[default]` variant is required: another process (or another language) may write any
/// number, and `load`, `snapshot` and the rest read one that is no variant as the default
/// variant (`try_load` gives the number), as a `bool` reads any non-zero byte as `true`. The
/// attribute is the one `#[derive(Default)]` reads; it works without that derive too. The
/// descriptor records every variant's name and value and which is the default, so a process
/// whose enum has other variants (or values) gets a `LayoutMismatch` naming the variant.
///
/// # Options
///
/// - `#[shm(name = "StableName")]`: the type name in the descriptor. By default it is the bare
///   identifier (`"Stats"`, never a module path), so two crates that declare the same struct
///   attach to each other's segments; set it to keep that true after renaming the struct, or
///   to make two differently named structs share. At most 255 bytes.
/// - `#[shm(crate = "path::to::shm_core")]`: where `shm_core` is, for a crate that renamed it
///   or reaches it through a re-export. By default the generated code names `::shm_core`.
///
/// Both may be in one `#[shm(...)]` or several; anything else in `#[shm(...)]` is an error.
///
/// # Refused, and why
///
/// Each is an error at the offending tokens, saying what to write instead; every problem of a
/// struct is reported in the same build.
///
/// | input | why | write instead |
/// | --- | --- | --- |
/// | no `#[repr(C)]`, or `repr(Rust)` | the compiler may reorder fields, so two builds could disagree | `#[repr(C)]` |
/// | `repr(packed)`, `repr(packed(N))` | fields at unaligned offsets; an atomic must be aligned | `#[repr(C)]` |
/// | on a struct: `repr(transparent)`, `repr(u8)`... | no C field order / meaningful for enums only | `#[repr(C)]` |
/// | an enum variant with fields | which variant is live and its payload cannot be one set of atomics | a unit variant, and the data in a struct beside the enum |
/// | an enum without an integer `#[repr]`, or with `repr(C)`, `repr(usize)`, `repr(u128)`, `align(N)` | a width the compiler chooses, or one that differs between platforms or has no lock-free atomic | `#[repr(u8)]` (`u16`, `u32`, `u64`, `i8` ... `i64`) |
/// | an enum without a `#[default]` variant, or without variants | a number that is no variant must read as some variant | `#[default]` on one variant |
/// | a union | its fields overlap, so no field can be its own atomic | a struct, or the bits in a `u32`/`u64` |
/// | type, lifetime or const parameters, a `where` clause | a segment's layout is one fixed set of bytes | one struct per concrete type |
/// | no fields, a unit struct, only zero-length arrays | nothing to share; a segment needs a byte | a field |
/// | a `usize` or `isize` field | as wide as a pointer, which differs between processes | `u64` / `i64` |
/// | a `u128` or `i128` field | no lock-free 128-bit atomic | `[u64; 2]` |
/// | `String`, `str`, `Vec`, `Box`, `Rc`, `Arc`, maps, references, raw or fn pointers | an address in one process's memory | `shm_core::Text<N>`, an array `[T; N]`, the value, an index |
/// | `Option<T>` | no atomic form | the value and a `bool` field |
/// | a tuple, a slice, `()` | no fixed order, length or size | an array `[T; N]` or a derived struct |
/// | `AtomicU64` or another atomic, `Mutex`, `RwLock`, `Cell`... | every field is already atomic in the twin; std's locks are private to a process | the plain type (`u64`); `Shared::update`/`Shared::lock` for the segment's lock |
/// | any other type that is not `SharedLayout` | caught by the trait bound, reported at the field's type | `#[derive(SharedLayout)]` on it |
///
/// The rows from `usize` to `Mutex` are recognized by their tokens. `Vec`, `Box`, `Option` and
/// the like only with generic arguments or a `std::`/`core::`/`alloc::` path (a derived struct is
/// never generic), so a struct of your own named `Box` is fine.
///
/// # What it generates
///
/// For
///
/// ```ignore
/// #[derive(SharedLayout)]
/// #[repr(C)]
/// pub struct Stats {
///     pub requests: u64,
///     load: f64,
///     hist: [u32; 8],
/// }
/// ```
///
/// this, with every path absolute in the real expansion (`::shm_core::...`, and `core` through
/// `::shm_core::__private`, so the user's crate needs no other dependency and may have no prelude):
///
/// ```ignore
/// /// The atomic twin of [`Stats`], generated by `#[derive(SharedLayout)]`: ...
/// #[repr(C)]
/// pub struct AtomicStats {
///     pub requests: <u64 as SharedLayout>::Atomic, // AtomicU64
///     load: <f64 as SharedLayout>::Atomic,         // AtomicF64
///     hist: <[u32; 8] as SharedLayout>::Atomic,    // [AtomicU32; 8]
/// }
///
/// const _: () = {
///     // SAFETY: (argued in full in the expansion's source)
///     unsafe impl SharedLayout for Stats {
///         type Atomic = AtomicStats;
///         const LAYOUT: Layout = {
///             assert!(/* the real twin has Stats's size, alignment and offsets */);
///             Layout {
///                 name: "Stats",
///                 size: size_of::<AtomicStats>(),
///                 align: align_of::<AtomicStats>(),
///                 kind: Kind::Struct { fields: &[
///                     Field {
///                         name: "requests",
///                         offset: offset_of!(AtomicStats, requests),
///                         layout: &<u64 as SharedLayout>::LAYOUT,
///                     },
///                     Field { name: "load", /* ... */ },
///                     Field { name: "hist", /* ... */ },
///                 ] },
///             }
///         };
///         fn load(atomic: &AtomicStats, order: Ordering) -> Self {
///             Self {
///                 requests: <u64 as SharedLayout>::load(&atomic.requests, order),
///                 load: <f64 as SharedLayout>::load(&atomic.load, order),
///                 hist: <[u32; 8] as SharedLayout>::load(&atomic.hist, order),
///             }
///         }
///         fn store(atomic: &AtomicStats, value: &Self, order: Ordering) {
///             <u64 as SharedLayout>::store(&atomic.requests, &value.requests, order);
///             // ... and so on for `load` and `hist`
///         }
///     }
///
///     impl Default for AtomicStats { /* all zeros */ }
///     impl Debug for AtomicStats { /* AtomicStats { requests: 0, load: 0.0, hist: [0, ...] } */ }
///
///     // The proofs, evaluated where `Stats` is defined (`cargo check` included), one constant
///     // each so that every failure is reported.
///     const _: () = {
///         const FIELDS: [&Layout; 3] = [
///             &<u64 as SharedLayout>::LAYOUT,
///             &<f64 as SharedLayout>::LAYOUT,
///             &<[u32; 8] as SharedLayout>::LAYOUT,
///         ];
///         // The twin's layout, as `#[repr(C)]` places the fields' twins.
///         const TWIN: ReprC<3> = repr_c(FIELDS, 1);
///         const _: () = assert!(
///             offset_of!(Stats, requests) == TWIN.offsets[0],
///             "field `requests` of `Stats` is at another offset in its atomic twin `AtomicStats` ...",
///         );
///         const _: () = assert!(
///             lock_free(FIELDS[0]),
///             "field `requests` of `Stats` needs an atomic that is not lock-free on this target ...",
///         );
///         // ... and so on for `load` and `hist`; then:
///         const _: () = assert!(TWIN.size != 0, "`Stats` is zero-sized: ...");
///         const _: () = assert!(size_of::<Stats>() == TWIN.size, "... differ in size ...");
///         const _: () = assert!(align_of::<Stats>() == TWIN.align, "... differ in alignment ...");
///     };
/// };
/// ```
///
/// For an enum `State` with `#[repr(u8)]` it generates `type AtomicState =
/// shm_core::AtomicEnum<State>` (with the enum's visibility), `impl SharedEnum for State` (the
/// repr, the default variant, and a `match` from each variant to `Self::Variant as u8` and
/// back), and `impl SharedLayout for State` whose `LAYOUT` is a `Kind::Enum` listing each
/// variant's name and value (`Self::Variant as u8 as i128`, so any constant discriminant
/// works) and the default's index. Nothing about an enum needs a proof: its twin is the repr's
/// atomic.
///
/// A failed proof is an error at the struct's name or at the field it names. The size,
/// alignment and offset proofs can fail only on a target where an atomic is more aligned than
/// its plain type (`AtomicU64` on 32-bit x86), or with a hand-written `SharedLayout` whose twin
/// is; explicit padding fields fix that. The lock-free proof fails on a target without atomics
/// of a field's width. `LAYOUT` checks the real twin against the struct once more when it is
/// evaluated (every segment operation, and the build of the crate that derives).
///
/// A field type that is not `SharedLayout` is reported once, at the field's type, with the
/// trait's "cannot live in shared memory" message. For that, every impl above also carries
/// `where for<'__shm> T: SharedLayout` for each field type `T` that is not a primitive (for an
/// array, its element type). It always holds when the build succeeds; it shows in the docs of
/// a struct with nested fields and means nothing more.
#[proc_macro_derive(SharedLayout, attributes(shm, default))]
pub fn derive_shared_layout(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
