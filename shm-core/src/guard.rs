//! `Guard`: the segment's lock, held.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::lock::{self, Acquired, Failed, Wait};
use crate::segment::Segment;
use crate::seqlock;

/// The segment's lock, held; released when dropped. Derefs to the atomic twin (for `Shared`) or
/// the slice of twins (for `Array`).
///
/// Holding the guard excludes other lockers, including `update` in any process; it does not stop
/// field atomics, and changes made through the guard are not seen atomically by `snapshot` (use
/// `update` for that). It cannot be sent to another thread: a pthread mutex is released by the
/// thread that took it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<'a, A: ?Sized> {
    seg: &'a Segment,
    data: &'a A,
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
    fn drop(&mut self) {
        seqlock::note_released(self.seg);
        lock::unlock(self.seg.header());
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
}

fn acquire<'a, A: ?Sized>(
    seg: &'a Segment,
    data: &'a A,
    wait: Wait,
) -> Result<LockResult<Guard<'a, A>>, Failed> {
    let acquired = lock::lock(seg.header(), wait)?;
    seqlock::note_held(seg);
    // A writer that died mid-update left the counter odd: undo its stores before anyone looks.
    let repaired = seqlock::recover(seg);
    let guard = Guard {
        seg,
        data,
        _not_send: PhantomData,
    };
    Ok(match acquired {
        Acquired::Clean if !repaired => Ok(guard),
        _ => Err(PoisonError::new(guard)),
    })
}

fn relock_panic(name: &str) -> ! {
    panic!("segment `{name}`: this thread already holds its lock (a Guard is alive, or lock() was called inside update())")
}

/// Blocks until the lock is held.
pub(crate) fn lock<'a, A: ?Sized>(seg: &'a Segment, data: &'a A) -> LockResult<Guard<'a, A>> {
    loop {
        match acquire(seg, data, Wait::Forever) {
            Ok(r) => return r,
            Err(Failed::Deadlock) if seqlock::held_by_this_thread(seg) => relock_panic(seg.name()),
            // pthread says this thread holds it, but it does not: a peer wrote our thread id.
            Err(Failed::Deadlock) => lock::disown(seg.header()),
            // A lock word that cannot be repaired right now (another process holds the repair
            // turn): wait for it as for a holder.
            Err(Failed::Busy | Failed::Unusable) => std::thread::sleep(Duration::from_millis(1)),
        }
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
