//! Opening a segment: open and check the object, map it, wait (bounded) for a creator still at
//! work, then validate the header and the descriptor, and compare them with what the handle
//! expects.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::access::{check_mode, check_ownership, explain_refusal, validate_name};
use super::sys::{fstat, identity, map, shm_open};
use super::{Access, Expect, Segment, Shape, Spec};
use crate::descriptor::Descriptor;
use crate::header::{self, Header, DESCRIPTOR_OFFSET, FLAG_ARRAY, MAGIC};
use crate::layout::{fingerprint_of_encoded, FORMAT_VERSION, MAX_DESCRIPTOR_LEN};
use crate::lock;
use crate::process::ProcessId;
use crate::{journal, Error, Layout, Options, Result};

/// The element layout of a segment that is not validated yet: no primitives.
static EMPTY: Layout = Layout {
    name: "",
    size: 0,
    align: 1,
    kind: crate::Kind::Struct { fields: &[] },
};

/// How far creation has got, as far as an opener can tell; `Err` if the header is not one.
///
/// Relaxed loads and acquire fences rather than acquire loads: the same ordering, and the only
/// atomic loads Rust allows on a read-only mapping (see `read_only.rs`).
fn readiness(h: &Header) -> std::result::Result<Readiness, String> {
    let magic = h.magic.load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    readiness_after(h, magic)
}

/// [`readiness`], given the magic as its first load read it.
fn readiness_after(h: &Header, magic: u64) -> std::result::Result<Readiness, String> {
    if magic == u64::from_ne_bytes(MAGIC) {
        let state = h.state.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        return match state {
            header::STATE_READY => Ok(Readiness::Ready),
            header::STATE_INITIALIZING => Ok(Readiness::Initializing(Some(ProcessId {
                pid: h.creator_pid.load(Ordering::Relaxed),
                start: h.creator_start.load(Ordering::Relaxed),
            }))),
            other => Err(format!("unknown init state {other}")),
        };
    }
    if magic == 0 {
        let state = h.state.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        // A creator that has sized the object but not yet written a byte of it.
        if state == 0 {
            return Ok(Readiness::Initializing(None));
        }
        // Or one that wrote the magic, and went on, after the magic was read: the state was
        // read later, and what it says was stored after the magic (a release), which now reads
        // back. Read as it is now.
        let again = h.magic.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if again == u64::from_ne_bytes(MAGIC) {
            return readiness_after(h, again);
        }
    }
    Err("it does not start with the shm-core magic bytes".to_owned())
}

/// What an opener does next, given how far creation has got and whether a creator lives.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Validate,
    Wait,
    CreatorDied(u32),
}

fn next_step(r: &Readiness, alive: impl Fn(ProcessId) -> bool) -> Next {
    match r {
        Readiness::Ready => Next::Validate,
        Readiness::Initializing(Some(creator)) if !alive(*creator) => {
            Next::CreatorDied(creator.pid)
        }
        Readiness::Initializing(_) => Next::Wait,
    }
}

/// Progress of a segment another process is creating.
#[derive(Debug)]
enum Readiness {
    Ready,
    /// Not ready yet; the creator, if its header says who.
    Initializing(Option<ProcessId>),
}

