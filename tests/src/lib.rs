//! The support crate of the workspace's tests: this package's integration tests, their child
//! processes and `shm-cli`'s tests use it.
//!
//! - [`TestName`]: a segment name unique to the process and the call, removed from /dev/shm
//!   when dropped, whether the test passed or not;
//! - [`Child`]: a child process, which is the test binary started again to play one of the
//!   [`roles`] (a test file that starts children declares [`child_roles!`]); [`command`] for a
//!   test that starts one in its own way;
//! - [`types`]: the types both sides of a segment share;
//! - [`TestName::plant`] for objects made by hand, [`requires_root`], [`error_kind`].
//!
//! The chaos harness ([`chaos`]) lives here too: its test and its example both run it.

pub mod chaos;
mod child;
mod name;
pub mod roles;
pub mod types;

#[doc(hidden)]
pub use child::play_role_if_asked;
pub use child::{command, run_as, Child, NOBODY};
pub use name::TestName;

/// The variant of an error, by name, as child processes report it (and as the Python module
/// names its exceptions).
pub fn error_kind(e: &shm_core::Error) -> &'static str {
    use shm_core::Error as E;
    match e {
        E::InvalidName { .. } => "InvalidName",
        E::AlreadyExists { .. } => "AlreadyExists",
        E::NotFound { .. } => "NotFound",
        E::PermissionDenied { .. } => "PermissionDenied",
        E::LayoutMismatch { .. } => "LayoutMismatch",
        E::Corrupt { .. } => "Corrupt",
        E::NoSpace { .. } => "NoSpace",
        E::CreatorDied { .. } => "CreatorDied",
        E::Timeout { .. } => "Timeout",
        E::Io { .. } => "Io",
        _ => "Other",
    }
}

/// Whether this process runs as root (some tests need to chown).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a test may do `what` needs root for (chown a segment to another user, run a child as
/// one): true as root. Otherwise the test fails and says why, unless `SHM_SKIP_ROOT_TESTS` is
/// set to skip that part on purpose (then false, and a line on stderr says what was not run).
pub fn requires_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("SHM_SKIP_ROOT_TESTS").is_some(),
        "this test {what} and needs root; set SHM_SKIP_ROOT_TESTS=1 to skip that part on purpose"
    );
    eprintln!(
        "not run: the part of this test that {what} (it needs root; SHM_SKIP_ROOT_TESTS is set)"
    );
    false
}
