//! Segment names for tests: unique to the process and the call, removed when dropped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A segment name unique to this process and call, removed from /dev/shm when dropped (whether
/// or not the test passed, and whatever a child left behind).
pub struct TestName(String);

impl TestName {
    /// A fresh name: `shmt-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TestName {
        TestName::under(&format!("shmt-{tag}-{}-", std::process::id()))
    }

    /// `shmt-<tag>-<pid>-<n>-`: a prefix that no other test or call uses, for a test of what
    /// selects segments by prefix. The names [`under`](Self::under) it, and those a test
    /// [`adopt`](Self::adopt)s that start with it, are that test's own.
    pub fn prefix(tag: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("shmt-{tag}-{}-{n}-", std::process::id())
    }

    /// A fresh name that starts with `prefix`: `<prefix><n>`.
    pub fn under(prefix: &str) -> TestName {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        TestName(format!("{prefix}{n}"))
    }

    /// Takes charge of `name`, which the test made unique itself (under a
    /// [`prefix`](Self::prefix), say): removed when dropped like any other.
    pub fn adopt(name: String) -> TestName {
        TestName(name)
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

    /// Makes an object of this name in /dev/shm by hand, holding `bytes`, with exactly `mode`:
    /// what a careless or hostile program, or another library, may leave there.
    pub fn plant(&self, bytes: &[u8], mode: u32) {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(self.path())
            .unwrap_or_else(|e| panic!("plant {}: {e}", self.0));
        f.write_all(bytes).unwrap();
        fs::set_permissions(self.path(), fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `bytes` at `offset` of the payload of the segment of this name, through
    /// /dev/shm, as another process (or language) that ignores the rules would. The payload's
    /// offset is the header's `payload_offset`, at byte 32 (docs/FORMAT.md).
    pub fn plant_in_payload(&self, offset: usize, bytes: &[u8]) {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.0));
        let mut word = [0u8; 8];
        f.read_exact_at(&mut word, 32).unwrap();
        let payload = u64::from_le_bytes(word);
        f.write_all_at(bytes, payload + offset as u64).unwrap();
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
