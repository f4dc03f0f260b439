//! Who holds a lock, as its word names it, and whether that owner still lives.
//!
//! The lock word names its owner thread by two numbers that any process can check without the
//! owner's help: its thread id, and a *tag*, the low 32 bits of the thread's start time (clock
//! ticks since boot, `/proc/<tid>/stat` field 22). A thread id alone is recycled once the thread
//! is gone; with its start time it names one thread for the life of the machine (two threads
//! given the same id within one clock tick are out of reach of the kernel's cyclic allocation).
//!
//! Both numbers mean something only inside one pid namespace (the id) and one time namespace
//! (the start time as `/proc` shows it). The lock area records the creator's namespaces; a
//! process that attaches from other namespaces, or that cannot read `/proc` as its own pid
//! namespace sees it, marks the lock *foreign*, and from then on nobody judges an owner dead:
//! [`judge`] answers [`Liveness::Unknown`], and lockers wait for the owner as for a live one.

use std::cell::Cell;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::header::LockArea;
use crate::process::stat_of;

/// Bits of the lock word that hold the owner's thread id (the kernel's `FUTEX_TID_MASK`).
pub(crate) const TID_MASK: u64 = 0x3fff_ffff;
/// Bit of the lock word set by a waiter before it sleeps: the owner must wake one on unlock.
pub(crate) const WAITERS: u64 = 1 << 31;
/// Bits of the lock word that name the owner: its thread id and its tag.
const IDENTITY: u64 = TID_MASK | (u32::MAX as u64) << 32;

/// The thread id a lock word names (0: none, the lock is free).
pub(crate) fn tid_of(word: u64) -> u32 {
    (word & TID_MASK) as u32
}

/// The tag a lock word carries.
pub(crate) fn tag_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// Whether lock word `word` names the owner `me` (a value from [`me`]), whatever its flag bits.
pub(crate) fn same(word: u64, me: u64) -> bool {
    word & IDENTITY == me
}

thread_local! {
    /// This thread's lock word value, for the lock's fast path; 0 until computed, and left 0 in
    /// a process whose namespaces changed since it first looked (every lock then takes the slow
    /// path, which marks a segment foreign first; see [`diverged`]).
    static FAST: Cell<u64> = const { Cell::new(0) };
    /// This thread's lock word value; 0 until computed.
    static ME: Cell<u64> = const { Cell::new(0) };
    /// Whether `ME`'s tag is this thread's start time as other processes will read it.
    static CHECKABLE: Cell<bool> = const { Cell::new(false) };
    /// The last owner this thread found alive by reading `/proc`, and when.
    static SEEN_ALIVE: Cell<Option<(u64, Instant)>> = const { Cell::new(None) };
}

/// This thread's lock word value if it was computed and may be used without further checks;
/// 0 otherwise (then call [`me`]).
#[inline]
pub(crate) fn cached() -> u64 {
    FAST.with(Cell::get)
}

/// This thread's lock word value: its thread id and tag, the flag bits clear. Never 0.
#[cold]
pub(crate) fn me() -> u64 {
    let known = ME.with(Cell::get);
    if known != 0 {
        return known;
    }
    watch_forks();
    let env = env();
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() } as u32;
    // Read through /proc only when it is this pid namespace's (what `env` checks): then every
    // process that checks this thread reads the same number.
    let start = env
        .and_then(|_| stat_of(tid))
        .map(|(_, start)| start as u32);
    let me = (u64::from(tid) & TID_MASK) | u64::from(start.unwrap_or(0)) << 32;
    if env.is_some() && start.is_none() {
        // /proc would not say now (out of file descriptors, say): a name with a wrong tag
        // would look dead to others. Use it only for locks marked foreign, and look again next
        // time.
        return me;
    }
    ME.with(|m| m.set(me));
    CHECKABLE.with(|c| c.set(env.is_some()));
    if !diverged() {
        FAST.with(|f| f.set(me));
    }
    me
}

/// Whether others can check this thread's name (from [`me`]) against `/proc`: if not, a lock it
/// takes must be marked foreign first, or others would take it for a dead owner.
pub(crate) fn checkable() -> bool {
    CHECKABLE.with(Cell::get)
}

/// What a locker can tell about the owner a lock word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The owner's thread exists and is the one the word names.
    Alive,
    /// The owner's thread is gone: no thread has its id, a zombie has it, or another thread
    /// (started at another time) does.
    Dead,
    /// This process cannot check owners of this lock (see the module's documentation), or
    /// `/proc` would not say: the owner is waited for as if alive.
    Unknown,
}

