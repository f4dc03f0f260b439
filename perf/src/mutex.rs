//! Bare pthread mutexes, the baselines `update` and `lock()` are measured against.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

/// The attributes of a [`BareMutex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `PTHREAD_MUTEX_INITIALIZER`: normal, process-private.
    Private,
    /// Default type, `PTHREAD_PROCESS_SHARED`: what a process-shared lock costs at least.
    Shared,
    /// Process-shared, robust and error-checking (the attributes of shm-core's lock before it
    /// had a lock of its own).
    Robust,
}

/// A pthread mutex of its own, on the heap.
pub struct BareMutex(Box<UnsafeCell<libc::pthread_mutex_t>>);

impl BareMutex {
    /// A mutex of `kind`.
    ///
    /// # Panics
    /// If pthread refuses the attributes.
    pub fn new(kind: Kind) -> BareMutex {
        let m = BareMutex(Box::new(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)));
        if kind == Kind::Private {
            return m;
        }
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised by `pthread_mutexattr_init` before the setters use it and
        // destroyed after; the mutex is fresh, nobody uses it yet, and is re-initialised in place.
        unsafe {
            let a = attr.as_mut_ptr();
            assert_eq!(libc::pthread_mutexattr_init(a), 0);
            assert_eq!(
                libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED),
                0
            );
            if kind == Kind::Robust {
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK),
                    0
                );
            }
            assert_eq!(libc::pthread_mutex_init(m.0.get(), a), 0);
            libc::pthread_mutexattr_destroy(a);
        }
        m
    }

    /// Runs `f` holding the mutex.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: an initialised mutex, locked then unlocked by this thread; `BareMutex` is not
        // `Sync`, so no other thread uses it.
        unsafe { libc::pthread_mutex_lock(self.0.get()) };
        let r = f();
        // SAFETY: as above.
        unsafe { libc::pthread_mutex_unlock(self.0.get()) };
        r
    }
}

impl Drop for BareMutex {
    fn drop(&mut self) {
        // SAFETY: unlocked (every `with` unlocks) and no longer used.
        unsafe { libc::pthread_mutex_destroy(self.0.get()) };
    }
}
