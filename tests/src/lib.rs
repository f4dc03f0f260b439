//! The support crate of the workspace's tests: this package's integration tests and their child
//! processes use it.
//!
//! - [`TestName`]: a segment name unique to the process and the call, removed from /dev/shm
//!   when dropped, whether the test passed or not;
//! - child processes: [`spawn_child`], [`run_child`], [`wait_for_line`], [`kill9`];
//! - [`types`]: the types both sides of a segment share;
//! - [`error_kind`], [`is_root`].
//!
//! The chaos harness ([`chaos`]) lives here too: its test and its example both run it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub mod chaos;
mod name;
pub mod types;

pub use name::TestName;

/// The child binary `shm-child`, built by cargo beside the tests.
pub fn child_bin() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_shm-child") {
        return PathBuf::from(p);
    }
    let mut p = std::env::current_exe().expect("current_exe");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("shm-child")
}

/// `shm-child ARGS...`, its stdout piped so the test can wait for what it says.
pub fn spawn_child(args: &[&str]) -> Child {
    Command::new(child_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shm-child")
}

/// Runs `shm-child ARGS...` to the end; panics with its output if it failed.
pub fn run_child(args: &[&str]) -> String {
    let out = Command::new(child_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("start shm-child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "shm-child {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Reads lines from the child's stdout until one equals `line`; panics if it ends first.
pub fn wait_for_line(child: &mut Child, line: &str) {
    let stdout = child.stdout.as_mut().expect("child stdout is piped");
    let mut reader = BufReader::new(stdout);
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).expect("read child stdout");
        assert!(n > 0, "child ended before saying {line:?}");
        if buf.trim_end() == line {
            return;
        }
    }
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill9(child: &mut Child) {
    // SAFETY: sending a signal to a pid this process started and has not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.wait();
}

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
