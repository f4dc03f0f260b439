//! The side journal: a shared-memory object next to a segment that holds the record of a write
//! too large for the segment's own journal area (docs/FORMAT.md, "The side journal").
//!
//! It is named after the segment and its journal id, `<name>.journal-<id in 16 hex digits>`, so
//! that a segment created again under the same name never shares one with the old segment. It is
//! created, grown (its space reserved with `posix_fallocate`, as a segment's is) and used only by
//! a holder of the segment's lock: a writer whose record does not fit in the segment, or a process
//! undoing a dead writer's record. It keeps the size of the largest record written into it, so
//! the next such write needs no system call; it is removed with its segment.
//!
//! Each process maps it once and keeps the mapping in the segment's handle ([`Cache`]), checking
//! before each use that the object was not removed meanwhile.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use crate::cell::Region;
use crate::layout::FORMAT_VERSION;
use crate::segment::{Segment, MAX_NAME_LEN};
use crate::{Error, Result};

mod owner;

pub(crate) use owner::Owner;

/// Bytes before the record: magic, version, the segment's name and journal id.
pub(crate) const HEADER_LEN: usize = 512;

/// What a side journal's name adds to (the start of) its segment's name.
const SUFFIX: &str = ".journal-";

/// A side journal's size is a multiple of this.
const GROWTH: usize = 64 << 10;

/// The name of the side journal of the segment `name` whose journal id is `id`: the name (cut to
/// at most 230 bytes, on a character boundary, so that the whole fits in 255), `.journal-`, and
/// the id in 16 lowercase hex digits.
pub(crate) fn name_of(name: &str, id: u64) -> String {
    let mut cut = name.len().min(MAX_NAME_LEN - SUFFIX.len() - 16);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{SUFFIX}{id:016x}", &name[..cut])
}

/// The journal id in a name made by [`name_of`], if it is one.
pub(crate) fn id_in_name(name: &str) -> Option<u64> {
    let at = name.len().checked_sub(SUFFIX.len() + 16)?;
    let (head, hex) = name.split_at_checked(at + SUFFIX.len())?;
    if !head.ends_with(SUFFIX)
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A new journal id: random, never 0. `identity` (the new object's device and inode) and the
/// time stand in if the system has no random numbers to give.
pub(crate) fn new_id(identity: &(u64, u64)) -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is writable for 8 bytes; getrandom writes at most that many.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), 8, libc::GRND_NONBLOCK) };
    let mut id = u64::from_ne_bytes(bytes);
    if got != 8 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        id = [identity.0, identity.1, nanos, u64::from(std::process::id())]
            .iter()
            .fold(0xcbf2_9ce4_8422_2325, |h, w| {
                (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
            });
    }
    id.max(1)
}

/// The journal id in the header of the segment at `path` (named `name`), if it is a segment of
/// this format whose header can be read: what [`remove`](crate::remove) needs to find its side
/// journal. Reads with `pread`, so a hostile object can do no more than fail the read.
pub(crate) fn id_of(path: &CString) -> Option<u64> {
    let fd = open(path, libc::O_RDONLY | libc::O_NONBLOCK, 0).ok()?;
    let st = fstat(&fd).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let mut h = [0u8; 128];
    // SAFETY: `h` is writable for 128 bytes; pread takes it and the open fd.
    let got = unsafe { libc::pread(fd.as_raw_fd(), h.as_mut_ptr().cast(), h.len(), 0) };
    let word = |at: usize| u32::from_ne_bytes(h[at..at + 4].try_into().unwrap());
    if got != h.len() as isize || h[..8] != crate::header::MAGIC || word(8) != FORMAT_VERSION {
        return None;
    }
    let id = u64::from_ne_bytes(h[120..128].try_into().unwrap());
    (id != 0).then_some(id)
}

/// A side journal open and mapped in this process.
struct Side {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    /// Bytes mapped: the object's size when it was mapped, every byte of it reserved.
    len: usize,
}

