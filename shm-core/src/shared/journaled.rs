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
        let guard = guard::lock_to_update(&self.seg, self.atomic());
        let r = self.update_under(&guard, f, true);
        guard.release();
        r
    }

    /// [`update`](Self::update), inlined.
    #[track_caller]
    #[inline(always)]
    pub(super) fn update_here<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let guard = guard::lock_to_update(&self.seg, self.atomic());
        let r = write::infallible(self.update_under(&guard, f, false));
        guard.release();
        r
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
        // One load: a second one could see other fields changed by field atomics meanwhile,
        // and `update` would then write those values back over later changes.
        let old = T::load(twin, Relaxed);
        let mut new = duplicate(&old);
        let r = seqlock::poison_on_panic(guard.segment(), || f(&mut new));
        write::update_value(guard.segment(), twin, 0, old, new, required)?;
        Ok(r)
    }
}
