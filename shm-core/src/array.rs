//! `Array<T>`: a run of `T` in a named segment, its length chosen at run time.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::ptr::NonNull;

use core::ops::{Bound, Range, RangeBounds};
use core::sync::atomic::Ordering::Relaxed;
use std::sync::{LockResult, TryLockResult};
use std::time::Duration;

use crate::guard::{self, Guard};
use crate::inspect::holder;
use crate::inspect::{LockHolder, SegmentInfo};
use crate::lock;
use crate::segment::{Element, Expect, Segment, Shape, Spec};
use crate::seqlock;
use crate::shared::check_type;
use crate::wait;
use crate::write;
use crate::{bulk, BulkCopy, Options, Result, SharedLayout};

mod journaled;

/// The indices a range bound selects in a slice of `len`, checked like slice indexing.
#[inline]
#[track_caller]
pub(crate) fn bounds(range: impl RangeBounds<usize>, len: usize) -> Range<usize> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1).expect("range start overflows usize"),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1).expect("range end overflows usize"),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    assert!(start <= end, "range starts at {start} but ends at {end}");
    assert!(
        end <= len,
        "range end {end} out of range for an array of length {len}"
    );
    start..end
}

/// The panic of a bulk copy of `n` elements from `start` in an array of `len`: the messages of
/// [`bounds`], out of line and cold.
#[cold]
#[inline(never)]
#[track_caller]
fn copy_out_of_range(start: usize, n: usize, len: usize) -> ! {
    match start.checked_add(n) {
        None => panic!("start + length of the copy overflows usize"),
        Some(end) => panic!("range end {end} out of range for an array of length {len}"),
    }
}

/// `len` values of `T` in a named shared-memory segment: `Array::<i32>::create("a", &[1, 2, 3,
/// 4])` is Python's `multiprocessing.Array('i', [1, 2, 3, 4])`.
///
/// It derefs to `[T::Atomic]`, so every element is an atomic. Elements may themselves be arrays
/// or derived structs, which Python's `Array` cannot hold:
///
/// ```
/// use shm_core::Array;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// # let name = format!("doc-array-{}", std::process::id());
/// let m = Array::<[i32; 2]>::create(&name, &[[1, 2], [3, 4]])?;
/// m[1][0].fetch_add(10, Relaxed);
/// assert_eq!(m[1][0].load(Relaxed), 13);
/// assert_eq!(m.len(), 2);
/// # Ok::<(), shm_core::Error>(())
/// ```
///
/// `Array<T>` is `Debug` when `T` is: it shows the name, type, length, owner, poisoning and a
/// [`snapshot`](Self::snapshot) of the elements.
pub struct Array<T: SharedLayout> {
    seg: Segment,
    _type: PhantomData<fn() -> T>,
}

impl<T: SharedLayout> Array<T> {
    /// Evaluated at compile time for every `T` an `Array` is used with.
    const CHECK: () = check_type::<T>();

