//! `RawSegment`: a segment of any layout, read and written through the descriptor in its header.

use std::fmt;
use std::fs;
use std::mem::{align_of, size_of};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
use std::sync::{LockResult, TryLockResult};
use std::time::Duration;

use super::list::{tool_options, SegmentInfo, SHM_DIR};
use super::path::{self, FieldPath, Step};
use super::{value, Datum};
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::guard::Guard;
use crate::header::FLAG_ARRAY;
use crate::segment::{Element, Segment, Spec};
use crate::{guard, lock, seqlock, Error, Options, Result, TypeCode};

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
    /// The segment's lock was poisoned (a holder died, or a writer died mid-update) when this
    /// write took it. The write happened; the poisoning is left in place for the program that
    /// owns the data, whose next lock is told.
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

    /// Creates the segment `name` holding one value of the layout `element` (`count: None`) or
    /// an array of `count` of them, and returns its creating handle, which removes it when
    /// dropped unless `opts` keep it. This is how a program without the Rust type (a binding for
    /// another language) creates a segment: a typed `open` of the same layout accepts it.
    ///
    /// The payload starts as zeros; then each `(offset, value)` of `init` is stored (a payload
    /// offset and a primitive [`Datum`] of the type there), before any other process can open
    /// the segment.
    ///
    /// Fails with [`Error::LayoutMismatch`] if `element` is not a consistent layout (what
    /// [`Descriptor::parse`] would refuse), is zero-sized or aligned to more than a page, or an
    /// `init` store does not fit the payload; nothing is created then.
    ///
    /// ```
    /// use shm_core::inspect::{Datum, RawSegment};
    /// use shm_core::{Descriptor, Options, Shared, SharedLayout, TypeCode};
    ///
    /// #[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
    /// #[repr(C)]
    /// struct Pair {
    ///     a: u32,
    ///     b: f64,
    /// }
    ///
    /// let pair = Descriptor::repr_c(
    ///     "Pair",
    ///     vec![
    ///         ("a".into(), Descriptor::primitive(TypeCode::U32)),
    ///         ("b".into(), Descriptor::primitive(TypeCode::F64)),
    ///     ],
    ///     1,
    /// )?;
    /// # let name = format!("doc-raw-create-{}", std::process::id());
    /// let raw = RawSegment::create(&name, &pair, None, &[(8, Datum::F64(0.5))], &Options::new())?;
    /// assert_eq!(Shared::<Pair>::open(&name)?.snapshot(), Pair { a: 0, b: 0.5 });
    /// # drop(raw);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(
        name: &str,
        element: &Descriptor,
        count: Option<usize>,
        init: &[(u64, Datum)],
        opts: &Options,
    ) -> Result<RawSegment> {
        let refuse = |detail: String| Error::LayoutMismatch {
            name: name.to_owned(),
            detail: format!("cannot create a segment of this layout: {detail}"),
        };
        let encoded = element.encode().map_err(refuse)?;
        match Descriptor::parse(&encoded) {
            Ok(ref d) if d == element => {}
            Ok(_) => return Err(refuse("it does not encode to itself".to_owned())),
            Err(e) => return Err(refuse(e.to_string())),
        }
        if element.size == 0 || element.align > 4096 || usize::try_from(element.size).is_err() {
            return Err(refuse(format!(
                "size {} and alignment {}: a segment holds values of at least one byte, aligned to at most a page",
                element.size, element.align
            )));
        }
        let payload_len = (count.unwrap_or(1) as u64)
            .checked_mul(element.size)
            .ok_or_else(|| Error::NoSpace {
                name: name.to_owned(),
                bytes: u64::MAX,
            })?;
        for (offset, value) in init {
            let fits = value.code().is_some_and(|c| {
                offset
                    .checked_add(c.size() as u64)
                    .is_some_and(|e| e <= payload_len)
                    && offset % c.size() as u64 == 0
            });
            if !fits {
                return Err(refuse(format!(
                    "an initial value {value} at payload offset {offset} does not fit"
                )));
            }
        }
        let spec = Spec {
            element: Element::Dynamic {
                descriptor: element,
                encoded: &encoded,
            },
            fingerprint: Descriptor::fingerprint_of(&encoded),
            count: Some(count.unwrap_or(1)),
            array: count.is_some(),
        };
        let seg = Segment::create(name, &spec, opts, &|payload| {
            for (offset, value) in init {
                // Checked above to fit, aligned, in a payload aligned to the element.
                store_in(payload, payload_len, *offset, value);
            }
        })?;
        Ok(RawSegment {
            seg,
            descriptor: element.clone(),
            is_array: count.is_some(),
            payload_len,
        })
    }

    /// Whether this handle created the segment (and so removes it when dropped, unless kept).
    pub fn is_owner(&self) -> bool {
        self.seg.is_owner()
    }

    /// Takes the segment's lock, blocking until it is free: the lock `Shared::lock` and every
    /// `update` take. `Err(PoisonError)` carries the guard, as for `Shared::lock`.
    ///
    /// # Panics
    /// If this thread already holds the lock.
    pub fn lock(&self) -> LockResult<Guard<'_, ()>> {
        guard::lock(&self.seg, &())
    }

    /// Takes the lock if it is free now (`timeout` `None`) or within `timeout`;
    /// `Err(TryLockError::WouldBlock)` if it stayed held.
    pub fn try_lock_for(&self, timeout: Option<Duration>) -> TryLockResult<Guard<'_, ()>> {
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
        seqlock::write(
            &self.seg,
            lo..hi,
            |copies| copies.record_bytes(&old, &new),
            || {
                for (offset, value) in stores {
                    self.store(*offset, value);
                }
            },
        );
        Ok(())
    }

    /// Marks the lock that `guard` holds poisoned, as a panic inside `update`'s closure does:
    /// for a caller whose own update failed after it took the lock (a binding whose callback
    /// raised), so that the next locker is told.
    ///
    /// # Panics
    /// If `guard` is not this segment's.
    pub fn poison(&self, guard: &Guard<'_, ()>) {
        assert!(
            std::ptr::eq(guard.segment(), &self.seg),
            "segment `{}`: poison() with the guard of another segment",
            self.name()
        );
        lock::poison(self.seg.header());
    }

    /// The primitive of type `code` at payload offset `offset`, read with one relaxed atomic
    /// load (not under the lock: a field, not a consistent snapshot); `None` if it does not lie
    /// inside the payload or is misaligned.
    pub fn load(&self, offset: u64, code: TypeCode) -> Option<Datum> {
        self.load_code(code, offset)
    }

    /// Stores the primitive `value` at payload offset `offset` with one relaxed atomic store of
    /// its width, as a field atomic does (not under the lock, not journaled); `None` if it does
    /// not lie inside the payload, is misaligned, or `value` is not a primitive.
    pub fn store(&self, offset: u64, value: &Datum) -> Option<()> {
        self.store_datum(value, offset)
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
    /// one field. A malformed path or value, an unknown field, an index out of range or a path to
    /// an array or struct is refused before anything is locked or written.
    pub fn set(&self, path: &str, value: &str) -> Result<Written, FieldError> {
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
        self.load_code(code, offset).ok_or_else(corrupt)?;
        // `load` just proved `offset + width` is within the payload, so it fits in a usize.
        let start = offset as usize;
        let bytes = start..start + code.size();
        let (guard, poisoned) = match guard::lock(&self.seg, &()) {
            Ok(g) => (g, false),
            Err(p) => (p.into_inner(), true),
        };
        let old = self.load_code(code, offset);
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
                self.store_datum(&new, offset);
            },
        );
        if poisoned {
            // Not this tool's news to consume: the owner of the data is told on its next lock.
            lock::poison(self.seg.header());
        }
        drop(guard);
        Ok(Written {
            path: parsed.to_string(),
            old: old.ok_or_else(corrupt)?,
            new,
            poisoned,
        })
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
        let mut node = if self.is_array {
            Node::Elements
        } else {
            Node::Value(&self.descriptor)
        };
        let mut offset = 0u64;
        for (i, step) in parsed.0.iter().enumerate() {
            let here = describe(&parsed.prefix(i));
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
                    return Err(fail(format!(
                        "the segment is an array of {} `{}`: start with an element's index, e.g. `[0].{name}`",
                        self.len(),
                        self.descriptor
                    )))
                }
                (Node::Value(d), Step::Field(name)) => match &d.kind {
                    DescriptorKind::Struct { fields } => {
                        let Some(f) = fields.iter().find(|f| &f.name == name) else {
                            let names: Vec<&str> =
                                fields.iter().map(|f| f.name.as_str()).collect();
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
                    _ => {
                        return Err(fail(format!("{here} is {d}, which has no fields")));
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
                    _ => return Err(fail(format!("{here} is {d}, not an array"))),
                },
            }
        }
        Ok((offset, node))
    }

    /// Why `parsed`, which leads to `node`, cannot be written, and what to write instead.
    fn not_primitive(&self, parsed: &FieldPath, node: Node<'_>) -> String {
        let at = |suffix: &str| {
            if parsed.0.is_empty() {
                suffix.trim_start_matches('.').to_owned()
            } else {
                format!("{parsed}{suffix}")
            }
        };
        let (what, example) = match node {
            Node::Elements => (
                format!("is an array of {} `{}`", self.len(), self.descriptor),
                at("[0]"),
            ),
            Node::Value(d) => match &d.kind {
                DescriptorKind::Struct { fields } => (
                    format!("is a `{}` struct", d.name),
                    fields
                        .first()
                        .map_or_else(|| at(""), |f| at(&format!(".{}", f.name))),
                ),
                _ => (format!("is {d}"), at("[0]")),
            },
        };
        format!("{what}, not a single value: write one of its fields or elements, e.g. `{example}`")
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
            DescriptorKind::Primitive(code) => self.load_code(*code, offset)?,
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

    /// The payload, as the cells `load`, `store` and friends read and write.
    fn cells(&self) -> Payload<'_> {
        // SAFETY: `Segment::open_any` (or `create`) proved that the payload — `count` elements of
        // `descriptor.size` bytes from `payload()`, i.e. `payload_len` bytes — lies inside the
        // mapping, which every process accesses only atomically, and which lives as long as
        // `self.seg`, which the returned value borrows.
        unsafe { Payload::new(self.seg.payload(), self.payload_len) }
    }

    /// The atomic `A` at payload offset `offset`, if it lies inside the payload and is aligned.
    fn cell<A: Cell>(&self, offset: u64) -> Option<&A> {
        self.cells().cell(offset)
    }

    /// The primitive `code` at `offset`, as relaxed atomic loads read it.
    fn load_code(&self, code: TypeCode, offset: u64) -> Option<Datum> {
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
    fn store_datum(&self, value: &Datum, offset: u64) -> Option<()> {
        self.cells().store(value, offset)
    }
}

