//! Who holds a segment's lock: the owner thread its lock word names, and that thread's process.

use std::fmt;
use std::fs;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::header::Header;
use crate::process::ProcessId;

/// The kernel's robust-futex ABI (linux/futex.h), which glibc's robust mutex follows: the futex
/// word, the mutex's first 4 bytes, holds the owner's thread id in its low 30 bits, and this bit
/// once the owner is known to have died holding it.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// The thread that holds a segment's lock, as the lock word names it: what
/// [`RawSegment::lock_holder`](super::RawSegment::lock_holder) returns, and what
/// [`FieldError::LockTimeout`](super::FieldError::LockTimeout) reports.
///
/// Displayed as `pid 4242 (alive)`, or `pid 4242, thread 4250 (alive)` when the lock was taken by
/// a thread other than the process's main thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockHolder {
    /// The process the holding thread belongs to (its thread group id, from
    /// `/proc/<tid>/status`); the thread id itself when `/proc` does not say.
    pub pid: u32,
    /// The holding thread's id, as the lock word has it: equal to `pid` for the main thread.
    pub tid: u32,
    /// Whether the holder still runs: its thread exists and is not a zombie, and the lock word
    /// does not say it died. The lock of a dead holder goes to the next locker, poisoned.
    ///
    /// A holder in another pid namespace (another container sharing `/dev/shm`) is named by a
    /// thread id that means nothing here, and looks dead.
    pub alive: bool,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if self.tid != self.pid {
            write!(f, ", thread {}", self.tid)?;
        }
        f.write_str(if self.alive { " (alive)" } else { " (dead)" })
    }
}

/// The holder the lock word of `h` names now, or `None` if it names none (the lock is free, or
/// its holder died and the kernel cleared the thread id).
pub(crate) fn holder(h: &Header) -> Option<LockHolder> {
    // SAFETY: the lock word is 64 bytes aligned to 64 inside the header, so its first 4 bytes
    // are a valid, aligned `AtomicU32` for as long as `h` lives; any bits are a valid value, and
    // glibc and the kernel access that word only atomically, so this load races with nothing.
    let word = unsafe { &*(h.lock.0.get() as *const AtomicU32) };
    // Relaxed and a fence, not an acquire load: the same ordering, and allowed on a read-only
    // mapping (see `read_only.rs`).
    let w = word.load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    let tid = w & FUTEX_TID_MASK;
    if tid == 0 {
        return None;
    }
    // The thread's own liveness: a process whose main thread has exited while others run is
    // still alive, and so is a holder on one of its other threads.
    let alive = w & FUTEX_OWNER_DIED == 0 && ProcessId { pid: tid, start: 0 }.is_alive();
    let pid = thread_group(tid).unwrap_or(tid);
    Some(LockHolder { pid, tid, alive })
}

/// The thread group id (the process id) of thread `tid`, from `/proc/<tid>/status`: every thread
/// has an entry there, listed in `/proc` or not.
fn thread_group(tid: u32) -> Option<u32> {
    let text = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_maps_to_its_process() {
        let me = std::process::id();
        // SAFETY: gettid takes no arguments and cannot fail.
        let this_thread = unsafe { libc::gettid() } as u32;
        assert_eq!(thread_group(this_thread), Some(me));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: as above.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert_ne!(tid, me);
        assert_eq!(thread_group(tid), Some(me));
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn display_names_the_process_and_a_thread_other_than_its_main_one() {
        let h = LockHolder {
            pid: 10,
            tid: 10,
            alive: true,
        };
        assert_eq!(h.to_string(), "pid 10 (alive)");
        let h = LockHolder {
            pid: 10,
            tid: 12,
            alive: false,
        };
        assert_eq!(h.to_string(), "pid 10, thread 12 (dead)");
    }
}
