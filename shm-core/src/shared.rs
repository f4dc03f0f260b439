//! `Shared<T>` (and `Value<T>`): one `T` in a named segment.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::ptr::NonNull;

use core::sync::atomic::Ordering::Relaxed;
use std::sync::{LockResult, TryLockResult};
use std::time::Duration;

use crate::guard::{self, Guard};
use crate::inspect::holder;
use crate::inspect::{LockHolder, SegmentInfo};
use crate::lock;
use crate::segment::{Element, Expect, Segment, Shape, Spec};
use crate::seqlock;
use crate::wait;
use crate::write;
use crate::{Options, Result, SharedLayout};

mod journaled;

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
///
/// `Shared<T>` is `Debug` when `T` is, as std's `Mutex<T>`: it shows the name, type, owner,
/// poisoning and a [`snapshot`](Self::snapshot) of the value.
pub struct Shared<T: SharedLayout> {
    seg: Segment,
    _type: PhantomData<fn() -> T>,
}

/// One primitive in a named segment: `Value::<i32>::create("v", 0)` is Python's
/// `multiprocessing.Value('i', 0)`.
///
/// [`get`](Shared::get) and [`set`](Shared::set) are Python's `v.value` and `v.value = x`; the
/// atomic's own operations (`fetch_add` ...) are there too, through `Deref`.
///
/// ```
/// use shm_core::Value;
/// use std::sync::atomic::Ordering::Relaxed;
///
/// # let name = format!("doc-value-{}", std::process::id());
/// let v = Value::<f64>::create(&name, 3.5)?;
/// v.fetch_add(1.0, Relaxed);
/// assert_eq!(v.get(), 4.5);
/// v.set(0.25);
/// assert_eq!(v.load(Relaxed), 0.25);
/// # Ok::<(), shm_core::Error>(())
/// ```
pub type Value<T> = Shared<T>;

impl<T: SharedLayout> Shared<T> {
    const SPEC: Spec<'static> = {
        check_type::<T>();
        Spec {
            element: Element::Static(&T::LAYOUT),
            fingerprint: T::FINGERPRINT,
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
        let seg = Segment::create(name, &Self::SPEC, Shape::One, opts, &|p| init_one(p, &init))?;
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
        let seg = Segment::open(name, &Self::SPEC, Expect::Exactly(Shape::One), opts)?;
        Ok(Shared {
            seg,
            _type: PhantomData,
        })
    }

    /// Attaches the segment `name` read only, as an observer: the object is opened `O_RDONLY` and
    /// mapped `PROT_READ`, so the operating system stops every store. The checks of
    /// [`open`](Self::open) apply (type, owner, mode, layout), except that read permission
    /// suffices: a user in the group of a segment created with `Options::new().mode(0o640)`
    /// attaches read-only with `Options::new().mode(0o640)`, where a read-write `open` is
    /// refused (with a message that says a read-only attach is possible). See [`ReadOnly`] for
    /// what an observer can do.
    ///
    /// [`ReadOnly`]: crate::ReadOnly
    pub fn open_readonly(name: &str) -> Result<crate::ReadOnly<T>> {
        Self::open_readonly_with(name, &Options::new())
    }

    /// [`open_readonly`](Self::open_readonly) with options.
    pub fn open_readonly_with(name: &str, opts: &Options) -> Result<crate::ReadOnly<T>> {
        let seg = Segment::open_readonly(name, &Self::SPEC, Expect::Exactly(Shape::One), opts)?;
        Ok(crate::ReadOnly::new(seg))
    }