    const SPEC: Spec<'static> = {
        let () = Self::CHECK;
        Spec {
            element: Element::Static(&T::LAYOUT),
            fingerprint: T::FINGERPRINT,
        }
    };

    fn init(payload: NonNull<u8>, values: &[T]) {
        let twins = payload.cast::<T::Atomic>();
        for (i, v) in values.iter().enumerate() {
            // SAFETY: a segment created for `values.len()` elements of `T` holds that many
            // `T::Atomic`s from `payload`, aligned, inside the mapping, valid for any bytes.
            let twin = unsafe { twins.add(i).as_ref() };
            T::store(twin, v, core::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Creates the segment `name` holding a copy of `init`. Fails with
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) if the name is taken.
    pub fn create(name: &str, init: &[T]) -> Result<Self> {
        Self::create_with(name, init, &Options::new())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, init: &[T], opts: &Options) -> Result<Self> {
        let shape = Shape::Array(init.len());
        let seg = Segment::create(name, &Self::SPEC, shape, opts, &|p| Self::init(p, init))?;
        Ok(Array {
            seg,
            _type: PhantomData,
        })
    }

    /// Creates the segment `name` holding `len` elements whose bytes are all zero (Python's
    /// `Array('i', 10)`).
    pub fn create_zeroed(name: &str, len: usize) -> Result<Self> {
        Self::create_zeroed_with(name, len, &Options::new())
    }

    /// [`create_zeroed`](Self::create_zeroed) with options.
    pub fn create_zeroed_with(name: &str, len: usize, opts: &Options) -> Result<Self> {
        let seg = Segment::create(name, &Self::SPEC, Shape::Array(len), opts, &|_| {})?;
        Ok(Array {
            seg,
            _type: PhantomData,
        })
    }

    /// Opens the segment `name`, which must hold an array of `T` of any length.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let seg = Segment::open(name, &Self::SPEC, Expect::AnyArray, opts)?;
        Ok(Array {
            seg,
            _type: PhantomData,
        })
    }

    /// Attaches the array `name` read only: see [`ReadOnlyArray`](crate::ReadOnlyArray) and
    /// [`Shared::open_readonly`](crate::Shared::open_readonly), whose checks it makes.
    pub fn open_readonly(name: &str) -> Result<crate::ReadOnlyArray<T>> {
        Self::open_readonly_with(name, &Options::new())
    }

    /// [`open_readonly`](Self::open_readonly) with options.
    pub fn open_readonly_with(name: &str, opts: &Options) -> Result<crate::ReadOnlyArray<T>> {
        let seg = Segment::open_readonly(name, &Self::SPEC, Expect::AnyArray, opts)?;
        Ok(crate::ReadOnlyArray::new(seg))
    }

    /// Opens `name`, or creates it holding a copy of `init`. An existing array must have
    /// `init.len()` elements, else [`Error::LayoutMismatch`](crate::Error::LayoutMismatch).
    pub fn open_or_create(name: &str, init: &[T]) -> Result<Self> {
        Self::open_or_create_with(name, init, &Options::new())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(name: &str, init: &[T], opts: &Options) -> Result<Self> {
        let shape = Shape::Array(init.len());
        let seg =
            Segment::open_or_create(name, &Self::SPEC, shape, opts, &|p| Self::init(p, init))?;
        Ok(Array {
            seg,
            _type: PhantomData,
        })
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        // The payload is exactly `count` elements of `size_of::<T::Atomic>()` bytes (element size
        // times count equals the payload length, checked at create and open): one load and a
        // division by a constant (a shift for the number types), where the shape's count is a
        // branch on "one value or an array" too, in every range check of a caller's loop.
        match size_of::<T::Atomic>() {
            // Never: `check_type` refuses a zero-sized element at compile time; the shape's
            // count all the same, rather than a division by zero.
            0 => self.seg.count(),
            size => self.seg.payload_len() / size,
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment's name, as given.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Whether this handle created the segment (and so removes it when dropped, unless kept).
    pub fn is_owner(&self) -> bool {
        self.seg.is_owner()
    }

    /// A consistent copy of all elements (see [`Shared::snapshot`](crate::Shared::snapshot):
    /// the same seqlock read, over the whole array, with the same behaviour after a death and
    /// inside `update`'s closure, where it returns the stored elements without the closure's
    /// changes).
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
        let twins = &self.atomics()[bounds(range, self.len())];
        let mut out = Vec::with_capacity(twins.len());
        // Each attempt writes every element into the spare capacity, and the length is set
        // once, after the read that counts: no capacity checks or clearing in the attempts.
        let spare = &mut out.spare_capacity_mut()[..twins.len()];
        seqlock::read(&self.seg, || {
            for (o, t) in spare.iter_mut().zip(twins) {
                o.write(T::load(t, Relaxed));
            }
        });
        // SAFETY: the capacity is at least `twins.len()` (`with_capacity`), and the read wrote
        // each of the first `twins.len()` elements. (A retried attempt wrote them all again;
        // the values it overwrote are not dropped, which at worst leaks: `SharedLayout` values
        // are plain data.)
        unsafe { out.set_len(twins.len()) };
        out
    }

    /// Changes several elements at once, as one seqlock write under the segment's lock (see
    /// [`Shared::update`](crate::Shared::update), also for what it does after a death: it
    /// proceeds, rolls back a killed writer's half-done write, and leaves a poisoning in place);
    /// `f` gets a copy of all elements. It wakes every waiter of the segment
    /// ([`wait_until`](Self::wait_until)).
    ///
    /// It journals and stores only the elements `f` changed (of numbers: the primitives), so
    /// changing one element of a large array costs a few copies of the array (loading it, the
    /// copy `f` changes, comparing the two), and a journal of that element. An update that changes
    /// more than the journal area holds (32 KiB of old and new values) uses the side journal; see
    /// [Big arrays](crate#big-arrays-what-a-segment-costs).
    ///
    /// # Panics
    /// If this thread already holds the lock; the panic names the caller's line.
    #[track_caller]
    pub fn update<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        self.update_range(.., f)
    }

    /// Like [`update`](Self::update), for the elements in `range` only.
    ///
    /// # Panics
    /// If `range` is out of bounds, as slice indexing does, or if this thread already holds the
    /// lock; the panic names the caller's line.
    #[track_caller]
    pub fn update_range<R>(
        &self,
        range: impl RangeBounds<usize>,
        f: impl FnOnce(&mut [T]) -> R,
    ) -> R {
        let range = bounds(range, self.len());
        guard::with_update_lock(&self.seg, self.atomics(), |g| {
            write::infallible(self.updating(g, range, f, false))
        })
    }

    /// [`update_range`](Self::update_range) for a caller that holds the lock already, through
    /// `guard` (see [`Shared::update_locked`](crate::Shared::update_locked)).
    ///
    /// # Panics
    /// If `range` is out of bounds, as slice indexing does; if `guard` is the lock of another
    /// segment.
    pub fn update_range_locked<R>(
        &self,
        guard: &Guard<'_, [T::Atomic]>,
        range: impl RangeBounds<usize>,
        f: impl FnOnce(&mut [T]) -> R,
    ) -> R {
        self.check_guard(guard);
        write::infallible(self.updating(guard, bounds(range, self.len()), f, false))
    }

    /// Blocks until `pred` holds for the elements, and returns the [`snapshot`](Self::snapshot)
    /// it held for: checked at once, then after every change (an `update` or `write_from` in
    /// any process, [`notify`](Self::notify)), and at least every 100 ms. See
    /// [`Shared::wait_until`](crate::Shared::wait_until) for what wakes a waiter, what a
    /// forgotten `notify` costs (latency, never a hang) and what happens when a process dies.
    ///
    /// ```
    /// use shm_core::Array;
    /// use std::sync::atomic::Ordering::Relaxed;
    ///
    /// # let name = format!("doc-array-wait-{}", std::process::id());
    /// let ready = Array::<bool>::create_zeroed(&name, 4)?; // one flag per worker
    /// std::thread::scope(|s| {
    ///     for i in 0..4 {
    ///         let ready = &ready;
    ///         s.spawn(move || {
    ///             ready[i].store(true, Relaxed);
    ///             ready.notify();
    ///         });
    ///     }
    ///     let all = ready.wait_until(|r| r.iter().all(|&x| x));
    ///     assert_eq!(all, [true; 4]);
    /// });
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If this thread holds the segment's lock. A panic of `pred` goes on.
    #[track_caller]
    pub fn wait_until(&self, mut pred: impl FnMut(&[T]) -> bool) -> Vec<T> {
        wait::until(&self.seg, None, || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
        .expect("a wait without a timeout ends only when the predicate holds")
    }

    /// [`wait_until`](Self::wait_until), for at most `timeout`: `None` if `pred` did not hold
    /// by then. See [`Shared::wait_until_timeout`](crate::Shared::wait_until_timeout).
    ///
    /// # Panics
    /// If this thread holds the segment's lock.
    #[track_caller]
    pub fn wait_until_timeout(
        &self,
        mut pred: impl FnMut(&[T]) -> bool,
        timeout: Duration,
    ) -> Option<Vec<T>> {
        wait::until(&self.seg, Some(timeout), || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
    }

    /// Wakes every waiter of the segment, in every process (after changes made with element
    /// atomics or [`store_from`](Self::store_from), which wake nobody themselves); see
    /// [`Shared::notify`](crate::Shared::notify).
    pub fn notify(&self) {
        wait::notify(&self.seg)
    }

    /// Takes the segment's lock, blocking; `Err(PoisonError)`, carrying the guard, while the lock
    /// is poisoned. See [`Shared::lock`](crate::Shared::lock).
    ///
    /// # Panics
    /// If this thread already holds the lock; the panic names the caller's line.
    #[inline(always)]
    #[track_caller]
    pub fn lock(&self) -> LockResult<Guard<'_, [T::Atomic]>> {
        guard::lock(&self.seg, self.atomics())
    }

    /// Takes the lock if it is free; see [`Shared::try_lock`](crate::Shared::try_lock).
    pub fn try_lock(&self) -> TryLockResult<Guard<'_, [T::Atomic]>> {
        guard::try_lock(&self.seg, self.atomics(), None)
    }

    /// Takes the lock, waiting at most `timeout`; see
    /// [`Shared::try_lock_for`](crate::Shared::try_lock_for).
    pub fn try_lock_for(&self, timeout: Duration) -> TryLockResult<Guard<'_, [T::Atomic]>> {
        guard::try_lock(&self.seg, self.atomics(), Some(timeout))
    }

    fn check_guard(&self, guard: &Guard<'_, [T::Atomic]>) {
        assert!(
            core::ptr::eq(guard.segment(), &self.seg),
            "segment `{}`: called with the guard of another segment",
            self.name()
        );
    }

    /// What the header and the object say now: creator and whether it lives, kept, mode ...
    /// (what `shm ls` shows of the segment).
    pub fn info(&self) -> Result<SegmentInfo> {
        SegmentInfo::read(&self.seg, self.seg.element())
    }

    /// Whether the lock is poisoned (a holder died or panicked and nothing was repaired), until
    /// [`clear_poison`](Self::clear_poison); see [`Shared::is_poisoned`](crate::Shared::is_poisoned).
    pub fn is_poisoned(&self) -> bool {
        lock::is_poisoned(self.seg.header())
    }

    /// Clears the poisoning, so that [`lock`](Self::lock) returns `Ok` again; see
    /// [`Shared::clear_poison`](crate::Shared::clear_poison).
    pub fn clear_poison(&self) {
        guard::clear_poison(&self.seg)
    }

    /// Whether the process that created the segment still runs; see
    /// [`Shared::creator_alive`](crate::Shared::creator_alive).
    pub fn creator_alive(&self) -> bool {
        self.seg.recorded_creator().is_alive()
    }

    /// Who holds the segment's lock now, or `None`; see
    /// [`Shared::lock_holder`](crate::Shared::lock_holder).
    pub fn lock_holder(&self) -> Option<LockHolder> {
        holder::holder(self.seg.header())
    }

    /// The segment behind this handle.
    #[cfg(test)]
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The elements' atomic twins (what `*array` gives).
    #[inline]
    pub fn atomics(&self) -> &[T::Atomic] {
        // SAFETY: `Segment` proved at create or open that the payload holds `count()` elements
        // of `T::Atomic` (fingerprint, element size and count, payload length within the
        // mapping), which is `len()` (see there), aligned for it; any bytes are valid, all access is atomic, and the mapping
        // lives as long as `self`. For zero elements the pointer is non-null and aligned.
        unsafe {
            std::slice::from_raw_parts(self.seg.payload().cast::<T::Atomic>().as_ptr(), self.len())
        }
    }
}

