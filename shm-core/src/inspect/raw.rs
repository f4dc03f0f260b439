//! `RawSegment`: a segment of any layout, read and written through the descriptor in its header.

use std::fmt;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{LockResult, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::holder::{self, LockHolder};
use super::list::{tool_options, SegmentInfo, SHM_DIR};
use super::path::{self, FieldPath, Primitives, Step, FEW};
use super::{value, Datum};
use crate::cell::{Cell, Region, Width};
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::header::FLAG_ARRAY;
use crate::layout::TEXT_LEN_SIZE;
use crate::segment::{Access, Element, Segment, Spec};
use crate::{
    guard, journal, lock, read_only, seqlock, text, Error, Guard, Options, Result, TypeCode,
};

mod waiting;

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
    /// The text names no variant of the enum at the path.
    NoSuchVariant {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// The enum's name.
        enum_name: String,
        /// The text as given.
        value: String,
        /// The names of the enum's variants, in declaration order.
        variants: Vec<String>,
    },
    /// The text is longer than the text field at the path can hold.
    TextTooLong {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// The text's length in bytes (UTF-8).
        len: usize,
        /// The most bytes the field holds.
        capacity: u64,
    },
    /// The payload cannot hold what the descriptor describes (a segment that passed `open`'s
    /// checks never gets here).
    Corrupt {
        /// The segment's name.
        segment: String,
        /// What is wrong.
        reason: String,
    },
    /// The handle is attached read only ([`RawSegment::open_readonly`]): it cannot write.
    ReadOnly {
        /// The segment's name.
        segment: String,
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
            FieldError::NoSuchVariant {
                segment,
                path,
                enum_name,
                value,
                variants,
            } => write!(
                f,
                "segment `{segment}`: cannot write {value:?} to `{path}`: `{enum_name}` has no such variant; its variants are {}",
                variants.join(", ")
            ),
            FieldError::TextTooLong {
                segment,
                path,
                len,
                capacity,
            } => write!(
                f,
                "segment `{segment}`: cannot write a text of {len} bytes to `{path}`, which holds at most {capacity} bytes of UTF-8"
            ),
            FieldError::Corrupt { segment, reason } => {
                write!(f, "segment `{segment}` is not a valid segment: {reason}")
            }
            FieldError::ReadOnly { segment } => write!(
                f,
                "segment `{segment}` is attached read-only: it cannot be written through this handle (open it read-write to write)"
            ),
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
        Self::open_access(name, opts, Access::ReadWrite)
    }

    /// [`open`](Self::open) read only: the object is opened `O_RDONLY` and mapped `PROT_READ`
    /// (the operating system stops every store), and read permission suffices. Reads are
    /// consistent as for a read-write handle, without ever taking the lock or writing (a writer
    /// killed mid-update is rolled back in the reader's own copy, see `ReadOnly::snapshot`);
    /// [`set`](Self::set), [`write`](Self::write) and [`store`](Self::store) refuse, and
    /// [`lock`](Self::lock), [`try_lock_for`](Self::try_lock_for) and
    /// [`clear_poison`](Self::clear_poison) panic. What `shm ls`, `inspect` and `watch` use.
    pub fn open_readonly(name: &str) -> Result<RawSegment> {
        Self::open_readonly_with(name, &tool_options(Duration::from_secs(1)))
    }

    /// [`open_readonly`](Self::open_readonly) with options.
    pub fn open_readonly_with(name: &str, opts: &Options) -> Result<RawSegment> {
        Self::open_access(name, opts, Access::ReadOnly)
    }

    /// Whether this handle is attached read only ([`open_readonly`](Self::open_readonly)).
    pub fn is_read_only(&self) -> bool {
        self.seg.is_read_only()
    }

    fn open_access(name: &str, opts: &Options, access: Access) -> Result<RawSegment> {
        let (seg, descriptor) = Segment::open_any(name, opts, access)?;
        let is_array = seg.header().flags.load(Relaxed) & FLAG_ARRAY != 0 || seg.count() != 1;
        Self::opened(seg, descriptor, is_array)
    }

    /// The handle of a segment `Segment::open` or `open_any` validated.
    fn opened(seg: Segment, descriptor: Descriptor, is_array: bool) -> Result<RawSegment> {
        let Some(payload_len) = (seg.count() as u64).checked_mul(descriptor.size) else {
            return Err(Error::Corrupt {
                name: seg.name().to_owned(),
                reason: "its element count times its element size overflows".to_owned(),
            });
        };
        Ok(RawSegment {
            seg,
            descriptor,
            is_array,
            payload_len,
        })
    }

    /// Opens the segment `name` as a typed open of `element` does (`Shared::<T>::open_with`, or
    /// `Array::<T>::open_with` if `array`), for a program that has the layout only at run time:
    /// every check in the same order, the layout and shape compared where a typed open compares
    /// them, so a segment of another layout or shape is [`Error::LayoutMismatch`] naming the
    /// first difference.
    ///
    /// ```
    /// use shm_core::inspect::RawSegment;
    /// use shm_core::{Array, Descriptor, Error, Options, TypeCode};
    ///
    /// # let name = format!("doc-raw-open-as-{}", std::process::id());
    /// let _a = Array::<u32>::create(&name, &[1, 2])?;
    /// let u32_ = Descriptor::primitive(TypeCode::U32);
    /// let raw = RawSegment::open_as(&name, &u32_, true, &Options::new())?;
    /// assert_eq!(raw.len(), 2);
    /// let e = RawSegment::open_as(&name, &u32_, false, &Options::new()).unwrap_err();
    /// assert!(matches!(e, Error::LayoutMismatch { .. }), "{e}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_as(
        name: &str,
        element: &Descriptor,
        array: bool,
        opts: &Options,
    ) -> Result<RawSegment> {
        let encoded = element.encode().map_err(|detail| Error::LayoutMismatch {
            name: name.to_owned(),
            detail: format!("the expected layout cannot be encoded: {detail}"),
        })?;
        let spec = Spec {
            element: Element::Dynamic {
                descriptor: element,
                encoded: &encoded,
            },
            fingerprint: Descriptor::fingerprint_of(&encoded),
            count: if array { None } else { Some(1) },
            array,
        };
        let seg = Segment::open(name, &spec, opts)?;
        let descriptor = seg.element().clone();
        Self::opened(seg, descriptor, array)
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
    /// If this thread already holds the lock, or the handle is read-only (locking writes).
    pub fn lock(&self) -> LockResult<Guard<'_, ()>> {
        self.assert_writable("lock");
        guard::lock(&self.seg, &())
    }

    #[track_caller]
    fn assert_writable(&self, what: &str) {
        assert!(
            !self.seg.is_read_only(),
            "segment `{}`: {what}() on a read-only handle (it would write to the segment)",
            self.name()
        );
    }

    fn refuse_read_only(&self) -> Result<(), FieldError> {
        if self.seg.is_read_only() {
            return Err(FieldError::ReadOnly {
                segment: self.name().to_owned(),
            });
        }
        Ok(())
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

    /// The primitive of type `code` at payload offset `offset`, read with one relaxed atomic
    /// load (not under the lock: a field, not a consistent snapshot); `None` if it does not lie
    /// inside the payload or is misaligned.
    pub fn load(&self, offset: u64, code: TypeCode) -> Option<Datum> {
        self.load_code(code, offset)
    }

    /// Stores the primitive `value` at payload offset `offset` with one relaxed atomic store of
    /// its width, as a field atomic does (not under the lock, not journaled); `None` if it does
    /// not lie inside the payload, is misaligned, or `value` is not a primitive, or the handle is
    /// read-only.
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

    /// Whether the segment's lock is poisoned: exactly what `Shared::is_poisoned` and
    /// `Array::is_poisoned` of the program that owns the segment say (the poison word is set, or
    /// the lock's owner died with no write in progress and nobody has locked since). Takes no
    /// lock and changes nothing.
    pub fn is_poisoned(&self) -> bool {
        lock::is_poisoned(self.seg.header())
    }

    /// Clears the poisoning, as `Shared::clear_poison` does (a holder that died unnoticed is
    /// taken in first, by taking the lock if it is free); may be called while holding the guard
    /// of [`lock`](Self::lock). For a program that owns the data without its Rust type (a
    /// binding for another language) and has checked or put right what a dead holder left.
    ///
    /// # Panics
    /// If the handle is read-only.
    pub fn clear_poison(&self) {
        self.assert_writable("clear_poison");
        guard::clear_poison(&self.seg)
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
        read_only::read_any(&self.seg, |view| {
            let mut budget = self.budget();
            (start..end)
                .map(|i| {
                    self.read_in(
                        view,
                        &self.descriptor,
                        (i as u64).checked_mul(size)?,
                        &mut budget,
                    )
                })
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
        let bytes = start..start + leaf.size as usize;
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
            seqlock::write(
                guard.segment(),
                bytes,
                |copies| copies.record_bytes(o, n),
                || self.store_leaf(leaf, offset, n),
            );
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

    /// The leaf (a primitive, an enum or a text) that `path` names (`load`, `hist[3]`, `.`):
    /// its parsed path, payload offset and descriptor; refused as `set` refuses it otherwise.
    fn leaf_at(&self, path: &str) -> Result<(FieldPath, u64, &Descriptor), FieldError> {
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
            // Refused before the deadline: pthread says this thread holds the lock, or the lock
            // word is unusable and another process has the turn to repair it.
            // SAFETY: gettid takes no arguments and cannot fail.
            let this_thread = unsafe { libc::gettid() } as u32;
            if holder.is_some_and(|h| h.tid == this_thread)
                && !seqlock::held_by_this_thread(&self.seg)
            {
                // A peer wrote this thread's id into the lock word: mark that owner dead, as a
                // blocking lock does.
                lock::disown(self.seg.header());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `value` parsed as a value of `leaf` (a primitive, an enum, a text), at `path`.
    fn parse_value(&self, path: &str, leaf: &Descriptor, value: &str) -> Result<Datum, FieldError> {
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
                    DescriptorKind::Primitive(_)
                    | DescriptorKind::Enum { .. }
                    | DescriptorKind::Text { .. } => {
                        return Err(fail(format!(
                            "{here} is {}, which has no fields: write `{at}` for it",
                            a_kind(d)
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
                    DescriptorKind::Primitive(_)
                    | DescriptorKind::Enum { .. }
                    | DescriptorKind::Text { .. } => {
                        return Err(fail(format!(
                            "{here} is {}, not an array: write `{at}` for it",
                            a_kind(d)
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
            Node::Value(d) if is_leaf(d) => {
                format!("write `.` for the segment's value, {}", a_kind(d))
            }
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
        read_only::read_any(&self.seg, |view| {
            let mut budget = self.budget();
            match node {
                Node::Elements => {
                    let size = self.descriptor.size;
                    (0..self.len() as u64)
                        .map(|i| {
                            self.read_in(view, &self.descriptor, i.checked_mul(size)?, &mut budget)
                        })
                        .collect::<Option<Vec<_>>>()
                        .map(Datum::Array)
                }
                Node::Value(d) => self.read_in(view, d, offset, &mut budget),
            }
        })
    }

    /// The value of type `d` at payload offset `offset`, one relaxed atomic load per primitive;
    /// `None` if anything lies outside the payload, is misaligned, or `budget` runs out.
    fn read(&self, d: &Descriptor, offset: u64, budget: &mut u64) -> Option<Datum> {
        self.read_in(Region::payload(&self.seg), d, offset, budget)
    }

    /// [`read`](Self::read) of `view`: the payload, or a read-only reader's rolled-back copy of
    /// it (laid out alike).
    fn read_in(
        &self,
        view: Region<'_>,
        d: &Descriptor,
        offset: u64,
        budget: &mut u64,
    ) -> Option<Datum> {
        *budget = budget.checked_sub(1)?;
        Some(match &d.kind {
            DescriptorKind::Primitive(code) => self.load_in(view, *code, offset)?,
            DescriptorKind::Enum {
                repr,
                variants,
                default,
            } => {
                let value = self.load_in(view, *repr, offset)?.as_integer()?;
                let (variant, known) = match variants.iter().find(|v| v.value == value) {
                    Some(v) => (v.name.clone(), true),
                    None => (variants.get(*default)?.name.clone(), false),
                };
                Datum::Enum {
                    variant,
                    value,
                    known,
                }
            }
            DescriptorKind::Text { capacity } => {
                // As `AtomicText` reads it: the length word, then the bytes it covers.
                let len = self.cell_in(view, offset, Width::Four)?.load() as u32;
                let start = offset.checked_add(TEXT_LEN_SIZE as u64)?;
                let n = u64::from(len).min(*capacity);
                let bytes = (0..n)
                    .map(|i| {
                        Some(
                            self.cell_in(view, start.checked_add(i)?, Width::One)?
                                .load() as u8,
                        )
                    })
                    .collect::<Option<Vec<u8>>>()?;
                Datum::Text(text::readable(len, &bytes).to_owned())
            }
            DescriptorKind::Array { elem, len } => {
                let mut items = Vec::new();
                for i in 0..*len {
                    let at = offset.checked_add(i.checked_mul(elem.size)?)?;
                    items.push(self.read_in(view, elem, at, budget)?);
                }
                Datum::Array(items)
            }
            DescriptorKind::Struct { fields } => {
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    out.push((
                        f.name.clone(),
                        self.read_in(view, &f.ty, offset.checked_add(f.offset)?, budget)?,
                    ));
                }
                Datum::Struct(out)
            }
        })
    }

    /// The cell of `width` at payload offset `offset`, if it lies inside the payload and is
    /// aligned.
    fn cell(&self, offset: u64, width: Width) -> Option<Cell<'_>> {
        self.cell_in(Region::payload(&self.seg), offset, width)
    }

    /// [`cell`](Self::cell) in `view`: the payload, or a read-only reader's copy of it, which
    /// has the payload's layout.
    fn cell_in<'a>(&'a self, view: Region<'a>, offset: u64, width: Width) -> Option<Cell<'a>> {
        let offset = usize::try_from(offset).ok()?;
        // SAFETY: the callers (`load_code`, `raw_bytes`, `store_datum`, `read` of a text,
        // `leaf_bytes`, `store_bytes`) pass the width of the primitive the descriptor puts at
        // `offset` (a code `read` or `resolve` found there, a value `value::parse` made for it, a
        // text's length word or byte, a cell `each_cell` walked to). `open` validated the
        // descriptor, which puts one primitive on each byte (no overlapping fields); every access
        // to it has that width, whether made by a typed handle (whose layout has the
        // descriptor's fingerprint) or a `RawSegment`.
        // A reader's copy has the payload's layout and only this reader accesses it.
        unsafe { view.cell(offset, width) }
    }

    /// The primitive `code` at `offset`, as relaxed atomic loads read it.
    fn load_code(&self, code: TypeCode, offset: u64) -> Option<Datum> {
        self.load_in(Region::payload(&self.seg), code, offset)
    }

    fn load_in(&self, view: Region<'_>, code: TypeCode, offset: u64) -> Option<Datum> {
        let bits = self.cell_in(view, offset, Width::of(code))?.load();
        Some(Datum::from_bits(code, bits))
    }

    /// The `width` bytes at `offset`, as one relaxed atomic load reads them.
    fn raw_bytes(&self, width: usize, offset: u64) -> Option<Vec<u8>> {
        let width = Width::from_bytes(width)?;
        Some(width.ne_bytes(self.cell(offset, width)?.load()))
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

/// Whether `d` is a value `set` writes as a whole: a primitive, an enum or a text.
fn is_leaf(d: &Descriptor) -> bool {
    matches!(
        d.kind,
        DescriptorKind::Primitive(_) | DescriptorKind::Enum { .. } | DescriptorKind::Text { .. }
    )
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

/// Stores `value` at `offset` of the payload of a segment being created.
fn store_in(payload: NonNull<u8>, len: u64, offset: u64, value: &Datum) {
    let (Ok(len), Ok(offset)) = (usize::try_from(len), usize::try_from(offset)) else {
        return;
    };
    let Some((width, bits)) = value.to_bits() else {
        return;
    };
    // SAFETY: `Segment::create` hands its `init` the payload of the mapping it is creating, of
    // `count * element.size` bytes (`len`, computed from the same spec), alive for the call; the
    // mapping is shared memory that every process accesses only atomically.
    let payload = unsafe { Region::new(payload, len) };
    // SAFETY: `create` stores each value at the offset of the primitive the descriptor puts
    // there, made for that primitive's type code, so with that primitive's width; nobody else
    // sees the segment before it is ready.
    if let Some(cell) = unsafe { payload.cell(offset, width) } {
        cell.store(bits);
    }
}

/// A primitive's bytes in memory, as its atomic of the same width stores them.
fn ne_bytes(value: &Datum) -> Option<Vec<u8>> {
    let (width, bits) = value.to_bits()?;
    Some(width.ne_bytes(bits))
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
        DescriptorKind::Enum { .. } => format!("a `{}` enum", d.name),
        DescriptorKind::Array { .. } => format!("a `{d}` array"),
        DescriptorKind::Text { capacity } => format!("a text of at most {capacity} bytes"),
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