    /// Opens `name`, or creates it holding `init` if it does not exist. When several processes
    /// race, exactly one creates it and the others open it once it is ready;
    /// [`is_owner`](Self::is_owner) tells which.
    pub fn open_or_create(name: &str, init: T) -> Result<Self> {
        Self::open_or_create_with(name, init, &Options::new())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(name: &str, init: T, opts: &Options) -> Result<Self> {
        let seg =
            Segment::open_or_create(name, &Self::SPEC, Shape::One, opts, &|p| init_one(p, &init))?;
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
    /// row — is done once under the lock, so that it ends.) If the writer of that update was
    /// killed mid-way, the reader finds out within about a millisecond (the lock is free although
    /// the write never finished) and rolls the half-done update back from the segment's undo
    /// journal: a reader sees the value from before a killed writer's update, or — if it was
    /// killed after its last store — the value after it, never a mix. That rollback is a repair:
    /// it does not poison the lock. A poisoned lock does not affect `snapshot`, which reads what
    /// is there (see [When a process dies](crate#when-a-process-dies)).
    ///
    /// Fields changed with their own atomics (`fetch_add` ...) are each read atomically, but such
    /// changes are not ordered with respect to one another.
    ///
    /// # Inside `update`'s closure
    ///
    /// Called inside the closure of [`update`](Self::update) on the same segment, `snapshot`
    /// neither waits nor panics: the closure runs before the update's write begins, so no write
    /// is in progress, and it returns the value as it is in the segment — without the changes the
    /// closure has made so far, which are made to a copy and stored only when the closure
    /// returns. (No other process can change it meanwhile except through field atomics, since
    /// this thread holds the lock.) The same holds while this thread holds a [`Guard`].
    ///
    /// ```
    /// use shm_core::Value;
    ///
    /// # let name = format!("doc-snapshot-in-update-{}", std::process::id());
    /// let v = Value::<u32>::create(&name, 1)?;
    /// let seen = v.update(|x| {
    ///     *x = 2;
    ///     v.snapshot() // the stored value, not the closure's copy
    /// });
    /// assert_eq!((seen, v.snapshot()), (1, 2));
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    #[inline(always)]
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
    /// When it has stored, it wakes every process waiting in [`wait_until`](Self::wait_until) on
    /// the segment (a system call only if someone waits).
    ///
    /// `update` proceeds whatever happened before it, and changes nothing about the poisoning:
    ///
    /// - If a previous `update` of any process was killed while storing (in its write window),
    ///   `update` first rolls that half-done write back from the segment's undo journal, so `f`
    ///   sees the value from before it. Nothing is left half-changed, and the lock is not
    ///   poisoned by it. (The journal holds the old and new values of the fields an update
    ///   stores: for a value larger than 32 KiB it may need the side journal, and without room
    ///   for it the update goes ahead unjournaled; see
    ///   [Big arrays](crate#big-arrays-what-a-segment-costs).)
    /// - If a holder of [`lock`](Self::lock)'s guard died, or an `update` died inside its closure,
    ///   there is nothing to roll back (a guard's stores are not journaled): what that holder
    ///   changed stays changed, and the lock is poisoned. `update` still proceeds — its own
    ///   write is whole and journaled — and the lock stays poisoned until
    ///   [`clear_poison`](Self::clear_poison): [`is_poisoned`](Self::is_poisoned) keeps saying so
    ///   and `lock()` keeps returning `Err`.
    /// - If `f` panics, nothing is stored and the lock is poisoned, as std's `Mutex` is.
    ///
    /// See [When a process dies](crate#when-a-process-dies).
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
    ///
    /// # Panics
    /// If this thread already holds the lock (a [`Guard`] is alive, or inside another `update` of
    /// the same segment); the panic names the caller's line. If `f` panics, that panic goes on.
    #[track_caller]
    #[inline(always)]
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A small value's update is inlined whole, its registers the caller's (no call to save
        // them around; the slow paths stay calls). A larger one is a call.
        if size_of::<T::Atomic>() <= write::INLINE {
            self.update_here(f)
        } else {
            self.update_called(f)
        }
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
        write::infallible(self.update_under(guard, f, false))
    }

    /// Blocks until `pred` holds for the value, and returns the [`snapshot`](Self::snapshot) it
    /// held for: what Python's `Condition.wait_for` does, across processes, on the shared value
    /// itself.
    ///
    /// `pred` is called on a consistent snapshot at once, then after every change: an
    /// [`update`](Self::update) in any process wakes every waiter of the segment, and so does
    /// [`notify`](Self::notify). Between changes the thread sleeps in the kernel (a futex on a
    /// word of the segment's header), spending nothing.
    ///
    /// Changes made with field atomics (`store`, `fetch_add` ..., [`set`](Self::set)) wake
    /// nobody: call [`notify`](Self::notify) after them. A forgotten `notify` costs latency,
    /// never a hang: a waiter checks again at least every 100 ms whether or not it was woken.
    ///
    /// It is no queue: `pred` sees the value as it is when checked, so a state that lasts less
    /// than the time a waiter takes to wake may pass unseen; wait for states that stay (a count
    /// that reaches a number, a flag that stays set).
    ///
    /// A writer killed inside `update` while others wait leaves nobody waiting on it: the
    /// snapshot rolls its half-done update back, as [`snapshot`](Self::snapshot) always does,
    /// and the wait goes on. A segment removed while waited on stays mapped, but no new process
    /// can open it to change it: use [`wait_until_timeout`](Self::wait_until_timeout) where that
    /// can happen. A waiter killed while waiting blocks nobody: its registration costs the
    /// writers of the next second or two a wake call each, and then nothing.
    ///
    /// ```
    /// use shm_core::{Shared, SharedLayout};
    ///
    /// #[derive(SharedLayout, Default, Clone, Copy)]
    /// #[repr(C)]
    /// struct Jobs {
    ///     done: u32,
    ///     failed: u32,
    /// }
    ///
    /// # let name = format!("doc-wait-until-{}", std::process::id());
    /// let jobs = Shared::<Jobs>::create(&name, Jobs::default())?;
    /// std::thread::scope(|s| {
    ///     // Another thread here; any process that opens the name alike.
    ///     s.spawn(|| {
    ///         for _ in 0..100 {
    ///             jobs.update(|j| j.done += 1); // wakes the waiter
    ///         }
    ///     });
    ///     let seen = jobs.wait_until(|j| j.done >= 100);
    ///     assert_eq!(seen.done, 100);
    /// });
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If this thread holds the segment's lock (a [`Guard`] is alive, or inside `update`): no
    /// `update` of another process could change the value meanwhile. A panic of `pred` goes on,
    /// and leaves nothing behind.
    #[track_caller]
    pub fn wait_until(&self, mut pred: impl FnMut(&T) -> bool) -> T {
        wait::until(&self.seg, None, || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
        .expect("a wait without a timeout ends only when the predicate holds")
    }

    /// [`wait_until`](Self::wait_until), for at most `timeout`: `Some(snapshot)` for the first
    /// snapshot `pred` held for, `None` if it did not hold by then (it is checked once more when
    /// the time is up). `Duration::ZERO` checks once, without waiting.
    ///
    /// ```
    /// use shm_core::Value;
    /// use std::sync::atomic::Ordering::Relaxed;
    /// use std::time::Duration;
    ///
    /// # let name = format!("doc-wait-timeout-{}", std::process::id());
    /// let go = Value::<bool>::create(&name, false)?;
    /// assert_eq!(go.wait_until_timeout(|g| *g, Duration::from_millis(10)), None);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         go.store(true, Relaxed); // a field atomic wakes nobody ...
    ///         go.notify(); // ... so say so (or be seen within 100 ms)
    ///     });
    ///     assert_eq!(go.wait_until_timeout(|g| *g, Duration::from_secs(10)), Some(true));
    /// });
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// As [`wait_until`](Self::wait_until).
    #[track_caller]
    pub fn wait_until_timeout(
        &self,
        mut pred: impl FnMut(&T) -> bool,
        timeout: Duration,
    ) -> Option<T> {
        wait::until(&self.seg, Some(timeout), || {
            Some(self.snapshot()).filter(|v| pred(v))
        })
    }

    /// Wakes every waiter of the segment, in every process, to check its condition again: call
    /// it after changing the value with field atomics, which wake nobody themselves.
    /// [`update`](Self::update) wakes the waiters itself.
    ///
    /// It costs an atomic increment of a header word, and a system call only when someone
    /// waits. See [`wait_until`](Self::wait_until).
    pub fn notify(&self) {
        wait::notify(&self.seg)
    }

    /// Takes the segment's lock (Python's `get_lock()`), blocking until it is free.
    ///
    /// `Err(PoisonError)` means the lock is poisoned: a holder of it died or panicked, and what
    /// it may have half-changed was not repaired, so the value may break your invariants. The
    /// error carries the guard (the lock is held: `into_inner()` to use it). As with std's
    /// `Mutex`, every `lock()` returns `Err` until [`clear_poison`](Self::clear_poison) — call it
    /// once the value is known good again. A dead holder never blocks the others: the lock has
    /// been made consistent and is usable. See [When a process dies](crate#when-a-process-dies).
    ///
    /// ```
    /// use shm_core::Value;
    /// use std::sync::atomic::Ordering::Relaxed;
    ///
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// let v = Value::<u64>::create(&name, 0)?;
    /// let g = match v.lock() {
    ///     Ok(g) => g,
    ///     Err(poisoned) => {
    ///         let g = poisoned.into_inner();
    ///         g.store(0, Relaxed); // put the value right again, then say so
    ///         v.clear_poison();
    ///         g
    ///     }
    /// };
    /// g.fetch_add(1, Relaxed);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If this thread already holds the lock (a [`Guard`] is alive, or inside `update`); the
    /// panic names the caller's line.
    #[inline(always)]
    #[track_caller]
    pub fn lock(&self) -> LockResult<Guard<'_, T::Atomic>> {
        guard::lock(&self.seg, self.atomic())
    }

    /// Takes the lock if it is free; `Err(TryLockError::WouldBlock)` if not,
    /// `Err(TryLockError::Poisoned)` (with the guard) if it is poisoned, as [`lock`](Self::lock).
    pub fn try_lock(&self) -> TryLockResult<Guard<'_, T::Atomic>> {
        guard::try_lock(&self.seg, self.atomic(), None)
    }

    /// Takes the lock, waiting at most `timeout`; `Err(TryLockError::WouldBlock)` if it stayed
    /// held that long, `Err(TryLockError::Poisoned)` (with the guard) if it is poisoned.
    pub fn try_lock_for(&self, timeout: Duration) -> TryLockResult<Guard<'_, T::Atomic>> {
        guard::try_lock(&self.seg, self.atomic(), Some(timeout))
    }