/// How long a finding that an owner lives is trusted without reading `/proc` again (a thread
/// that is gone is always found at once, by a signal-0 probe).
const ALIVE_FOR: Duration = Duration::from_millis(5);

/// Whether the owner named by lock word `word` (not free) still lives. `area` is the lock area
/// the word was read from, *before* this call, so that a foreign owner's mark is seen.
pub(crate) fn judge(area: &LockArea, word: u64) -> Liveness {
    let tid = tid_of(word);
    if tid == 0 || !can_judge(area) {
        return Liveness::Unknown;
    }
    if !thread_exists(tid) {
        return Liveness::Dead;
    }
    let key = word & IDENTITY;
    if SEEN_ALIVE
        .with(Cell::get)
        .is_some_and(|(w, at)| w == key && at.elapsed() < ALIVE_FOR)
    {
        return Liveness::Alive;
    }
    match stat_of(tid) {
        // A killed process's main thread stays a zombie until its parent reaps it.
        Some((b'Z' | b'X', _)) => Liveness::Dead,
        Some((_, start)) if start as u32 == tag_of(word) => {
            SEEN_ALIVE.with(|s| s.set(Some((key, Instant::now()))));
            Liveness::Alive
        }
        // Another thread got the id.
        Some(_) => Liveness::Dead,
        // Gone meanwhile, or /proc hides it (another user's, with `hidepid`).
        None if !thread_exists(tid) => Liveness::Dead,
        None => Liveness::Unknown,
    }
}

