//! Named POSIX shared-memory segments: create, open with every check, map, unlink.
//!
//! All `unsafe` that touches the mapping lives here: a [`Segment`] checks the object before it
//! maps it and the header before it trusts it, and hands out only a pointer to a payload it has
//! proven to be in bounds and aligned.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::descriptor::Descriptor;
use crate::header::{self, Header, DESCRIPTOR_OFFSET, FLAG_ARRAY, FLAG_KEEP, MAGIC};
use crate::layout::{fingerprint_of_encoded, FORMAT_VERSION, MAX_DESCRIPTOR_LEN};
use crate::lock;
use crate::process::ProcessId;
use crate::{Error, Layout, Options, Result};

/// Longest segment name, in bytes, without the leading `/` (`NAME_MAX` on Linux).
pub const MAX_NAME_LEN: usize = 255;

/// What a handle expects to find in (or put into) a segment.
pub(crate) struct Spec {
    pub layout: &'static Layout,
    pub fingerprint: u64,
    /// `Some(n)`: exactly one value or `n` elements; `None` (open of an array): any count.
    pub count: Option<usize>,
    pub array: bool,
}

/// A mapped, validated segment. Dropping it unmaps it, and unlinks it if this handle created it
/// and was not told to keep it.
pub(crate) struct Segment {
    name: String,
    map: Mapping,
    fd: OwnedFd,
    payload: NonNull<u8>,
    /// Payload length in bytes; the journal holds two copies of as many bytes.
    payload_len: usize,
    journal: NonNull<u8>,
    /// The layout of one element, as validated (the journal's undo walks it).
    element: Descriptor,
    count: usize,
    /// Device and inode of the object: the segment's identity in this process.
    identity: (u64, u64),
    /// Whether this handle created the segment, and the process that did (a child forked from it
    /// inherits the handle, but not the right to remove the segment).
    owner: bool,
    creator: u32,
    keep: bool,
}

/// The element layout of a segment that is not validated yet: no primitives.
static EMPTY: Layout = Layout {
    name: "",
    size: 0,
    align: 1,
    kind: crate::Kind::Struct { fields: &[] },
};

/// Where a segment's parts go.
#[derive(Clone, Copy)]
struct Sizes {
    payload_offset: usize,
    payload_len: usize,
    journal_offset: usize,
    total: usize,
}

impl Sizes {
    /// The sizes of a segment for `count` elements of `layout`, or `None` if it cannot exist.
    fn new(descriptor_len: usize, layout: &Layout, count: usize) -> Option<Sizes> {
        let payload_offset = header::payload_offset(descriptor_len, layout.align);
        let payload_len = layout.size.checked_mul(count)?;
        let journal_offset = payload_offset
            .checked_add(payload_len)?
            .checked_next_multiple_of(layout.align.max(header::PAYLOAD_ALIGN))?;
        let total = journal_offset.checked_add(payload_len.checked_mul(2)?)?;
        (total <= i64::MAX as usize).then_some(Sizes {
            payload_offset,
            payload_len,
            journal_offset,
            total,
        })
    }
}

// SAFETY: the mapping is shared memory that every process, and so every thread, accesses only
// through atomics (`SharedLayout`'s contract, and `Header`'s fields); `Mapping` is not `Send` only
// because it holds the mapping's raw pointer, which is used to unmap once, on drop, by whichever
// thread drops the segment.
unsafe impl Send for Segment {}
// SAFETY: `&Segment` gives only reads of immutable fields and atomic access to the mapping.
unsafe impl Sync for Segment {}

/// Checks a name before it reaches the system.
pub(crate) fn validate_name(name: &str) -> Result<CString> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.starts_with('/') {
        return invalid(
            "names are given without the leading '/' (`/dev/shm/web-stats` and `shm_open(\"/web-stats\")` are the segment `web-stats`)",
        );
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is longer than 255 bytes");
    }
    if name.contains('/') {
        return invalid("it contains '/'");
    }
    if name.contains('\0') {
        return invalid("it contains a NUL byte");
    }
    if name == "." || name == ".." {
        return invalid("`.` and `..` name directories");
    }
    // Cannot fail: NUL was refused above.
    CString::new(format!("/{name}")).map_err(|_| Error::InvalidName {
        name: name.to_owned(),
        reason: "it contains a NUL byte",
    })
}

