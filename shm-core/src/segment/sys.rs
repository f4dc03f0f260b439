//! The system calls behind a segment, each wrapped in a safe function: open, stat, size, reserve
//! and unlink a named object, and map one shared.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use super::Access;
use crate::{Error, Result};

/// The error of the system call `op` that just failed on the object `name`.
pub(super) fn os_err(name: &str, op: &'static str) -> Error {
    Error::from_os(name, op, io::Error::last_os_error())
}

/// `shm_open(path, flags, mode)`: the object's descriptor.
pub(super) fn shm_open(
    name: &str,
    path: &CString,
    flags: libc::c_int,
    mode: u32,
) -> Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call. glibc adds
    // O_NOFOLLOW and O_CLOEXEC, so a symlink planted under the name is refused (ELOOP).
    let fd = unsafe { libc::shm_open(path.as_ptr(), flags, mode as libc::mode_t) };
    if fd < 0 {
        return Err(os_err(name, "shm_open"));
    }
    // SAFETY: `fd` was just returned by shm_open, is open, and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat` of an open object: its owner, mode, size and identity.
pub(super) fn fstat(name: &str, fd: &OwnedFd) -> Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is an open descriptor and `st` points to writable memory of the right type.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(os_err(name, "fstat"));
    }
    // SAFETY: fstat returned 0, so it filled in `st`.
    Ok(unsafe { st.assume_init() })
}

/// `shm_unlink(path)`: removes the name; processes that have the object mapped keep it.
pub(super) fn shm_unlink(path: &CString) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::shm_unlink(path.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fchmod(fd, mode)`: the object's mode exactly (`shm_open`'s was masked by the umask).
pub(super) fn fchmod(name: &str, fd: &OwnedFd, mode: u32) -> Result<()> {
    // SAFETY: `fd` is an open descriptor; fchmod takes no pointers.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } != 0 {
        return Err(os_err(name, "fchmod"));
    }
    Ok(())
}

/// `ftruncate(fd, len)`: sizes the object (its new bytes read as zeros).
pub(super) fn ftruncate(name: &str, fd: &OwnedFd, len: usize) -> Result<()> {
    // SAFETY: `fd` is an open descriptor; ftruncate takes no pointers.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(os_err(name, "ftruncate"));
    }
    Ok(())
}

/// `posix_fallocate(fd, 0, len)`: reserves the object's pages, so that a full file system is
/// [`Error::NoSpace`] now rather than SIGBUS at a later write. A file system that cannot reserve
/// is let be.
pub(super) fn reserve(name: &str, fd: &OwnedFd, len: usize) -> Result<()> {
    // SAFETY: `fd` is an open descriptor; posix_fallocate takes no pointers and returns the
    // error number.
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

/// The object's device and inode: the same for every handle and mapping of it.
pub(super) fn identity(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
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

/// What every mapping's start is a multiple of (a page is at least this large).
pub(crate) const MAPPING_ALIGN: usize = 4096;

/// Maps the object `fd` refers to — the very object whose owner, mode and size were checked —
/// shared, `len` bytes, read and write or (`Access::ReadOnly`) read only. (`shared_memory` can
/// only map by name, which would open the name a second time, after the checks: another object
/// may be there by then.)
pub(super) fn map(name: &str, fd: &OwnedFd, len: usize, access: Access) -> Result<Mapping> {
    let prot = match access {
        Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        Access::ReadOnly => libc::PROT_READ,
    };
    // SAFETY: a fresh shared mapping chosen by the kernel (no address hint, no MAP_FIXED), of an
    // open descriptor; it aliases nothing in this process.
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
        return Err(os_err(name, "mmap"));
    }
    // The kernel maps at page boundaries; `Segment` relies on it (its areas are aligned to
    // `header::PAYLOAD_ALIGN` within the mapping, so in memory too).
    let ptr = NonNull::new(ptr.cast::<u8>())
        .filter(|p| p.as_ptr() as usize % MAPPING_ALIGN == 0)
        .ok_or_else(|| {
            let source = io::Error::other(format!(
                "mapped at {ptr:p}: null, or not at a page boundary"
            ));
            // SAFETY: the mapping just made, unmapped once, and nothing refers to it.
            unsafe { libc::munmap(ptr, len) };
            Error::Io {
                name: name.to_owned(),
                op: "mmap",
                source,
            }
        })?;
    Ok(Mapping { ptr, len })
}
