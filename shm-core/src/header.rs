//! The segment header: the fixed part every segment starts with (see `docs/FORMAT.md`).

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64};

/// Bytes 0..8 of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"SHMCORE\0";

/// The init state of a segment being written by its creator.
pub(crate) const STATE_INITIALIZING: u32 = 0;
/// The init state of a segment whose header, descriptor and payload are all written.
pub(crate) const STATE_READY: u32 = 1;

/// Flag: the payload is an array of `elem_count` elements (otherwise exactly one value).
pub(crate) const FLAG_ARRAY: u32 = 1 << 0;
/// Flag: the creator asked to keep the segment after its handle is dropped.
pub(crate) const FLAG_KEEP: u32 = 1 << 1;

/// `journal_where`: the record (if `journal_len` is not 0) is in the segment's journal area.
pub(crate) const JOURNAL_HERE: u32 = 0;
/// `journal_where`: the record is in the side journal object.
pub(crate) const JOURNAL_SIDE: u32 = 1;
/// `journal_where`: a write is in progress that had no room for a record: if its writer dies,
/// what it stored cannot be rolled back.
pub(crate) const JOURNAL_NONE: u32 = 2;

/// Offset of the descriptor: right after the fixed header.
pub(crate) const DESCRIPTOR_OFFSET: usize = size_of::<Header>();

/// The payload starts on a multiple of this (or of the payload's alignment, if larger): two
/// cache lines, so the header's lock and sequence words never share a line (or an adjacent-line
/// prefetch pair) with user data.
pub(crate) const PAYLOAD_ALIGN: usize = 128;

/// The segment's lock: 64 bytes of words, no pointers (see `lock.rs` and docs/FORMAT.md).
#[repr(C, align(64))]
pub(crate) struct LockArea {
    /// The lock word: the owner thread's id (bits 0..30), the waiters bit (31), and the owner's
    /// tag (bits 32..64, the low 32 bits of the thread's start time). Its low 32 bits are the
    /// futex that waiters sleep on.
    pub word: AtomicU64,
    /// Inode number of the creator's pid namespace (0: unknown).
    pub pidns: AtomicU32,
    /// Inode number of the creator's time namespace (0: the kernel has none).
    pub timens: AtomicU32,
    /// Non-zero once a process attached that cannot check owners the way the creator can (other
    /// namespaces, no usable `/proc`): from then on no process takes an owner for dead.
    pub foreign: AtomicU32,
    pub _reserved: [AtomicU32; 11],
}

/// The fixed header. Every field that a process reads or writes after creation is an atomic, so
/// the bytes another process writes can never be a data race in this one.
#[repr(C)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub state: AtomicU32,
    pub fingerprint: AtomicU64,
    pub descriptor_len: AtomicU32,
    pub flags: AtomicU32,
    pub payload_offset: AtomicU64,
    pub payload_len: AtomicU64,
    pub elem_count: AtomicU64,
    pub elem_size: AtomicU64,
    pub creator_pid: AtomicU32,
    /// Where the record of the write in progress is: [`JOURNAL_HERE`], [`JOURNAL_SIDE`], or
    /// [`JOURNAL_NONE`] for a write that had no room for one.
    pub journal_where: AtomicU32,
    pub creator_start: AtomicU64,
    pub created_at: AtomicU64,
    /// Sticky: non-zero when a holder of the lock died or panicked and what it may have
    /// half-changed was not repaired; stored 0 only by `clear_poison`.
    pub poison: AtomicU32,
    pub _reserved1: AtomicU32,
    /// Where the segment's own journal area starts (after the payload).
    pub journal_offset: AtomicU64,
    /// Size of the segment's own journal area in bytes: the object ends with it.
    pub journal_cap: AtomicU64,
    /// Bytes of the record of the write in progress that are complete; 0 when there is none.
    pub journal_len: AtomicU64,
    /// A random number chosen at creation, never 0: it names the side journal object, so that a
    /// segment made again under the same name never shares one.
    pub journal_id: AtomicU64,
    /// Sequence counter of the seqlock; alone on its cache line (with the waiting words, which
    /// every write's end touches too).
    pub seq: AtomicU64,
    /// The change counter: the futex word waiters sleep on, bumped by the end of every write
    /// and by `notify` (see `wait.rs`).
    pub changes: AtomicU32,
    /// Waiter registrations, two slots of `epoch tag << 16 | count` (see `wait.rs`).
    pub waiters: [AtomicU32; 2],
    pub _reserved2: AtomicU32,
    pub _reserved3: [AtomicU64; 5],
    /// The segment's lock.
    pub lock: LockArea,
}

// The byte offsets below are the format: docs/FORMAT.md lists the same numbers.
const _: () = {
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, state) == 12);
    assert!(offset_of!(Header, fingerprint) == 16);
    assert!(offset_of!(Header, descriptor_len) == 24);
    assert!(offset_of!(Header, flags) == 28);
    assert!(offset_of!(Header, payload_offset) == 32);
    assert!(offset_of!(Header, payload_len) == 40);
    assert!(offset_of!(Header, elem_count) == 48);
    assert!(offset_of!(Header, elem_size) == 56);
    assert!(offset_of!(Header, creator_pid) == 64);
    assert!(offset_of!(Header, journal_where) == 68);
    assert!(offset_of!(Header, creator_start) == 72);
    assert!(offset_of!(Header, created_at) == 80);
    assert!(offset_of!(Header, poison) == 88);
    assert!(offset_of!(Header, journal_offset) == 96);
    assert!(offset_of!(Header, journal_cap) == 104);
    assert!(offset_of!(Header, journal_len) == 112);
    assert!(offset_of!(Header, journal_id) == 120);
    assert!(offset_of!(Header, seq) == 128);
    assert!(offset_of!(Header, changes) == 136);
    assert!(offset_of!(Header, waiters) == 140);
    assert!(offset_of!(Header, lock) == 192);
    assert!(offset_of!(LockArea, word) == 0);
    assert!(offset_of!(LockArea, pidns) == 8);
    assert!(offset_of!(LockArea, timens) == 12);
    assert!(offset_of!(LockArea, foreign) == 16);
    assert!(size_of::<LockArea>() == 64);
    assert!(size_of::<Header>() == 256);
};

/// Where the payload of a segment whose descriptor has `descriptor_len` bytes starts.
pub(crate) fn payload_offset(descriptor_len: usize, align: usize) -> usize {
    let align = align.max(PAYLOAD_ALIGN);
    (DESCRIPTOR_OFFSET + descriptor_len).next_multiple_of(align)
}
