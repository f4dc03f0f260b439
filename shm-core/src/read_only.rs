//! Observers that cannot write: [`ReadOnly<T>`] and [`ReadOnlyArray<T>`], and the seqlock read of
//! a segment mapped read only.
//!
//! A read-only handle's object is opened `O_RDONLY` and mapped `PROT_READ`: the operating system
//! itself stops every store. Such a handle cannot take the segment's lock (locking writes the lock
//! word) nor roll back a dead writer's update in the segment (that writes the payload). So its
//! reader waits out a live writer, and when the writer of an unfinished update is dead it computes
//! the rolled-back value in a copy of its own, from the journal, and returns that: the same value
//! a read-write reader would roll the segment back to.
//!
//! # Which atomic loads a read-only mapping allows
//!
//! Rust's rule (the `std::sync::atomic` module documentation, section "Atomic accesses to
//! read-only memory"): every atomic access to memory mapped read only is undefined behaviour,
//! except "sufficiently small" atomic loads with `Ordering::Relaxed`; the size limit is 8 bytes on
//! `x86_64`, `aarch64`, `loongarch64`, `mips64`, `mips64r6`, `powerpc64`, `riscv64`, `sparc64`
//! and `s390x`, 4 bytes on the listed 32-bit targets, and nothing is promised on any other
//! target. Loads with another ordering (`Acquire`, `SeqCst`) and every read-modify-write
//! (`compare_exchange`, `fetch_*`), even one that would fail, may fault.
//!
//! So everything that touches a read-only mapping makes relaxed loads of 1, 2, 4 or 8 bytes (every
//! primitive of a segment has one of these widths, and so has every header word) and gets its
//! ordering from fences; [`check_target`] refuses a read-only open where 8-byte loads are not
//! promised (the header's words are 8 bytes).

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::fence;
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{Duration, Instant};

use crate::cell::Region;
use crate::header::Header;
use crate::inspect::holder;
use crate::inspect::{LockHolder, SegmentInfo};
use crate::journal::{self, each_primitive};
use crate::lock;
use crate::segment::Segment;
use crate::wait;
use crate::{Error, Result, SharedLayout};

mod array;
pub use array::ReadOnlyArray;

/// The widest relaxed atomic load Rust allows on read-only memory on this target, in bytes (the
/// table of `std::sync::atomic`'s "Atomic accesses to read-only memory"); 0 where it promises
/// nothing.
const LOAD_LIMIT: usize = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "loongarch64",
    target_arch = "mips64",
    target_arch = "mips64r6",
    target_arch = "powerpc64",
    target_arch = "riscv64",
    target_arch = "sparc64",
    target_arch = "s390x"
)) {
    8
} else if cfg!(any(
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "loongarch32",
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "powerpc",
    target_arch = "riscv32",
    target_arch = "sparc",
    target_arch = "hexagon"
)) {
    4
} else {
    0
};

/// Refuses a read-only open on a target where Rust does not allow the 8-byte relaxed loads of
/// the header's words on read-only memory.
pub(crate) fn check_target(name: &str) -> Result<()> {
    if LOAD_LIMIT >= 8 {
        return Ok(());
    }
    Err(Error::Io {
        name: name.to_owned(),
        op: "open_readonly",
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "on this target Rust does not allow 8-byte atomic loads on read-only memory; attach read-write",
        ),
    })
}

/// A relaxed load of `seq` and an acquire fence: an acquire load, in the form a read-only mapping
/// allows.
#[inline(always)]
fn seq(h: &Header) -> u64 {
    let s = h.seq.load(Relaxed);
    fence(Acquire);
    s
}

/// How long the counter must stay odd before a reader asks whether its writer died.
const DEAD_AFTER: Duration = Duration::from_millis(1);

