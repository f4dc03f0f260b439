//! Segment names for tests: unique to the process and the call, removed when dropped.

use std::path::PathBuf;
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
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}
