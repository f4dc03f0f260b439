//! [`ReadOnlyArray<T>`]: an array attached read only, read with the same seqlock read of a
//! read-only mapping as [`ReadOnly`](super::ReadOnly).

use core::fmt;
use core::marker::PhantomData;
use core::ops::RangeBounds;
use core::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{read, twins};
use crate::array::bounds;
use crate::cell::Region;
use crate::inspect::holder;
use crate::inspect::{LockHolder, SegmentInfo};
use crate::lock;
use crate::segment::Segment;
use crate::wait;
use crate::{Result, SharedLayout};

/// An array of `T` in a named segment, attached read only ([`Array::open_readonly`]): as
/// [`ReadOnly`](super::ReadOnly), for arrays. No `Deref` to the twins.
///
/// ```
/// use shm_core::{Array, Options};
///
/// # let name = format!("doc-read-only-array-{}", std::process::id());
/// let a = Array::<i32>::create_with(&name, &[1, 2, 3], &Options::new().mode(0o640))?;
/// let seen = Array::<i32>::open_readonly_with(&name, &Options::new().mode(0o640))?;
/// a.update(|v| v[1] = 20);
/// assert_eq!(seen.snapshot(), vec![1, 20, 3]);
/// assert_eq!(seen.snapshot_range(1..), vec![20, 3]);
/// # Ok::<(), shm_core::Error>(())
/// ```
///
/// [`Array::open_readonly`]: crate::Array::open_readonly
pub struct ReadOnlyArray<T: SharedLayout> {
    seg: Segment,
    _type: PhantomData<fn() -> T>,
}

impl<T: SharedLayout> ReadOnlyArray<T> {
    pub(crate) fn new(seg: Segment) -> ReadOnlyArray<T> {
        debug_assert!(seg.is_read_only());
        ReadOnlyArray {
            seg,
            _type: PhantomData,
        }
    }

    /// A consistent copy of all elements (see [`ReadOnly::snapshot`](super::ReadOnly::snapshot): the same read, which
    /// never writes, with the same behaviour after a writer's death).
    pub fn snapshot(&self) -> Vec<T> {
        self.snapshot_range(..)
    }

    /// A consistent copy of the elements in `range`.
    ///
    /// # Panics
    /// If `range` is out of bounds, as slice indexing does.
    #[inline(always)]
    #[track_caller]
    pub fn snapshot_range(&self, range: impl RangeBounds<usize>) -> Vec<T> {
        let range = bounds(range, self.len());
        let n = self.len();
        let mut out = Vec::with_capacity(range.len());
        // As `Array::snapshot_range`: each run fills the spare capacity; the length is set once.
        let spare = &mut out.spare_capacity_mut()[..range.len()];
        read(&self.seg, |view| {
            // SAFETY: `view` is the payload of a segment validated for `n` elements of `T`, or a
            // copy of it.
            let twins = unsafe { twins::<T>(view, n) };
            for (o, t) in spare.iter_mut().zip(&twins[range.clone()]) {
                o.write(T::load(t, Relaxed));
            }
        });
        // SAFETY: the capacity is at least `range.len()`, and the read wrote each of the first
        // `range.len()` elements (`range` is within the `n` twins: `bounds` checked it). A
        // retried run wrote them all again; the values it overwrote are not dropped, which at
        // worst leaks: `SharedLayout` values are plain data.
        unsafe { out.set_len(range.len()) };
        out
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.seg.count()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first of the [`len`](Self::len) elements in the read-only mapping, which stays
    /// mapped while `self` lives: for a binding that lends the elements to its language as
    /// read-only memory (Python's buffer protocol). Reading through it is plain memory: not
    /// atomic, not consistent with any `update` (use [`snapshot`](Self::snapshot)), and in Rust
    /// only relaxed atomic loads of the twin are allowed on it (see the module's rule). Any
    /// store through it faults: the mapping is `PROT_READ`.
    pub fn as_ptr(&self) -> *const T::Atomic {
        Region::payload(&self.seg)
            .as_ptr()
            .cast::<T::Atomic>()
            .cast_const()
    }

    /// The segment's name, as given.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Whether the lock is poisoned, exactly as [`Array::is_poisoned`](crate::Array::is_poisoned)
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
        let mut info = SegmentInfo::read(&self.seg, self.seg.element())?;
        info.is_array = true;
        Ok(info)
    }

    /// Blocks until `pred` holds for a [`snapshot`](Self::snapshot) of the elements, and returns
    /// it: as [`Array::wait_until`](crate::Array::wait_until), for an observer, which is woken by
    /// an `update` only when a read-write waiter is registered too, and otherwise sees the change
    /// at its next re-check, at most 100 ms later (see [`ReadOnly::wait_until`](super::ReadOnly::wait_until)).
    pub fn wait_until(&self, mut pred: impl FnMut(&[T]) -> bool) -> Vec<T> {
        wait::until(&self.seg, None, || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
        .expect("a wait without a timeout ends only when the predicate holds")
    }

    /// [`wait_until`](Self::wait_until), for at most `timeout`: `None` if `pred` did not hold
    /// by then.
    pub fn wait_until_timeout(
        &self,
        mut pred: impl FnMut(&[T]) -> bool,
        timeout: Duration,
    ) -> Option<Vec<T>> {
        wait::until(&self.seg, Some(timeout), || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
    }
}

/// Shows the segment and a [`snapshot`](ReadOnlyArray::snapshot) of its elements.
impl<T: SharedLayout + fmt::Debug> fmt::Debug for ReadOnlyArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyArray")
            .field("name", &self.name())
            .field("type", &T::LAYOUT.name)
            .field("len", &self.len())
            .field("poisoned", &self.is_poisoned())
            .field("elements", &self.snapshot())
            .finish()
    }
}