/// Bulk copies, for arrays of numbers: the speed of `memcpy`, the consistency of `snapshot` and
/// `update`.
impl<T: BulkCopy> Array<T> {
    /// The indices `start..start + n`, checked like slice indexing: one comparison and branch
    /// when `start` is known, two otherwise, and the panic out of line, so that nothing is kept
    /// in memory for its message in a caller's loop.
    #[inline(always)]
    #[track_caller]
    fn bulk_range(&self, start: usize, n: usize) -> Range<usize> {
        let len = self.len();
        if start > len || n > len - start {
            copy_out_of_range(start, n, len);
        }
        start..start + n
    }

    /// The twins of the elements `start..start + n`, checked as [`bulk_range`](Self::bulk_range)
    /// does, once.
    #[inline(always)]
    #[track_caller]
    fn bulk_twins(&self, start: usize, n: usize) -> &[T::Atomic] {
        let range = self.bulk_range(start, n);
        // SAFETY: `bulk_range` returned `start..start + n` only if `start + n <= len()` without
        // overflow, so the range is in bounds of `atomics()`.
        unsafe { self.atomics().get_unchecked(range) }
    }

    /// Copies the elements `start..start + out.len()` into `out`: a consistent copy, like
    /// [`snapshot_range`](Self::snapshot_range) (no [`update`](Self::update) or
    /// [`write_from`](Self::write_from) of any process is half-seen), into a buffer you provide,
    /// at close to `memcpy` speed.
    ///
    /// Each element is read atomically; fields changed with their own atomics (`fetch_add` ...)
    /// meanwhile are not ordered with respect to one another, as for `snapshot`. Like every
    /// seqlock read it is retried while a write is in progress, so a copy that takes longer than
    /// the gap between two writes of the segment may wait until the writes pause.
    ///
    /// ```
    /// use shm_core::Array;
    ///
    /// # let name = format!("doc-read-into-{}", std::process::id());
    /// let a = Array::<u32>::create(&name, &[1, 2, 3, 4, 5])?;
    /// let mut middle = [0; 3];
    /// a.read_into(1, &mut middle);
    /// assert_eq!(middle, [2, 3, 4]);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `start + out.len()` is past the end, as slice indexing does. (Inside `update`'s closure
    /// it neither panics nor waits, as [`snapshot`](Self::snapshot).)
    #[inline(always)]
    #[track_caller]
    pub fn read_into(&self, start: usize, out: &mut [T]) {
        let twins = self.bulk_twins(start, out.len());
        seqlock::read(&self.seg, || bulk::load(twins, out));
    }

