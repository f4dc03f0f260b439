//! Who created a segment, and whether that process still lives.

use std::fs;

/// A process, identified so that a recycled pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22); 0 if unknown.
    pub start: u64,
}

/// The state letter and start time of `pid`, from `/proc/<pid>/stat` (given a thread id, that
/// thread's own: every thread has an entry there, listed in `/proc` or not).
pub(crate) fn stat_of(pid: u32) -> Option<(u8, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain ") ": parse from the
    // last one.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // After the state (field 3), the start time is field 22: 18 fields further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        let start = stat_of(pid).map_or(0, |(_, start)| start);
        ProcessId { pid, start }
    }

    /// Whether the process still runs: it exists, is not a zombie, and started when recorded.
    pub fn is_alive(self) -> bool {
        if self.pid == 0 || self.pid > i32::MAX as u32 {
            return false;
        }
        // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists and
        // may be signalled. It takes no pointers.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, 0) };
        if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return false;
        }
        match stat_of(self.pid) {
            // A killed process that its parent has not reaped yet is a zombie: dead to us.
            Some((b'Z' | b'X', _)) => false,
            Some((_, start)) => self.start == 0 || start == self.start,
            // No /proc entry (another pid namespace, or /proc not mounted): trust kill.
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = ProcessId::current();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert!(!ProcessId {
            start: me.start + 1,
            ..me
        }
        .is_alive());
        assert!(!ProcessId { pid: 0, start: 0 }.is_alive());
    }

    #[test]
    fn a_zombie_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessId {
            pid: child.id(),
            start: 0,
        };
        // Not reaped yet: once it exits it is a zombie until `wait`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while id.is_alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!id.is_alive());
        child.wait().unwrap();
    }
}
