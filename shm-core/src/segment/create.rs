//! Creating a segment: size the object, reserve its pages, write the header and descriptor, let
//! the handle fill the payload, and only then say it is ready.

use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::access::{check_mode, validate_name};
use super::sys::{fchmod, fstat, ftruncate, identity, map, reserve, shm_open, shm_unlink, Mapping};
use super::{Access, Segment, Shape, Spec};
use crate::header::{self, Header, DESCRIPTOR_OFFSET, FLAG_ARRAY, FLAG_KEEP, MAGIC};
use crate::journal;
use crate::layout::{FORMAT_VERSION, MAX_DESCRIPTOR_LEN};
use crate::lock;
use crate::process::ProcessId;
use crate::{Error, Options, Result};

/// Where a segment's parts go.
#[derive(Clone, Copy)]
struct Sizes {
    payload_offset: usize,
    payload_len: usize,
    journal_offset: usize,
    journal_cap: usize,
    total: usize,
}

impl Sizes {
    /// The sizes of a segment for `count` elements of `size` bytes aligned to `align`, or
    /// `None` if it cannot exist.
    fn new(descriptor_len: usize, size: usize, align: usize, count: usize) -> Option<Sizes> {
        let payload_offset = header::payload_offset(descriptor_len, align);
        let payload_len = size.checked_mul(count)?;
        let journal_offset = payload_offset
            .checked_add(payload_len)?
            .checked_next_multiple_of(align.max(header::PAYLOAD_ALIGN))?;
        let journal_cap = journal::area_size(payload_len)?;
        let total = journal_offset.checked_add(journal_cap)?;
        (total <= i64::MAX as usize).then_some(Sizes {
            payload_offset,
            payload_len,
            journal_offset,
            journal_cap,
            total,
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Creation, first step after sizing the object: say who the creator is, then write the magic.
/// An opener that reads the magic (acquire) can trust the creator fields.
pub(super) fn announce_creator(h: &Header, me: ProcessId) {
    h.creator_pid.store(me.pid, Ordering::Relaxed);
    h.creator_start.store(me.start, Ordering::Relaxed);
    h.created_at.store(now_secs(), Ordering::Relaxed);
    h.magic.store(u64::from_ne_bytes(MAGIC), Ordering::Release);
}

/// Creation, last step: everything before it is visible to an opener that reads the state
/// (acquire) as ready.
pub(super) fn mark_ready(h: &Header) {
    h.state.store(header::STATE_READY, Ordering::Release);
}

impl Segment {
    /// Creates the segment, writes its header and descriptor, lets `init` fill the payload, and
    /// only then marks it ready.
    pub(crate) fn create(
        name: &str,
        spec: &Spec,
        shape: Shape,
        opts: &Options,
        init: &dyn Fn(NonNull<u8>),
    ) -> Result<Segment> {
        let path = validate_name(name)?;
        check_mode(name, opts.mode)?;
        let count = shape.len();
        let descriptor = spec.element.encode();
        debug_assert!(descriptor.len() <= MAX_DESCRIPTOR_LEN);
        let sizes = Sizes::new(
            descriptor.len(),
            spec.element.size(),
            spec.element.align(),
            count,
        )
        .ok_or_else(|| Error::NoSpace {
            name: name.to_owned(),
            bytes: u64::MAX,
        })?;

        let fd = shm_open(
            name,
            &path,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            opts.mode,
        )?;
        // From here on the object is ours: remove it again if anything below fails.
        let built = Self::build(name, &fd, spec, shape, opts, &descriptor, &sizes, init);
        match built {
            Ok((map, identity, journal_id)) => {
                let base = map.as_ptr();
                // SAFETY: both offsets are at most `sizes.total`, the mapping's length, and the
                // mapping is non-null.
                let (payload, journal) = unsafe {
                    (
                        NonNull::new_unchecked(base.add(sizes.payload_offset)),
                        NonNull::new_unchecked(base.add(sizes.journal_offset)),
                    )
                };
                Ok(Segment {
                    seq: Segment::seq_in(&map),
                    name: name.to_owned(),
                    map,
                    fd,
                    payload,
                    payload_len: sizes.payload_len,
                    journal,
                    journal_cap: sizes.journal_cap,
                    whole_entry: journal::whole_entry(sizes.payload_len, sizes.journal_cap),
                    journal_id,
                    side: Default::default(),
                    element: spec.element.descriptor(),
                    shape,
                    identity,
                    lock_key: crate::held::key_of(identity),
                    owner: true,
                    creator: std::process::id(),
                    keep: opts.keep,
                    access: Access::ReadWrite,
                })
            }
            Err(e) => {
                let _ = shm_unlink(&path);
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        name: &str,
        fd: &OwnedFd,
        spec: &Spec,
        shape: Shape,
        opts: &Options,
        descriptor: &[u8],
        sizes: &Sizes,
        init: &dyn Fn(NonNull<u8>),
    ) -> Result<(Mapping, (u64, u64), u64)> {
        let Sizes {
            payload_offset,
            payload_len,
            journal_offset,
            journal_cap,
            total,
        } = *sizes;
        // shm_open's mode was masked by the umask: set exactly what was asked.
        fchmod(name, fd, opts.mode)?;
        ftruncate(name, fd, total)?;
        // ftruncate reserves nothing on tmpfs: without this, a full /dev/shm would turn a later
        // write to the payload into SIGBUS.
        reserve(name, fd, total)?;
        let map = map(name, fd, total, Access::ReadWrite)?;
        let id = identity(&fstat(name, fd)?);
        let seg_len = map.len();
        let base = map.as_ptr();
        // SAFETY: the mapping is `total >= size_of::<Header>()` bytes, page-aligned, and every
        // field of `Header` accepts any bytes (all zero now, from ftruncate).
        let h = unsafe { &*(base as *const Header) };
        announce_creator(h, ProcessId::current());
        h.version.store(FORMAT_VERSION, Ordering::Relaxed);
        h.fingerprint.store(spec.fingerprint, Ordering::Relaxed);
        h.descriptor_len
            .store(descriptor.len() as u32, Ordering::Relaxed);
        let array = match shape {
            Shape::One => 0,
            Shape::Array(_) => FLAG_ARRAY,
        };
        let flags = array | if opts.keep { FLAG_KEEP } else { 0 };
        h.flags.store(flags, Ordering::Relaxed);
        h.payload_offset
            .store(payload_offset as u64, Ordering::Relaxed);
        h.payload_len.store(payload_len as u64, Ordering::Relaxed);
        h.journal_offset
            .store(journal_offset as u64, Ordering::Relaxed);
        h.journal_cap.store(journal_cap as u64, Ordering::Relaxed);
        let journal_id = journal::side::new_id(&id);
        h.journal_id.store(journal_id, Ordering::Relaxed);
        h.elem_count.store(shape.len() as u64, Ordering::Relaxed);
        h.elem_size
            .store(spec.element.size() as u64, Ordering::Relaxed);
        debug_assert!(DESCRIPTOR_OFFSET + descriptor.len() <= seg_len);
        // SAFETY: `DESCRIPTOR_OFFSET + descriptor.len() <= payload_offset <= total`, inside the
        // mapping; `AtomicU8` accepts any byte and has alignment 1.
        let desc = unsafe {
            std::slice::from_raw_parts(
                base.add(DESCRIPTOR_OFFSET) as *const AtomicU8,
                descriptor.len(),
            )
        };
        for (slot, b) in desc.iter().zip(descriptor) {
            slot.store(*b, Ordering::Relaxed);
        }
        lock::init(&h.lock);
        if let Some(hook) = opts.before_ready {
            hook();
        }
        // SAFETY: `payload_offset < total` or the payload is empty; either way the pointer is
        // inside the mapping or one past its end, and non-null since the mapping is.
        let payload = unsafe { NonNull::new_unchecked(base.add(payload_offset)) };
        init(payload);
        mark_ready(h);
        Ok((map, id, journal_id))
    }
}
