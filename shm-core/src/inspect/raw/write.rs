//! Writing one field parsed from text: under the segment's lock, waited for without end or at
//! most a given time, as one seqlock write.

use std::sync::{LockResult, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::{is_leaf, FieldError, Node, RawSegment};
use crate::cell::Width;
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::inspect::path::FieldPath;
use crate::inspect::{value, Datum};
use crate::layout::TEXT_LEN_SIZE;
use crate::{guard, journal, write, Guard};

/// What [`RawSegment::set`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Written {
    /// The field's path, normalised (`hist[3]`).
    pub path: String,
    /// The value before the write.
    pub old: Datum,
    /// The value written.
    pub new: Datum,
    /// The segment's lock was poisoned when this write took it (a holder died or panicked and
    /// nothing was repaired; see [`RawSegment::is_poisoned`]). The write happened; the poisoning
    /// is left in place: only the program that owns the data clears it.
    pub poisoned: bool,
}

impl RawSegment {
    /// Takes the segment's lock, blocking until it is free: the lock `Shared::lock` and every
    /// `update` take. `Err(PoisonError)` carries the guard, as for `Shared::lock`.
    ///
    /// # Panics
    /// If this thread already holds the lock, or the handle is read-only (locking writes).
    pub fn lock(&self) -> LockResult<Guard<'_, ()>> {
        self.assert_writable("lock");
        guard::lock(&self.seg, &())
    }

    /// Takes the lock if it is free now (`timeout` `None`) or within `timeout`;
    /// `Err(TryLockError::WouldBlock)` if it stayed held.
    ///
    /// # Panics
    /// If the handle is read-only.
    pub fn try_lock_for(&self, timeout: Option<Duration>) -> TryLockResult<Guard<'_, ()>> {
        self.assert_writable("try_lock_for");
        guard::try_lock(&self.seg, &(), timeout)
    }

    /// Stores primitives, each `(offset, value)` a payload offset and a primitive [`Datum`] of
    /// the type there, as one seqlock write under the lock that `guard` holds: a `snapshot` in
    /// any process sees all of them or none, and a writer killed half-way is rolled back from
    /// the journal, as for `update`. Every store is checked (in the payload, aligned, a primitive)
    /// before anything is written.
    ///
    /// This is `update` for a program that computes its changes without the Rust type (a
    /// binding for another language, which takes the lock, reads, decides, and writes).
    ///
    /// # Panics
    /// If `guard` is not this segment's.
    pub fn write(&self, guard: &Guard<'_, ()>, stores: &[(u64, Datum)]) -> Result<(), FieldError> {
        assert!(
            std::ptr::eq(guard.segment(), &self.seg),
            "segment `{}`: write() with the guard of another segment",
            self.name()
        );
        self.refuse_read_only()?;
        let mut range: Option<(u64, u64)> = None;
        for (offset, value) in stores {
            let width = value.code().map_or(0, |c| c.size() as u64);
            if width == 0 || self.raw_bytes(width as usize, *offset).is_none() {
                return Err(FieldError::Corrupt {
                    segment: self.name().to_owned(),
                    reason: format!(
                        "no primitive of {value}'s type fits at payload offset {offset}"
                    ),
                });
            }
            let (lo, hi) = range.unwrap_or((*offset, *offset + width));
            range = Some((lo.min(*offset), hi.max(*offset + width)));
        }
        let Some((lo, hi)) = range else {
            return Ok(());
        };
        // Checked above: inside the payload, whose length fits in a usize.
        let (lo, hi) = (lo as usize, hi as usize);
        // The journal's old copy: the range as it is, one atomic byte load at a time (a byte
        // torn by a concurrent field atomic is equal in both copies, so never restored); the new
        // copy: the same with the stores applied.
        let old: Vec<u8> = (lo..hi)
            .map(|i| self.raw_bytes(1, i as u64).map_or(0, |b| b[0]))
            .collect();
        let mut new = old.clone();
        for (offset, value) in stores {
            if let Some(bytes) = ne_bytes(value) {
                let at = *offset as usize - lo;
                new[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        // Stored piece by piece, each after its journal entry: in order of offset.
        let mut order: Vec<&(u64, Datum)> = stores.iter().collect();
        order.sort_by_key(|(offset, _)| *offset);
        let mut next = order.into_iter().peekable();
        let unit = self.seg.element().size.max(1) as usize;
        write::bytes(&self.seg, lo, &old, &new, unit, |piece| {
            while let Some((offset, value)) = next.next_if(|(o, _)| (*o as usize) < piece.end) {
                self.store(*offset, value);
            }
        });
        Ok(())
    }

    /// Stores the primitive `value` at payload offset `offset` with one relaxed atomic store of
    /// its width, as a field atomic does (not under the lock, not journaled); `None` if it does
    /// not lie inside the payload, is misaligned, or `value` is not a primitive, or the handle is
    /// read-only.
    pub fn store(&self, offset: u64, value: &Datum) -> Option<()> {
        self.store_datum(value, offset)
    }

    /// Writes the primitive, enum or text at `path` (`load`, `hist[3]`, `inner.x`, `[2].count`,
    /// `.` for a single-value segment), parsing `value` by the field's type: integers in decimal
    /// or `0x`/`0o`/`0b`, range-checked; floats as Rust reads them (`0.5`, `1e-9`, `inf`, `NaN`);
    /// `true`/`false`; one character; an enum's variant by its name (`Busy`; another is
    /// [`FieldError::NoSuchVariant`], which lists them); text as it is, not trimmed, at most
    /// the field's capacity in bytes of UTF-8 ([`FieldError::TextTooLong`]). A text is written
    /// whole (its bytes, zeros after them, and its length) in the one seqlock write.
    ///
    /// The write takes the segment's lock and is a seqlock write, like an `update` that changes
    /// one field. An empty or malformed path, a malformed value, an unknown field, an index out of
    /// range or a path to an array or struct is refused before anything is locked or written. Like
    /// `update`, it proceeds on a poisoned lock and leaves the poisoning as it is
    /// ([`Written::poisoned`] says so); a dead holder found by this write poisons the lock as for
    /// any locker.
    ///
    /// It waits for the lock as long as its holder keeps it: a live process that never releases
    /// it makes this wait for ever. [`set_timeout`](Self::set_timeout) bounds the wait.
    pub fn set(&self, path: &str, value: &str) -> Result<Written, FieldError> {
        self.write_field(path, value, None)
    }

    /// [`set`](Self::set), waiting at most `timeout` for the segment's lock:
    /// [`FieldError::LockTimeout`] if it stays held that long, naming the holder. Nothing is
    /// written then.
    ///
    /// A holder that dies while this waits does not make it time out: the lock passes to this
    /// call, poisoned ([`Written::poisoned`]), as it would to any locker.
    ///
    /// ```
    /// use shm_core::inspect::{Datum, FieldError, RawSegment};
    /// use shm_core::Value;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// # let name = format!("doc-set-timeout-{}", std::process::id());
    /// let counter = Value::<u64>::create(&name, 1)?;
    /// let raw = RawSegment::open(&name)?;
    /// let (locked_tx, locked) = mpsc::channel();
    /// let (release, release_rx) = mpsc::channel::<()>();
    /// let held = &counter;
    /// std::thread::scope(|s| {
    ///     // Another thread holds the lock until told to release it.
    ///     s.spawn(move || {
    ///         let _guard = held.lock().unwrap();
    ///         locked_tx.send(()).unwrap();
    ///         let _ = release_rx.recv();
    ///     });
    ///     locked.recv().unwrap();
    ///     let err = raw.set_timeout(".", "5", Duration::from_millis(50)).unwrap_err();
    ///     let FieldError::LockTimeout { holder: Some(holder), .. } = err else { panic!("{err}") };
    ///     assert_eq!((holder.pid, holder.alive), (std::process::id(), true));
    ///     release.send(()).unwrap();
    /// });
    /// let written = raw.set_timeout(".", "5", Duration::from_secs(1))?;
    /// assert_eq!((written.old, written.new), (Datum::U64(1), Datum::U64(5)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_timeout(
        &self,
        path: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<Written, FieldError> {
        self.write_field(path, value, Some(timeout))
    }

    /// `set` and `set_timeout`: waits for the lock for ever without `timeout`.
    fn write_field(
        &self,
        path: &str,
        value: &str,
        timeout: Option<Duration>,
    ) -> Result<Written, FieldError> {
        self.refuse_read_only()?;
        let (parsed, offset, leaf) = self.leaf_at(path)?;
        let new = self.parse_value(path, leaf, value)?;
        let corrupt = || FieldError::Corrupt {
            segment: self.name().to_owned(),
            reason: self.corrupt_reason(),
        };
        // Proves every cell is in bounds and aligned before anything is locked.
        self.read(leaf, offset, &mut self.budget())
            .ok_or_else(corrupt)?;
        // `read` just proved `offset + size` is within the payload, so it fits in a usize.
        let start = offset as usize;
        let (guard, poisoned) = match timeout {
            None => match guard::lock(&self.seg, &()) {
                Ok(g) => (g, false),
                Err(p) => (p.into_inner(), true),
            },
            Some(timeout) => self.lock_within(path, timeout)?,
        };
        let old = self.read(leaf, offset, &mut self.budget());
        // The journal gets the cells' bytes as they are (a `bool` byte of 5 stays 5 if the write
        // is undone), and the new value's.
        let old_bytes = self.leaf_bytes(leaf, offset);
        let new_bytes = old_bytes
            .as_ref()
            .and_then(|o| encode_leaf(leaf, &new, o.clone()));
        if let (Some(o), Some(n)) = (&old_bytes, &new_bytes) {
            write::bytes(guard.segment(), start, o, n, o.len().max(1), |_| {
                self.store_leaf(leaf, offset, n);
            });
        }
        drop(guard);
        new_bytes.ok_or_else(corrupt)?;
        Ok(Written {
            path: parsed.to_string(),
            old: old.ok_or_else(corrupt)?,
            new,
            poisoned,
        })
    }

    /// `value` parsed as a value of `leaf` (a primitive, an enum, a text), at `path`.
    pub(super) fn parse_value(
        &self,
        path: &str,
        leaf: &Descriptor,
        value: &str,
    ) -> Result<Datum, FieldError> {
        match &leaf.kind {
            DescriptorKind::Enum { variants, .. } => {
                match variants.iter().find(|v| v.name == value) {
                    Some(v) => Ok(Datum::Enum {
                        variant: v.name.clone(),
                        value: v.value,
                        known: true,
                    }),
                    None => Err(FieldError::NoSuchVariant {
                        segment: self.name().to_owned(),
                        path: path.to_owned(),
                        enum_name: leaf.name.clone(),
                        value: value.to_owned(),
                        variants: variants.iter().map(|v| v.name.clone()).collect(),
                    }),
                }
            }
            // Not trimmed: spaces are text.
            DescriptorKind::Text { capacity } if value.len() as u64 <= *capacity => {
                Ok(Datum::Text(value.to_owned()))
            }
            DescriptorKind::Text { capacity } => Err(FieldError::TextTooLong {
                segment: self.name().to_owned(),
                path: path.to_owned(),
                len: value.len(),
                capacity: *capacity,
            }),
            _ => {
                let DescriptorKind::Primitive(code) = leaf.kind else {
                    unreachable!("`is_leaf` admits primitives, enums and texts")
                };
                value::parse(code, value).map_err(|reason| FieldError::BadValue {
                    segment: self.name().to_owned(),
                    path: path.to_owned(),
                    code,
                    value: value.to_owned(),
                    reason,
                })
            }
        }
    }

    /// The `leaf.size` bytes of the leaf at `offset`: each of its cells as one relaxed atomic
    /// load of its width reads it, zeros between them (padding).
    fn leaf_bytes(&self, leaf: &Descriptor, offset: u64) -> Option<Vec<u8>> {
        let mut out = vec![0; usize::try_from(leaf.size).ok()?];
        let mut ok = true;
        each_cell(leaf, offset, &mut |at, width| match self.cell(at, width) {
            Some(cell) => width.encode(
                cell.load(),
                &mut out[(at - offset) as usize..][..width.bytes()],
            ),
            None => ok = false,
        });
        ok.then_some(out)
    }

    /// Stores `bytes` (as `encode_leaf` made them) into the cells of the leaf at `offset`, each
    /// with one relaxed atomic store of its width.
    fn store_leaf(&self, leaf: &Descriptor, offset: u64, bytes: &[u8]) {
        each_cell(leaf, offset, &mut |at, width| {
            let b = &bytes[(at - offset) as usize..][..width.bytes()];
            let _ = self.store_bytes(b, at);
        });
    }

    /// The leaf (a primitive, an enum or a text) that `path` names (`load`, `hist[3]`, `.`):
    /// its parsed path, payload offset and descriptor; refused as `set` refuses it otherwise.
    pub(super) fn leaf_at(&self, path: &str) -> Result<(FieldPath, u64, &Descriptor), FieldError> {
        if path.is_empty() {
            return Err(FieldError::EmptyPath {
                segment: self.name().to_owned(),
                reason: self.empty_path(),
            });
        }
        let parsed = self.parse_path(path)?;
        let (offset, node) = self.resolve(path, &parsed)?;
        match node {
            Node::Value(d) if is_leaf(d) => Ok((parsed, offset, d)),
            other => Err(FieldError::NotPrimitive {
                segment: self.name().to_owned(),
                path: path.to_owned(),
                reason: self.not_primitive(&parsed, other),
            }),
        }
    }

    /// Takes the segment's lock, waiting at most `timeout`; whether it was poisoned.
    fn lock_within(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<(Guard<'_, ()>, bool), FieldError> {
        let start = Instant::now();
        // A wait too long to represent has no end.
        let deadline = start.checked_add(timeout);
        loop {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            match guard::try_lock(&self.seg, &(), Some(left)) {
                Ok(g) => return Ok((g, false)),
                Err(TryLockError::Poisoned(p)) => return Ok((p.into_inner(), true)),
                Err(TryLockError::WouldBlock) => {}
            }
            let holder = self.lock_holder();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(FieldError::LockTimeout {
                    segment: self.name().to_owned(),
                    path: path.to_owned(),
                    waited: start.elapsed(),
                    holder,
                });
            }
            // Refused before the deadline: this thread holds the lock itself (a guard of it is
            // alive), which only the deadline ends.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stores the primitive `value` at `offset` with a relaxed atomic store of its width.
    fn store_datum(&self, value: &Datum, offset: u64) -> Option<()> {
        if self.seg.is_read_only() {
            return None;
        }
        let (width, bits) = value.to_bits()?;
        self.cell(offset, width)?.store(bits);
        Some(())
    }

    /// Stores `bytes` (1, 2, 4 or 8 of them, in memory order) at `offset` with one relaxed atomic
    /// store of their width.
    fn store_bytes(&self, bytes: &[u8], offset: u64) -> Option<()> {
        if self.seg.is_read_only() {
            return None;
        }
        let width = Width::from_bytes(bytes.len())?;
        self.cell(offset, width)?.store(width.decode(bytes));
        Some(())
    }
}

/// Calls `f(offset, width)` for every cell of the leaf `d` at `offset`: what one atomic access
/// reads or writes (a text's length word, then each of its bytes).
fn each_cell(d: &Descriptor, offset: u64, f: &mut dyn FnMut(u64, Width)) {
    let all = offset..offset.saturating_add(d.size);
    journal::each_primitive(d, offset, &all, f);
}

/// The bytes of the leaf `d` holding `value`, as its cells store them: `old` (the leaf's bytes
/// now) with every cell replaced.
fn encode_leaf(d: &Descriptor, value: &Datum, mut old: Vec<u8>) -> Option<Vec<u8>> {
    match (&d.kind, value) {
        (DescriptorKind::Enum { repr, .. }, Datum::Enum { value, .. }) => {
            // In range of `repr` (a variant's value): its low bytes are the repr's two's complement.
            Some(Width::of(*repr).ne_bytes(*value as u64))
        }
        (DescriptorKind::Text { capacity }, Datum::Text(text)) => {
            let capacity = usize::try_from(*capacity).ok()?;
            let len = u32::try_from(text.len())
                .ok()
                .filter(|_| text.len() <= capacity)?;
            old.get_mut(..TEXT_LEN_SIZE)?
                .copy_from_slice(&len.to_ne_bytes());
            let bytes = old.get_mut(TEXT_LEN_SIZE..TEXT_LEN_SIZE + capacity)?;
            bytes.fill(0);
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Some(old)
        }
        (DescriptorKind::Primitive(_), _) => ne_bytes(value),
        _ => None,
    }
}

/// A primitive's bytes in memory, as its atomic of the same width stores them.
fn ne_bytes(value: &Datum) -> Option<Vec<u8>> {
    let (width, bits) = value.to_bits()?;
    Some(width.ne_bytes(bits))
}
