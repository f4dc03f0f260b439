//! Segments seen without their Rust type: what the `shm` command is built on.
//!
//! Every segment carries the descriptor of its layout in its header, so a program that does not
//! have the Rust type can still find segments, read them and change a field:
//!
//! - [`list`] and [`examine`] say what each object in `/dev/shm` is: a segment of this library
//!   ([`SegmentInfo`]: type, size, creator and whether it lives, kept or not, age), one that
//!   cannot be used (corrupt, or its creator died while creating it), another user's, or
//!   something else;
//! - [`RawSegment`] opens a segment of any layout: [`snapshot`](RawSegment::snapshot) reads a
//!   consistent [`Datum`] tree, [`set`](RawSegment::set) writes one field parsed from text
//!   ([`set_timeout`](RawSegment::set_timeout) waits for the lock at most so long), and
//!   [`lock_holder`](RawSegment::lock_holder) says which process holds the lock;
//! - [`stale`] finds segments whose creator died without removing them (killed with SIGKILL,
//!   say), and [`Stale::remove`] removes one.
//!
//! # Restarting a service whose segment may be stale
//!
//! A service that creates its segment at startup meets, after a crash, the segment its previous
//! run left behind. Either reopen it and keep its values (create it with
//! [`Options::keep`](crate::Options::keep) and use `open_or_create`), or start afresh: remove
//! what a dead creator left, then create.
//!
//! ```
//! use shm_core::inspect;
//! use shm_core::{Error, Value};
//!
//! fn start(name: &str) -> shm_core::Result<Value<u64>> {
//!     match Value::<u64>::create(name, 0) {
//!         Err(Error::AlreadyExists { .. }) => {
//!             // Ours to replace only if its creator is dead; a live one is another instance.
//!             if let Some(stale) = inspect::examine(name)?.stale() {
//!                 stale.remove()?;
//!             }
//!             Value::<u64>::create(name, 0)
//!         }
//!         other => other,
//!     }
//! }
//! # let name = format!("doc-restart-{}", std::process::id());
//! let counter = start(&name)?;
//! // A second instance is refused while the first lives.
//! assert!(matches!(start(&name), Err(Error::AlreadyExists { .. })));
//! # drop(counter);
//! # Ok::<(), shm_core::Error>(())
//! ```

mod datum;
pub(crate) mod holder;
mod list;
mod path;
mod raw;
mod value;

pub use datum::Datum;
pub use holder::LockHolder;
pub use list::{examine, list, stale, EntryKind, ListEntry, SegmentInfo, Stale, SHM_DIR};
pub use raw::{FieldError, RawSegment, Written};
