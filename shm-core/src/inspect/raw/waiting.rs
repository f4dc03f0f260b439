//! Waiting on a segment of any layout: `RawSegment::wait_until`, `wait_for` (what `shm wait`
//! does) and `notify`.

use std::time::Duration;

use super::{FieldError, Node, RawSegment};
use crate::inspect::{Compare, Datum};
use crate::{wait, Result};

impl RawSegment {
    /// Blocks until `pred` holds for a consistent [`snapshot`](Self::snapshot) of the whole
    /// value, and returns that snapshot. It is checked at once, then after every change: an
    /// `update` in any process and [`notify`](Self::notify) wake the waiters, and a waiter checks
    /// again at least every 100 ms whatever happens (so a change made with field atomics and no
    /// `notify` is seen late, never missed for good). See `Shared::wait_until`.
    ///
    /// `Err` only if the segment is corrupt (a value its descriptor describes lies outside its
    /// payload).
    ///
    /// # Panics
    /// If this thread holds the segment's lock.
    #[track_caller]
    pub fn wait_until(&self, pred: impl FnMut(&Datum) -> bool) -> Result<Datum> {
        self.wait_snapshot(None, pred)
            .map(|d| d.expect("a wait without a timeout ends only when the predicate holds"))
    }

    /// [`wait_until`](Self::wait_until), for at most `timeout`: `Ok(None)` if `pred` did not
    /// hold by then.
    ///
    /// ```
    /// use shm_core::inspect::{Datum, RawSegment};
    /// use shm_core::Value;
    /// use std::time::Duration;
    ///
    /// # let name = format!("doc-raw-wait-{}", std::process::id());
    /// let v = Value::<u32>::create(&name, 0)?;
    /// let raw = RawSegment::open(&name)?;
    /// assert_eq!(raw.wait_until_timeout(|d| *d == Datum::U32(1), Duration::ZERO)?, None);
    /// v.update(|x| *x = 1);
    /// let seen = raw.wait_until_timeout(|d| *d == Datum::U32(1), Duration::from_secs(5))?;
    /// assert_eq!(seen, Some(Datum::U32(1)));
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If this thread holds the segment's lock.
    #[track_caller]
    pub fn wait_until_timeout(
        &self,
        pred: impl FnMut(&Datum) -> bool,
        timeout: Duration,
    ) -> Result<Option<Datum>> {
        self.wait_snapshot(Some(timeout), pred)
    }

    #[track_caller]
    fn wait_snapshot(
        &self,
        timeout: Option<Duration>,
        mut pred: impl FnMut(&Datum) -> bool,
    ) -> Result<Option<Datum>> {
        wait::until(&self.seg, timeout, || match self.snapshot() {
            Ok(d) if pred(&d) => Some(Ok(d)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .transpose()
    }

    /// Waits until the field at `path` (`done`, `hist[3]`, `[2].ready`, `.` for a single-value
    /// segment: a primitive, an enum or a text) compares with `value` as `op` says, for at most
    /// `timeout`: `Ok(Some(v))` with the value `v` that made it hold, `Ok(None)` if it did not
    /// hold by then. `value` is parsed by the field's type, as [`set`](Self::set) parses it
    /// (an enum's variant by name). What `shm wait NAME FIELD OP VALUE` does.
    ///
    /// The field is read with a seqlock read, so a value a killed writer half-stored (and the
    /// next reader rolls back) is never taken for one that holds. A timeout too long to
    /// represent (`Duration::MAX`) has no end.
    ///
    /// A path or value that `set` would refuse is refused here too, before any wait.
    ///
    /// ```
    /// use shm_core::inspect::{Compare, Datum, RawSegment};
    /// use shm_core::{Shared, SharedLayout};
    /// use std::time::Duration;
    ///
    /// #[derive(SharedLayout, Default)]
    /// #[repr(C)]
    /// struct Jobs {
    ///     done: u64,
    /// }
    ///
    /// # let name = format!("doc-wait-for-{}", std::process::id());
    /// let jobs = Shared::<Jobs>::create(&name, Jobs::default())?;
    /// let raw = RawSegment::open(&name)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| (0..100).for_each(|_| jobs.update(|j| j.done += 1)));
    ///     let seen = raw.wait_for("done", Compare::Ge, "100", Duration::from_secs(10));
    ///     assert_eq!(seen, Ok(Some(Datum::U64(100))));
    /// });
    /// assert_eq!(raw.wait_for("done", Compare::Lt, "100", Duration::ZERO), Ok(None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If this thread holds the segment's lock.
    #[track_caller]
    pub fn wait_for(
        &self,
        path: &str,
        op: Compare,
        value: &str,
        timeout: Duration,
    ) -> std::result::Result<Option<Datum>, FieldError> {
        let (_, offset, leaf) = self.leaf_at(path)?;
        let want = self.parse_value(path, leaf, value)?;
        let read = || self.read_consistent(Node::Value(leaf), offset);
        let corrupt = || FieldError::Corrupt {
            segment: self.name().to_owned(),
            reason: self.corrupt_reason(),
        };
        // Proves every cell in bounds and aligned before any wait.
        read().ok_or_else(corrupt)?;
        wait::until(&self.seg, Some(timeout), || match read() {
            Some(now) if op.holds(&now, &want) => Some(Ok(now)),
            Some(_) => None,
            // Proved in bounds above; a payload does not move.
            None => Some(Err(corrupt())),
        })
        .transpose()
    }

    /// Wakes every waiter of the segment, in every process (`wait_until` of a typed handle or
    /// of a `RawSegment`, `shm wait`), to check its condition again. [`set`](Self::set) wakes
    /// them itself, as `update` does.
    ///
    /// # Panics
    /// If the handle is read-only ([`open_readonly`](Self::open_readonly)): notifying writes to
    /// the segment's header.
    #[track_caller]
    pub fn notify(&self) {
        self.assert_writable("notify");
        wait::notify(&self.seg)
    }
}
