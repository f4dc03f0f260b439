//! Helpers shared by the cross-process tests and their child binary: unique segment names that
//! are removed even when a test fails, and a way to start child processes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A segment name unique to this process and call, removed from /dev/shm when dropped (whether
/// or not the test passed, and whatever a child left behind).
pub struct TestName(String);

impl TestName {
    /// A fresh name: `shmt-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TestName {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        TestName(format!("shmt-{tag}-{}-{n}", std::process::id()))
    }

    /// The name as given to `create`/`open`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object's path in /dev/shm.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.0)
    }

    /// Whether an object of this name exists in /dev/shm (a symlink counts).
    pub fn exists(&self) -> bool {
        self.path().symlink_metadata().is_ok()
    }
}

impl std::ops::Deref for TestName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for TestName {
    /// Removes the object, and any side journal of it (`<name>.journal-<id>`).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
        let side = format!("{}.journal-", self.0);
        for entry in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&side))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

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

/// Types the tests and the child binary share: both sides of a segment must agree.
pub mod types {
    use shm_core::SharedLayout;

    /// Kept consistent by `update`: `a + b == 0` and `c == a`.
    #[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
    #[repr(C)]
    pub struct Balance {
        pub a: i64,
        pub b: i64,
        pub c: i64,
        pub updates: u64,
        pub writers_done: u32,
    }

    impl Balance {
        /// Whether the invariants `update` keeps hold.
        pub fn consistent(&self) -> bool {
            self.a + self.b == 0 && self.c == self.a
        }
    }

    /// A nested struct.
    #[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
    #[repr(C)]
    pub struct Inner {
        pub x: u16,
        pub y: [i32; 3],
    }

    /// Every primitive type, a 2-D array and a nested struct.
    #[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
    #[repr(C)]
    pub struct Everything {
        pub i8_: i8,
        pub u8_: u8,
        pub i16_: i16,
        pub u16_: u16,
        pub i32_: i32,
        pub u32_: u32,
        pub i64_: i64,
        pub u64_: u64,
        pub f32_: f32,
        pub f64_: f64,
        pub flag: bool,
        pub letter: char,
        pub grid: [[u32; 3]; 2],
        pub inner: Inner,
    }

    /// One round of the create race: a token the creator writes, and who joined.
    #[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
    #[repr(C)]
    pub struct Round {
        pub token: u64,
        pub joined: u64,
    }

    /// A per-worker slot padded to a cache line.
    #[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
    #[repr(C, align(64))]
    pub struct Slot {
        pub count: u64,
        pub sum: f64,
        pub last: u32,
    }
}

pub mod chaos;
