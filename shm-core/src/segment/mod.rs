//! Named POSIX shared-memory segments: the [`Segment`] a handle holds, from `shm_open` to unlink.
//!
//! - `sys`: the system calls (`shm_open`, `fstat`, `fchmod`, `ftruncate`, `posix_fallocate`,
//!   `shm_unlink`, `mmap`), each a safe function;
//! - `access`: which names and modes are allowed, and which objects this user may open;
//! - `create`: making a segment (size and reserve the object, write the header and descriptor,
//!   fill the payload, mark it ready);
//! - `open`: opening one (check the object, map it, wait for a creator still at work, validate
//!   the header and descriptor, compare them with what the handle expects);
//! - here: the `Segment` itself, its accessors, its drop (unmap, and unlink what it created) and
//!   [`remove`].
//!
//! A `Segment` checks the object before it maps it and the header before it trusts it, and hands
//! out only pointers to a payload and a journal it has proven to be in bounds and aligned. The
//! `unsafe` of this module is the system calls (`sys`; `access` asks for the user's ids and
//! groups), the header reference ([`Segment::header`]), and the pointers into the mapping that
//! `create` and `open` make once the bounds are proven. Other modules make references into that
//! memory and argue each from what `Segment` proved: the handles (`shared.rs`, `array.rs`: the
//! atomic twin at the payload), `cell.rs` (the atomic of a width at an offset of the payload or
//! of the journal area: what the journal, the ends of the bulk copies and `inspect` read and write
//! through), the bulk copies (`bulk/`: wide loads and stores over twins), and the lock
//! (`lock.rs`, `owner.rs`, `inspect/holder.rs`: the lock word in the header).

use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::descriptor::Descriptor;
use crate::header::{self, Header};
use crate::journal;
use crate::process::ProcessId;
use crate::{Error, Layout, Result};

mod access;
mod create;
mod open;
mod sys;

pub(crate) use access::validate_name;
pub use access::MAX_NAME_LEN;
use access::{effective_uid, Owner};
use sys::{fstat, identity, shm_open, shm_unlink, Mapping};

/// The element type of a segment: a compile-time layout (typed handles), or a descriptor built
/// at run time (`RawSegment::create`, for bindings) with its encoding, checked by the caller.
#[derive(Clone, Copy)]
pub(crate) enum Element<'a> {
    Static(&'static Layout),
    Dynamic {
        descriptor: &'a Descriptor,
        encoded: &'a [u8],
    },
}

impl Element<'_> {
    fn size(&self) -> usize {
        match self {
            Element::Static(l) => l.size,
            // `RawSegment::create` checked that it fits in the address space.
            Element::Dynamic { descriptor, .. } => descriptor.size as usize,
        }
    }

    fn align(&self) -> usize {
        match self {
            Element::Static(l) => l.align,
            Element::Dynamic { descriptor, .. } => descriptor.align as usize,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Element::Static(l) => l.encode(),
            Element::Dynamic { encoded, .. } => encoded.to_vec(),
        }
    }

    fn descriptor(&self) -> Descriptor {
        match self {
            Element::Static(l) => Descriptor::from_layout(l),
            Element::Dynamic { descriptor, .. } => (*descriptor).clone(),
        }
    }
}

/// How a handle attaches: read and write, or read only (the object opened `O_RDONLY` and mapped
/// `PROT_READ`, so the operating system stops every store; nothing in such an open writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    ReadOnly,
}

/// The element type a handle expects to find in (or put into) a segment.
pub(crate) struct Spec<'a> {
    pub element: Element<'a>,
    pub fingerprint: u64,
}

/// What a segment holds: one value, or an array of some length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One value (`Shared<T>`, `Value<T>`): exactly one element, not an array.
    One,
    /// An array (`Array<T>`) of this many elements.
    Array(usize),
}

impl Shape {
    /// Whether it is an array (of any length, 1 included).
    pub(crate) fn is_array(self) -> bool {
        matches!(self, Shape::Array(_))
    }

    /// The number of elements.
    pub(crate) fn len(self) -> usize {
        match self {
            Shape::One => 1,
            Shape::Array(n) => n,
        }
    }

    /// `a single Stats`, `an array of 4 Stats`.
    fn describe(self, element: &Descriptor) -> String {
        match self {
            Shape::One => format!("a single {element}"),
            Shape::Array(n) => format!("an array of {n} {element}"),
        }
    }
}

/// The shapes an opener accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// Exactly this one: `Shared::open`, and every `open_or_create`.
    Exactly(Shape),
    /// An array of any length: `Array::open`.
    AnyArray,
}

impl Expect {
    fn accepts(self, found: Shape) -> bool {
        match self {
            Expect::Exactly(shape) => shape == found,
            Expect::AnyArray => found.is_array(),
        }
    }

