//! The header of a side journal: which segment it belongs to (docs/FORMAT.md, "The side
//! journal").

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{fstat, is_blank, open, HEADER_LEN};
use crate::layout::FORMAT_VERSION;
use crate::segment::MAX_NAME_LEN;

/// Bytes 0..8 of a side journal.
const MAGIC: [u8; 8] = *b"SHMJRNL\0";

/// Byte offsets in the header.
const AT_VERSION: usize = 8;
const AT_NAME_LEN: usize = 12;
const AT_ID: usize = 16;
const AT_NAME: usize = 32;

/// What a side journal's header says: the segment it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The segment's name.
    pub segment: String,
    /// The segment's journal id.
    pub id: u64,
}

impl Owner {
    /// Reads the header bytes of a side journal; `None` if they are not one of this format.
    pub(crate) fn parse(header: &[u8]) -> Option<Owner> {
        if header.len() < HEADER_LEN || header[..8] != MAGIC {
            return None;
        }
        let word = |at: usize| u32::from_ne_bytes(header[at..at + 4].try_into().unwrap());
        if word(AT_VERSION) != FORMAT_VERSION {
            return None;
        }
        let len = word(AT_NAME_LEN) as usize;
        if len == 0 || len > MAX_NAME_LEN {
            return None;
        }
        let segment = std::str::from_utf8(&header[AT_NAME..AT_NAME + len]).ok()?;
        let id = u64::from_ne_bytes(header[AT_ID..AT_ID + 8].try_into().unwrap());
        Some(Owner {
            segment: segment.to_owned(),
            id,
        })
    }

    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0; HEADER_LEN];
        h[..8].copy_from_slice(&MAGIC);
        h[AT_VERSION..AT_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_ne_bytes());
        h[AT_NAME_LEN..AT_NAME_LEN + 4].copy_from_slice(&(self.segment.len() as u32).to_ne_bytes());
        h[AT_ID..AT_ID + 8].copy_from_slice(&self.id.to_ne_bytes());
        h[AT_NAME..AT_NAME + self.segment.len()].copy_from_slice(self.segment.as_bytes());
        h
    }
}

/// Whether the object at `path` is the side journal of the segment `name` with journal id `id`:
/// a regular file whose header says so, or a blank one (created, not stamped yet). Reads with
/// `pread` on a descriptor opened without blocking, so that whatever sits there can only fail
/// the check.
pub(super) fn is_ours(path: &CString, name: &str, id: u64) -> bool {
    let Ok(fd) = open(path, libc::O_RDONLY | libc::O_NONBLOCK, 0) else {
        return false;
    };
    let Ok(st) = fstat(&fd) else {
        return false;
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return false;
    }
    is_blank(&fd, &st) || names(&fd, name, id)
}

/// Whether the header of the side journal open as `fd` names the segment `name` with journal
/// id `id` (a header that cannot be read whole names nobody).
pub(super) fn names(fd: &OwnedFd, name: &str, id: u64) -> bool {
    let mut header = [0u8; HEADER_LEN];
    // SAFETY: `header` is writable for `HEADER_LEN` bytes; pread takes it and the open fd.
    let got = unsafe { libc::pread(fd.as_raw_fd(), header.as_mut_ptr().cast(), HEADER_LEN, 0) };
    let mine = Owner {
        segment: name.to_owned(),
        id,
    };
    got == HEADER_LEN as isize && Owner::parse(&header) == Some(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_refuse_others() {
        let o = Owner {
            segment: "a-seg".into(),
            id: 42,
        };
        let h = o.encode();
        assert_eq!(Owner::parse(&h), Some(o));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(Owner::parse(&bad), None);
        let mut bad = h;
        bad[AT_VERSION] ^= 0xff;
        assert_eq!(Owner::parse(&bad), None);
        let mut bad = h;
        bad[AT_NAME_LEN..AT_NAME_LEN + 4].copy_from_slice(&300u32.to_ne_bytes());
        assert_eq!(Owner::parse(&bad), None);
        assert_eq!(Owner::parse(&h[..100]), None);
    }
}