/// Runs `read` on the payload until it ran while no write was in progress, and returns its
/// result; for a read-write handle, the seqlock read of `seqlock::read`, for a read-only one
/// [`read`].
pub(crate) fn read_any<R>(seg: &Segment, mut f: impl FnMut(Region<'_>) -> R) -> R {
    if seg.is_read_only() {
        read(seg, f)
    } else {
        let payload = Region::payload(seg);
        crate::seqlock::read(seg, || f(payload))
    }
}

/// The seqlock read of a read-only handle: runs `read` on the payload until it ran while no
/// write was in progress and returns its result; it never takes the lock and never writes.
///
/// While a write is in progress it backs off and looks again: a live writer ends its write. When
/// the counter has been odd for a millisecond and the lock word says its writer is gone (the
/// lock free, or an owner this process may judge and finds dead: see `owner.rs`), `read` runs on a
/// copy of the payload in which this reader has undone the dead writer's stores from the journal
/// (as `journal::undo` would in the segment): the value from before that update, or — if the
/// writer died after its last store — the value after it, never a mix. The copy is used only if
/// the same write window is still open, with the same journal record, once it is made.
///
/// As `seqlock::read`, what the caller's code gets is the fast path alone, always inlined; the
/// rest is in [`read_slow`], out of line, cold and not generic.
#[inline(always)]
pub(crate) fn read<R>(seg: &Segment, mut read: impl FnMut(Region<'_>) -> R) -> R {
    let counter = seg.seq();
    let before = counter.load(Relaxed);
    fence(Acquire);
    let r = read(Region::payload(seg));
    // Orders the loads in `read` before the second counter read.
    fence(Acquire);
    // Even at the start and unchanged, in one comparison (see `seqlock::read`).
    if counter.load(Relaxed) == before & !1 {
        return r;
    }
    let mut out = None;
    let slot = &mut out;
    // `move`: `read` goes into the slow path's closure, so that only this cold block puts it in
    // memory (see `seqlock::read`).
    read_slow(seg, &mut move |view| *slot = Some(read(view)));
    match out {
        Some(r) => r,
        None => no_read(),
    }
}

/// The slow path of [`read`], after an attempt that found the counter odd or lost a race: runs
/// `read` until one run saw no write (or ran on a rolled-back copy), and returns after that run.
#[cold]
#[inline(never)]
fn read_slow(seg: &Segment, read: &mut dyn FnMut(Region<'_>)) {
    let h = seg.header();
    let payload = Region::payload(seg);
    let mut spins = 0u32;
    let mut odd: Option<(u64, Instant)> = None;
    loop {
        let before = seq(h);
        if before & 1 == 0 {
            odd = None;
            read(payload);
            // Orders the loads in `read` before the second counter read.
            fence(Acquire);
            if h.seq.load(Relaxed) == before {
                return;
            }
            // Lost a race with a writer; no lock to fall back on: back off, so that a read
            // slower than the gap between writes finds a gap in the end.
            backoff(&mut spins);
            continue;
        }
        match odd {
            Some((s, since)) if s == before => {
                if since.elapsed() >= DEAD_AFTER {
                    if let Some(copy) = rolled_back(seg, before) {
                        read(copy.region());
                        return;
                    }
                    odd = Some((before, Instant::now()));
                }
            }
            _ => odd = Some((before, Instant::now())),
        }
        backoff(&mut spins);
    }
}

/// [`read`]'s result is missing: `read_slow` returned without a run of `read`, which it never
/// does.
#[cold]
#[inline(never)]
fn no_read() -> ! {
    unreachable!("a read-only seqlock read ended without reading")
}

fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        std::hint::spin_loop();
    } else if *spins < 128 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Whether the writer that holds (or held) the lock is gone, as the lock word says: nobody holds
/// the lock, or its holder died. Only loads (see `holder::holder`).
fn writer_gone(h: &Header) -> bool {
    holder::holder(h).is_none_or(|holder| !holder.alive)
}

/// If the writer of the write window `odd` is gone: a copy of the payload with its unfinished
/// update undone from the journal; `None` if it is not gone, or the window or the journal record
/// changed while the copy was made (a read-write process rolled it back meanwhile, or a new write
/// began), in which case the caller looks again.
fn rolled_back(seg: &Segment, odd: u64) -> Option<LocalCopy> {
    let h = seg.header();
    if !writer_gone(h) || seq(h) != odd {
        return None;
    }
    let (place, len) = journal::record_of(seg);
    let payload_len = seg.payload_len();
    let elem = seg.element();
    let copy = LocalCopy::new(payload_len, elem.align as usize);
    let mine = copy.region();
    let payload = Region::payload(seg);
    let all = 0..payload_len as u64;
    let size = elem.size;
    // Cannot fail on a validated segment (its primitives lie inside and aligned); the copy is
    // refused if it does.
    let mut ok = true;
    let mut copy_cell = |from: Region<'_>, offset: u64, width| {
        // SAFETY: `width` is the width the segment's validated descriptor gives the primitive at
        // `offset`, the width of every access to it in the payload; the copy is this reader's
        // own, accessed only here. Loads of the mapping are relaxed and at most 8 bytes wide (see
        // the module's rule).
        let cells = unsafe {
            (
                from.cell(offset as usize, width),
                mine.cell(offset as usize, width),
            )
        };
        match cells {
            (Some(src), Some(dst)) => dst.store(src.load()),
            _ => ok = false,
        }
    };
    let count = seg.count() as u64;
    for k in 0..count {
        each_primitive(elem, k * size, &all, &mut |offset, width| {
            copy_cell(payload, offset, width)
        });
    }
    // As `journal::undo`, here in the copy (what it cannot roll back it leaves as it is, as a
    // read-write reader would, which would also poison the lock).
    journal::restore(seg, mine, place, len);
    // Orders every load above before the checks: a rollback by another process, or a new write,
    // that any of them saw shows below.
    fence(Acquire);
    let same = seq(h) == odd && journal::record_of(seg) == (place, len) && writer_gone(h);
    (ok && same).then_some(copy)
}

/// A reader's own copy of a payload, aligned for its elements, zeroed; freed on drop.
struct LocalCopy {
    ptr: NonNull<u8>,
    len: usize,
    layout: std::alloc::Layout,
}

impl LocalCopy {
    fn new(len: usize, align: usize) -> LocalCopy {
        // A validated element's alignment is a power of two of at most a page, and the payload
        // fits in the address space (it is mapped).
        let layout = std::alloc::Layout::from_size_align(len.max(1), align.max(8))
            .expect("a validated payload's size and alignment make a layout");
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        LocalCopy { ptr, len, layout }
    }

    fn region(&self) -> Region<'_> {
        // SAFETY: `ptr..ptr + len` is this copy's allocation, which lives as long as the
        // returned region borrows `self`; only atomics (cells and twins) access it.
        unsafe { Region::new(self.ptr, self.len) }
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The twins of `n` elements of `T` at the start of `view` (the payload, or a reader's copy of
/// it).
///
/// # Safety
/// `view` must be the payload of a segment validated for `n` elements of `T`, or a copy of it
/// made by `rolled_back` (as long, aligned for the element).
unsafe fn twins<T: SharedLayout>(view: Region<'_>, n: usize) -> &[T::Atomic] {
    debug_assert!(view.len() >= n * core::mem::size_of::<T::Atomic>());
    // SAFETY: by the caller's contract `view` holds `n` twins of `T`, aligned; any bytes are a
    // valid `T::Atomic`, all access is atomic, and the region's bytes live as long as it.
    unsafe { core::slice::from_raw_parts(view.as_ptr().cast::<T::Atomic>(), n) }
}

/// One `T` in a named segment, attached read only ([`Shared::open_readonly`]): the object is
/// opened `O_RDONLY` and mapped `PROT_READ`, so the operating system stops every store, and a
/// user who may only read the segment (in the group of a segment created with
/// `Options::new().mode(0o640)`, say) can attach.
///
/// An observer reads consistent values ([`snapshot`](Self::snapshot)) and asks about the segment;
/// it cannot store, lock, or repair. There is no `Deref` to the atomic twin (its `store` and
/// `fetch_add` would write to read-only memory):
///
/// ```compile_fail
/// use std::sync::atomic::Ordering::Relaxed;
/// let v = shm_core::Value::<u64>::open_readonly("x").unwrap();
/// v.store(1, Relaxed); // no such method: `ReadOnly` does not deref to the twin
/// ```
///
/// ```
/// use shm_core::{Options, Value};
///
/// # let name = format!("doc-read-only-{}", std::process::id());
/// let v = Value::<u64>::create_with(&name, 7, &Options::new().mode(0o640))?;
/// let seen = Value::<u64>::open_readonly_with(&name, &Options::new().mode(0o640))?;
/// v.update(|x| *x += 1);
/// assert_eq!(seen.snapshot(), 8);
/// # Ok::<(), shm_core::Error>(())
/// ```
///
/// [`Shared::open_readonly`]: crate::Shared::open_readonly
pub struct ReadOnly<T: SharedLayout> {
    seg: Segment,
    _type: PhantomData<fn() -> T>,
}

impl<T: SharedLayout> ReadOnly<T> {
    pub(crate) fn new(seg: Segment) -> ReadOnly<T> {
        debug_assert!(seg.is_read_only());
        ReadOnly {
            seg,
            _type: PhantomData,
        }
    }

    /// A consistent copy of the value: no `update` of any process is half-seen.
    ///
    /// A seqlock read that never writes: it retries while an `update` is in progress. If the
    /// writer of that update was killed mid-way, the reader finds out within about a millisecond
    /// (the lock word says the writer is gone while its write never finished) and returns the
    /// value rolled back in a copy of its own from the segment's undo journal — the value from
    /// before the update, or after it if the writer died after its last store, never a mix. The
    /// segment itself stays as it is until a read-write process rolls it back. It never waits
    /// for the lock; a writer that lives keeps it waiting until it ends its write.
    #[inline(always)]
    pub fn snapshot(&self) -> T {
        read(&self.seg, |view| {
            // SAFETY: `view` is the payload of a segment validated for one `T`, or a copy of it.
            let twin = unsafe { &twins::<T>(view, 1)[0] };
            T::load(twin, Relaxed)
        })
    }

    /// The segment's name, as given.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Number of values: always 1 (for symmetry with [`ReadOnlyArray::len`]).
    pub fn len(&self) -> usize {
        1
    }

    /// Always `false`: a segment holds one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the lock is poisoned, exactly as [`Shared::is_poisoned`](crate::Shared::is_poisoned)
    /// says; takes no lock and changes nothing.
    pub fn is_poisoned(&self) -> bool {
        lock::is_poisoned(self.seg.header())
    }

    /// Whether the process that created the segment still runs.
    pub fn creator_alive(&self) -> bool {
        self.seg.recorded_creator().is_alive()
    }

    /// Who holds the segment's lock now, as its lock word says; `None` if nobody does.
    pub fn lock_holder(&self) -> Option<LockHolder> {
        holder::holder(self.seg.header())
    }

    /// What the header and the object say now (what `shm ls` shows of the segment).
    pub fn info(&self) -> Result<SegmentInfo> {
        SegmentInfo::read(&self.seg, self.seg.element())
    }

    /// Blocks until `pred` holds for a [`snapshot`](Self::snapshot), and returns it: as
    /// [`Shared::wait_until`](crate::Shared::wait_until), for an observer.
    ///
    /// An observer cannot register as a waiter (registering writes to the segment's header), so
    /// an `update` wakes it only when a read-write waiter of the segment is registered too;
    /// otherwise it sees the change at its next re-check, at most 100 ms later.
    ///
    /// ```
    /// use shm_core::Value;
    ///
    /// # let name = format!("doc-read-only-wait-{}", std::process::id());
    /// let v = Value::<u32>::create(&name, 0)?;
    /// let seen = Value::<u32>::open_readonly(&name)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| v.update(|x| *x = 3));
    ///     assert_eq!(seen.wait_until(|x| *x == 3), 3);
    /// });
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn wait_until(&self, mut pred: impl FnMut(&T) -> bool) -> T {
        wait::until(&self.seg, None, || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
        .expect("a wait without a timeout ends only when the predicate holds")
    }

    /// [`wait_until`](Self::wait_until), for at most `timeout`: `None` if `pred` did not hold
    /// by then.
    pub fn wait_until_timeout(
        &self,
        mut pred: impl FnMut(&T) -> bool,
        timeout: Duration,
    ) -> Option<T> {
        wait::until(&self.seg, Some(timeout), || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
    }
}

/// Shows the segment and a [`snapshot`](ReadOnly::snapshot) of its value.
impl<T: SharedLayout + fmt::Debug> fmt::Debug for ReadOnly<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnly")
            .field("name", &self.name())
            .field("type", &T::LAYOUT.name)
            .field("poisoned", &self.is_poisoned())
            .field("value", &self.snapshot())
            .finish()
    }
}
