//! Reading: consistent copies of the whole value, a range of elements, or what a path names,
//! as seqlock reads of relaxed atomic loads.

use std::ops::Range;

use super::{FieldError, Node, RawSegment};
use crate::cell::Region;
use crate::cell::Width;
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::inspect::Datum;
use crate::layout::TEXT_LEN_SIZE;
use crate::{read_only, text, Error, Result, TypeCode};

/// How many values one read may produce beyond one per payload byte: enough for any real layout
/// with zero-sized structs, while a hostile descriptor of huge arrays of zero-sized elements
/// cannot make a read allocate without bound.
const EXTRA_VALUES: u64 = 1 << 16;

impl RawSegment {
    /// The primitive of type `code` at payload offset `offset`, read with one relaxed atomic
    /// load (not under the lock: a field, not a consistent snapshot); `None` if it does not lie
    /// inside the payload or is misaligned.
    pub fn load(&self, offset: u64, code: TypeCode) -> Option<Datum> {
        self.load_code(code, offset)
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
    pub(super) fn read(&self, d: &Descriptor, offset: u64, budget: &mut u64) -> Option<Datum> {
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

    /// The primitive `code` at `offset`, as relaxed atomic loads read it.
    pub(super) fn load_code(&self, code: TypeCode, offset: u64) -> Option<Datum> {
        self.load_in(Region::payload(&self.seg), code, offset)
    }

    fn load_in(&self, view: Region<'_>, code: TypeCode, offset: u64) -> Option<Datum> {
        let bits = self.cell_in(view, offset, Width::of(code))?.load();
        Some(Datum::from_bits(code, bits))
    }

    /// The `width` bytes at `offset`, as one relaxed atomic load reads them.
    pub(super) fn raw_bytes(&self, width: usize, offset: u64) -> Option<Vec<u8>> {
        let width = Width::from_bytes(width)?;
        Some(width.ne_bytes(self.cell(offset, width)?.load()))
    }

    fn corrupt(&self) -> Error {
        Error::Corrupt {
            name: self.name().to_owned(),
            reason: self.corrupt_reason(),
        }
    }

    pub(super) fn budget(&self) -> u64 {
        self.payload_len.saturating_add(EXTRA_VALUES)
    }
}