    /// Whether the lock is poisoned: a holder of it died or panicked and what it may have
    /// half-changed was not repaired. Stays true until [`clear_poison`](Self::clear_poison).
    ///
    /// It also reports a holder that died a moment ago, before anyone has locked since: the lock
    /// word says its owner is gone and no write was in progress. A writer killed inside
    /// `update`'s write window is not reported (its update is rolled back). It takes no lock.
    /// See [When a process dies](crate#when-a-process-dies).
    pub fn is_poisoned(&self) -> bool {
        lock::is_poisoned(self.seg.header())
    }

    /// Clears the poisoning, so that [`lock`](Self::lock) returns `Ok` again: call it once you
    /// have checked or put right what a dead holder may have left half-changed. Like std's
    /// `Mutex::clear_poison`, it may be called while holding the guard a poisoned `lock()`
    /// returned.
    ///
    /// A holder that died unnoticed is taken in first (by taking the lock if it is free), so that
    /// its death does not poison the lock again afterwards. A death or panic after this call
    /// poisons it anew.
    pub fn clear_poison(&self) {
        guard::clear_poison(&self.seg)
    }

    /// Whether the process that created the segment still runs (same pid and start time, not a
    /// zombie). A worker started by the creator polls this to notice that its parent died.
    ///
    /// ```
    /// use shm_core::Value;
    ///
    /// # let name = format!("doc-creator-alive-{}", std::process::id());
    /// let v = Value::<u32>::create(&name, 0)?;
    /// let w = Value::<u32>::open(&name)?;
    /// assert!(w.creator_alive()); // created by this very process
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn creator_alive(&self) -> bool {
        self.seg.recorded_creator().is_alive()
    }

