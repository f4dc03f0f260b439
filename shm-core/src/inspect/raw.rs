//! `RawSegment`: a segment of any layout, read and written through the descriptor in its header.

use std::fmt;
use std::fs;
use std::mem::{align_of, size_of};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use super::holder::{self, LockHolder};
use super::list::{tool_options, SegmentInfo, SHM_DIR};
use super::path::{self, FieldPath, Primitives, Step, FEW};
use super::{value, Datum};
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::header::FLAG_ARRAY;
use crate::segment::Segment;
use crate::{guard, lock, seqlock, Error, Guard, Options, Result, TypeCode};

mod sealed {
    /// The std atomics primitives are read and written with. Every bit pattern is a valid value
    /// of each, and each has the size and alignment of its integer.
    pub trait Cell: Sync {}
    impl Cell for std::sync::atomic::AtomicU8 {}
    impl Cell for std::sync::atomic::AtomicU16 {}
    impl Cell for std::sync::atomic::AtomicU32 {}
    impl Cell for std::sync::atomic::AtomicU64 {}
}
use sealed::Cell;

/// A segment opened without its Rust type: its layout comes from the descriptor in its header.
///
/// This is what the `shm` command uses to show and change any segment. Reads are seqlock reads of
/// relaxed atomic loads (consistent with every `update`, as `snapshot` is); a write takes the
/// segment's lock and is one seqlock write, as `update` is. Nothing a segment contains makes a
/// method panic.
///
/// ```
/// use shm_core::inspect::{Datum, RawSegment};
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
/// # let name = format!("doc-raw-{}", std::process::id());
/// let stats = Shared::<Stats>::create(&name, Stats::default())?;
/// stats.requests.store(17, Relaxed);
///
/// // A program that has never seen `Stats`:
/// let raw = RawSegment::open(&name)?;
/// assert_eq!(raw.info()?.rust_type(), "Shared<Stats>");
/// raw.set("load", "0.5")?;
/// raw.set("hist[2]", "7")?;
/// let now = raw.snapshot()?;
/// assert_eq!(now.field("requests"), Some(&Datum::U64(17)));
/// assert_eq!(now.to_string(), "{requests: 17, load: 0.5, hist: [0, 0, 7, 0]}");
///
/// // The typed handle sees the writes.
/// assert_eq!(stats.hist[2].load(Relaxed), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RawSegment {
    seg: Segment,
    descriptor: Descriptor,
    is_array: bool,
    /// `count * descriptor.size`: the payload bytes `Segment` proved to be inside the mapping.
    payload_len: u64,
}

/// Where a path leads: the elements of an array segment, or a value of some type.
#[derive(Clone, Copy)]
enum Node<'a> {
    Elements,
    Value(&'a Descriptor),
}

/// How many values one read may produce beyond one per payload byte: enough for any real layout
/// with zero-sized structs, while a hostile descriptor of huge arrays of zero-sized elements
/// cannot make a read allocate without bound.
const EXTRA_VALUES: u64 = 1 << 16;

