//! `Guard`: the segment's lock, held.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::lock::{self, Failed, Wait};
use crate::segment::Segment;
use crate::{held, seqlock};

/// The segment's lock, held; released when dropped. Derefs to the atomic twin (for `Shared`) or
/// the slice of twins (for `Array`).
///
/// A guard dropped while its thread panics poisons the lock, as std's `MutexGuard` does; so does
/// a process that dies holding one (see [When a process dies](crate#when-a-process-dies)).
///
/// Holding the guard excludes other lockers, including `update` in any process; it does not stop
/// field atomics, and changes made through the guard are not seen atomically by `snapshot` (use
/// `update` for that). It cannot be sent to another thread: the lock word names the thread that
/// holds it, and only that thread releases it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<'a, A: ?Sized> {
    seg: &'a Segment,
    data: &'a A,
    /// Whether dropping the guard while the thread panics leaves the lock unpoisoned: the thread
    /// was already panicking when it took the lock (only a panic that starts while the guard is
    /// held poisons, as with std's `Mutex`), or the guard's user poisons by itself
    /// (`with_update_lock`).
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing `&Guard` between threads only shares `&A` (which is `Sync`, being atomics) and
// `&Segment` (which is `Sync`); unlocking happens in `Drop`, on the owning thread, since `Guard`
// is not `Send`.
unsafe impl<A: ?Sized + Sync> Sync for Guard<'_, A> {}

impl<A: ?Sized> Deref for Guard<'_, A> {
    type Target = A;
    fn deref(&self) -> &A {
        self.data
    }
}

impl<A: ?Sized> Drop for Guard<'_, A> {
    #[inline]
    fn drop(&mut self) {
        self.unlock();
    }
}

impl<A: ?Sized> fmt::Debug for Guard<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("segment", &self.seg.name())
            .finish_non_exhaustive()
    }
}

impl<'a, A: ?Sized> Guard<'a, A> {
    /// The segment, for `update`'s seqlock write.
    pub(crate) fn segment(&self) -> &'a Segment {
        self.seg
    }

    /// Releases the lock, poisoning it first if a panic began while it was held.
    #[inline(always)]
    fn unlock(&mut self) {
        if !self.panicking && std::thread::panicking() {
            lock::poison(self.seg.header());
        }
        held::note_released(self.seg);
        lock::unlock(self.seg.header());
    }

    /// Releases the lock here, inlined: what `update` does once it has stored (dropping the
    /// guard would be a call). Unwinding still releases it through `Drop`.
    #[inline(always)]
    fn release(self) {
        core::mem::ManuallyDrop::new(self).unlock();
    }

    /// Poisons the lock that `guard` holds, as a panic while it is alive does: for code whose
    /// work under the lock fails in a way other than a panic (a language binding whose callback
    /// raised an exception, say), so that every later locker is told, until `clear_poison`.
    ///
    /// An associated function (`Guard::poison(&guard)`), so that it cannot hide a method of the
    /// value the guard derefs to.
    ///
    /// ```
    /// use shm_core::{Guard, Value};
    ///
    /// # let name = format!("doc-guard-poison-{}", std::process::id());
    /// let v = Value::<u32>::create(&name, 0)?;
    /// let guard = v.lock().unwrap();
    /// Guard::poison(&guard);
    /// drop(guard);
    /// assert!(v.is_poisoned() && v.lock().is_err());
    /// v.clear_poison();
    /// assert!(v.lock().is_ok());
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn poison(guard: &Self) {
        lock::poison(guard.seg.header());
    }
}

// Always inlined, with `lock` and the handles' `lock`: a `lock()` then takes the lock without a
// call (and `update`, through `with_update_lock` and `take`, takes and releases it without one).
#[inline(always)]
fn acquire<'a, A: ?Sized>(
    seg: &'a Segment,
    data: &'a A,
    wait: Wait,
) -> Result<LockResult<Guard<'a, A>>, Failed> {
    take(seg, wait)?;
    let guard = Guard {
        seg,
        data,
        panicking: std::thread::panicking(),
        _not_send: PhantomData,
    };
    Ok(if lock::poisoned(seg.header()) {
        Err(PoisonError::new(guard))
    } else {
        Ok(guard)
    })
}