impl Segment {
    /// Bytes `offset..offset + len` of the mapping as atomics, if in bounds.
    fn bytes(&self, offset: usize, len: usize) -> Option<&[AtomicU8]> {
        let end = offset.checked_add(len)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: `offset..end` is inside the mapping (checked just above); `AtomicU8` has size
        // and alignment 1 and accepts any byte; the mapping lives as long as `self`.
        Some(unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(offset) as *const AtomicU8, len)
        })
    }

    /// Opens an existing segment: checks the object, maps it, waits (bounded) for it to be ready,
    /// and validates the header against `spec` and `expect`.
    pub(crate) fn open(name: &str, spec: &Spec, expect: Expect, opts: &Options) -> Result<Segment> {
        Self::open_checked(name, Some((spec, expect)), opts, Access::ReadWrite)
    }

    /// [`open`](Self::open) read only: the object is opened `O_RDONLY` and mapped `PROT_READ`,
    /// read permission suffices, and nothing in the open writes to the mapping.
    pub(crate) fn open_readonly(
        name: &str,
        spec: &Spec,
        expect: Expect,
        opts: &Options,
    ) -> Result<Segment> {
        Self::open_checked(name, Some((spec, expect)), opts, Access::ReadOnly)
    }

    /// Opens a segment of any layout: every check of [`open`](Self::open) but the comparison
    /// with an expected type. Returns the descriptor read from the segment, whose consistency
    /// has been checked against the payload.
    pub(crate) fn open_any(
        name: &str,
        opts: &Options,
        access: Access,
    ) -> Result<(Segment, Descriptor)> {
        let seg = Self::open_checked(name, None, opts, access)?;
        let found = seg.element().clone();
        Ok((seg, found))
    }

    fn open_checked(
        name: &str,
        want: Option<(&Spec, Expect)>,
        opts: &Options,
        access: Access,
    ) -> Result<Segment> {
        let path = validate_name(name)?;
        check_mode(name, opts.mode)?;
        if access == Access::ReadOnly {
            crate::read_only::check_target(name)?;
        }
        let start = Instant::now();
        // A wait too long to represent is a wait without end.
        let deadline = start.checked_add(opts.wait);
        let mut pause = Duration::from_micros(50);
        let mut wait = || -> bool {
            let now = Instant::now();
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(10));
            true
        };
        let timeout = |start: Instant| Error::Timeout {
            name: name.to_owned(),
            waited: start.elapsed(),
        };
        loop {
            // Non-blocking: a FIFO planted under the name, opened read only, would wait for a
            // writer (it is refused below, as not a regular file).
            let flags = libc::O_NONBLOCK
                | match access {
                    Access::ReadWrite => libc::O_RDWR,
                    Access::ReadOnly => libc::O_RDONLY,
                };
            let fd = shm_open(name, &path, flags, 0).map_err(|e| match e {
                Error::PermissionDenied { name, reason } => {
                    let reason = explain_refusal(&name, opts.mode, access).unwrap_or(reason);
                    Error::PermissionDenied { name, reason }
                }
                e => e,
            })?;
            let st = fstat(name, &fd)?;
            check_ownership(name, &st, opts.mode, access)?;
            let size = usize::try_from(st.st_size).unwrap_or(0);
            if size == 0 {
                // A creator between shm_open and ftruncate.
                if wait() {
                    continue;
                }
                return Err(timeout(start));
            }
            if size < DESCRIPTOR_OFFSET {
                return Err(Error::Corrupt {
                    name: name.to_owned(),
                    reason: format!(
                        "it has {size} bytes, fewer than the {DESCRIPTOR_OFFSET} of a header"
                    ),
                });
            }
            let map = map(name, &fd, size, access)?;
            let mut seg = Segment {
                seq: Segment::seq_in(&map),
                name: name.to_owned(),
                map,
                fd,
                payload: NonNull::dangling(),
                payload_len: 0,
                journal: Segment::UNMAPPED,
                journal_cap: 0,
                whole_entry: usize::MAX,
                journal_id: 0,
                side: Default::default(),
                element: Descriptor::from_layout(&EMPTY),
                shape: Shape::Array(0),
                identity: identity(&st),
                lock_key: crate::held::key_of(identity(&st)),
                owner: false,
                creator: 0,
                keep: true,
                access,
            };
            loop {
                match next_step(&seg.readiness()?, ProcessId::is_alive) {
                    Next::Validate => {
                        seg.validate(want)?;
                        return Ok(seg);
                    }
                    Next::CreatorDied(pid) => {
                        return Err(Error::CreatorDied {
                            name: name.to_owned(),
                            pid,
                        })
                    }
                    Next::Wait => {
                        // Removed meanwhile (its creator failed and cleaned up): not found, so
                        // that `open_or_create` tries to create it again.
                        if seg.stat()?.st_nlink == 0 {
                            return Err(Error::NotFound {
                                name: name.to_owned(),
                            });
                        }
                        if !wait() {
                            return Err(timeout(start));
                        }
                    }
                }
            }
        }
    }

    /// Opens `name`, or creates it if it does not exist: `O_EXCL` picks exactly one creator, and
    /// the others open the segment once it is ready.
    pub(crate) fn open_or_create(
        name: &str,
        spec: &Spec,
        shape: Shape,
        opts: &Options,
        init: &dyn Fn(NonNull<u8>),
    ) -> Result<Segment> {
        let start = Instant::now();
        loop {
            match Segment::create(name, spec, shape, opts, init) {
                Err(Error::AlreadyExists { .. }) => {}
                other => return other,
            }
            match Segment::open(name, spec, Expect::Exactly(shape), opts) {
                // Removed between our create and open (its creator failed, or a `remove`):
                // try to be the creator again, within the wait time.
                Err(Error::NotFound { .. }) if start.elapsed() < opts.wait => {
                    std::thread::sleep(Duration::from_micros(100));
                }
                other => return other,
            }
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            name: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn readiness(&self) -> Result<Readiness> {
        readiness(self.header()).map_err(|reason| self.corrupt(reason))
    }

    /// Checks a ready header against the object's size and what the handle wants, and sets the
    /// payload pointer.
    fn validate(&mut self, want: Option<(&Spec, Expect)>) -> Result<()> {
        let h = self.header();
        let size = self.map.len() as u64;
        let version = h.version.load(Ordering::Relaxed);
        if version != FORMAT_VERSION {
            return Err(self.corrupt(format!(
                "it is in segment format version {version}, and this shm-core reads only version {FORMAT_VERSION}: it was made by {} shm-core (remove it and create it again, or use the shm-core that made it)",
                if version < FORMAT_VERSION { "an older" } else { "a newer" }
            )));
        }
        let desc_len = h.descriptor_len.load(Ordering::Relaxed) as usize;
        let payload_offset = h.payload_offset.load(Ordering::Relaxed);
        let payload_len = h.payload_len.load(Ordering::Relaxed);
        let journal_offset = h.journal_offset.load(Ordering::Relaxed);
        let journal_cap = h.journal_cap.load(Ordering::Relaxed);
        let journal_id = h.journal_id.load(Ordering::Relaxed);
        let count = h.elem_count.load(Ordering::Relaxed);
        let elem_size = h.elem_size.load(Ordering::Relaxed);
        let flags = h.flags.load(Ordering::Relaxed);
        let fingerprint = h.fingerprint.load(Ordering::Relaxed);
        if elem_size == 0 {
            return Err(self.corrupt("its elements have size 0"));
        }
        if desc_len > MAX_DESCRIPTOR_LEN
            || (DESCRIPTOR_OFFSET + desc_len) as u64 > payload_offset
            || elem_size.checked_mul(count) != Some(payload_len)
            || payload_offset
                .checked_add(payload_len)
                .is_none_or(|end| end > journal_offset)
            || journal_offset.checked_add(journal_cap) != Some(size)
        {
            return Err(self.corrupt(format!(
                "its header does not add up: descriptor {desc_len} bytes, payload {payload_len} bytes at offset {payload_offset} ({count} x {elem_size}), journal {journal_cap} bytes at {journal_offset}, object {size} bytes"
            )));
        }
        if journal_id == 0 {
            return Err(self.corrupt("its journal id is 0"));
        }
        let Some(desc_bytes) = self.bytes(DESCRIPTOR_OFFSET, desc_len) else {
            return Err(self.corrupt("the descriptor runs past the end"));
        };
        let desc_bytes: Vec<u8> = desc_bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let found = Descriptor::parse(&desc_bytes).map_err(|e| self.corrupt(e.to_string()))?;
        if fingerprint_of_encoded(&desc_bytes) != fingerprint {
            return Err(self.corrupt("its fingerprint does not match its descriptor"));
        }
        if found.size != elem_size {
            return Err(self.corrupt(format!(
                "its elements are {elem_size} bytes but its descriptor says {}",
                found.size
            )));
        }
        // A process from other namespaces than the creator's marks the lock before it uses it;
        // an observer never locks (and cannot write).
        if self.access == Access::ReadWrite {
            lock::attach(&h.lock);
        }
        // `count` fits: the payload, `count` elements of a non-zero size, fits in the mapping.
        let shape = if flags & FLAG_ARRAY != 0 {
            Shape::Array(count as usize)
        } else if count == 1 {
            Shape::One
        } else {
            return Err(Error::LayoutMismatch {
                name: self.name.clone(),
                detail: format!(
                    "the segment holds a single {found} but says it has {count} elements"
                ),
            });
        };
        if let Some((spec, expect)) = want {
            self.check_spec(spec, expect, &found, fingerprint, shape)?;
        }
        // From here the header's numbers are known to fit in the mapping; copy them, so a peer
        // rewriting the header later cannot move this handle's view.
        // As the format places them: on multiples of 128 (and of the element's alignment, if
        // larger). The journal's entries hold 8-byte atomics at multiples of 16 from the area's
        // start, and its copies are aligned as the payload is only if both areas are.
        let align = found.align.max(header::PAYLOAD_ALIGN as u64);
        if payload_offset % align != 0 || journal_offset % align != 0 {
            return Err(self.corrupt(format!(
                "its payload ({payload_offset}) or journal ({journal_offset}) offset is not aligned to {align}"
            )));
        }
        // SAFETY: the header check above proved `payload_offset + payload_len <= journal_offset`
        // and `journal_offset + journal_cap == size`, the mapping's length: both pointers are in
        // bounds or one past the end.
        let (payload, journal) = unsafe {
            let base = self.map.as_ptr();
            (
                base.add(payload_offset as usize),
                base.add(journal_offset as usize),
            )
        };
        self.payload = NonNull::new(payload).ok_or_else(|| self.corrupt("null mapping"))?;
        self.journal = NonNull::new(journal).ok_or_else(|| self.corrupt("null mapping"))?;
        self.payload_len = payload_len as usize;
        self.journal_cap = journal_cap as usize;
        self.whole_entry = journal::whole_entry(self.payload_len, self.journal_cap);
        self.journal_id = journal_id;
        self.element = found;
        self.shape = shape;
        Ok(())
    }

    /// Checks a valid segment's descriptor and shape against what a typed handle expects.
    fn check_spec(
        &self,
        spec: &Spec,
        expect: Expect,
        found: &Descriptor,
        fingerprint: u64,
        shape: Shape,
    ) -> Result<()> {
        if fingerprint != spec.fingerprint {
            let want = spec.element.descriptor();
            let detail = found.first_difference(&want).unwrap_or_else(|| {
                format!("the segment holds {found}, this program expects {want}")
            });
            return Err(Error::LayoutMismatch {
                name: self.name.clone(),
                detail,
            });
        }
        if !expect.accepts(shape) {
            return Err(Error::LayoutMismatch {
                name: self.name.clone(),
                detail: format!(
                    "the segment holds {}, this program expects {}",
                    shape.describe(found),
                    expect.describe(found)
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::create::{announce_creator, mark_ready};

    fn zeroed_header() -> Box<Header> {
        // SAFETY: every field of `Header` is an atomic integer (the lock area's too), for which
        // all zeros is a valid value (it is what a fresh, ftruncated object holds).
        unsafe { Box::new(std::mem::zeroed()) }
    }

    /// The creator's steps, in order, and the opener's decision after each prefix, with the
    /// creator alive or dead: an opener validates only a ready segment, waits for a live creator,
    /// reports a dead one it can name, and never calls a half-made segment corrupt.
    #[test]
    fn init_state_machine_every_prefix_and_creator_fate() {
        let creator = ProcessId {
            pid: 4242,
            start: 7,
        };
        let steps: [fn(&Header, ProcessId); 3] = [
            |_, _| {},
            |h, me| announce_creator(h, me),
            |h, _| mark_ready(h),
        ];
        for done in 0..=steps.len() {
            for alive in [true, false] {
                let h = zeroed_header();
                for step in &steps[..done] {
                    step(&h, creator);
                }
                let r = readiness(&h).expect("a half-made header is not corrupt");
                let next = next_step(&r, |p| {
                    assert_eq!(p, creator, "the opener read another creator");
                    alive
                });
                let want = match (done, alive) {
                    // Nothing written, or only sized: nobody to ask, so wait (bounded).
                    (0 | 1, _) => Next::Wait,
                    (2, true) => Next::Wait,
                    (2, false) => Next::CreatorDied(creator.pid),
                    _ => Next::Validate,
                };
                assert_eq!(next, want, "after {done} steps, creator alive: {alive}");
            }
        }
    }

    /// An opener that read the magic as zero, then was held up while the creator wrote the
    /// magic and finished, reads the state as ready: a finished header, not a foreign one.
    #[test]
    fn a_creation_that_finishes_between_the_openers_two_loads_is_not_corrupt() {
        let h = zeroed_header();
        announce_creator(&h, ProcessId::current());
        mark_ready(&h);
        let r = readiness_after(&h, 0).expect("a finished header read late is not corrupt");
        assert_eq!(next_step(&r, |_| true), Next::Validate);
    }

    #[test]
    fn foreign_headers_are_corrupt_at_once() {
        let h = zeroed_header();
        h.magic
            .store(u64::from_ne_bytes(*b"NOTOURS!"), Ordering::Relaxed);
        assert!(readiness(&h).unwrap_err().contains("magic"));
        let h = zeroed_header();
        h.state.store(1, Ordering::Relaxed);
        assert!(readiness(&h).is_err(), "ready without magic");
        let h = zeroed_header();
        announce_creator(&h, ProcessId::current());
        h.state.store(7, Ordering::Relaxed);
        assert!(readiness(&h).unwrap_err().contains("init state 7"));
    }
}
