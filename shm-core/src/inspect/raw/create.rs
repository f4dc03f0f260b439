//! Creating a segment of a layout known only at run time: what a binding for another language
//! does where a Rust program calls `Shared::create` or `Array::create`.

use std::ptr::NonNull;

use super::RawSegment;
use crate::cell::Region;
use crate::descriptor::Descriptor;
use crate::inspect::Datum;
use crate::segment::{Element, Segment, Shape, Spec};
use crate::{Error, Options, Result};

impl RawSegment {
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
        };
        let shape = match count {
            None => Shape::One,
            Some(n) => Shape::Array(n),
        };
        let seg = Segment::create(name, &spec, shape, opts, &|payload| {
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