/// A payload of `len` bytes at `ptr`, inside a live mapping, for the lifetime `'a`.
#[derive(Clone, Copy)]
struct Payload<'a> {
    ptr: NonNull<u8>,
    len: u64,
    _mapping: std::marker::PhantomData<&'a ()>,
}

impl<'a> Payload<'a> {
    /// # Safety
    /// `ptr..ptr + len` must lie inside a mapping that lives for `'a` and that every process
    /// accesses only atomically.
    unsafe fn new(ptr: NonNull<u8>, len: u64) -> Payload<'a> {
        Payload {
            ptr,
            len,
            _mapping: std::marker::PhantomData,
        }
    }

    /// The atomic `A` at offset `offset`, if it lies inside the payload and is aligned.
    fn cell<A: Cell>(self, offset: u64) -> Option<&'a A> {
        let end = offset.checked_add(size_of::<A>() as u64)?;
        if end > self.len {
            return None;
        }
        let ptr = self
            .ptr
            .as_ptr()
            .wrapping_add(usize::try_from(offset).ok()?);
        if ptr as usize % align_of::<A>() != 0 {
            return None;
        }
        // SAFETY: `offset + size_of::<A>() <= len` (checked above) and `ptr..ptr + len` lies
        // inside a mapping that lives for `'a` (`new`'s contract), so `ptr..ptr + size_of::<A>()`
        // is inside it (and so `wrapping_add` did not wrap). `ptr` is aligned for `A` (checked
        // above). `A` is one of std's `AtomicU8..AtomicU64` (the sealed `Cell`), for which any
        // bit pattern is valid, and every process accesses the mapping only atomically (`new`'s
        // contract), so a shared reference is sound whatever peers write.
        Some(unsafe { &*(ptr as *const A) })
    }

    /// Stores the primitive `value` at `offset` with a relaxed atomic store of its width.
    fn store(self, value: &Datum, offset: u64) -> Option<()> {
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

/// Stores `value` at `offset` of the payload of a segment being created.
fn store_in(payload: NonNull<u8>, len: u64, offset: u64, value: &Datum) {
    // SAFETY: `Segment::create` hands its `init` the payload of the mapping it is creating, of
    // `count * element.size` bytes (`len`, computed from the same spec), alive for the call;
    // the mapping is shared memory that every process accesses only atomically.
    let _ = unsafe { Payload::new(payload, len) }.store(value, offset);
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
