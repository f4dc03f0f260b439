//! `Shared<T>` (and `Value<T>`): one `T` in a named segment.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::ptr::NonNull;

use core::sync::atomic::Ordering::Relaxed;
use std::sync::{LockResult, TryLockResult};
use std::time::Duration;

use crate::guard::{self, Guard};
use crate::inspect::SegmentInfo;
use crate::segment::{Element, Segment, Spec};
use crate::seqlock;
use crate::shared_layout::duplicate;
use crate::{Options, Result, SharedLayout};

/// Compile-time limits every type placed in a segment must meet.
pub(crate) const fn check_type<T: SharedLayout>() {
    assert!(
        core::mem::size_of::<T::Atomic>() == T::LAYOUT.size
            && core::mem::align_of::<T::Atomic>() == T::LAYOUT.align,
        "SharedLayout::LAYOUT does not describe the atomic twin"
    );
    assert!(
        T::LAYOUT.size != 0,
        "a zero-sized type cannot be placed in a segment"
    );
    assert!(
        T::LAYOUT.align <= 4096,
        "a segment cannot align its payload to more than a page (4096 bytes)"
    );
    assert!(
        T::LAYOUT.encoded_len() <= crate::layout::MAX_DESCRIPTOR_LEN,
        "the layout descriptor of this type is larger than 64 KiB"
    );
}

/// Writes `value` into the zeroed payload of a segment being created.
pub(crate) fn init_one<T: SharedLayout>(payload: NonNull<u8>, value: &T) {
    // SAFETY: the payload of a segment created for `T` is `size_of::<T::Atomic>()` bytes,
    // aligned for it, inside the mapping, and any bytes are a valid `T::Atomic`.
    let twin = unsafe { payload.cast::<T::Atomic>().as_ref() };
    T::store(twin, value, core::sync::atomic::Ordering::Relaxed);
}

/// One `T` in a named shared-memory segment, seen by every process that opens the name.
///
/// `Shared<T>` derefs to `T`'s atomic twin, so every field is an atomic:
///
/// ```
/// use shm_core::{Shared, SharedLayout};
/// use std::sync::atomic::Ordering::Relaxed;
///
/// #[derive(SharedLayout, Default)]
/// #[repr(C)]
/// struct Stats {
///     requests: u64,
///     load: f64,
///     hist: [u32; 4],
/// }
///
/// # let name = format!("doc-shared-{}", std::process::id());
/// let stats = Shared::<Stats>::create(&name, Stats::default())?;
/// stats.requests.fetch_add(1, Relaxed);
/// stats.load.store(0.5, Relaxed);
/// stats.hist[2].fetch_add(3, Relaxed);
///
/// // Any process, started any way at all:
/// let seen = Shared::<Stats>::open(&name)?;
/// assert_eq!(seen.requests.load(Relaxed), 1);
/// assert_eq!(seen.hist[2].load(Relaxed), 3);
/// # Ok::<(), shm_core::Error>(())
/// ```
///
/// The handle that created the segment removes it when dropped (unless created with
/// [`Options::keep`]); a handle that opened it never does, however it exits.
pub struct Shared<T: SharedLayout> {
    seg: Segment,
    _type: PhantomData<fn() -> T>,
}

/// One primitive in a named segment: `Value::<i32>::create("v", 0)` is Python's
/// `multiprocessing.Value('i', 0)`.
///
/// ```
/// use shm_core::Value;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// # let name = format!("doc-value-{}", std::process::id());
/// let v = Value::<f64>::create(&name, 3.5)?;
/// v.fetch_add(1.0, Relaxed);
/// assert_eq!(v.load(Relaxed), 4.5);
/// # Ok::<(), shm_core::Error>(())
/// ```
pub type Value<T> = Shared<T>;

