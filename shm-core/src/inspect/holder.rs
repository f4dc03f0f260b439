//! Who holds a segment's lock: the owner thread its lock word names, and that thread's process.

use std::fmt;
use std::fs;
use std::sync::atomic::Ordering;

use crate::header::Header;
use crate::owner::{self, Liveness};

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
    /// The holding thread's id, as the lock word has it: equal to `pid` for the main thread. It
    /// is an id in the holder's pid namespace.
    pub tid: u32,
    /// Whether the holder still runs: its thread exists, is not a zombie, and started when the
    /// lock word says (a recycled thread id is not the holder). The lock of a dead holder goes
    /// to the next locker, poisoned. True when this could not be [`checked`](Self::checked): such
    /// a holder is waited for as a live one.
    pub alive: bool,
    /// Whether [`alive`](Self::alive) was checked. Not when the segment is shared with processes
    /// in another pid or time namespace (containers sharing `/dev/shm`), where a thread id or
    /// start time means something else, or when `/proc` does not show the holder; then nobody
    /// takes the holder for dead, and `tid` may be an id of another namespace.
    pub checked: bool,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if self.tid != self.pid {
            write!(f, ", thread {}", self.tid)?;
        }
        f.write_str(match (self.checked, self.alive) {
            (false, _) => " (cannot tell whether it lives)",
            (true, true) => " (alive)",
            (true, false) => " (dead)",
        })
    }
}

/// The holder the lock word of `h` names now, or `None` if it names none (the lock is free).
pub(crate) fn holder(h: &Header) -> Option<LockHolder> {
    // Relaxed and a fence, not an acquire load: the same ordering, and allowed on a read-only
    // mapping (see `read_only.rs`).
    let w = h.lock.word.load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    let tid = owner::tid_of(w);
    if tid == 0 {
        return None;
    }
    let liveness = owner::judge(&h.lock, w);
    let checked = liveness != Liveness::Unknown;
    // Another namespace's thread id names nothing (or something else) in this /proc.
    let pid = if checked {
        thread_group(tid).unwrap_or(tid)
    } else {
        tid
    };
    Some(LockHolder {
        pid,
        tid,
        alive: liveness != Liveness::Dead,
        checked,
    })
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
            checked: true,
        };
        assert_eq!(h.to_string(), "pid 10 (alive)");
        let h = LockHolder {
            pid: 10,
            tid: 12,
            alive: false,
            checked: true,
        };
        assert_eq!(h.to_string(), "pid 10, thread 12 (dead)");
        let h = LockHolder {
            pid: 7,
            tid: 7,
            alive: true,
            checked: false,
        };
        assert_eq!(h.to_string(), "pid 7 (cannot tell whether it lives)");
    }
}