/// Why a field could not be read or written. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// The path is not of the form `a.b[3].c`.
    Syntax {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No field or element of the segment has this path: an unknown name, an index out of range,
    /// a field of something that is not a struct.
    NoSuchField {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// Where the path stopped making sense, and what is there.
        reason: String,
    },
    /// The path is empty (`""`, what an unset variable in a script gives). A write names its
    /// field, or `.` for the value of a single-value segment.
    EmptyPath {
        /// The segment's name.
        segment: String,
        /// What the segment holds, and what to write instead.
        reason: String,
    },
    /// The path names an array or a struct; a write changes one primitive.
    NotPrimitive {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// What the path names, and how to name one of its primitives.
        reason: String,
    },
    /// The text is not a value of the field's type, or is out of its range.
    BadValue {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// The field's type.
        code: TypeCode,
        /// The text as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload cannot hold what the descriptor describes (a segment that passed `open`'s
    /// checks never gets here).
    Corrupt {
        /// The segment's name.
        segment: String,
        /// What is wrong.
        reason: String,
    },
    /// The segment's lock stayed held for the whole wait [`RawSegment::set_timeout`] was given.
    LockTimeout {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// How long the call waited.
        waited: Duration,
        /// Who held the lock when the wait ended; `None` if the lock word named nobody then (it
        /// was released at that moment, or was being repaired).
        holder: Option<LockHolder>,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Syntax {
                segment,
                path,
                reason,
            } => write!(
                f,
                "segment `{segment}`: `{path}` is not a field path ({reason}); write e.g. `load`, `hist[3]`, `inner.x`, `[2].count`"
            ),
            FieldError::NoSuchField {
                segment,
                path,
                reason,
            } => write!(f, "segment `{segment}` has no field `{path}`: {reason}"),
            FieldError::EmptyPath { segment, reason } => {
                write!(f, "segment `{segment}`: the field path is empty: {reason}")
            }
            FieldError::NotPrimitive {
                segment,
                path,
                reason,
            } => write!(f, "segment `{segment}`: `{path}` {reason}"),
            FieldError::BadValue {
                segment,
                path,
                code,
                value,
                reason,
            } => write!(
                f,
                "segment `{segment}`: cannot write {value:?} to `{path}` ({code}, type code `{}`): {reason}",
                code.as_char()
            ),
            FieldError::Corrupt { segment, reason } => {
                write!(f, "segment `{segment}` is not a valid segment: {reason}")
            }
            FieldError::LockTimeout {
                segment,
                path,
                waited,
                holder,
            } => {
                write!(f, "segment `{segment}`: `{path}` not written: its lock was ")?;
                match holder {
                    Some(h) => write!(f, "still held by {h}")?,
                    None => f.write_str("still taken (its lock word names no holder)")?,
                }
                write!(f, " after waiting {}", seconds(*waited))
            }
        }
    }
}

