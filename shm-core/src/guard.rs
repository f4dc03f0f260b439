//! `Guard`: the segment's lock, held.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::header::Header;
use crate::lock::{self, Acquired, Failed, Wait};
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
    name: &'a str,
    header: &'a Header,
    data: &'a A,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing `&Guard` between threads only shares `&A` (which is `Sync`, being atomics) and
// the name; unlocking happens in `Drop`, on the owning thread, since `Guard` is not `Send`.
unsafe impl<A: ?Sized + Sync> Sync for Guard<'_, A> {}

impl<A: ?Sized> Deref for Guard<'_, A> {
    type Target = A;
    fn deref(&self) -> &A {
        self.data
    }
}

impl<A: ?Sized> Drop for Guard<'_, A> {
    fn drop(&mut self) {
        seqlock::note_released(self.header);
        lock::unlock(self.header);
    }
}

impl<A: ?Sized> fmt::Debug for Guard<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("segment", &self.name)
            .finish_non_exhaustive()
    }
}

impl<'a, A: ?Sized> Guard<'a, A> {
    /// The segment's header, for `update`'s seqlock write.
    pub(crate) fn header(&self) -> &'a Header {
        self.header
    }
}

fn acquire<'a, A: ?Sized>(
    name: &'a str,
    header: &'a Header,
    data: &'a A,
    wait: Wait,
) -> Result<LockResult<Guard<'a, A>>, Failed> {
    let acquired = lock::lock(header, wait)?;
    seqlock::note_held(header);
    let guard = Guard {
        name,
        header,
        data,
        _not_send: PhantomData,
    };
    Ok(match acquired {
        Acquired::Clean => Ok(guard),
        Acquired::Poisoned => Err(PoisonError::new(guard)),
    })
}

fn relock_panic(name: &str) -> ! {
    panic!("segment `{name}`: this thread already holds its lock (a Guard is alive, or lock() was called inside update())")
}

/// Blocks until the lock is held.
pub(crate) fn lock<'a, A: ?Sized>(
    name: &'a str,
    header: &'a Header,
    data: &'a A,
) -> LockResult<Guard<'a, A>> {
    loop {
        match acquire(name, header, data, Wait::Forever) {
            Ok(r) => return r,
            Err(Failed::Deadlock) => relock_panic(name),
            // A lock word that cannot be repaired right now (another process holds the repair
            // turn): wait for it as for a holder.
            Err(Failed::Busy | Failed::Unusable) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Takes the lock if it is free now, or within `timeout`.
pub(crate) fn try_lock<'a, A: ?Sized>(
    name: &'a str,
    header: &'a Header,
    data: &'a A,
    timeout: Option<Duration>,
) -> TryLockResult<Guard<'a, A>> {
    let wait = match timeout {
        None => Wait::Try,
        Some(d) => Wait::Until(Instant::now() + d),
    };
    match acquire(name, header, data, wait) {
        Ok(Ok(g)) => Ok(g),
        Ok(Err(poisoned)) => Err(TryLockError::Poisoned(poisoned)),
        Err(_) => Err(TryLockError::WouldBlock),
    }
}
