//! `Array::try_update`, `try_update_range` and `try_write_from`, and the writes under a held
//! lock that they and `update_range`, `write_from` and their `_locked` forms share: journaled,
//! and without the journal only when there is no room for it and the caller allows that.

use core::ops::{Range, RangeBounds};

use super::{bounds, Array};
use crate::values::Values;
use crate::{guard, seqlock, write, BulkCopy, Guard, Result, SharedLayout};

impl<T: SharedLayout> Array<T> {
    /// Like [`update`](Self::update), but never without its journal: if `/dev/shm` has no room
    /// for the journal of this update (the side journal of a large update, see
    /// [Big arrays](crate#big-arrays-what-a-segment-costs)), it stores nothing and returns
    /// [`Error::NoSpace`]
    /// (or why the side journal cannot be used), instead of going ahead without a journal. `f`
    /// has run by then; its result is dropped.
    ///
    /// [`Error::NoSpace`]: crate::Error::NoSpace
    ///
    /// # Panics
    /// As [`update`](Self::update).
    #[track_caller]
    pub fn try_update<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R> {
        self.try_update_range(.., f)
    }

    /// Like [`update_range`](Self::update_range), but never without its journal: see
    /// [`try_update`](Self::try_update).
    ///
    /// # Panics
    /// As [`update_range`](Self::update_range).
    #[track_caller]
    pub fn try_update_range<R>(
        &self,
        range: impl RangeBounds<usize>,
        f: impl FnOnce(&mut [T]) -> R,
    ) -> Result<R> {
        let range = bounds(range, self.len());
        guard::with_update_lock(&self.seg, self.atomics(), |g| {
            self.updating(g, range, f, true)
        })
    }

    /// The update of the elements `range` under the lock `guard` holds.
    pub(super) fn updating<R>(
        &self,
        guard: &Guard<'_, [T::Atomic]>,
        range: Range<usize>,
        f: impl FnOnce(&mut [T]) -> R,
        required: bool,
    ) -> Result<R> {
        let at = range.start * core::mem::size_of::<T::Atomic>();
        let twins = &guard[range];
        let seg = guard.segment();
        // All of it poisons if it panics, as in `Shared::update_under`.
        seqlock::poison_on_panic(seg, || {
            let old = Values::<T>::load(twins);
            // Copies of the one load: see `Shared::update`.
            let mut new = old.copy();
            let r = f(&mut new);
            write::update(seg, twins, at, &old, &new, required)?;
            Ok(r)
        })
    }
}

impl<T: BulkCopy> Array<T> {
    /// Like [`write_from`](Self::write_from), but never without its journal: if `/dev/shm` has
    /// no room for it (a write of more than about 64 KiB needs the side journal, see
    /// [Big arrays](crate#big-arrays-what-a-segment-costs)), it stores nothing and returns
    /// [`Error::NoSpace`](crate::Error::NoSpace) (or why the side journal cannot be used).
    ///
    /// # Panics
    /// As [`write_from`](Self::write_from).
    #[track_caller]
    pub fn try_write_from(&self, start: usize, values: &[T]) -> Result<()> {
        let guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.writing(&guard, start, values, true)
    }

    /// The bulk write of `values` from element `start` under the lock `guard` holds.
    #[track_caller]
    pub(super) fn writing(
        &self,
        guard: &Guard<'_, [T::Atomic]>,
        start: usize,
        values: &[T],
        required: bool,
    ) -> Result<()> {
        let range = self.bulk_range(start, values.len());
        let at = range.start * core::mem::size_of::<T::Atomic>();
        write::write_from(guard.segment(), &guard[range], at, values, required)
    }
}