    /// Writes `values` into the elements `start..start + values.len()`, as one seqlock write
    /// under the segment's lock, like [`update_range`](Self::update_range): a
    /// [`snapshot`](Self::snapshot) or [`read_into`](Self::read_into) in any process sees all of
    /// it or none. A concurrent field atomic on an element of the range is overwritten. Like
    /// `update`, it proceeds when a previous holder of the lock died, and leaves the poisoning in place,
    /// and it wakes every waiter of the segment ([`wait_until`](Self::wait_until)).
    ///
    /// It journals the old values of the range, piece by piece right before storing each piece,
    /// in the journal area or, beyond 64 KiB, in the side journal (see
    /// [Big arrays](crate#big-arrays-what-a-segment-costs)): about twice the memory traffic of
    /// [`store_from`](Self::store_from).
    ///
    /// ```
    /// use shm_core::Array;
    ///
    /// # let name = format!("doc-write-from-{}", std::process::id());
    /// let a = Array::<f64>::create_zeroed(&name, 4)?;
    /// a.write_from(2, &[0.5, 1.5]);
    /// assert_eq!(a.snapshot(), [0.0, 0.0, 0.5, 1.5]);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `start + values.len()` is past the end, as slice indexing does; if this thread already
    /// holds the lock.
    #[track_caller]
    pub fn write_from(&self, start: usize, values: &[T]) {
        let guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.write_from_locked(&guard, start, values);
    }

