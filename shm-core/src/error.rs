//! The one error type of the crate.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a segment could not be created, opened or removed.
///
/// Every message names the segment. Match on the variant to decide what to do; the fields say
/// what was found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name cannot name a segment: empty, too long, starting with `/` (names are given
    /// without it: `web-stats`, not `/web-stats`), or containing `/` or NUL.
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` found a segment (or another object) of that name.
    AlreadyExists {
        /// The segment's name.
        name: String,
    },
    /// No segment of that name exists.
    NotFound {
        /// The segment's name.
        name: String,
    },
    /// The segment belongs to someone else, is open to more users than asked for, or is not a
    /// regular shared-memory object (a symlink, say): opening it could leak data or let another
    /// user in. For another user's segment the reason names its owner uid, group and mode, and
    /// each thing that keeps this user out: not in its group, a mode that gives its group no
    /// access, or group access not asked for by this program (`Options::mode(0o660)`).
    PermissionDenied {
        /// The segment's name.
        name: String,
        /// What was found.
        reason: String,
    },
    /// The segment holds another type than this program expects.
    LayoutMismatch {
        /// The segment's name.
        name: String,
        /// The first difference, e.g. "field `load`: segment has f32 at offset 16, this program
        /// expects f64 at offset 16".
        detail: String,
    },
    /// The object under that name is not a valid segment: truncated, garbage, or an
    /// inconsistent header.
    Corrupt {
        /// The segment's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// There is not enough space in the shared-memory file system (`/dev/shm`) for the segment.
    NoSpace {
        /// The segment's name.
        name: String,
        /// How many bytes the segment needs.
        bytes: u64,
    },
    /// The segment's creator died before it was ready; nobody will finish it. Remove it with
    /// [`remove`](crate::remove) and create it again.
    CreatorDied {
        /// The segment's name.
        name: String,
        /// The creator's process id.
        pid: u32,
    },
    /// The segment did not become ready within the wait time.
    Timeout {
        /// The segment's name.
        name: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// A system call failed for another reason.
    Io {
        /// The segment's name.
        name: String,
        /// The operation that failed, e.g. `"shm_open"`.
        op: &'static str,
        /// The error from the system.
        source: io::Error,
    },
}

/// Why an object that is not a plain shared-memory file is refused.
pub(crate) const NOT_REGULAR: &str =
    "the object under this name is not a regular shared-memory object";

impl Error {
    /// The name of the segment this error is about.
    pub fn name(&self) -> &str {
        match self {
            Error::InvalidName { name, .. }
            | Error::AlreadyExists { name }
            | Error::NotFound { name }
            | Error::PermissionDenied { name, .. }
            | Error::LayoutMismatch { name, .. }
            | Error::Corrupt { name, .. }
            | Error::NoSpace { name, .. }
            | Error::CreatorDied { name, .. }
            | Error::Timeout { name, .. }
            | Error::Io { name, .. } => name,
        }
    }

    /// Maps an OS error from an operation on segment `name` to the variant that says what it
    /// means.
    pub(crate) fn from_os(name: &str, op: &'static str, source: io::Error) -> Error {
        let name = name.to_owned();
        match source.raw_os_error() {
            Some(libc::EEXIST) => Error::AlreadyExists { name },
            Some(libc::ENOENT) => Error::NotFound { name },
            Some(libc::EACCES | libc::EPERM) => Error::PermissionDenied {
                name,
                reason: format!("{op} was refused: {source}"),
            },
            // glibc's shm_open refuses to follow a symlink planted under the name.
            Some(libc::ELOOP) => Error::PermissionDenied {
                name,
                reason: "the name is a symbolic link, not a shared-memory object".to_owned(),
            },
            // glibc's shm_open gives EINVAL for a directory under a valid name.
            Some(libc::EISDIR | libc::ENXIO | libc::ENODEV) => Error::PermissionDenied {
                name,
                reason: NOT_REGULAR.to_owned(),
            },
            Some(libc::EINVAL) if op == "shm_open" => Error::PermissionDenied {
                name,
                reason: NOT_REGULAR.to_owned(),
            },
            Some(libc::ENAMETOOLONG) => Error::InvalidName {
                name,
                reason: "longer than the system allows",
            },
            Some(libc::ENOSPC) => Error::NoSpace { name, bytes: 0 },
            _ => Error::Io { name, op, source },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(f, "invalid segment name {name:?}: {reason}")
            }
            Error::AlreadyExists { name } => write!(f, "segment `{name}` already exists"),
            Error::NotFound { name } => write!(f, "segment `{name}` does not exist"),
            Error::PermissionDenied { name, reason } => {
                write!(f, "segment `{name}`: permission denied: {reason}")
            }
            Error::LayoutMismatch { name, detail } => {
                write!(f, "segment `{name}` has another layout: {detail}")
            }
            Error::Corrupt { name, reason } => {
                write!(f, "segment `{name}` is not a valid segment: {reason}")
            }
            Error::NoSpace { name, bytes } if *bytes > 0 => write!(
                f,
                "no space for segment `{name}`: it needs {bytes} bytes of shared memory (see `df /dev/shm`)"
            ),
            Error::NoSpace { name, .. } => {
                write!(f, "no space for segment `{name}` (see `df /dev/shm`)")
            }
            Error::CreatorDied { name, pid } => write!(
                f,
                "segment `{name}` was never made ready: its creator (pid {pid}) died while creating it; remove it and create it again"
            ),
            Error::Timeout { name, waited } => write!(
                f,
                "segment `{name}` did not become ready within {waited:?} (its creator may have died before writing the header)"
            ),
            Error::Io { name, op, source } => write!(f, "segment `{name}`: {op} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_names_the_segment() {
        let name = "seg-42";
        let all = [
            Error::InvalidName {
                name: name.into(),
                reason: "contains '/'",
            },
            Error::AlreadyExists { name: name.into() },
            Error::NotFound { name: name.into() },
            Error::PermissionDenied {
                name: name.into(),
                reason: "owned by uid 7".into(),
            },
            Error::LayoutMismatch {
                name: name.into(),
                detail: "x".into(),
            },
            Error::Corrupt {
                name: name.into(),
                reason: "bad magic".into(),
            },
            Error::NoSpace {
                name: name.into(),
                bytes: 10,
            },
            Error::NoSpace {
                name: name.into(),
                bytes: 0,
            },
            Error::CreatorDied {
                name: name.into(),
                pid: 1,
            },
            Error::Timeout {
                name: name.into(),
                waited: Duration::from_secs(1),
            },
            Error::Io {
                name: name.into(),
                op: "mmap",
                source: io::Error::from_raw_os_error(libc::EIO),
            },
        ];
        for e in all {
            assert!(e.to_string().contains(name), "{e}");
            assert_eq!(e.name(), name);
        }
    }

    #[test]
    fn os_errors_map_to_their_meaning() {
        let e = |code| Error::from_os("s", "shm_open", io::Error::from_raw_os_error(code));
        assert!(matches!(e(libc::EEXIST), Error::AlreadyExists { .. }));
        assert!(matches!(e(libc::ENOENT), Error::NotFound { .. }));
        assert!(matches!(e(libc::EACCES), Error::PermissionDenied { .. }));
        assert!(matches!(e(libc::ELOOP), Error::PermissionDenied { .. }));
        assert!(matches!(e(libc::ENOSPC), Error::NoSpace { .. }));
        assert!(matches!(e(libc::EIO), Error::Io { op: "shm_open", .. }));
    }

    #[test]
    fn error_is_send_sync_and_std_error() {
        fn check<E: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
    }
}