// SAFETY: `Side` owns its descriptor and mapping; the raw pointer is only used through the
// `Cache`'s mutex, by one thread at a time, and to unmap once on drop.
unsafe impl Send for Side {}

impl Drop for Side {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr + len` is a mapping made by `map_shared` and not unmapped before;
        // no region into it outlives the `Held` that borrowed it, which borrows the cache.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The side journal as this handle has it mapped, if it has: one per segment handle.
///
/// Boxed, so that the handles hold no interior mutability in place (they are `Freeze`): the
/// compiler then knows that a `&Shared<T>` (or `&Array<T>`) a function gets is not changed while
/// it runs, and keeps the handle's pointers in registers across a loop of `snapshot`s instead
/// of loading them again after every one of its ordered loads.
#[derive(Default)]
pub(crate) struct Cache(Box<Mutex<Option<Side>>>);

impl Cache {
    fn lock(&self) -> MutexGuard<'_, Option<Side>> {
        // A panic while it was held left nothing half-done in it that matters: the mapping is
        // checked again before each use.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The side journal, mapped and held: its record area is this process's to use until dropped.
pub(crate) struct Held<'a> {
    guard: MutexGuard<'a, Option<Side>>,
}

impl Held<'_> {
    /// The record area: the object after its header (inlined: a call kept writes in memory).
    #[inline]
    pub(crate) fn area(&self) -> Region<'_> {
        let side = self.guard.as_ref().expect("a held side journal is mapped");
        // SAFETY: the mapping is `len >= HEADER_LEN` bytes (checked when mapped) and stays mapped
        // while the guard, borrowed here, holds the cache; the object is accessed only by holders
        // of the segment's lock, one at a time, so no access to it races with another.
        unsafe {
            Region::new(
                NonNull::new_unchecked(side.ptr.as_ptr().add(HEADER_LEN)),
                side.len - HEADER_LEN,
            )
        }
    }
}

fn path(side: &str) -> CString {
    // A side name is a segment name (no NUL) plus ASCII.
    CString::new(format!("/{side}")).unwrap_or_default()
}

fn last_os(name: &str, op: &'static str) -> Error {
    Error::from_os(name, op, io::Error::last_os_error())
}

fn open(path: &CString, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a NUL-terminated string that outlives the call; glibc adds O_NOFOLLOW
    // and O_CLOEXEC.
    let fd = unsafe { libc::shm_open(path.as_ptr(), flags, mode as libc::mode_t) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by shm_open, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: an open descriptor and writable memory for a `stat`.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it filled `st` in.
    Ok(unsafe { st.assume_init() })
}

/// Whether the object `st` may serve as the side journal of the segment `seg`: a regular file
/// that whoever may write the segment could have made (this user, the segment's owner, or, if the
/// segment's mode lets its group or everyone write it, a member of its group or anyone), and open
/// to no one the segment is not open to.
fn acceptable(st: &libc::stat, seg: &libc::stat) -> std::result::Result<(), String> {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(crate::error::NOT_REGULAR.to_owned());
    }
    // SAFETY: geteuid takes no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    let seg_mode = seg.st_mode & 0o777;
    let by_owner = st.st_uid == me || st.st_uid == seg.st_uid;
    let by_group = seg_mode & 0o060 == 0o060 && st.st_gid == seg.st_gid;
    let by_anyone = seg_mode & 0o006 == 0o006;
    if !(by_owner || by_group || by_anyone) {
        return Err(format!(
            "its side journal belongs to uid {} (group {}), who may not write the segment",
            st.st_uid, st.st_gid
        ));
    }
    if st.st_mode & 0o777 & !seg_mode != 0 {
        return Err(format!(
            "its side journal's mode {:#o} opens it to more users than the segment's {seg_mode:#o}",
            st.st_mode & 0o777
        ));
    }
    Ok(())
}

/// Maps `len` bytes of `fd`, shared, read and write (or read only).
fn map_shared(fd: &OwnedFd, len: usize, writable: bool) -> io::Result<NonNull<u8>> {
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: a fresh shared mapping chosen by the kernel, of an open descriptor; it aliases
    // nothing in this process.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mapped at address 0"))
}

/// Reserves the bytes `0..len` of `fd` (a tmpfs allocates on first touch, and a full one turns
/// that touch into SIGBUS). Bytes already reserved cost nothing.
fn reserve_space(name: &str, fd: &OwnedFd, len: usize) -> Result<()> {
    // SAFETY: an open descriptor; posix_fallocate takes no pointers and returns the error.
    match unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len as libc::off_t) } {
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        libc::ENOSPC | libc::EFBIG => Err(Error::NoSpace {
            name: name.to_owned(),
            bytes: len as u64,
        }),
        code => Err(Error::from_os(
            name,
            "posix_fallocate",
            io::Error::from_raw_os_error(code),
        )),
    }
}

fn truncate(fd: &OwnedFd, len: usize) -> io::Result<()> {
    // SAFETY: an open descriptor; ftruncate takes no pointers.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The side journal of `seg` mapped, with a record area of at least `need` bytes: created,
/// or grown, if it is smaller. The caller holds the segment's lock.
///
/// # Errors
/// [`Error::NoSpace`] if `/dev/shm` has no room for it (nothing is left half-grown), or why
/// the object under its name cannot serve (another user's, not a regular file, not a side
/// journal of this segment), [`Error::NotFound`] if there is none and the segment was removed,
/// or a failing system call.
pub(crate) fn reserve(seg: &Segment, need: usize) -> Result<Held<'_>> {
    let want = HEADER_LEN
        .checked_add(need)
        .and_then(|n| n.checked_next_multiple_of(GROWTH))
        .filter(|&n| n <= i64::MAX as usize)
        .ok_or_else(|| Error::NoSpace {
            name: seg.name().to_owned(),
            bytes: u64::MAX,
        })?;
    let mut guard = seg.side_cache().lock();
    forget_if_removed(&mut guard);
    if guard.is_none() {
        *guard = Some(open_or_create(seg, want)?);
    }
    let side = guard.as_mut().expect("mapped just above");
    if side.len < want {
        grow(seg, side, want)?;
    }
    Ok(Held { guard })
}

/// The side journal of `seg` as it is, mapped, for undoing a record of `len` bytes in it. The
/// caller holds the segment's lock, or is a read-only handle, which maps it read only and only
/// loads from it.
///
/// # Errors
/// If there is none, it is smaller than the record, or it cannot serve (see [`reserve`]).
pub(crate) fn existing(seg: &Segment, len: usize) -> Result<Held<'_>> {
    // `len` is the header's `journal_len`, which any peer may have written.
    let Some(total) = HEADER_LEN.checked_add(len) else {
        return Err(corrupt(
            seg,
            format!("its side journal's record is said to be {len} bytes long"),
        ));
    };
    let mut guard = seg.side_cache().lock();
    forget_if_removed(&mut guard);
    let mapped = guard.as_ref().map_or(0, |s| s.len);
    if mapped < total {
        *guard = None;
        // Non-blocking: opening a FIFO planted under the name read only would wait for a writer.
        let flags = libc::O_NONBLOCK
            | if seg.is_read_only() {
                libc::O_RDONLY
            } else {
                libc::O_RDWR
            };
        let fd = open(&path(&name_of(seg.name(), seg.journal_id())), flags, 0)
            .map_err(|e| Error::from_os(seg.name(), "shm_open", e))?;
        *guard = Some(adopt(seg, fd, None)?);
    }
    let side = guard.as_ref().expect("mapped just above");
    if side.len < total {
        return Err(corrupt(
            seg,
            format!(
                "its side journal has {} bytes, fewer than its record of {len} bytes needs",
                side.len
            ),
        ));
    }
    Ok(Held { guard })
}

/// Removes the side journal of the segment `name` whose journal id is `id`, if there is one:
/// an object under its name that says it is that segment's side journal, or that is blank (a
/// side journal whose creator has not stamped it yet). Anything else is left alone, whoever put
/// it there.
pub(crate) fn remove(name: &str, id: u64) {
    let path = path(&name_of(name, id));
    if owner::is_ours(&path, name, id) {
        // SAFETY: a NUL-terminated string that outlives the call.
        unsafe { libc::shm_unlink(path.as_ptr()) };
    }
}

fn corrupt(seg: &Segment, reason: String) -> Error {
    Error::Corrupt {
        name: seg.name().to_owned(),
        reason,
    }
}

/// Drops a cached mapping of an object that was removed since (its name may hold another now).
fn forget_if_removed(cached: &mut Option<Side>) {
    if cached
        .as_ref()
        .is_some_and(|s| fstat(&s.fd).map_or(true, |st| st.st_nlink == 0))
    {
        *cached = None;
    }
}

/// Opens the side journal of `seg`, creating it with `len` bytes if there is none — unless the
/// segment was removed: nobody would remove a side journal made for it now.
fn open_or_create(seg: &Segment, len: usize) -> Result<Side> {
    let name = seg.name();
    let seg_st = seg.stat()?;
    let path = path(&name_of(name, seg.journal_id()));
    let mode = seg_st.st_mode & 0o666;
    if seg_st.st_nlink == 0 {
        // Removed: one that is still there serves (NotFound if there is none).
        let fd = open(&path, libc::O_RDWR | libc::O_NONBLOCK, 0)
            .map_err(|e| Error::from_os(name, "shm_open", e))?;
        return adopt(seg, fd, Some(&seg_st));
    }
    match open(&path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode) {
        Ok(fd) => {
            let made = create(seg, &fd, &seg_st, len).and_then(|()| adopt(seg, fd, Some(&seg_st)));
            if made.is_err() {
                // SAFETY: a NUL-terminated string that outlives the call.
                unsafe { libc::shm_unlink(path.as_ptr()) };
            }
            made
        }
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let fd = open(&path, libc::O_RDWR | libc::O_NONBLOCK, 0)
                .map_err(|e| Error::from_os(name, "shm_open", e))?;
            // Left blank by a writer that died while creating it: it is this segment's (its name
            // says so), and this process holds the segment's lock: finish it.
            let st = fstat(&fd).map_err(|e| Error::from_os(name, "fstat", e))?;
            if acceptable(&st, &seg_st).is_ok() && is_blank(&fd, &st) {
                create(seg, &fd, &seg_st, len)?;
            }
            adopt(seg, fd, Some(&seg_st))
        }
        Err(e) => Err(Error::from_os(name, "shm_open", e)),
    }
}

/// Whether an object is shorter than a side journal's header or has no magic yet.
fn is_blank(fd: &OwnedFd, st: &libc::stat) -> bool {
    if st.st_size < HEADER_LEN as libc::off_t {
        return true;
    }
    let mut magic = [0u8; 8];
    // SAFETY: `magic` is writable for 8 bytes; pread takes it and the open fd.
    let got = unsafe { libc::pread(fd.as_raw_fd(), magic.as_mut_ptr().cast(), 8, 0) };
    got == 8 && magic == [0; 8]
}

/// Sizes, reserves and stamps a side journal just created (or left blank).
fn create(seg: &Segment, fd: &OwnedFd, seg_st: &libc::stat, len: usize) -> Result<()> {
    let name = seg.name();
    let raw = fd.as_raw_fd();
    // The mode exactly as the segment's (shm_open's was masked by the umask), and its group, so
    // that whoever may use the segment may use its journal. A group this user is not in cannot
    // be given; then the group is this user's, which the segment's owner may not accept.
    // SAFETY: an open descriptor; neither call takes pointers.
    unsafe {
        if libc::fchmod(raw, seg_st.st_mode & 0o666) != 0 {
            return Err(last_os(name, "fchmod"));
        }
        libc::fchown(raw, u32::MAX, seg_st.st_gid);
    }
    truncate(fd, len).map_err(|e| Error::from_os(name, "ftruncate", e))?;
    reserve_space(name, fd, len)?;
    let header = Owner {
        segment: name.to_owned(),
        id: seg.journal_id(),
    }
    .encode();
    // SAFETY: `header` is a valid buffer of HEADER_LEN bytes; pwrite takes it and the open fd.
    let wrote = unsafe { libc::pwrite(raw, header.as_ptr().cast(), HEADER_LEN, 0) };
    if wrote != HEADER_LEN as isize {
        return Err(last_os(name, "pwrite"));
    }
    Ok(())
}

/// Checks that `fd` is the side journal of `seg` (its owner and mode against the segment's
/// `seg_st` if given, its header), reserves its space and maps it (read only, without reserving,
/// for a read-only handle).
fn adopt(seg: &Segment, fd: OwnedFd, seg_st: Option<&libc::stat>) -> Result<Side> {
    let name = seg.name();
    let st = fstat(&fd).map_err(|e| Error::from_os(name, "fstat", e))?;
    let seg_st = match seg_st {
        Some(s) => *s,
        None => seg.stat()?,
    };
    acceptable(&st, &seg_st).map_err(|reason| Error::PermissionDenied {
        name: name.to_owned(),
        reason,
    })?;
    let len = usize::try_from(st.st_size).unwrap_or(0);
    if len < HEADER_LEN || !owner::names(&fd, name, seg.journal_id()) {
        return Err(corrupt(
            seg,
            format!(
                "the object under its side journal's name `{}` is not its side journal",
                name_of(name, seg.journal_id())
            ),
        ));
    }
    let writable = !seg.is_read_only();
    if writable {
        // A writer may have died between growing it and reserving the growth.
        reserve_space(name, &fd, len)?;
    }
    let ptr = map_shared(&fd, len, writable).map_err(|e| Error::from_os(name, "mmap", e))?;
    Ok(Side { fd, ptr, len })
}

/// Grows a mapped side journal to `len` bytes, reserved, and maps it again. On failure the
/// object keeps its size and mapping.
fn grow(seg: &Segment, side: &mut Side, len: usize) -> Result<()> {
    let name = seg.name();
    let now = fstat(&side.fd).map_err(|e| Error::from_os(name, "fstat", e))?;
    let size = usize::try_from(now.st_size).unwrap_or(0);
    if size < len {
        truncate(&side.fd, len).map_err(|e| Error::from_os(name, "ftruncate", e))?;
    }
    let target = size.max(len);
    if let Err(e) = reserve_space(name, &side.fd, target) {
        // Back to the size it had: nothing unreserved may stay in reach.
        let _ = truncate(&side.fd, size);
        return Err(e);
    }
    let ptr = map_shared(&side.fd, target, true).map_err(|e| Error::from_os(name, "mmap", e))?;
    // SAFETY: the old mapping was made by `map_shared` and is replaced here; no region into it
    // is alive (the caller holds the cache, through which every region is borrowed).
    unsafe { libc::munmap(side.ptr.as_ptr().cast(), side.len) };
    side.ptr = ptr;
    side.len = target;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_carry_the_id() {
        assert_eq!(name_of("stats", 0xab), "stats.journal-00000000000000ab");
        assert_eq!(id_in_name("stats.journal-00000000000000ab"), Some(0xab));
        let long = "é".repeat(127); // 254 bytes
        let side = name_of(&long, u64::MAX);
        assert!(side.len() <= MAX_NAME_LEN, "{}", side.len());
        assert!(side.starts_with(&"é".repeat(115)));
        assert_eq!(id_in_name(&side), Some(u64::MAX));
        for not in [
            "stats",
            "stats.journal-",
            "x.journal-00000000000000AB",
            "x.journal-0000000000000g0a",
        ] {
            assert_eq!(id_in_name(not), None, "{not}");
        }
    }
}