fn os_err(name: &str, op: &'static str) -> Error {
    Error::from_os(name, op, io::Error::last_os_error())
}

fn shm_open(name: &str, path: &CString, flags: libc::c_int, mode: u32) -> Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call. glibc adds
    // O_NOFOLLOW and O_CLOEXEC, so a symlink planted under the name is refused (ELOOP).
    let fd = unsafe { libc::shm_open(path.as_ptr(), flags, mode as libc::mode_t) };
    if fd < 0 {
        return Err(os_err(name, "shm_open"));
    }
    // SAFETY: `fd` was just returned by shm_open, is open, and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(name: &str, fd: &OwnedFd) -> Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is an open descriptor and `st` points to writable memory of the right type.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(os_err(name, "fstat"));
    }
    // SAFETY: fstat returned 0, so it filled in `st`.
    Ok(unsafe { st.assume_init() })
}

fn shm_unlink(path: &CString) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::shm_unlink(path.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn user_groups() -> Vec<libc::gid_t> {
    // SAFETY: with a size of 0, getgroups only returns the count and writes nothing.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0; n.max(0) as usize];
    // SAFETY: `groups` has room for `n` entries, which is what we pass.
    let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    // SAFETY: getegid cannot fail and takes no arguments.
    groups.push(unsafe { libc::getegid() });
    groups
}

fn identity(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

/// Who owns an object and how it is open: what a refusal states.
#[derive(Clone, Copy, Debug)]
struct Owner {
    uid: u32,
    gid: u32,
    /// Permission bits.
    mode: u32,
}

impl Owner {
    fn of_stat(st: &libc::stat) -> Owner {
        Owner {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o777,
        }
    }

    /// The object under `name` in /dev/shm, as `lstat` sees it now.
    fn of_name(name: &str) -> Option<Owner> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(std::path::Path::new(crate::inspect::SHM_DIR).join(name))
            .ok()?;
        Some(Owner {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o777,
        })
    }

    /// `uid 1000 (group 1000, mode 0o600)`.
    fn describe(&self) -> String {
        format!(
            "uid {} (group {}, mode {:#o})",
            self.uid, self.gid, self.mode
        )
    }
}

/// Why this user may not open another user's object `owner` accepting `asked` (the mode the
/// opener accepts), or `None` if it may: only through the group, which needs all three of: the
/// opener asked for group access, this user is in the object's group, and the object's mode
/// gives the group read and write access. Every condition that fails is named.
fn other_users_object(owner: &Owner, me: u32, asked: u32, in_group: bool) -> Option<String> {
    let asked_group = asked & 0o060 != 0;
    let gives_group = owner.mode & 0o060 == 0o060;
    if asked_group && in_group && gives_group {
        return None;
    }
    let mut why = Vec::new();
    if !in_group {
        why.push(format!("this user is not in its group {}", owner.gid));
    }
    if !gives_group {
        why.push(format!(
            "its mode {:#o} does not give its group read and write access",
            owner.mode
        ));
    }
    if !asked_group {
        why.push(if why.is_empty() {
            format!(
                "this program did not ask for group access (it accepts mode {asked:#o}; open with `Options::new().mode(0o660)` to share a segment with its group)"
            )
        } else {
            format!("this program did not ask for group access (it accepts mode {asked:#o})")
        });
    }
    Some(format!(
        "it belongs to {}, not to this user (uid {me}): {}",
        owner.describe(),
        why.join("; ")
    ))
}

/// The reason for a refusal by the system (`EACCES` from `shm_open`) of the object `name`, found
/// with `lstat`: whose it is and what is missing; `None` if nothing explains it.
fn explain_refusal(name: &str, asked: u32) -> Option<String> {
    let owner = Owner::of_name(name)?;
    let me = effective_uid();
    if owner.uid != me {
        return other_users_object(&owner, me, asked, user_groups().contains(&owner.gid));
    }
    (owner.mode & 0o600 != 0o600).then(|| {
        format!(
            "it belongs to this user (uid {me}) but its mode {:#o} does not let its owner read and write it",
            owner.mode
        )
    })
}

/// Refuses an object that is not a regular file, belongs to another user (unless group access
/// was asked for, it belongs to one of our groups, and its mode gives the group access), or is
/// open beyond `mode`.
fn check_ownership(name: &str, st: &libc::stat, mode: u32) -> Result<()> {
    let deny = |reason: String| {
        Err(Error::PermissionDenied {
            name: name.to_owned(),
            reason,
        })
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return deny(crate::error::NOT_REGULAR.into());
    }
    let me = effective_uid();
    if st.st_uid != me {
        let owner = Owner::of_stat(st);
        let in_group = user_groups().contains(&st.st_gid);
        if let Some(reason) = other_users_object(&owner, me, mode, in_group) {
            return deny(reason);
        }
    }
    let beyond = st.st_mode & 0o777 & !mode;
    if beyond != 0 {
        return deny(format!(
            "its mode {:#o} opens it to more users than the {mode:#o} this program accepts",
            st.st_mode & 0o777
        ));
    }
    Ok(())
}

fn check_mode(name: &str, mode: u32) -> Result<()> {
    if mode & !0o666 != 0 || mode & 0o600 != 0o600 {
        return Err(Error::PermissionDenied {
            name: name.to_owned(),
            reason: format!(
                "mode {mode:#o} is not allowed: it must give the owner read and write, and may add group and other read/write (e.g. 0o600, 0o660)"
            ),
        });
    }
    Ok(())
}

/// A shared mapping of a whole object; unmapped when dropped.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr + len` is a mapping made by `map` and not yet unmapped; no reference
        // into it outlives the `Segment` that owns this `Mapping`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Maps the object `fd` refers to — the very object whose owner, mode and size were checked —
/// shared, read and write, `len` bytes. (`shared_memory` can only map by name, which would open
/// the name a second time, after the checks: another object may be there by then.)
fn map(name: &str, fd: &OwnedFd, len: usize) -> Result<Mapping> {
    // SAFETY: a fresh shared mapping chosen by the kernel (no address hint, no MAP_FIXED), of an
    // open descriptor; it aliases nothing in this process.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(os_err(name, "mmap"));
    }
    let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| Error::Io {
        name: name.to_owned(),
        op: "mmap",
        source: io::Error::other("mapped at address 0"),
    })?;
    Ok(Mapping { ptr, len })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Creation, first step after sizing the object: say who the creator is, then write the magic.
