//! `Shared::try_update`, and the update under a held lock that `update`, `update_locked` and it
//! share: journaled, and without the journal only when there is no room for it and the caller
//! allows that.

use core::sync::atomic::Ordering::Relaxed;

use super::Shared;
use crate::shared_layout::duplicate;
use crate::{guard, seqlock, write, Guard, Result, SharedLayout};

impl<T: SharedLayout> Shared<T> {
    /// Like [`update`](Self::update), but never without its journal: if `/dev/shm` has no room
    /// for it (only a value larger than 32 KiB can need the side journal, see
    /// [`update`](Self::update)), it stores nothing and returns
    /// [`Error::NoSpace`](crate::Error::NoSpace) (or why the side journal cannot be used). `f`
    /// has run by then; its result is dropped.
    ///
    /// # Panics
    /// As [`update`](Self::update).
    #[track_caller]
    pub fn try_update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        guard::with_update_lock(&self.seg, self.atomic(), |g| self.update_under(g, f, true))
    }

    /// [`update`](Self::update), inlined.
    #[track_caller]
    #[inline(always)]
    pub(super) fn update_here<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        guard::with_update_lock(&self.seg, self.atomic(), |g| {
            write::infallible(self.update_under(g, f, false))
        })
    }

    /// [`update`](Self::update) of a value too large to inline its update everywhere.
    #[track_caller]
    #[inline(never)]
    pub(super) fn update_called<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.update_here(f)
    }

    /// The update under the lock `guard` holds.
    #[inline(always)]
    pub(super) fn update_under<R>(
        &self,
        guard: &Guard<'_, T::Atomic>,
        f: impl FnOnce(&mut T) -> R,
        required: bool,
    ) -> Result<R> {
        let twin: &T::Atomic = guard;
        let seg = guard.segment();
        // Everything under the lock: a panic in the closure, or in a hand-written
        // `SharedLayout`'s loads and stores, poisons (the update's guard does not).
        seqlock::poison_on_panic(seg, || {
            // One load: a second one could see other fields changed by field atomics
            // meanwhile, and `update` would then write those values back over later changes.
            let old = T::load(twin, Relaxed);
            let mut new = duplicate(&old);
            let r = f(&mut new);
            write::update_value(seg, twin, 0, old, new, required)?;
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::TryLockError;

    use crate::{Layout, Shared, SharedLayout, TypeCode};

    /// A `u64` whose hand-written `SharedLayout` panics when it loads 666 (`LOADS`) or stores 666
    /// (`STORES`): code an update runs under its lock besides the closure.
    struct Touchy<const LOADS: bool, const STORES: bool>(u64);

    // SAFETY: the twin is one `AtomicU64`, described by the `u64` layout; `Touchy` is a `u64`.
    unsafe impl<const LOADS: bool, const STORES: bool> SharedLayout for Touchy<LOADS, STORES> {
        type Atomic = AtomicU64;
        const LAYOUT: Layout = Layout::primitive(TypeCode::U64);

        fn load(atomic: &AtomicU64, order: Ordering) -> Self {
            let v = atomic.load(order);
            assert!(!(LOADS && v == 666), "a load that panics");
            Touchy(v)
        }

        fn store(atomic: &AtomicU64, value: &Self, order: Ordering) {
            assert!(!(STORES && value.0 == 666), "a store that panics");
            atomic.store(value.0, order)
        }
    }

    fn name(what: &str) -> String {
        format!("shmt-touchy-{what}-{}", std::process::id())
    }

    /// A panic in the update's own load of the value, before the closure: poisoned, nothing
    /// changed, the counter even, the lock free.
    #[test]
    fn an_update_whose_load_panics_poisons() {
        let s = Shared::<Touchy<true, false>>::create(&name("load"), Touchy(666)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.update(|v| v.0 = 1)));
        assert!(r.is_err(), "the load did not panic");
        let h = s.segment().header();
        assert_eq!(h.seq.load(Ordering::Relaxed), 0, "something was written");
        assert_eq!(s.atomic().load(Ordering::Relaxed), 666);
        assert!(s.is_poisoned());
        assert!(matches!(s.try_lock(), Err(TryLockError::Poisoned(_))));
    }

    /// A panic while the update stores the new value into its journal entry, after the closure
    /// and before its write window: poisoned, nothing changed, the counter even.
    #[test]
    fn an_update_whose_journal_store_panics_poisons() {
        let s = Shared::<Touchy<false, true>>::create(&name("store"), Touchy(7)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.update(|v| v.0 = 666)));
        assert!(r.is_err(), "the store did not panic");
        assert_eq!(s.segment().header().seq.load(Ordering::Relaxed) % 2, 0);
        assert_eq!(s.snapshot().0, 7);
        assert!(s.is_poisoned());
        assert!(matches!(s.try_lock(), Err(TryLockError::Poisoned(_))));
    }
}