    /// Who holds the segment's lock now, as its lock word says (the process, the thread, and
    /// whether it still runs), or `None` if nobody does: what to tell a user whose wait for the
    /// lock ([`try_lock_for`](Self::try_lock_for)) ran out. By the time it returns the holder
    /// may have released the lock. The same as
    /// [`RawSegment::lock_holder`](crate::inspect::RawSegment::lock_holder).
    ///
    /// ```
    /// use shm_core::Value;
    ///
    /// # let name = format!("doc-shared-lock-holder-{}", std::process::id());
    /// let v = Value::<u64>::create(&name, 0)?;
    /// assert_eq!(v.lock_holder(), None);
    /// let guard = v.lock().unwrap();
    /// let holder = v.lock_holder().expect("held");
    /// assert_eq!((holder.pid, holder.alive), (std::process::id(), true));
    /// drop(guard);
    /// assert_eq!(v.lock_holder(), None);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn lock_holder(&self) -> Option<LockHolder> {
        holder::holder(self.seg.header())
    }

    /// The segment behind this handle.
    #[cfg(test)]
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The atomic twin in the segment (what `*shared` gives).
    #[inline]
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

/// Shows the segment and, from a [`snapshot`](Shared::snapshot), its value:
/// `Shared { name: "web-stats", type: "Stats", owner: true, poisoned: false, value: Stats { .. } }`.
impl<T: SharedLayout + fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name())
            .field("type", &T::LAYOUT.name)
            .field("owner", &self.is_owner())
            .field("poisoned", &self.is_poisoned())
            .field("value", &self.snapshot())
            .finish()
    }
}