/// An opener that reads the magic (acquire) can trust the creator fields.
fn announce_creator(h: &Header, me: ProcessId) {
    h.creator_pid.store(me.pid, Ordering::Relaxed);
    h.creator_start.store(me.start, Ordering::Relaxed);
    h.created_at.store(now_secs(), Ordering::Relaxed);
    h.magic.store(u64::from_ne_bytes(MAGIC), Ordering::Release);
}

/// Creation, last step: everything before it is visible to an opener that reads the state
/// (acquire) as ready.
fn mark_ready(h: &Header) {
    h.state.store(header::STATE_READY, Ordering::Release);
}

/// How far creation has got, as far as an opener can tell; `Err` if the header is not one.
fn readiness(h: &Header) -> std::result::Result<Readiness, String> {
    let magic = h.magic.load(Ordering::Acquire);
    if magic == u64::from_ne_bytes(MAGIC) {
        return match h.state.load(Ordering::Acquire) {
            header::STATE_READY => Ok(Readiness::Ready),
            header::STATE_INITIALIZING => Ok(Readiness::Initializing(Some(ProcessId {
                pid: h.creator_pid.load(Ordering::Relaxed),
                start: h.creator_start.load(Ordering::Relaxed),
            }))),
            other => Err(format!("unknown init state {other}")),
        };
    }
    // A creator that has sized the object but not yet written a byte of it.
    if magic == 0 && h.state.load(Ordering::Relaxed) == 0 {
        return Ok(Readiness::Initializing(None));
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
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least `size_of::<Header>()` bytes (checked before mapping),
        // page-aligned (mmap), so aligned for `Header`; every field of `Header` is an atomic
        // integer (the lock area's too), for which any bytes are valid; it lives as long as `self`.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

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

    /// Creates the segment, writes its header and descriptor, lets `init` fill the payload, and
    /// only then marks it ready.
    pub(crate) fn create(
        name: &str,
        spec: &Spec,
        opts: &Options,
        init: &dyn Fn(NonNull<u8>),
    ) -> Result<Segment> {
        let path = validate_name(name)?;
        check_mode(name, opts.mode)?;
        let count = spec.count.unwrap_or(1);
        let descriptor = spec.layout.encode();
        debug_assert!(descriptor.len() <= MAX_DESCRIPTOR_LEN);
        let sizes =
            Sizes::new(descriptor.len(), spec.layout, count).ok_or_else(|| Error::NoSpace {
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
        let built = Self::build(name, &fd, spec, opts, count, &descriptor, &sizes, init);
        match built {
            Ok((map, identity)) => {
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
                    name: name.to_owned(),
                    map,
                    fd,
                    payload,
                    payload_len: sizes.payload_len,
                    journal,
                    element: Descriptor::from_layout(spec.layout),
                    count,
                    identity,
                    owner: true,
                    creator: std::process::id(),
                    keep: opts.keep,
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
        opts: &Options,
        count: usize,
        descriptor: &[u8],
        sizes: &Sizes,
        init: &dyn Fn(NonNull<u8>),
    ) -> Result<(Mapping, (u64, u64))> {
        let Sizes {
            payload_offset,
            payload_len,
            journal_offset,
            total,
        } = *sizes;
        let raw = fd.as_raw_fd();
        // shm_open's mode was masked by the umask: set exactly what was asked.
        // SAFETY: `raw` is an open descriptor; fchmod takes no pointers.
        if unsafe { libc::fchmod(raw, opts.mode as libc::mode_t) } != 0 {
            return Err(os_err(name, "fchmod"));
        }
        // SAFETY: as above; ftruncate takes no pointers.
        if unsafe { libc::ftruncate(raw, total as libc::off_t) } != 0 {
            return Err(os_err(name, "ftruncate"));
        }
        // ftruncate reserves nothing on tmpfs: without this, a full /dev/shm would turn a later
        // write to the payload into SIGBUS.
        // SAFETY: as above; posix_fallocate takes no pointers and returns the error number.
        match unsafe { libc::posix_fallocate(raw, 0, total as libc::off_t) } {
            0 | libc::EOPNOTSUPP | libc::EINVAL => {}
            libc::ENOSPC | libc::EFBIG => {
                return Err(Error::NoSpace {
                    name: name.to_owned(),
                    bytes: total as u64,
                })
            }
            code => {
                return Err(Error::from_os(
                    name,
                    "posix_fallocate",
                    io::Error::from_raw_os_error(code),
                ))
            }
        }
        let map = map(name, fd, total)?;
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
        let flags = if spec.array { FLAG_ARRAY } else { 0 } | if opts.keep { FLAG_KEEP } else { 0 };
        h.flags.store(flags, Ordering::Relaxed);
        h.payload_offset
            .store(payload_offset as u64, Ordering::Relaxed);
        h.payload_len.store(payload_len as u64, Ordering::Relaxed);
        h.journal_offset
            .store(journal_offset as u64, Ordering::Relaxed);
        h.elem_count.store(count as u64, Ordering::Relaxed);
        h.elem_size
            .store(spec.layout.size as u64, Ordering::Relaxed);
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
        Ok((map, id))
    }

    /// Opens an existing segment: checks the object, maps it, waits (bounded) for it to be ready,
    /// and validates the header against `spec`.
    pub(crate) fn open(name: &str, spec: &Spec, opts: &Options) -> Result<Segment> {
        Self::open_checked(name, Some(spec), opts)
    }

    /// Opens a segment of any layout: every check of [`open`](Self::open) but the comparison
    /// with an expected type. Returns the descriptor read from the segment, whose consistency
    /// has been checked against the payload.
    pub(crate) fn open_any(name: &str, opts: &Options) -> Result<(Segment, Descriptor)> {
        let seg = Self::open_checked(name, None, opts)?;
        let found = seg.element().clone();
        Ok((seg, found))
    }

    fn open_checked(name: &str, spec: Option<&Spec>, opts: &Options) -> Result<Segment> {
        let path = validate_name(name)?;
        check_mode(name, opts.mode)?;
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
            let fd = shm_open(name, &path, libc::O_RDWR, 0).map_err(|e| match e {
                Error::PermissionDenied { name, reason } => {
                    let reason = explain_refusal(&name, opts.mode).unwrap_or(reason);
                    Error::PermissionDenied { name, reason }
                }
                e => e,
            })?;
            let st = fstat(name, &fd)?;
            check_ownership(name, &st, opts.mode)?;
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
            let map = map(name, &fd, size)?;
            let mut seg = Segment {
                name: name.to_owned(),
                map,
                fd,
                payload: NonNull::dangling(),
                payload_len: 0,
                journal: NonNull::dangling(),
                element: Descriptor::from_layout(&EMPTY),
                count: 0,
                identity: identity(&st),
                owner: false,
                creator: 0,
                keep: true,
            };
            loop {
                match next_step(&seg.readiness()?, ProcessId::is_alive) {
                    Next::Validate => {
                        seg.validate(spec)?;
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
        opts: &Options,
        init: &dyn Fn(NonNull<u8>),
    ) -> Result<Segment> {
        let start = Instant::now();
        loop {
            match Segment::create(name, spec, opts, init) {
                Err(Error::AlreadyExists { .. }) => {}
                other => return other,
            }
            match Segment::open(name, spec, opts) {
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

    /// Checks a ready header against the object's size and `spec`, and sets the payload pointer.
    fn validate(&mut self, spec: Option<&Spec>) -> Result<()> {
        let h = self.header();
        let size = self.map.len() as u64;
        let version = h.version.load(Ordering::Relaxed);
        if version != FORMAT_VERSION {
            return Err(self.corrupt(format!(
                "it is in segment format version {version}; this library reads version {FORMAT_VERSION}"
            )));
        }
        let desc_len = h.descriptor_len.load(Ordering::Relaxed) as usize;
        let payload_offset = h.payload_offset.load(Ordering::Relaxed);
        let payload_len = h.payload_len.load(Ordering::Relaxed);
        let journal_offset = h.journal_offset.load(Ordering::Relaxed);
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
            || payload_len
                .checked_mul(2)
                .and_then(|j| journal_offset.checked_add(j))
                != Some(size)
        {
            return Err(self.corrupt(format!(
                "its header does not add up: descriptor {desc_len} bytes, payload {payload_len} bytes at offset {payload_offset} ({count} x {elem_size}), journal at {journal_offset}, object {size} bytes"
            )));
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
        // A process from other namespaces than the creator's marks the lock before it uses it.
        lock::attach(&h.lock);
        let is_array = flags & FLAG_ARRAY != 0;
        if !is_array && count != 1 {
            return Err(Error::LayoutMismatch {
                name: self.name.clone(),
                detail: format!(
                    "the segment holds a single {found} but says it has {count} elements"
                ),
            });
        }
        if let Some(spec) = spec {
            self.check_spec(spec, &found, fingerprint, is_array, count)?;
        }
        // From here the header's numbers are known to fit in the mapping; copy them, so a peer
        // rewriting the header later cannot move this handle's view.
        let align = found.align;
        if payload_offset % align != 0 || journal_offset % align != 0 {
            return Err(self.corrupt(format!(
                "its payload ({payload_offset}) or journal ({journal_offset}) offset is not aligned to {align}"
            )));
        }
        // SAFETY: the header check above proved `payload_offset + payload_len <= journal_offset`
        // and `journal_offset + 2 * payload_len == size`, the mapping's length: both pointers are
        // in bounds or one past the end.
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
        self.element = found;
        self.count = count as usize;
        Ok(())
    }

    /// Checks a valid segment's descriptor and shape against what a typed handle expects.
    fn check_spec(
        &self,
        spec: &Spec,
        found: &Descriptor,
        fingerprint: u64,
        is_array: bool,
        count: u64,
    ) -> Result<()> {
        if fingerprint != spec.fingerprint {
            let want = Descriptor::from_layout(spec.layout);
            let detail = found.first_difference(&want).unwrap_or_else(|| {
                format!("the segment holds {found}, this program expects {want}")
            });
            return Err(Error::LayoutMismatch {
                name: self.name.clone(),
                detail,
            });
        }
        let want_what = |array: bool, n: Option<usize>| match (array, n) {
            (false, _) => format!("a single {}", found),
            (true, Some(n)) => format!("an array of {n} {}", found),
            (true, None) => format!("an array of {}", found),
        };
        let count_ok = spec.count.is_none_or(|n| n as u64 == count);
        if is_array != spec.array || !count_ok {
            return Err(Error::LayoutMismatch {
                name: self.name.clone(),
                detail: format!(
                    "the segment holds {}, this program expects {}",
                    want_what(is_array, Some(count as usize)),
                    want_what(spec.array, spec.count)
                ),
            });
        }
        Ok(())
    }

    /// The payload: `count()` elements of the spec's layout, in bounds and aligned.
    pub(crate) fn payload(&self) -> NonNull<u8> {
        self.payload
    }

    /// Payload length in bytes (each journal copy has as many).
    pub(crate) fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The undo journal: two copies of `payload_len()` bytes, each laid out like the payload (the
    /// old values, then the new).
    pub(crate) fn journal(&self) -> NonNull<u8> {
        self.journal
    }

    /// The layout of one element.
    pub(crate) fn element(&self) -> &Descriptor {
        &self.element
    }

    /// Number of elements in the payload.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_owner(&self) -> bool {
        self.owner
    }

    /// The creator recorded in the header: its pid and start time.
    pub(crate) fn recorded_creator(&self) -> ProcessId {
        let h = self.header();
        ProcessId {
            pid: h.creator_pid.load(Ordering::Relaxed),
            start: h.creator_start.load(Ordering::Relaxed),
        }
    }

    /// Size of the mapped object in bytes.
    pub(crate) fn object_len(&self) -> usize {
        self.map.len()
    }

    /// The object's device and inode: equal for every handle of the same segment.
    pub(crate) fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// `fstat` of the object this handle has open (owner, mode, size).
    pub(crate) fn stat(&self) -> Result<libc::stat> {
        fstat(&self.name, &self.fd)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.owner || self.keep || std::process::id() != self.creator {
            return;
        }
        // Unlink only the object this handle created: if it was removed and the name reused,
        // the new one is somebody else's. Non-blocking: a FIFO planted under the name must not
        // hang the drop.
        let Ok(path) = validate_name(&self.name) else {
            return;
        };
        let Ok(now) = shm_open(&self.name, &path, libc::O_RDONLY | libc::O_NONBLOCK, 0) else {
            return;
        };
        if fstat(&self.name, &now).is_ok_and(|st| identity(&st) == self.identity) {
            let _ = shm_unlink(&path);
        }
    }
}

/// Removes the segment `name`: processes that have it open keep their mapping, and the memory
/// is freed when the last one closes it. New opens fail with [`Error::NotFound`].
///
/// ```
/// # let name = format!("doc-remove-{}", std::process::id());
/// let v = shm_core::Value::<i32>::create_with(&name, 7, &shm_core::Options::new().keep(true))?;
/// drop(v);
/// shm_core::remove(&name)?;
/// assert!(matches!(shm_core::remove(&name), Err(shm_core::Error::NotFound { .. })));
/// # Ok::<(), shm_core::Error>(())
/// ```
pub fn remove(name: &str) -> Result<()> {
    let path = validate_name(name)?;
    shm_unlink(&path).map_err(|e| {
        let refused = matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        let me = effective_uid();
        match Owner::of_name(name) {
            // /dev/shm is sticky: only an object's owner (or root) may remove it.
            Some(owner) if refused && owner.uid != me => Error::PermissionDenied {
                name: name.to_owned(),
                reason: format!(
                    "it belongs to {}, not to this user (uid {me}); in /dev/shm (a sticky directory) only its owner or root may remove it",
                    owner.describe()
                ),
            },
            _ => Error::from_os(name, "shm_unlink", e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroed_header() -> Box<Header> {
        // SAFETY: every field of `Header` is an atomic integer (the lock area's too), for
        // which all zeros is a valid value (it is what a fresh, ftruncated object holds).
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

    #[test]
    fn a_leading_slash_is_refused_with_what_to_write() {
        let e = validate_name("/web-stats").unwrap_err();
        let Error::InvalidName { name, reason } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(name, "/web-stats");
        assert!(
            reason.starts_with("names are given without the leading '/'"),
            "{reason}"
        );
        // Not the generic "contains '/'", which would not say what to write.
        assert!(!reason.contains("contains"), "{reason}");
        assert!(validate_name("web-stats").is_ok());
        assert!(matches!(
            validate_name("a/b"),
            Err(Error::InvalidName {
                reason: "it contains '/'",
                ..
            })
        ));
    }

    /// Every way into another user's object, and the refusal's reason for each way that fails:
    /// owner, group and mode always, then each condition that fails, and the hint to ask for
    /// group access only when asking is all that is missing.
    #[test]
    fn another_users_object_is_refused_for_the_reasons_that_hold() {
        let seg = |mode| Owner {
            uid: 1000,
            gid: 4242,
            mode,
        };
        let why = |owner: Owner, asked, in_group| other_users_object(&owner, 77, asked, in_group);
        let head = "it belongs to uid 1000 (group 4242, mode 0o660), not to this user (uid 77): ";
        // The one way in: asked, in the group, and the group may read and write.
        assert_eq!(why(seg(0o660), 0o660, true), None);
        assert_eq!(why(seg(0o666), 0o666, true), None);
        assert_eq!(
            why(seg(0o660), 0o660, false).unwrap(),
            format!("{head}this user is not in its group 4242")
        );
        assert_eq!(
            why(seg(0o660), 0o600, true).unwrap(),
            format!("{head}this program did not ask for group access (it accepts mode 0o600; open with `Options::new().mode(0o660)` to share a segment with its group)")
        );
        assert_eq!(
            why(seg(0o660), 0o600, false).unwrap(),
            format!("{head}this user is not in its group 4242; this program did not ask for group access (it accepts mode 0o600)")
        );
        assert_eq!(
            why(seg(0o640), 0o660, true).unwrap(),
            "it belongs to uid 1000 (group 4242, mode 0o640), not to this user (uid 77): its mode 0o640 does not give its group read and write access"
        );
        assert_eq!(
            why(seg(0o600), 0o600, false).unwrap(),
            "it belongs to uid 1000 (group 4242, mode 0o600), not to this user (uid 77): this user is not in its group 4242; its mode 0o600 does not give its group read and write access; this program did not ask for group access (it accepts mode 0o600)"
        );
        // Group access was asked: never told to ask for it.
        for mode in [0o600, 0o640, 0o660] {
            for in_group in [false, true] {
                if let Some(r) = why(seg(mode), 0o660, in_group) {
                    assert!(!r.contains("ask"), "{r}");
                }
            }
        }
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
