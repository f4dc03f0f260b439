//! `RawSegment`: a segment of any layout, read and written through the descriptor in its header.

use std::fmt;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::list::{tool_options, SegmentInfo, SHM_DIR};
use super::path::{self, FieldPath, Step};
use super::{value, Datum};
use crate::cell::{Cell, Region, Width};
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::header::FLAG_ARRAY;
use crate::segment::Segment;
use crate::{guard, lock, seqlock, Error, Options, Result, TypeCode};

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
        self.load(code, offset).ok_or_else(corrupt)?;
        // `load` just proved `offset + width` is within the payload, so it fits in a usize.
        let start = offset as usize;
        let bytes = start..start + code.size();
        let (guard, poisoned) = match guard::lock(&self.seg, &()) {
            Ok(g) => (g, false),
            Err(p) => (p.into_inner(), true),
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

    /// The cell of `width` at payload offset `offset`, if it lies inside the payload and is
    /// aligned.
    fn cell(&self, offset: u64, width: Width) -> Option<Cell<'_>> {
        let offset = usize::try_from(offset).ok()?;
        // SAFETY: the callers (`load`, `raw_bytes`, `store`) pass the width of the primitive the
        // descriptor puts at `offset` (a code `read` or `resolve` found there, or a value
        // `value::parse` made for it). `open` validated the descriptor, which puts one primitive
        // on each byte (no overlapping fields); every access to it has that width, whether made
        // by a typed handle (whose layout has the descriptor's fingerprint) or a `RawSegment`.
        unsafe { Region::payload(&self.seg).cell(offset, width) }
    }

    /// The primitive `code` at `offset`, as relaxed atomic loads read it.
    fn load(&self, code: TypeCode, offset: u64) -> Option<Datum> {
        let bits = self.cell(offset, Width::of(code))?.load();
        Some(Datum::from_bits(code, bits))
    }

    /// The `width` bytes at `offset`, as one relaxed atomic load reads them.
    fn raw_bytes(&self, width: usize, offset: u64) -> Option<Vec<u8>> {
        let width = Width::from_bytes(width)?;
        Some(width.ne_bytes(self.cell(offset, width)?.load()))
    }

    /// Stores the primitive `value` at `offset` with a relaxed atomic store of its width.
    fn store(&self, value: &Datum, offset: u64) -> Option<()> {
        let (width, bits) = value.to_bits()?;
        self.cell(offset, width)?.store(bits);
        Some(())
    }
}

/// A primitive's bytes in memory, as its atomic of the same width stores them.
fn ne_bytes(value: &Datum) -> Option<Vec<u8>> {
    let (width, bits) = value.to_bits()?;
    Some(width.ne_bytes(bits))
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
