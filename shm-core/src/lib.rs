//! Typed structs in named shared memory, for processes that share live state: counters,
//! scoreboards, control flags, per-worker slots.
//!
//! What Python's `multiprocessing.Value('i', 0)` and `multiprocessing.Array('i', [1, 2, 3, 4])`
//! give a Python program, this crate gives a Rust program, for whole structs: a value lives in a
//! named POSIX shared-memory segment (`/dev/shm/<name>` on Linux) that any process can open by
//! name, every field is an atomic, and the layout is checked at compile time and again when a
//! process attaches.
//!
//! ```
//! use shm_core::{Array, Shared, SharedLayout, Value};
//! use std::sync::atomic::Ordering::Relaxed;
//!
//! #[derive(SharedLayout, Default)]
//! #[repr(C)]
//! pub struct Stats {
//!     pub requests: u64,
//!     pub errors: u32,
//!     pub load: f64,
//!     pub hist: [u32; 8],
//! }
//!
//! # let pid = std::process::id();
//! # let (stats_name, v_name, a_name) = (format!("doc-lib-s-{pid}"), format!("doc-lib-v-{pid}"), format!("doc-lib-a-{pid}"));
//! // Process A creates; the handle removes the segment when dropped.
//! let stats = Shared::<Stats>::create(&stats_name, Stats::default())?;
//! stats.requests.fetch_add(1, Relaxed);
//! stats.load.store(0.7, Relaxed);
//!
//! // Process B, started any way at all, opens by name; a segment of another layout is refused.
//! let seen = Shared::<Stats>::open(&stats_name)?;
//! assert_eq!(seen.requests.load(Relaxed), 1);
//!
//! // Python's Value and Array.
//! let counter = Value::<i32>::create(&v_name, 0)?;
//! counter.fetch_add(1, Relaxed);
//! let arr = Array::<i32>::create(&a_name, &[1, 2, 3, 4])?;
//! assert_eq!(arr[3].load(Relaxed), 4);
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! The rest of this page is a tour, in the order a program meets things: declare a type,
//! create a segment, open it elsewhere, use its fields, change several at once, read it whole,
//! lock it, what happens when a process dies, arrays, errors, the segment's lifetime, and the
//! `shm` command.
//!
//! # Declare
//!
//! A type that lives in a segment derives [`SharedLayout`]. It must be `#[repr(C)]` (so every
//! process agrees on where each field is), and each field must itself be shareable: a primitive
//! `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool char`, an array `[T; N]` of shareable `T` (to any
//! depth), a derived fieldless enum, a [`Text<N>`](Text), or another derived struct. The derive
//! writes the *atomic twin* — `AtomicStats` for `Stats`, same fields in the same places, each
//! primitive replaced by its atomic — and proves at compile time that both have the same size,
//! alignment and field offsets.
//!
//! ```
//! use shm_core::SharedLayout;
//! use std::sync::atomic::AtomicU64;
//!
//! #[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
//! #[repr(C)]
//! pub struct Point {
//!     pub x: f32,
//!     pub y: f32,
//! }
//!
//! #[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
//! #[repr(C)]
//! pub struct Track {
//!     pub points: [Point; 4], // structs nest, in arrays too
//!     pub seen: u64,
//!     pub grid: [[u8; 3]; 3], // a 2-D array: Python's Array refuses this
//! }
//!
//! // The segment holds the twin: every field an atomic.
//! fn seen(t: &AtomicTrack) -> &AtomicU64 {
//!     &t.seen
//! }
//! assert_eq!(<Track as SharedLayout>::LAYOUT.size, std::mem::size_of::<AtomicTrack>());
//! ```
//!
//! A worker's state and its client, as Apache's scoreboard keeps them: a fieldless enum with an
//! integer `#[repr]` and a `#[default]` variant is one number in the segment, whose twin
//! [`AtomicEnum`] loads, stores, swaps and compare-exchanges variants; a [`Text<N>`](Text) is
//! UTF-8 text of at most `N` bytes held in place. Another process may write any number or bytes
//! there: a number that is no variant reads as the `#[default]` one ([`AtomicEnum::try_load`]
//! gives the number), and bytes that are not UTF-8 as their longest valid prefix. `shm inspect`
//! shows them by name and as text.
//!
//! ```
//! use shm_core::{Shared, SharedLayout, Text};
//! use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
//!
//! #[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
//! #[repr(u8)]
//! pub enum State {
//!     #[default]
//!     Idle,
//!     Busy,
//!     Stopping,
//! }
//!
//! #[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
//! #[repr(C)]
//! pub struct Worker {
//!     pub state: State,
//!     pub client: Text<64>,
//!     pub requests: u64,
//! }
//!
//! # let name = format!("doc-tour-enum-{}", std::process::id());
//! let w = Shared::<Worker>::create(&name, Worker::default())?;
//! // Claim the worker: only one process can turn Idle into Busy.
//! assert_eq!(w.state.compare_exchange(State::Idle, State::Busy, AcqRel, Acquire), Ok(State::Idle));
//! w.update(|w| {
//!     w.client = Text::try_from("10.0.0.7").expect("fits in 64 bytes");
//!     w.requests += 1;
//! });
//! let now = w.snapshot(); // the whole text, never half of another one
//! assert_eq!((now.state, now.client.as_str()), (State::Busy, "10.0.0.7"));
//! assert!(Text::<4>::try_from("10.0.0.7").is_err()); // too long: an error, not a cut
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! What cannot be shared is refused at compile time, with a note on what to write instead:
//! nothing that points into one process's memory (`String`, `Vec`, `Box`, references), nothing
//! of platform-dependent width (`usize`), no struct without `#[repr(C)]`, no enum with fields or
//! without an integer `#[repr]` and a `#[default]` variant.
//!
//! ```compile_fail
//! #[derive(shm_core::SharedLayout)]
//! #[repr(C)]
//! struct Job {
//!     name: String, // error: `String` cannot live in shared memory
//! }
//! ```
//!
//! # Create
//!
//! [`Shared::create`] makes the segment `name` holding an initial value, and fails with
//! [`Error::AlreadyExists`] if the name is taken: exactly one process creates. [`Options`] set
//! the access mode (default `0o600`, this user only), whether the segment outlives its creator's
//! handle, and how long an opener waits for a segment still being created.
//!
//! ```
//! use shm_core::{Options, Shared, SharedLayout};
//!
//! #[derive(SharedLayout, Default)]
//! #[repr(C)]
//! struct Config {
//!     verbose: bool,
//!     level: u8,
//! }
//!
//! # let name = format!("doc-tour-create-{}", std::process::id());
//! let cfg = Shared::<Config>::create(&name, Config { verbose: true, level: 3 })?;
//! assert!(cfg.is_owner());
//! assert!(Shared::<Config>::create(&name, Config::default()).is_err()); // taken
//!
//! # let group = format!("doc-tour-create-g-{}", std::process::id());
//! // Readable and writable by the group too, whatever the umask.
//! let shared_with_group = Shared::<Config>::create_with(&group, Config::default(), &Options::new().mode(0o660))?;
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # Open
//!
//! [`Shared::open`] attaches to an existing segment from any process. Before it trusts a byte it
//! checks the object (a regular file, this user's, not open to more users than asked, large
//! enough), the header (magic, format version, ready), and that the layout written in the segment
//! is the layout of `T`, by a 64-bit fingerprint. On a mismatch, the error names the first field
//! that differs. [`Shared::open_or_create`] opens, or creates if nobody has: when processes race,
//! one creates and the others open once it is ready.
//!
//! ```
//! use shm_core::{Error, Shared, SharedLayout};
//!
//! mod v1 {
//!     #[derive(shm_core::SharedLayout, Debug, Default)]
//!     #[repr(C)]
//!     pub struct Stats {
//!         pub requests: u64,
//!     }
//! }
//! mod v2 {
//!     // `Debug` makes `Shared<Stats>` `Debug` (as for std's `Mutex`), which `unwrap_err` needs.
//!     #[derive(shm_core::SharedLayout, Debug, Default)]
//!     #[repr(C)]
//!     pub struct Stats {
//!         pub requests: u32, // changed since v1
//!     }
//! }
//!
//! # let name = format!("doc-tour-open-{}", std::process::id());
//! let old = Shared::<v1::Stats>::create(&name, v1::Stats::default())?;
//! let e = Shared::<v2::Stats>::open(&name).unwrap_err();
//! assert!(matches!(e, Error::LayoutMismatch { .. }));
//! assert!(e.to_string().contains(
//!     "field `requests`: segment has u64 at offset 0, this program expects u32 at offset 0"
//! ));
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # Field operations
//!
//! A `Shared<T>` derefs to `T`'s twin, so each field is an atomic with std's API: `load`,
//! `store`, `swap`, `compare_exchange`, `fetch_add` and the other read-modify-writes. Each is one
//! atomic step, never blocked by a lock, the fastest way to share a counter. `f32` and `f64`
//! fields are [`AtomicF32`] and [`AtomicF64`] (`fetch_add`, `fetch_max` ... by a compare-and-swap
//! loop); `bool` and `char` fields are [`AtomicBool`] and [`AtomicChar`], which read a valid value
//! whatever bytes another process wrote.
//!
//! ```
//! use shm_core::{Shared, SharedLayout};
//! use std::sync::atomic::Ordering::Relaxed;
//!
//! #[derive(SharedLayout, Default)]
//! #[repr(C)]
//! struct Stats {
//!     requests: u64,
//!     busy: f64,
//!     ready: bool,
//!     hist: [u32; 4],
//! }
//!
//! # let name = format!("doc-tour-fields-{}", std::process::id());
//! let s = Shared::<Stats>::create(&name, Stats::default())?;
//! s.requests.fetch_add(1, Relaxed);
//! s.busy.fetch_add(0.25, Relaxed);
//! s.ready.store(true, Relaxed);
//! s.hist[2].fetch_max(9, Relaxed);
//! assert_eq!(s.hist[2].load(Relaxed), 9);
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! Two field operations are two steps: another process can act between them. `let v =
//! c.load(); c.store(v + 1)` loses updates (the `lock` example counts how many); use one
//! `fetch_add`, or `update`.
//!
//! # Update
//!
//! [`Shared::update`] changes several fields as one: it takes the segment's lock, hands the
//! closure a copy of the value, and stores what the closure changed as a seqlock write, so a
//! [`snapshot`](Shared::snapshot) in any process sees all of the change or none of it. Fields the
//! closure leaves alone are not written, so concurrent `fetch_add`s on them are not lost.
//!
//! ```
//! use shm_core::{Shared, SharedLayout};
//!
//! #[derive(SharedLayout, Default, Clone, Copy)]
//! #[repr(C)]
//! struct Account {
//!     balance: i64,
//!     moves: u64,
//! }
//!
//! # let name = format!("doc-tour-update-{}", std::process::id());
//! let acct = Shared::<Account>::create(&name, Account { balance: 100, moves: 0 })?;
//! let left = acct.update(|a| {
//!     a.balance -= 30;
//!     a.moves += 1;
//!     a.balance
//! });
//! assert_eq!(left, 70);
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # Snapshot
//!
//! [`Shared::snapshot`] returns a consistent copy of the whole value, never half of an
//! `update`. It never takes the lock and never blocks a writer: it reads every field with relaxed
//! atomic loads between two reads of the sequence counter, and reads again if an update ran
//! meanwhile. (A plain memory copy of a segment another process is writing would be undefined
//! behaviour in Rust; this is what replaces it.) A writer killed mid-update cannot make it wait
//! forever: the dead writer's stores are undone from a journal (see [When a process
//! dies](#when-a-process-dies)).
//!
//! ```
//! # use shm_core::{Shared, SharedLayout};
//! # #[derive(SharedLayout, Default, Clone, Copy, Debug, PartialEq)]
//! # #[repr(C)]
//! # struct Account { balance: i64, moves: u64 }
//! # let name = format!("doc-tour-snapshot-{}", std::process::id());
//! # let acct = Shared::<Account>::create(&name, Account { balance: 100, moves: 0 })?;
//! acct.update(|a| { a.balance -= 30; a.moves += 1 });
//! let now: Account = acct.snapshot();
//! assert_eq!(now, Account { balance: 70, moves: 1 });
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # Lock
//!
//! [`Shared::lock`] takes the segment's lock — Python's `get_lock()` — and returns a [`Guard`]
//! that derefs to the twin. The lock is a word in the segment naming the thread that holds it
//! (thread id and start time, no pointers), on a shared futex. If its holder dies (even by
//! SIGKILL), the next locker sees it within milliseconds and takes the lock over, and the lock is
//! *poisoned*, as std's `Mutex` is by a panic: every `lock()` returns `Err(PoisonError)`, which
//! still carries the guard, until [`Shared::clear_poison`], and [`Shared::is_poisoned`] says so.
//! `update` takes the same lock; field operations do not. Across pid namespaces (containers)
//! nobody can tell a holder dead: [`try_lock_for`](Shared::try_lock_for) bounds the wait.
//!
//! ```
//! use shm_core::Value;
//! use std::sync::atomic::Ordering::Relaxed;
//! use std::sync::PoisonError;
//!
//! # let name = format!("doc-tour-lock-{}", std::process::id());
//! let counter = Value::<u64>::create(&name, 0)?;
//! {
//!     // Python: with counter.get_lock(): counter.value += 1
//!     let c = counter.lock().unwrap_or_else(PoisonError::into_inner);
//!     c.store(c.load(Relaxed) + 1, Relaxed);
//! }
//! assert_eq!(counter.load(Relaxed), 1);
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # Waiting
//!
//! [`Shared::wait_until`] blocks until a condition holds for the shared value and returns the
//! consistent snapshot it held for — Python's `Condition.wait_for`, but on the typed state itself,
//! between any processes (not only a parent and its children). The condition is checked at once
//! and after every change: an [`update`](Shared::update) in any process wakes every waiter of the
//! segment, and so does [`notify`](Shared::notify). The waiter sleeps in the kernel meanwhile, on
//! a futex in the segment's header. [`wait_until_timeout`](Shared::wait_until_timeout) gives up
//! after a while; [`Array`] has both, with the condition on a slice.
//!
//! ```
//! use shm_core::{Shared, SharedLayout};
//! use std::time::Duration;
//!
//! #[derive(SharedLayout, Default, Clone, Copy)]
//! #[repr(C)]
//! struct Control {
//!     ready: u32,
//!     go: bool,
//! }
//!
//! # let name = format!("doc-tour-wait-{}", std::process::id());
//! let c = Shared::<Control>::create(&name, Control::default())?;
//! std::thread::scope(|s| {
//!     // Two workers (here threads; processes that open `name` alike).
//!     for _ in 0..2 {
//!         s.spawn(|| {
//!             c.update(|c| c.ready += 1); // wakes the supervisor
//!             c.wait_until(|c| c.go); // the start barrier
//!         });
//!     }
//!     c.wait_until(|c| c.ready == 2);
//!     c.update(|c| c.go = true); // wakes both workers
//! });
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! A change made with field atomics (`store`, `fetch_add`, [`Value::set`]) wakes nobody: call
//! `notify()` after it. Forgetting costs latency, never a hang: a waiter checks again at least
//! every 100 ms, woken or not. An update costs no system call while nobody waits. A writer
//! killed mid-update does not strand the waiters (their snapshot rolls the update back), and a
//! waiter killed while waiting leaves nothing that blocks anyone. The `barrier` example is a
//! supervisor and worker processes with a start barrier and a shutdown flag; `shm wait` does the
//! same from a shell.
//!
//! # When a process dies
//!
//! A process can die anywhere (SIGKILL, a crash), and a thread can panic. What is left, and who
//! is told what, depends on where it was:
//!
//! | where it died | what is left in the segment | who is told what |
//! | --- | --- | --- |
//! | holding [`lock`](Shared::lock)'s [`Guard`] | whatever it stored under the guard: such stores are not journaled, so nothing can be rolled back | the lock is **poisoned** (below) |
//! | inside [`update`](Shared::update)'s closure | the value as before the update: the closure works on a copy and runs before the write window, so nothing was stored | **poisoned** all the same: it held the lock, and from outside this cannot be told from a death holding a guard |
//! | inside `update`'s write window (storing) | half of the update, and the journal holding the old values of what it stored | **nobody**: the next reader (within about a millisecond) or locker rolls the update back from the journal, so the value is exactly the one before it; that is a repair, and the lock is not poisoned (unless the update had no room for its journal: see [Big arrays](#big-arrays-what-a-segment-costs); then it stays half done and the lock is **poisoned**) |
//! | after `update`'s last store, before it unlocked | the whole update | **poisoned**, as for a guard's holder (the lock cannot tell) |
//! | in [`snapshot`](Shared::snapshot) or a field operation | nothing half-done: a reader stores nothing, a field operation is one atomic step that happened or not | nobody; nothing to tell |
//! | in [`wait_until`](Shared::wait_until), asleep | its registration as a waiter, in the header | nobody: writers of the next second or two each make one needless wake call, then find the registration stale and clear it |
//! | a panic in `update`'s closure | the value as before the update: nothing is stored | the panic goes on in the panicking thread; the lock is **poisoned**, as std's `Mutex` is |
//! | a panic while a `Guard` is alive | whatever was stored under the guard | the lock is **poisoned** when the guard is dropped by the unwinding |
//! | a failure that is not a panic, reported with [`Guard::poison`] (Python: an exception raised by `update()`'s function or leaving `with get_lock()`) | whatever was stored under the guard | the lock is **poisoned**, as by a panic |
//!
//! A poisoned lock says: a holder died or panicked, and what it may have half-changed was not
//! repaired. The poisoning is sticky, in every process, until someone clears it:
//!
//! - [`Shared::is_poisoned`] (and [`Array::is_poisoned`], `shm inspect`, Python's `.poisoned`)
//!   is true. It is true from the moment the holder died, before anyone has locked since: the
//!   lock word says its owner is gone while no write was in progress.
//! - [`lock`](Shared::lock) returns `Err(PoisonError)` every time, and `try_lock`/`try_lock_for`
//!   return `Err(TryLockError::Poisoned)`; each carries the guard (the lock is held and usable).
//! - [`update`](Shared::update) (and `Array::write_from`, `shm set`) proceeds — its own write is
//!   whole and journaled — and leaves the poisoning in place.
//! - [`snapshot`](Shared::snapshot) and field operations are not affected.
//! - [`clear_poison`](Shared::clear_poison) ends it, once the program has checked or put right
//!   the value. Nothing else does.
//!
//! ```
//! use shm_core::Value;
//! use std::sync::atomic::Ordering::Relaxed;
//!
//! # let name = format!("doc-tour-poison-{}", std::process::id());
//! let v = Value::<u64>::create(&name, 10)?;
//! let r = std::panic::catch_unwind(|| v.update(|x| { *x = 99; panic!("bad input") }));
//! assert!(r.is_err());
//! assert_eq!(v.load(Relaxed), 10);               // nothing was stored
//! assert!(v.is_poisoned() && v.lock().is_err());  // told, and told again
//! v.update(|x| *x += 1);                         // updates go on
//! assert!(v.is_poisoned());
//! v.clear_poison();                              // the value is known good
//! assert!(v.lock().is_ok());
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! A creator that died is another matter: the segment lives on (its name stays until removed),
//! and [`Shared::creator_alive`] tells a worker that its parent has gone.
//!
//! # Arrays
//!
//! [`Array<T>`] is a run of `T` whose length is chosen when the segment is created, like
//! Python's `Array`. It derefs to `[T::Atomic]`; [`Array::snapshot`], [`Array::update`] and their
//! `_range` forms work on all elements or some; the elements may be arrays or structs. A common
//! shape is a scoreboard: one slot per worker, each aligned to a cache line so that workers do
//! not slow each other down (see the `scoreboard` example).
//!
//! ```
//! use shm_core::{Array, SharedLayout};
//! use std::sync::atomic::Ordering::Relaxed;
//!
//! #[derive(SharedLayout, Default, Clone, Copy, Debug)]
//! #[repr(C, align(64))]
//! struct Slot {
//!     jobs: u64,
//!     failed: u64,
//! }
//!
//! # let name = format!("doc-tour-array-{}", std::process::id());
//! let board = Array::<Slot>::create_zeroed(&name, 4)?; // Python: Array(Slot, 4)
//! board[2].jobs.fetch_add(1, Relaxed);                 // worker 2, lock-free
//! board.update_range(3..4, |s| { s[0].jobs += 1; s[0].failed += 1 });
//! let all: Vec<Slot> = board.snapshot();
//! assert_eq!(all.iter().map(|s| s.jobs).sum::<u64>(), 2);
//!
//! # let m = format!("doc-tour-matrix-{}", std::process::id());
//! let matrix = shm_core::Array::<[f32; 2]>::create(&m, &[[1.0, 0.0], [0.0, 1.0]])?;
//! assert_eq!(matrix[1][1].load(Relaxed), 1.0);
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! ## Big arrays: what a segment costs
//!
//! Its payload, header and a journal area of at most 64 KiB; a write journals what it changes,
//! a larger journal goes to the side journal `<name>.journal-<id>` (kept at the largest such
//! write, removed with the segment). Without room for it a write goes ahead unjournaled (a writer
//! killed while storing then poisons the lock), or a `try_` write returns [`Error::NoSpace`].
//!
//! # Errors
//!
//! Every failure to create, open or remove is an [`Error`] that names the segment. Match on the
//! variant to decide what to do: [`Error::AlreadyExists`] and [`Error::NotFound`] for the
//! name, [`Error::PermissionDenied`] (another user's object, one open to more users than asked,
//! a symlink planted under the name), [`Error::LayoutMismatch`] (another type),
//! [`Error::Corrupt`] (not a valid segment: truncated, garbage, a foreign program's object),
//! [`Error::NoSpace`] (a full `/dev/shm`, reported at create rather than as a later SIGBUS),
//! [`Error::CreatorDied`], [`Error::Timeout`], [`Error::InvalidName`], [`Error::Io`]. No bytes
//! another process writes into a segment, and nothing the file system does, make this crate
//! panic.
//!
//! ```
//! use shm_core::{Error, Value};
//!
//! # let name = format!("doc-tour-errors-{}", std::process::id());
//! match Value::<u32>::open(&name) {
//!     Ok(v) => println!("attached: {v:?}"),
//!     Err(Error::NotFound { .. }) => println!("not created yet"),
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # Lifecycle
//!
//! The handle that created a segment removes it when dropped, unless created with
//! [`Options::keep`]. A handle that only opened a segment never removes it, however its process
//! ends — unlike Python, whose resource tracker may destroy a segment that a process merely
//! attached to (CPython gh-82300). [`remove`] removes a segment by name; processes that have it
//! mapped keep their mapping.
//!
//! A creator killed with SIGKILL never runs its drop, so its segment stays. Its header records
//! the creator's pid and start time, so such a *stale* segment can be recognised — even after
//! the pid is reused — and cleaned up: [`inspect::stale`] lists them, and `shm gc` removes them.
//! [`inspect`] shows the restart pattern for a service that finds its previous run's segment.
//!
//! ```
//! use shm_core::{Options, Value};
//!
//! # let name = format!("doc-tour-keep-{}", std::process::id());
//! let v = Value::<u64>::create_with(&name, 5, &Options::new().keep(true))?;
//! drop(v); // kept: still there
//! assert_eq!(Value::<u64>::open(&name)?.load(std::sync::atomic::Ordering::Relaxed), 5);
//! shm_core::remove(&name)?; // gone
//! # Ok::<(), shm_core::Error>(())
//! ```
//!
//! # The `shm` command
//!
//! Every segment carries the layout of what it holds, so the `shm` command (crate `shm-cli`)
//! shows any segment's fields and values without the program's source. It is built on
//! [`inspect`], which a program can use the same way.
//!
//! ```text
//! shm ls [--all] [--json]             segments: type, size in /dev/shm and payload size, count,
//!                                     creator alive or dead, kept, age
//! shm inspect NAME [--json]           layout (fields, type codes, offsets) and a consistent snapshot
//! shm watch NAME [--interval 500ms]   values refreshed in place, with rates of integer fields
//! shm set NAME FIELD VALUE            write one field (`load`, `hist[3]`, `inner.x`; an enum's
//!                                     variant by name, a text as it is) under the lock,
//!     [--timeout 5s]                  waiting for it at most 5s and saying who holds it
//! shm wait NAME FIELD OP VALUE        block until a field compares true (`done >= 100`): exit 0,
//!     [--timeout 10s]                 or 1 if it did not within the timeout, 2 on an error
//! shm rm NAME... [--force]            remove segments (one whose creator lives only with --force)
//! shm gc [--dry-run] [--prefix P]     remove segments whose creator died without removing them
//! ```
//!
//! # What can be shared
//!
//! Types implementing [`SharedLayout`]: the primitives `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool
//! char` (each with a Python [`TypeCode`]), [`Text<N>`](Text), arrays `[T; N]` of shareable types
//! to any depth, and `#[repr(C)]` structs and fieldless enums (an integer `#[repr]`, a
//! `#[default]` variant) that `#[derive(SharedLayout)]`. Each has an atomic twin that the segment
//! holds: std's integer atomics, and this crate's [`AtomicF32`], [`AtomicF64`], [`AtomicBool`],
//! [`AtomicChar`], [`AtomicEnum`] and [`AtomicText`].
//!
//! # Safety of shared bytes
//!
//! Another process can write anything into a segment. Every access is atomic, so there is no
//! data race; `bool`, `char`, enum and text atomics check the bytes they read; [`Shared::open`]
//! checks the object (owner, mode, size) and the header (magic, version, descriptor,
//! fingerprint) before it trusts any of it. No bytes another process writes make this crate
//! panic, and none are followed as pointers (the lock is words checked before use). Write access
//! is trust all the same (a writer can change the data, or hold the lock): see `SECURITY.md`.
//!
//! # Platform
//!
//! Linux (glibc) is what is built and tested. The segment format is in `docs/FORMAT.md`.

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod array;
mod atomic;
mod bulk;
mod cell;
mod descriptor;
mod error;
mod futex;
mod guard;
mod header;
mod held;
pub mod inspect;
mod journal;
mod layout;
mod lock;
mod options;
mod owner;
mod process;
mod read_only;
mod segment;
mod seqlock;
mod shared;
mod shared_enum;
mod shared_layout;
mod text;
mod type_code;
mod value;
mod values;
mod wait;
mod write;

pub use array::Array;
pub use atomic::{AtomicBool, AtomicChar, AtomicF32, AtomicF64};
pub use bulk::BulkCopy;
pub use descriptor::{Descriptor, DescriptorField, DescriptorKind, DescriptorVariant, ParseError};
pub use error::{Error, Result};
pub use guard::Guard;
pub use layout::{Field, Kind, Layout, Variant, FORMAT_VERSION};
pub use options::Options;
pub use read_only::{ReadOnly, ReadOnlyArray};
pub use segment::{remove, MAX_NAME_LEN};
pub use shared::{Shared, Value};
pub use shared_enum::{AtomicEnum, EnumRepr, SharedEnum};
pub use shared_layout::{Primitive, SharedLayout};
pub use text::{AtomicText, Text, TextTooLong};
pub use type_code::TypeCode;

#[cfg(feature = "derive")]
pub use shm_derive::SharedLayout;

/// What `#[derive(SharedLayout)]` expands to refers to; not a public API.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