    /// `a single Stats`, `an array of 4 Stats`, `an array of Stats`.
    fn describe(self, element: &Descriptor) -> String {
        match self {
            Expect::Exactly(shape) => shape.describe(element),
            Expect::AnyArray => format!("an array of {element}"),
        }
    }
}

/// A mapped, validated segment. Dropping it unmaps it, and unlinks it if this handle created it
/// and was not told to keep it.
///
/// `repr(C)`, the fields a seqlock read uses first: a `snapshot` or `read_into` inlined into a
/// caller's loop loads them from the handle (in every iteration where the caller reaches the
/// handle through a pointer, as a closure does), and at offsets under 128 each such load, and
/// each load of the counter through [`seq`](Self::seq), is the short form of the instruction,
/// which keeps the caller's loop smaller.
#[repr(C)]
pub(crate) struct Segment {
    /// The header's sequence counter (`header().seq`), its address kept apart so that the
    /// seqlock's two loads of it need no offset.
    seq: NonNull<AtomicU64>,
    payload: NonNull<u8>,
    /// Payload length in bytes.
    payload_len: usize,
    map: Mapping,
    name: String,
    fd: OwnedFd,
    /// The segment's own journal area and its size.
    journal: NonNull<u8>,
    journal_cap: usize,
    /// `journal::whole_entry` of the two lengths: the payload's, if the journal area holds an
    /// entry of the whole payload.
    whole_entry: usize,
    /// Names the side journal (copied from the header at create or open).
    journal_id: u64,
    /// The side journal, once this handle has mapped it.
    side: journal::side::Cache,
    /// The layout of one element, as validated (the journal's undo walks it).
    element: Descriptor,
    /// One value or an array, and how many elements, as validated.
    shape: Shape,
    /// Device and inode of the object: the segment's identity in this process.
    identity: (u64, u64),
    /// The identity as one word, which the locks a thread holds are noted by (`held::key_of`).
    lock_key: u64,
    /// Whether this handle created the segment, and the process that did (a child forked from it
    /// inherits the handle, but not the right to remove the segment).
    owner: bool,
    creator: u32,
    keep: bool,
    /// How the object is open and mapped.
    access: Access,
}

// SAFETY: the mapping is shared memory that every process, and so every thread, accesses only
// through atomics (`SharedLayout`'s contract, and `Header`'s fields); `Mapping` is not `Send` only
// because it holds the mapping's raw pointer, which is used to unmap once, on drop, by whichever
// thread drops the segment; the other raw pointers (`seq`, `payload`, `journal`) point into that
// mapping and are only used for atomic access to it.
unsafe impl Send for Segment {}
// SAFETY: `&Segment` gives only reads of immutable fields and atomic access to the mapping.
unsafe impl Sync for Segment {}

/// Where `Segment::UNMAPPED` points: an address of `PAYLOAD_ALIGN`, never dereferenced.
#[repr(C, align(128))]
struct Unmapped;

const _: () = assert!(
    align_of::<Unmapped>() == header::PAYLOAD_ALIGN
        && sys::MAPPING_ALIGN % header::PAYLOAD_ALIGN == 0
);

impl Segment {
    /// The journal of a handle not yet mapped: aligned as a mapped one is, never accessed (its
    /// length is 0).
    const UNMAPPED: NonNull<u8> = NonNull::<Unmapped>::dangling().cast();

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least `size_of::<Header>()` bytes (checked before mapping),
        // page-aligned (mmap), so aligned for `Header`; every field of `Header` is an atomic
        // integer (the lock area's too), for which any bytes are valid; it lives as long as `self`.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    /// The address of the header's sequence counter in `map`, for [`Segment::seq`].
    fn seq_in(map: &Mapping) -> NonNull<AtomicU64> {
        // SAFETY: as in `header`: the mapping holds a whole `Header` at its start.
        let header = unsafe { &*(map.as_ptr() as *const Header) };
        NonNull::from(&header.seq)
    }

    /// The header's sequence counter, `&header().seq`: what a seqlock read loads twice.
    #[inline(always)]
    pub(crate) fn seq(&self) -> &AtomicU64 {
        // SAFETY: `seq` is `&header().seq` of this segment's mapping (set with the mapping, by
        // `seq_in`, and never changed), which lives as long as `self` and is only accessed
        // atomically.
        unsafe { self.seq.as_ref() }
    }

    /// The payload: `count()` elements of the spec's layout, in bounds and aligned.
    pub(crate) fn payload(&self) -> NonNull<u8> {
        self.payload
    }