impl std::error::Error for FieldError {}

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
    /// Opens the segment `name` whatever its layout, with every check a typed `open` makes
    /// except the comparison with a type. Accepts any read/write mode the file system lets this
    /// user open (a tool trusts none of a segment's bytes), and waits up to a second for a
    /// segment that is being created.
    pub fn open(name: &str) -> Result<RawSegment> {
        Self::open_with(name, &tool_options(Duration::from_secs(1)))
    }

    /// [`open`](Self::open) with options: the mode this program accepts and the wait time, as
    /// for a typed open.
    pub fn open_with(name: &str, opts: &Options) -> Result<RawSegment> {
        let (seg, descriptor) = Segment::open_any(name, opts)?;
        let count = seg.count() as u64;
        let Some(payload_len) = count.checked_mul(descriptor.size) else {
            return Err(Error::Corrupt {
                name: name.to_owned(),
                reason: "its element count times its element size overflows".to_owned(),
            });
        };
        let is_array = seg.header().flags.load(Relaxed) & FLAG_ARRAY != 0 || count != 1;
        Ok(RawSegment {
            seg,
            descriptor,
            is_array,
            payload_len,
        })
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// The layout of one element, as written in the segment.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// Whether the segment holds an array (read with [`snapshot_range`](Self::snapshot_range),
    /// paths start with an index: `[2].count`) rather than one value.
    pub fn is_array(&self) -> bool {
        self.is_array
    }

    /// Number of elements: 1 for a single value.
    pub fn len(&self) -> usize {
        self.seg.count()
    }

    /// Whether the segment is an array of no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the header and the object say now: creator and whether it lives, kept, mode ...
    pub fn info(&self) -> Result<SegmentInfo> {
        let mut info = SegmentInfo::read(&self.seg, &self.descriptor)?;
        info.is_array = self.is_array;
        Ok(info)
    }

    /// Whether the segment's lock is poisoned: exactly what `Shared::is_poisoned` and
    /// `Array::is_poisoned` of the program that owns the segment say (the poison word is set, or
    /// the lock's owner died with no write in progress and nobody has locked since). Takes no
    /// lock and changes nothing.
    pub fn is_poisoned(&self) -> bool {
        lock::is_poisoned(self.seg.header())
    }

    /// Whether the name no longer leads to this segment: removed (and perhaps created again).
    /// Values can still be read and written; no other process will open them by name.
    pub fn is_removed(&self) -> bool {
        let Ok(st) = self.seg.stat() else {
            return false;
        };
        match fs::symlink_metadata(std::path::Path::new(SHM_DIR).join(self.name())) {
            Ok(m) => m.dev() != st.st_dev || m.ino() != st.st_ino,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// A consistent copy of the whole value: a [`Datum::Array`] of the elements for an array
    /// segment, else the one value. Consistent with every `update` of every process, as
    /// `Shared::snapshot` is.
    ///
    /// Takes memory in proportion to the payload (a few dozen bytes per primitive); for a large
    /// array read a range with [`snapshot_range`](Self::snapshot_range).
    pub fn snapshot(&self) -> Result<Datum> {
        let root = if self.is_array {
            Node::Elements
        } else {
            Node::Value(&self.descriptor)
        };
        self.read_consistent(root, 0).ok_or_else(|| self.corrupt())
    }

    /// A consistent copy of the elements in `range` (clipped to the array's length).
    pub fn snapshot_range(&self, range: Range<usize>) -> Result<Vec<Datum>> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let size = self.descriptor.size;
        seqlock::read(&self.seg, || {
            let mut budget = self.budget();
            (start..end)
                .map(|i| self.read(&self.descriptor, (i as u64).checked_mul(size)?, &mut budget))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| self.corrupt())
    }

    /// A consistent copy of the field, element, array or struct at `path` (`load`, `hist[3]`,
    /// `inner`, `[2].count`; `""` or `"."` for the whole value).
    pub fn get(&self, path: &str) -> Result<Datum, FieldError> {
        let parsed = self.parse_path(path)?;
        let (offset, node) = self.resolve(path, &parsed)?;
        self.read_consistent(node, offset)
            .ok_or_else(|| FieldError::Corrupt {
                segment: self.name().to_owned(),
                reason: self.corrupt_reason(),
            })
    }

    /// Writes the primitive at `path` (`load`, `hist[3]`, `inner.x`, `[2].count`, `.` for a
    /// single-value segment), parsing `value` by the field's type code: integers in decimal or
    /// `0x`/`0o`/`0b`, range-checked; floats as Rust reads them (`0.5`, `1e-9`, `inf`, `NaN`);
    /// `true`/`false`; one character.
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

    /// Who holds the segment's lock now, as its lock word says: the process, the thread, and
    /// whether it still runs; `None` if nobody holds it. By the time it returns the holder may
    /// have released the lock.
    ///
    /// ```
    /// use shm_core::inspect::RawSegment;
    /// use shm_core::Value;
    ///
    /// # let name = format!("doc-lock-holder-{}", std::process::id());
    /// let counter = Value::<u64>::create(&name, 0)?;
    /// let raw = RawSegment::open(&name)?;
    /// assert_eq!(raw.lock_holder(), None);
    /// let guard = counter.lock().unwrap();
    /// let holder = raw.lock_holder().expect("held");
    /// assert_eq!((holder.pid, holder.alive), (std::process::id(), true));
    /// drop(guard);
    /// assert_eq!(raw.lock_holder(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock_holder(&self) -> Option<LockHolder> {
        holder::holder(self.seg.header())
    }

    /// `set` and `set_timeout`: waits for the lock for ever without `timeout`.
    fn write_field(
        &self,
        path: &str,
        value: &str,
        timeout: Option<Duration>,
    ) -> Result<Written, FieldError> {
        if path.is_empty() {
            return Err(FieldError::EmptyPath {
                segment: self.name().to_owned(),
                reason: self.empty_path(),
            });
        }
        let parsed = self.parse_path(path)?;
        let (offset, node) = self.resolve(path, &parsed)?;
        let code = match node {
            Node::Value(Descriptor {
                kind: DescriptorKind::Primitive(code),
                ..
            }) => *code,
            other => {
                return Err(FieldError::NotPrimitive {
                    segment: self.name().to_owned(),
                    path: path.to_owned(),
                    reason: self.not_primitive(&parsed, other),
                })
            }
        };
        let new = value::parse(code, value).map_err(|reason| FieldError::BadValue {
            segment: self.name().to_owned(),
            path: path.to_owned(),
            code,
            value: value.to_owned(),
            reason,
        })?;
        let corrupt = || FieldError::Corrupt {
            segment: self.name().to_owned(),
            reason: self.corrupt_reason(),
        };
        // Proves the cell is in bounds and aligned before anything is locked.
        self.load(code, offset).ok_or_else(corrupt)?;
        // `load` just proved `offset + width` is within the payload, so it fits in a usize.
        let start = offset as usize;
        let bytes = start..start + code.size();
        let (guard, poisoned) = match timeout {
            None => match guard::lock(&self.seg, &()) {
                Ok(g) => (g, false),
                Err(p) => (p.into_inner(), true),
            },
            Some(timeout) => self.lock_within(path, timeout)?,
        };
        let old = self.load(code, offset);
        // The journal gets the cell's bytes as they are (a `bool` byte of 5 stays 5 if the write
        // is undone), and the new value's.
        let old_bytes = self.raw_bytes(code.size(), offset);
        seqlock::write(
            guard.segment(),
            bytes,
            |copies| {
                if let (Some(o), Some(n)) = (old_bytes, ne_bytes(&new)) {
                    copies.record_bytes(&o, &n);
                }
            },
            || {
                self.store(&new, offset);
            },
        );
        drop(guard);
        Ok(Written {
            path: parsed.to_string(),
            old: old.ok_or_else(corrupt)?,
            new,
            poisoned,
        })
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

    fn parse_path(&self, path: &str) -> Result<FieldPath, FieldError> {
        path::parse(path).map_err(|reason| FieldError::Syntax {
            segment: self.name().to_owned(),
            path: path.to_owned(),
            reason,
        })
    }

    /// Follows `parsed` from the segment's root to a byte offset in the payload and what is there.
    fn resolve(&self, path: &str, parsed: &FieldPath) -> Result<(u64, Node<'_>), FieldError> {
        let mut node = self.root();
        let mut offset = 0u64;
        for (i, step) in parsed.0.iter().enumerate() {
            let at = parsed.prefix(i);
            let here = describe(&at);
            let fail = |reason: String| FieldError::NoSuchField {
                segment: self.name().to_owned(),
                path: path.to_owned(),
                reason,
            };
            match (node, step) {
                (Node::Elements, Step::Index(n)) => {
                    let count = self.len() as u64;
                    if *n >= count {
                        return Err(fail(format!(
                            "index {n} is out of range: the segment is an array of {count} `{}`",
                            self.descriptor
                        )));
                    }
                    offset = n.saturating_mul(self.descriptor.size);
                    node = Node::Value(&self.descriptor);
                }
                (Node::Elements, Step::Field(name)) => {
                    let hint = self.bracketed(parsed, i).unwrap_or_else(|| {
                        // `count` for `[0].count`: the same field of the first element.
                        let field = match &self.descriptor.kind {
                            DescriptorKind::Struct { fields } => {
                                fields.iter().find(|f| &f.name == name)
                            }
                            _ => None,
                        };
                        let first = FieldPath(vec![Step::Index(0)]);
                        let under = match field {
                            Some(f) => {
                                let mut p = first;
                                p.0.push(Step::Field(f.name.clone()));
                                Primitives::of(&p, &f.ty, FEW)
                            }
                            None => Primitives::of_elements(
                                &FieldPath(Vec::new()),
                                &self.descriptor,
                                count_of(self.len()),
                                FEW,
                            ),
                        };
                        if under.is_empty() {
                            "its elements hold no primitive to write".to_owned()
                        } else {
                            format!("start with an element's index, e.g. {under}")
                        }
                    });
                    return Err(fail(format!(
                        "the segment is an array of {} `{}`: {hint}",
                        self.len(),
                        self.descriptor
                    )));
                }
                (Node::Value(d), Step::Field(name)) => match &d.kind {
                    DescriptorKind::Struct { fields } => {
                        let Some(f) = fields.iter().find(|f| &f.name == name) else {
                            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                            return Err(fail(format!(
                                "`{}` has no field `{name}`; its fields are {}",
                                d.name,
                                if names.is_empty() {
                                    "none".to_owned()
                                } else {
                                    names.join(", ")
                                }
                            )));
                        };
                        offset = offset.saturating_add(f.offset);
                        node = Node::Value(&f.ty);
                    }
                    DescriptorKind::Array { .. } => {
                        let hint = self
                            .bracketed(parsed, i)
                            .unwrap_or_else(|| primitives_in(&at, d));
                        return Err(fail(format!(
                            "{here} is {}, which has no fields: {hint}",
                            a_kind(d)
                        )));
                    }
                    DescriptorKind::Primitive(_) => {
                        return Err(fail(format!(
                            "{here} is {d}, which has no fields: write `{at}` for it"
                        )));
                    }
                },
                (Node::Value(d), Step::Index(n)) => match &d.kind {
                    DescriptorKind::Array { elem, len } => {
                        if n >= len {
                            return Err(fail(format!(
                                "index {n} is out of range: {here} is {d}, of {len} elements"
                            )));
                        }
                        offset = offset.saturating_add(n.saturating_mul(elem.size));
                        node = Node::Value(elem);
                    }
                    DescriptorKind::Struct { .. } => {
                        return Err(fail(format!(
                            "{here} is {}, not an array: {}",
                            a_kind(d),
                            primitives_in(&at, d)
                        )));
                    }
                    DescriptorKind::Primitive(_) => {
                        return Err(fail(format!(
                            "{here} is {d}, not an array: write `{at}` for it"
                        )));
                    }
                },
            }
        }
        Ok((offset, node))
    }

    /// Where a path starts: the elements of an array segment, or the one value.
    fn root(&self) -> Node<'_> {
        if self.is_array {
            Node::Elements
        } else {
            Node::Value(&self.descriptor)
        }
    }

    /// `0.pid` meant as `[0].pid`: if step `i` of `parsed`, a field name, is a number, and the
    /// path with that number as an index leads somewhere, what to write instead.
    fn bracketed(&self, parsed: &FieldPath, i: usize) -> Option<String> {
        let Step::Field(name) = &parsed.0[i] else {
            return None;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut fixed = parsed.clone();
        fixed.0[i] = Step::Index(name.parse().ok()?);
        self.resolve("", &fixed).ok()?;
        Some(format!("an index goes in brackets: `{fixed}`"))
    }

    /// Why `parsed`, which leads to `node`, cannot be written, and what to write instead.
    fn not_primitive(&self, parsed: &FieldPath, node: Node<'_>) -> String {
        let (what, under) = match node {
            Node::Elements => (
                format!(
                    "is the whole segment, an array of {} `{}`",
                    self.len(),
                    self.descriptor
                ),
                Primitives::of_elements(parsed, &self.descriptor, count_of(self.len()), FEW),
            ),
            Node::Value(d) if parsed.0.is_empty() => (
                format!("is the segment's whole value, {}", a_kind(d)),
                Primitives::of(parsed, d, FEW),
            ),
            Node::Value(d) => (format!("is {}", a_kind(d)), Primitives::of(parsed, d, FEW)),
        };
        format!("{what}, not a single value: {}", suggest(&under))
    }

    /// What to say for an empty path: what the segment holds, and what to write.
    fn empty_path(&self) -> String {
        let root = FieldPath(Vec::new());
        match self.root() {
            Node::Elements => format!(
                "the segment is an array of {} `{}`: {}",
                self.len(),
                self.descriptor,
                suggest(&Primitives::of_elements(
                    &root,
                    &self.descriptor,
                    count_of(self.len()),
                    FEW
                ))
            ),
            Node::Value(
                d @ Descriptor {
                    kind: DescriptorKind::Primitive(_),
                    ..
                },
            ) => format!("write `.` for the segment's value, a {d}"),
            Node::Value(d) => format!(
                "the segment's value is {}: {}",
                a_kind(d),
                primitives_in(&root, d)
            ),
        }
    }

    fn corrupt_reason(&self) -> String {
        "a value its descriptor describes lies outside its payload or is misaligned, or there are more values than its payload can hold".to_owned()
    }

    fn corrupt(&self) -> Error {
        Error::Corrupt {
            name: self.name().to_owned(),
            reason: self.corrupt_reason(),
        }
    }

    fn budget(&self) -> u64 {
        self.payload_len.saturating_add(EXTRA_VALUES)
    }

    /// Reads what `node` at `offset` holds, as a seqlock read.
    fn read_consistent(&self, node: Node<'_>, offset: u64) -> Option<Datum> {
        seqlock::read(&self.seg, || {
            let mut budget = self.budget();
            match node {
                Node::Elements => {
                    let size = self.descriptor.size;
                    (0..self.len() as u64)
                        .map(|i| self.read(&self.descriptor, i.checked_mul(size)?, &mut budget))
                        .collect::<Option<Vec<_>>>()
                        .map(Datum::Array)
                }
                Node::Value(d) => self.read(d, offset, &mut budget),
            }
        })
    }

    /// The value of type `d` at payload offset `offset`, one relaxed atomic load per primitive;
    /// `None` if anything lies outside the payload, is misaligned, or `budget` runs out.
    fn read(&self, d: &Descriptor, offset: u64, budget: &mut u64) -> Option<Datum> {
        *budget = budget.checked_sub(1)?;
        Some(match &d.kind {
            DescriptorKind::Primitive(code) => self.load(*code, offset)?,
            DescriptorKind::Array { elem, len } => {
                let mut items = Vec::new();
                for i in 0..*len {
                    let at = offset.checked_add(i.checked_mul(elem.size)?)?;
                    items.push(self.read(elem, at, budget)?);
                }
                Datum::Array(items)
            }
            DescriptorKind::Struct { fields } => {
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    out.push((
                        f.name.clone(),
                        self.read(&f.ty, offset.checked_add(f.offset)?, budget)?,
                    ));
                }
                Datum::Struct(out)
            }
        })
    }

    /// The atomic `A` at payload offset `offset`, if it lies inside the payload and is aligned.
    fn cell<A: Cell>(&self, offset: u64) -> Option<&A> {
        let end = offset.checked_add(size_of::<A>() as u64)?;
        if end > self.payload_len {
            return None;
        }
        let ptr = self
            .seg
            .payload()
            .as_ptr()
            .wrapping_add(usize::try_from(offset).ok()?);
        if ptr as usize % align_of::<A>() != 0 {
            return None;
        }
        // SAFETY: `offset + size_of::<A>() <= payload_len` (checked above), and
        // `Segment::open_any` proved that the payload — `count` elements of `descriptor.size`
        // bytes from `payload()`, i.e. `payload_len` bytes — lies inside the mapping, so
        // `ptr..ptr + size_of::<A>()` is inside it (and so `wrapping_add` did not wrap). `ptr` is
        // aligned for `A` (checked above). `A` is one of std's `AtomicU8..AtomicU64` (the sealed
        // `Cell`), for which any bit pattern is valid, and every process accesses the mapping
        // only atomically (the crate's rule for shared bytes), so a shared reference is sound
        // whatever peers write. The mapping lives as long as `self.seg`, which the returned
        // reference borrows.
        Some(unsafe { &*(ptr as *const A) })
    }

    /// The primitive `code` at `offset`, as relaxed atomic loads read it.
    fn load(&self, code: TypeCode, offset: u64) -> Option<Datum> {
        let u8_ = || self.cell::<AtomicU8>(offset).map(|c| c.load(Relaxed));
        let u16_ = || self.cell::<AtomicU16>(offset).map(|c| c.load(Relaxed));
        let u32_ = || self.cell::<AtomicU32>(offset).map(|c| c.load(Relaxed));
        let u64_ = || self.cell::<AtomicU64>(offset).map(|c| c.load(Relaxed));
        Some(match code {
            TypeCode::I8 => Datum::I8(u8_()? as i8),
            TypeCode::U8 => Datum::U8(u8_()?),
            TypeCode::I16 => Datum::I16(u16_()? as i16),
            TypeCode::U16 => Datum::U16(u16_()?),
            TypeCode::I32 => Datum::I32(u32_()? as i32),
            TypeCode::U32 => Datum::U32(u32_()?),
            TypeCode::I64 => Datum::I64(u64_()? as i64),
            TypeCode::U64 => Datum::U64(u64_()?),
            TypeCode::F32 => Datum::F32(f32::from_bits(u32_()?)),
            TypeCode::F64 => Datum::F64(f64::from_bits(u64_()?)),
            // As the typed atomics read them: any non-zero byte is true, an invalid char U+FFFD.
            TypeCode::Bool => Datum::Bool(u8_()? != 0),
            TypeCode::Char => Datum::Char(char::from_u32(u32_()?).unwrap_or('\u{FFFD}')),
        })
    }

    /// The `width` bytes at `offset`, as one relaxed atomic load reads them.
    fn raw_bytes(&self, width: usize, offset: u64) -> Option<Vec<u8>> {
        Some(match width {
            1 => self
                .cell::<AtomicU8>(offset)?
                .load(Relaxed)
                .to_ne_bytes()
                .to_vec(),
            2 => self
                .cell::<AtomicU16>(offset)?
                .load(Relaxed)
                .to_ne_bytes()
                .to_vec(),
            4 => self
                .cell::<AtomicU32>(offset)?
                .load(Relaxed)
                .to_ne_bytes()
                .to_vec(),
            8 => self
                .cell::<AtomicU64>(offset)?
                .load(Relaxed)
                .to_ne_bytes()
                .to_vec(),
            _ => return None,
        })
    }

    /// Stores the primitive `value` at `offset` with a relaxed atomic store of its width.
    fn store(&self, value: &Datum, offset: u64) -> Option<()> {
        let u8_ = |v: u8| self.cell::<AtomicU8>(offset).map(|c| c.store(v, Relaxed));
        let u16_ = |v: u16| self.cell::<AtomicU16>(offset).map(|c| c.store(v, Relaxed));
        let u32_ = |v: u32| self.cell::<AtomicU32>(offset).map(|c| c.store(v, Relaxed));
        let u64_ = |v: u64| self.cell::<AtomicU64>(offset).map(|c| c.store(v, Relaxed));
        match *value {
            Datum::I8(v) => u8_(v as u8),
            Datum::U8(v) => u8_(v),
            Datum::I16(v) => u16_(v as u16),
            Datum::U16(v) => u16_(v),
            Datum::I32(v) => u32_(v as u32),
            Datum::U32(v) => u32_(v),
            Datum::I64(v) => u64_(v as u64),
            Datum::U64(v) => u64_(v),
            Datum::F32(v) => u32_(v.to_bits()),
            Datum::F64(v) => u64_(v.to_bits()),
            Datum::Bool(v) => u8_(u8::from(v)),
            Datum::Char(v) => u32_(u32::from(v)),
            Datum::Array(_) | Datum::Struct(_) => None,
        }
    }
}

/// A primitive's bytes in memory, as its atomic of the same width stores them.
fn ne_bytes(value: &Datum) -> Option<Vec<u8>> {
    Some(match *value {
        Datum::I8(v) => v.to_ne_bytes().to_vec(),
        Datum::U8(v) => v.to_ne_bytes().to_vec(),
        Datum::I16(v) => v.to_ne_bytes().to_vec(),
        Datum::U16(v) => v.to_ne_bytes().to_vec(),
        Datum::I32(v) => v.to_ne_bytes().to_vec(),
        Datum::U32(v) => v.to_ne_bytes().to_vec(),
        Datum::I64(v) => v.to_ne_bytes().to_vec(),
        Datum::U64(v) => v.to_ne_bytes().to_vec(),
        Datum::F32(v) => v.to_bits().to_ne_bytes().to_vec(),
        Datum::F64(v) => v.to_bits().to_ne_bytes().to_vec(),
        Datum::Bool(v) => vec![u8::from(v)],
        Datum::Char(v) => u32::from(v).to_ne_bytes().to_vec(),
        Datum::Array(_) | Datum::Struct(_) => return None,
    })
}

/// `` write one of the primitives in it: `a.x`, `a.y[0]`, … `` for a value of type `d` at `at`.
fn primitives_in(at: &FieldPath, d: &Descriptor) -> String {
    suggest(&Primitives::of(at, d, FEW))
}

/// `write one of the primitives in it: ...`, or that there is none.
fn suggest(under: &Primitives) -> String {
    if under.is_empty() {
        "it holds no primitive to write".to_owned()
    } else {
        format!("write one of the primitives in it: {under}")
    }
}

/// `a `Inner` struct`, `a `[u32; 4]` array`, `u64`.
fn a_kind(d: &Descriptor) -> String {
    match &d.kind {
        DescriptorKind::Struct { .. } => format!("a `{}` struct", d.name),
        DescriptorKind::Array { .. } => format!("a `{d}` array"),
        DescriptorKind::Primitive(_) => d.to_string(),
    }
}

/// A number of elements, as a descriptor counts them.
fn count_of(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// `500ms`, `2.0s`: how long a wait took.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `the segment's value` or `` `hist` ``, for messages.
fn describe(path: &FieldPath) -> String {
    if path.0.is_empty() {
        "the segment's value".to_owned()
    } else {
        format!("`{path}`")
    }
}

impl fmt::Debug for RawSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSegment")
            .field("name", &self.name())
            .field("type", &self.descriptor.to_string())
            .field("is_array", &self.is_array)
            .field("len", &self.len())
            .finish()
    }
}