/// Whether thread `tid` exists in this pid namespace (a zombie does): a signal-0 probe.
fn thread_exists(tid: u32) -> bool {
    if tid == 0 || tid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: tkill with signal 0 sends nothing; it only looks the thread id up. It takes no
    // pointers.
    let rc = unsafe { libc::syscall(libc::SYS_tkill, tid as libc::c_long, 0 as libc::c_long) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether this process may judge the owners of the lock in `area`: it knows its namespaces,
/// they are the creator's, and no process from elsewhere has attached. Only relaxed loads and a
/// fence, as a read-only mapping allows.
fn can_judge(area: &LockArea) -> bool {
    let Some(env) = env() else {
        return false;
    };
    let foreign = area.foreign.load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    foreign == 0
        && area.pidns.load(Ordering::Relaxed) == env.pidns
        && area.timens.load(Ordering::Relaxed) == env.timens
}

/// The namespaces a lock word's numbers are relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Env {
    /// Inode number of the pid namespace (`/proc/self/ns/pid`); never 0.
    pub pidns: u32,
    /// Inode number of the time namespace (`/proc/self/ns/time`), 0 on a kernel without them.
    pub timens: u32,
}

const ENV_UNKNOWN: u32 = 0;
const ENV_KNOWN: u32 = 1;
const ENV_UNUSABLE: u32 = 2;

/// This process's [`Env`]: `ENV_STATE` says whether `ENV_PIDNS` and `ENV_TIMENS` hold it.
static ENV_STATE: AtomicU32 = AtomicU32::new(ENV_UNKNOWN);
static ENV_PIDNS: AtomicU32 = AtomicU32::new(0);
static ENV_TIMENS: AtomicU32 = AtomicU32::new(0);
/// `ENV_STATE` of the process before the last fork that reset it (`ENV_UNKNOWN`: none).
static ENV_BEFORE_FORK: AtomicU32 = AtomicU32::new(ENV_UNKNOWN);
/// Set for good when a forked process finds itself in other namespaces than its parent: handles
/// it inherited were attached in the parent's.
static DIVERGED: AtomicBool = AtomicBool::new(false);

/// This process's namespaces, or `None` if it cannot check owners through `/proc` (no `/proc`,
/// or one mounted for another pid namespace, where `/proc/<tid>` would name another thread).
pub(crate) fn env() -> Option<Env> {
    let read = |state| match state {
        ENV_KNOWN => Some(Env {
            pidns: ENV_PIDNS.load(Ordering::Relaxed),
            timens: ENV_TIMENS.load(Ordering::Relaxed),
        }),
        _ => None,
    };
    let state = ENV_STATE.load(Ordering::Acquire);
    if state != ENV_UNKNOWN {
        return read(state);
    }
    watch_forks();
    let now = probe_env();
    let before = ENV_BEFORE_FORK.load(Ordering::Relaxed);
    // After a fork, the statics still hold the parent's values, for this comparison.
    if before != ENV_UNKNOWN && read(before) != now {
        DIVERGED.store(true, Ordering::Relaxed);
    }
    let state = match now {
        Some(env) => {
            ENV_PIDNS.store(env.pidns, Ordering::Relaxed);
            ENV_TIMENS.store(env.timens, Ordering::Relaxed);
            ENV_KNOWN
        }
        None => ENV_UNUSABLE,
    };
    ENV_STATE.store(state, Ordering::Release);
    now
}

/// Whether this process moved to other namespaces since it (or its parent, before a fork) first
/// looked: then a lock it takes through an inherited handle must be marked foreign first.
pub(crate) fn diverged() -> bool {
    env();
    DIVERGED.load(Ordering::Relaxed)
}

fn probe_env() -> Option<Env> {
    // /proc is this pid namespace's only if /proc/self names this process.
    let me = std::fs::read_link("/proc/self").ok()?;
    if me.as_os_str().to_str()? != std::process::id().to_string() {
        return None;
    }
    let inode = |ns: &str| std::fs::metadata(format!("/proc/self/ns/{ns}")).map(|m| m.ino());
    let pidns = u32::try_from(inode("pid").ok()?).ok().filter(|&i| i != 0)?;
    let timens = match inode("time") {
        Ok(i) => u32::try_from(i).ok()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(_) => return None,
    };
    Some(Env { pidns, timens })
}

/// Registers, once, what a forked child must forget: its thread is another thread, and its
/// namespaces may be others.
fn watch_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `after_fork` is an `extern "C" fn()` that lives for the whole program;
        // pthread_atfork copies the pointers and takes no other argument. If registration
        // fails (ENOMEM), a forked child would keep its parent's identity: abort rather than
        // risk two processes naming themselves alike.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// Runs in the child of `fork`, on its only thread, before `fork` returns there: forgets the
/// parent thread's identity (the child's thread has another id and start time), the locks it
/// held (the child holds none: the words name the parent's thread) and the parent's
/// namespaces. Touches only thread-locals without destructors and atomics, which is what may be
/// done here.
extern "C" fn after_fork() {
    crate::held::forget_all();
    FAST.with(|f| f.set(0));
    ME.with(|m| m.set(0));
    CHECKABLE.with(|c| c.set(false));
    SEEN_ALIVE.with(|s| s.set(None));
    let state = ENV_STATE.swap(ENV_UNKNOWN, Ordering::Relaxed);
    if state != ENV_UNKNOWN {
        ENV_BEFORE_FORK.store(state, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn area() -> LockArea {
        let env = env().expect("tests run with this pid namespace's /proc");
        LockArea {
            word: AtomicU64::new(0),
            pidns: AtomicU32::new(env.pidns),
            timens: AtomicU32::new(env.timens),
            foreign: AtomicU32::new(0),
            _reserved: Default::default(),
        }
    }

    #[test]
    fn this_thread_is_alive_and_names_itself() {
        let me = me();
        // SAFETY: gettid takes no arguments and cannot fail.
        assert_eq!(tid_of(me), unsafe { libc::gettid() } as u32);
        assert!(same(me | WAITERS, me));
        assert_eq!(judge(&area(), me), Liveness::Alive);
    }

    #[test]
    fn an_exited_thread_and_a_reused_id_are_dead() {
        let other = std::thread::spawn(me).join().unwrap();
        assert_ne!(tid_of(other), tid_of(me()));
        // `join` returns once the thread has run to its end; the kernel may still list the
        // exiting task for a moment, and then it is rightly judged alive.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while judge(&area(), other) != Liveness::Dead && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(judge(&area(), other), Liveness::Dead);
        // This thread's id with another start time: the id was recycled.
        let reused = me() ^ 1 << 32;
        assert_eq!(judge(&area(), reused), Liveness::Dead);
        // An id no thread can have.
        assert_eq!(judge(&area(), TID_MASK), Liveness::Dead);
    }

    #[test]
    fn a_foreign_lock_is_never_judged() {
        let other = std::thread::spawn(me).join().unwrap();
        let a = area();
        a.foreign.store(1, Ordering::Relaxed);
        assert_eq!(judge(&a, other), Liveness::Unknown);
        let a = area();
        a.pidns.fetch_add(1, Ordering::Relaxed);
        assert_eq!(judge(&a, other), Liveness::Unknown);
        let a = area();
        a.timens.fetch_add(1, Ordering::Relaxed);
        assert_eq!(judge(&a, other), Liveness::Unknown);
    }
}