    /// Payload length in bytes.
    pub(crate) fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The segment's own journal area: `journal_cap()` bytes, from a multiple of
    /// [`header::PAYLOAD_ALIGN`], which the compiler is told: the alignment checks of the
    /// journal's cells then cost nothing.
    #[inline(always)]
    pub(crate) fn journal(&self) -> NonNull<u8> {
        // SAFETY: `journal` is either `Segment::UNMAPPED` (an address of `PAYLOAD_ALIGN`) or
        // the start of a mapping, a multiple of `sys::MAPPING_ALIGN` (checked by `sys::map`),
        // plus the journal's offset, a multiple of `PAYLOAD_ALIGN` (placed so by `create`;
        // `open` refuses a header that says otherwise); and `PAYLOAD_ALIGN` divides
        // `MAPPING_ALIGN` (asserted at compile time).
        unsafe {
            core::hint::assert_unchecked(
                self.journal.as_ptr() as usize % header::PAYLOAD_ALIGN == 0,
            )
        };
        self.journal
    }

    /// The payload's length if the journal area holds a `Changed` entry of the whole payload,
    /// else `usize::MAX` (see `journal::First`).
    #[inline(always)]
    pub(crate) fn whole_entry(&self) -> usize {
        self.whole_entry
    }

    /// Size of the segment's own journal area in bytes.
    pub(crate) fn journal_cap(&self) -> usize {
        self.journal_cap
    }

    /// The journal id: names the side journal.
    pub(crate) fn journal_id(&self) -> u64 {
        self.journal_id
    }

    /// The side journal as this handle has it mapped.
    pub(crate) fn side_cache(&self) -> &journal::side::Cache {
        &self.side
    }

    /// The layout of one element.
    pub(crate) fn element(&self) -> &Descriptor {
        &self.element
    }

    /// Number of elements in the payload.
    pub(crate) fn count(&self) -> usize {
        self.shape.len()
    }

    /// One value or an array (the header's flag), and how many elements.
    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_owner(&self) -> bool {
        self.owner
    }

    /// Whether this handle is open and mapped read only: nothing may store to its mapping (a
    /// store would fault), nor lock it (locking writes the lock word).
    pub(crate) fn is_read_only(&self) -> bool {
        self.access == Access::ReadOnly
    }

    /// The creator recorded in the header: its pid and start time.
    pub(crate) fn recorded_creator(&self) -> ProcessId {
        let h = self.header();
        ProcessId {
            pid: h.creator_pid.load(Ordering::Relaxed),
            start: h.creator_start.load(Ordering::Relaxed),
        }
    }

    /// Size of the mapped object in bytes.
    pub(crate) fn object_len(&self) -> usize {
        self.map.len()
    }

    /// The object's device and inode as one word (`held::key_of`): equal for every handle of the
    /// same segment in this process, and only for those.
    #[inline(always)]
    pub(crate) fn lock_key(&self) -> u64 {
        self.lock_key
    }

    /// `fstat` of the object this handle has open (owner, mode, size).
    pub(crate) fn stat(&self) -> Result<libc::stat> {
        fstat(&self.name, &self.fd)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.owner || self.keep || std::process::id() != self.creator {
            return;
        }
        // Unlink only the object this handle created: if it was removed and the name reused,
        // the new one is somebody else's. Non-blocking: a FIFO planted under the name must not
        // hang the drop.
        let Ok(path) = validate_name(&self.name) else {
            return;
        };
        let Ok(now) = shm_open(&self.name, &path, libc::O_RDONLY | libc::O_NONBLOCK, 0) else {
            return;
        };
        if fstat(&self.name, &now).is_ok_and(|st| identity(&st) == self.identity) {
            let _ = shm_unlink(&path);
            journal::side::remove(&self.name, self.journal_id);
        }
    }
}

/// Removes the segment `name`, and its side journal if it has one: processes that have it open
/// keep their mapping, and the memory is freed when the last one closes it. New opens fail with
/// [`Error::NotFound`].
///
/// ```
/// # let name = format!("doc-remove-{}", std::process::id());
/// let v = shm_core::Value::<i32>::create_with(&name, 7, &shm_core::Options::new().keep(true))?;
/// drop(v);
/// shm_core::remove(&name)?;
/// assert!(matches!(shm_core::remove(&name), Err(shm_core::Error::NotFound { .. })));
/// # Ok::<(), shm_core::Error>(())
/// ```
pub fn remove(name: &str) -> Result<()> {
    let path = validate_name(name)?;
    let journal_id = journal::side::id_of(&path);
    shm_unlink(&path).map_err(|e| {
        let refused = matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        let me = effective_uid();
        match Owner::of_name(name) {
            // /dev/shm is sticky: only an object's owner (or root) may remove it.
            Some(owner) if refused && owner.uid != me => Error::PermissionDenied {
                name: name.to_owned(),
                reason: format!(
                    "it belongs to {}, not to this user (uid {me}); in /dev/shm (a sticky directory) only its owner or root may remove it",
                    owner.describe()
                ),
            },
            _ => Error::from_os(name, "shm_unlink", e),
        }
    })?;
    if let Some(id) = journal_id {
        journal::side::remove(name, id);
    }
    Ok(())
}