    /// [`write_from`](Self::write_from) for a caller that holds the lock already, through
    /// `guard` (see [`Shared::update_locked`](crate::Shared::update_locked)).
    ///
    /// # Panics
    /// If `start + values.len()` is past the end; if `guard` is the lock of another segment.
    pub fn write_from_locked(&self, guard: &Guard<'_, [T::Atomic]>, start: usize, values: &[T]) {
        self.check_guard(guard);
        write::infallible(self.writing(guard, start, values, false))
    }

    /// Stores `values` into the elements `start..start + values.len()` with relaxed atomic
    /// stores, at close to `memcpy` speed: what storing each element with its own atomics does
    /// (`copy_from_slice` onto the atomics), not one update. It takes no lock and never waits; a
    /// concurrent [`snapshot`](Self::snapshot) may see some of the new elements and not others,
    /// and a concurrent [`update`](Self::update) may overwrite some of them. For one consistent
    /// write, use [`write_from`](Self::write_from), which costs about twice the memory traffic
    /// (it copies the old values into the journal first, so that a writer killed half-way is
    /// rolled back).
    ///
    /// ```
    /// use shm_core::Array;
    ///
    /// # let name = format!("doc-store-from-{}", std::process::id());
    /// let a = Array::<u16>::create_zeroed(&name, 4)?;
    /// a.store_from(1, &[7, 8, 9]);
    /// assert_eq!(a.snapshot(), [0, 7, 8, 9]);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `start + values.len()` is past the end, as slice indexing does.
    #[track_caller]
    pub fn store_from(&self, start: usize, values: &[T]) {
        let twins = self.bulk_twins(start, values.len());
        bulk::store(values, twins);
    }
}

impl<T: SharedLayout> Deref for Array<T> {
    type Target = [T::Atomic];

    fn deref(&self) -> &[T::Atomic] {
        self.atomics()
    }
}

/// Shows the segment and, from a [`snapshot`](Array::snapshot), its elements:
/// `Array { name: "a", type: "i32", len: 2, owner: true, poisoned: false, value: [1, 2] }`.
impl<T: SharedLayout + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("name", &self.name())
            .field("type", &T::LAYOUT.name)
            .field("len", &self.len())
            .field("owner", &self.is_owner())
            .field("poisoned", &self.is_poisoned())
            .field("value", &self.snapshot())
            .finish()
    }
}