impl<T: SharedLayout> Shared<T> {
    const SPEC: Spec<'static> = {
        check_type::<T>();
        Spec {
            element: Element::Static(&T::LAYOUT),
            fingerprint: T::FINGERPRINT,
            count: Some(1),
            array: false,
        }
    };

    /// Creates the segment `name` holding `init`. Fails with [`Error::AlreadyExists`] if the name
    /// is taken.
    ///
    /// [`Error::AlreadyExists`]: crate::Error::AlreadyExists
    pub fn create(name: &str, init: T) -> Result<Self> {
        Self::create_with(name, init, &Options::new())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, init: T, opts: &Options) -> Result<Self> {
        let seg = Segment::create(name, &Self::SPEC, opts, &|p| init_one(p, &init))?;
        Ok(Shared {
            seg,
            _type: PhantomData,
        })
    }

    /// Opens the segment `name`, which must hold a `T` (else [`Error::LayoutMismatch`]), waiting
    /// up to a second if another process is still creating it.
    ///
    /// [`Error::LayoutMismatch`]: crate::Error::LayoutMismatch
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let seg = Segment::open(name, &Self::SPEC, opts)?;
        Ok(Shared {
            seg,
            _type: PhantomData,
        })
    }

    /// Opens `name`, or creates it holding `init` if it does not exist. When several processes
    /// race, exactly one creates it and the others open it once it is ready;
    /// [`is_owner`](Self::is_owner) tells which.
    pub fn open_or_create(name: &str, init: T) -> Result<Self> {
        Self::open_or_create_with(name, init, &Options::new())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(name: &str, init: T, opts: &Options) -> Result<Self> {
        let seg = Segment::open_or_create(name, &Self::SPEC, opts, &|p| init_one(p, &init))?;
        Ok(Shared {
            seg,
            _type: PhantomData,
        })
    }

    /// The segment's name, as given.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// What the header and the object say now: creator and whether it lives, kept, mode ...
    /// (what `shm ls` shows of the segment).
    pub fn info(&self) -> Result<SegmentInfo> {
        SegmentInfo::read(&self.seg, self.seg.element())
    }

    /// Whether this handle created the segment (and so removes it when dropped, unless kept).
    pub fn is_owner(&self) -> bool {
        self.seg.is_owner()
    }

    /// A consistent copy of the whole value: no `update` of any process is half-seen.
    ///
    /// A seqlock read: it does not take the lock and does not block a writer; it retries while an
    /// `update` is in progress. (A read that keeps losing the race against writers — 64 times in a
    /// row — is done once under the lock, so that it ends.) If the writer of that update was killed mid-way, the reader finds
    /// out within about a millisecond (the lock is free although the write never finished) and
    /// rolls the half-done update back from the segment's undo journal: a reader sees the value
    /// from before a killed writer's update, or — if it was killed after its last store — the
    /// value after it, never a mix. The next locker is told through a poisoned
    /// [`lock`](Self::lock).
    ///
    /// Fields changed with their own atomics (`fetch_add` ...) are each read atomically, but such
    /// changes are not ordered with respect to one another.
    ///
    /// # Panics
    /// If called by a thread that holds this segment's lock while an update is in progress
    /// (inside the closure of [`update`](Self::update)): it would wait for itself.
    pub fn snapshot(&self) -> T {
        let twin = self.atomic();
        seqlock::read(&self.seg, || T::load(twin, Relaxed))
    }

    /// Changes several fields at once: takes the segment's lock, loads the value, runs `f` on it,
    /// and stores the fields `f` changed, all as one seqlock write, so [`snapshot`](Self::snapshot)
    /// in any process sees all of the change or none. Returns what `f` returns.
    ///
    /// Fields `f` does not change are not written, so concurrent `fetch_add`s on them are not
    /// lost; a concurrent field atomic on a field that `f` does change is overwritten. Keep `f`
    /// short: readers wait while it runs.
    ///
    /// If a previous holder of the lock died, `update` proceeds (a half-done update of the dead
    /// holder has been rolled back) and consumes the poisoning. If `f` panics, nothing is stored
    /// and the lock is poisoned. A segment holds an undo journal of twice its payload's size for
    /// this.
    ///
    /// ```
    /// use shm_core::{Shared, SharedLayout};
    ///
    /// #[derive(SharedLayout, Default)]
    /// #[repr(C)]
    /// struct Pair {
    ///     a: i64,
    ///     b: i64,
    /// }
    ///
    /// # let name = format!("doc-update-{}", std::process::id());
    /// let p = Shared::<Pair>::create(&name, Pair::default())?;
    /// let sum = p.update(|v| {
    ///     v.a += 5;
    ///     v.b -= 5;
    ///     v.a + v.b
    /// });
    /// assert_eq!(sum, 0);
    /// let s = p.snapshot();
    /// assert_eq!((s.a, s.b), (5, -5));
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.update_locked(&guard, f)
    }

    /// [`update`](Self::update) for a caller that holds the lock already, through `guard`: the
    /// same seqlock write, without taking the lock again. For code that takes the lock, reads,
    /// decides, and then changes several fields as one (a language binding whose lock object
    /// outlives one call, say).
    ///
    /// ```
    /// use shm_core::Value;
    ///
    /// # let name = format!("doc-update-locked-{}", std::process::id());
    /// let v = Value::<u64>::create(&name, 1)?;
    /// let guard = v.lock().unwrap();
    /// v.update_locked(&guard, |x| *x += 1);
    /// drop(guard);
    /// assert_eq!(v.snapshot(), 2);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `guard` is the lock of another segment.
    pub fn update_locked<R>(&self, guard: &Guard<'_, T::Atomic>, f: impl FnOnce(&mut T) -> R) -> R {
        assert!(
            core::ptr::eq(guard.segment(), &self.seg),
            "segment `{}`: update_locked() with the guard of another segment",
            self.name()
        );
        let twin: &T::Atomic = guard;
        // One load: a second one could see other fields changed by field atomics meanwhile,
        // and `update` would then write those values back over later changes.
        let old = T::load(twin, Relaxed);
        let mut new = duplicate(&old);
        let r = seqlock::poison_on_panic(guard.segment(), || f(&mut new));
        let old = core::slice::from_ref(&old);
        seqlock::write(
            guard.segment(),
            0..core::mem::size_of::<T::Atomic>(),
            |copies| copies.record(old, core::slice::from_ref(&new)),
            || T::store_changed(twin, &old[0], &new, Relaxed),
        );
        r
    }

    /// Takes the segment's lock (Python's `get_lock()`), blocking until it is free.
    ///
    /// `Err(PoisonError)` means the previous holder died holding it (or a writer died or panicked
    /// mid-update): the value may be half-changed. The error carries the guard — the lock is held
    /// — and the lock has been made consistent, so the next lockers proceed normally. Only one
    /// locker is told.
    ///
    /// # Panics
    /// If this thread already holds the lock (a [`Guard`] is alive, or inside `update`).
    pub fn lock(&self) -> LockResult<Guard<'_, T::Atomic>> {
        guard::lock(&self.seg, self.atomic())
    }

    /// Takes the lock if it is free; `Err(TryLockError::WouldBlock)` if not.
    pub fn try_lock(&self) -> TryLockResult<Guard<'_, T::Atomic>> {
        guard::try_lock(&self.seg, self.atomic(), None)
    }

    /// Takes the lock, waiting at most `timeout`; `Err(TryLockError::WouldBlock)` if it stayed
    /// held that long.
    pub fn try_lock_for(&self, timeout: Duration) -> TryLockResult<Guard<'_, T::Atomic>> {
        guard::try_lock(&self.seg, self.atomic(), Some(timeout))
    }

    /// The atomic twin in the segment (what `*shared` gives).
    pub fn atomic(&self) -> &T::Atomic {
        // SAFETY: `Segment` proved at create or open that the payload holds exactly one
        // `T::Atomic` (fingerprint and element count), inside the mapping, aligned for it
        // (payload offset checked against `T::LAYOUT.align`, and `check_type` keeps that at most
        // the page alignment of the mapping). Any bytes are a valid `T::Atomic`, all access is
        // atomic (`SharedLayout`'s contract), and the mapping lives as long as `self`.
        unsafe { self.seg.payload().cast::<T::Atomic>().as_ref() }
    }
}

impl<T: SharedLayout> Deref for Shared<T> {
    type Target = T::Atomic;

    fn deref(&self) -> &T::Atomic {
        self.atomic()
    }
}

impl<T: SharedLayout> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name())
            .field("type", &T::LAYOUT.name)
            .field("owner", &self.is_owner())
            .finish()
    }
}