/// Takes the lock, notes it held by this thread, and rolls back the write of a writer that died
/// mid-update.
#[inline(always)]
fn take(seg: &Segment, wait: Wait) -> Result<(), Failed> {
    lock::lock(seg.header(), wait, || held::by_this_thread(seg))?;
    held::note_held(seg);
    // A writer that died mid-update left the counter odd: undo its stores before anyone looks.
    // That repairs it; a death that nothing could repair was made a poisoning by `lock::lock`.
    seqlock::recover(seg);
    Ok(())
}

#[cold]
#[track_caller]
fn relock_panic(name: &str) -> ! {
    panic!("segment `{name}`: this thread already holds its lock (a Guard is alive, or lock() or update() was called inside update())")
}

/// Clears the poisoning (see `Shared::clear_poison`). A death nobody has noticed yet is taken in
/// first, by taking the lock if it is free, so that it does not poison the lock again afterwards.
pub(crate) fn clear_poison(seg: &Segment) {
    let h = seg.header();
    if held::by_this_thread(seg) {
        // Any death before was taken in when this thread locked.
        lock::clear(h);
        return;
    }
    match lock::lock(h, Wait::Try, || false) {
        Ok(()) => {
            seqlock::recover(seg);
            lock::clear(h);
            lock::unlock(h);
        }
        // Held by a live owner, which took in any earlier death when it locked.
        Err(_) => lock::clear(h),
    }
}

/// Runs `update` under the lock, for an update (`Shared::update`, `Array::update_range` and
/// their `try_` forms): taken poisoned or not, which an update does not ask, and released
/// inline. The guard leaves poisoning to the update, which poisons the lock if anything it runs
/// under the lock panics (`seqlock::poison_on_panic` around all of it: the closure, and the
/// `SharedLayout` loads and stores, which a hand-written implementation could make panic). So
/// neither taking nor releasing it asks whether the thread is panicking.
#[inline(always)]
#[track_caller]
pub(crate) fn with_update_lock<'a, A: ?Sized, R>(
    seg: &'a Segment,
    data: &'a A,
    update: impl FnOnce(&Guard<'a, A>) -> R,
) -> R {
    let guard = match take(seg, Wait::Forever) {
        Ok(()) => Guard {
            seg,
            data,
            panicking: true,
            _not_send: PhantomData,
        },
        Err(Failed::Deadlock | Failed::Busy) => relock_panic(seg.name()),
    };
    let r = update(&guard);
    guard.release();
    r
}

/// Blocks until the lock is held.
#[inline(always)]
#[track_caller]
pub(crate) fn lock<'a, A: ?Sized>(seg: &'a Segment, data: &'a A) -> LockResult<Guard<'a, A>> {
    match acquire(seg, data, Wait::Forever) {
        Ok(r) => r,
        // A lock without a deadline is never busy: it fails only when this thread holds it.
        Err(Failed::Deadlock | Failed::Busy) => relock_panic(seg.name()),
    }
}

/// Takes the lock if it is free now, or within `timeout`.
pub(crate) fn try_lock<'a, A: ?Sized>(
    seg: &'a Segment,
    data: &'a A,
    timeout: Option<Duration>,
) -> TryLockResult<Guard<'a, A>> {
    let wait = match timeout {
        None => Wait::Try,
        // A timeout too long to represent is no timeout.
        Some(d) => Instant::now()
            .checked_add(d)
            .map_or(Wait::Forever, Wait::Until),
    };
    match acquire(seg, data, wait) {
        Ok(Ok(g)) => Ok(g),
        Ok(Err(poisoned)) => Err(TryLockError::Poisoned(poisoned)),
        Err(_) => Err(TryLockError::WouldBlock),
    }
}
