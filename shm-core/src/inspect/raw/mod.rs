//! `RawSegment`: a segment of any layout, read and written through the descriptor in its header.
//!
//! Here: the handle, its opening, what it says of the segment, and the bounds-checked cell every
//! read and write goes through. `create`: a segment of a layout known only at run time;
//! `resolve`: paths to offsets, and what to write instead when a path leads nowhere; `read`:
//! consistent copies, and single loads; `write`: the lock, one field written under it, several
//! stores as one write, single stores; `error`: [`FieldError`].

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::holder::{self, LockHolder};
use super::list::{tool_options, SegmentInfo, SHM_DIR};
use crate::cell::{Cell, Region, Width};
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::segment::{Access, Element, Expect, Segment, Shape, Spec};
use crate::{guard, lock, Error, Options, Result};

mod create;
mod error;
mod read;
mod resolve;
mod write;

pub use error::FieldError;
pub use write::Written;

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
        Self::opened(seg, descriptor)
    }

    /// The handle of a segment `Segment::open` or `open_any` validated.
    fn opened(seg: Segment, descriptor: Descriptor) -> Result<RawSegment> {
        let Some(payload_len) = (seg.count() as u64).checked_mul(descriptor.size) else {
            return Err(Error::Corrupt {
                name: seg.name().to_owned(),
                reason: "its element count times its element size overflows".to_owned(),
            });
        };
        let is_array = seg.shape().is_array();
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
        };
        let expect = if array {
            Expect::AnyArray
        } else {
            Expect::Exactly(Shape::One)
        };
        let seg = Segment::open(name, &spec, expect, opts)?;
        let descriptor = seg.element().clone();
        Self::opened(seg, descriptor)
    }

    /// Whether this handle created the segment (and so removes it when dropped, unless kept).
    pub fn is_owner(&self) -> bool {
        self.seg.is_owner()
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
        SegmentInfo::read(&self.seg, &self.descriptor)
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

    #[track_caller]
    pub(super) fn assert_writable(&self, what: &str) {
        assert!(
            !self.seg.is_read_only(),
            "segment `{}`: {what}() on a read-only handle (it would write to the segment)",
            self.name()
        );
    }

    pub(super) fn refuse_read_only(&self) -> Result<(), FieldError> {
        if self.seg.is_read_only() {
            return Err(FieldError::ReadOnly {
                segment: self.name().to_owned(),
            });
        }
        Ok(())
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

    pub(super) fn corrupt_reason(&self) -> String {
        "a value its descriptor describes lies outside its payload or is misaligned, or there are more values than its payload can hold".to_owned()
    }

    /// The cell of `width` at payload offset `offset`, if it lies inside the payload and is
    /// aligned.
    pub(super) fn cell(&self, offset: u64, width: Width) -> Option<Cell<'_>> {
        self.cell_in(Region::payload(&self.seg), offset, width)
    }

    /// [`cell`](Self::cell) in `view`: the payload, or a read-only reader's copy of it, which
    /// has the payload's layout.
    pub(super) fn cell_in<'a>(
        &'a self,
        view: Region<'a>,
        offset: u64,
        width: Width,
    ) -> Option<Cell<'a>> {
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
}

/// Whether `d` is a value `set` writes as a whole: a primitive, an enum or a text.
fn is_leaf(d: &Descriptor) -> bool {
    matches!(
        d.kind,
        DescriptorKind::Primitive(_) | DescriptorKind::Enum { .. } | DescriptorKind::Text { .. }
    )
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
