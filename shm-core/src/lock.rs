//! The segment's lock: a robust, process-shared pthread mutex in the header.
//!
//! Robust: when a holder dies, the next `pthread_mutex_lock` returns `EOWNERDEAD` instead of
//! blocking forever; we then call `pthread_mutex_consistent` so that later lockers proceed
//! normally. Error-checking: a thread that locks twice gets `EDEADLK` instead of deadlocking.
//!
//! Poisoning is sticky: the header's `poison` word, once set, stays set until `clear_poison`
//! stores 0. It is set when a holder died with no write in progress (nothing can be rolled back,
//! so what it did under the lock may be half done), when a holder panicked, and when the lock word
//! had to be re-initialised. A writer that died inside its write window is not a poisoning: the
//! next locker or reader rolls its update back from the journal, which repairs it.

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::header::{Header, LockWord};
use crate::process::ProcessId;
use crate::{Error, Result};

/// Why a lock was not acquired.
#[derive(Debug)]
pub(crate) enum Failed {
    /// Someone else holds it (try or timed lock).
    Busy,
    /// This thread holds it already.
    Deadlock,
    /// The lock word is unusable and could not be repaired now (another process holds the
    /// repair turn), or pthread failed in a way nothing can mend.
    Unusable,
}

fn mutex(word: &LockWord) -> *mut libc::pthread_mutex_t {
    word.0.get() as *mut libc::pthread_mutex_t
}

/// Initialises a mutex at `m` with our attributes.
///
/// # Safety
/// `m` must point to writable memory for a `pthread_mutex_t` that no thread is using.
unsafe fn init_at(m: *mut libc::pthread_mutex_t) -> i32 {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    let attr_ptr = attr.as_mut_ptr();
    // SAFETY: `attr_ptr` is writable memory for a mutexattr; after init succeeds the setters and
    // destroy only touch it; `m` is valid and unused by the caller's contract.
    unsafe {
        let mut rc = libc::pthread_mutexattr_init(attr_ptr);
        if rc != 0 {
            return rc;
        }
        rc = libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED);
        if rc == 0 {
            rc = libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST);
        }
        if rc == 0 {
            rc = libc::pthread_mutexattr_settype(attr_ptr, libc::PTHREAD_MUTEX_ERRORCHECK);
        }
        if rc == 0 {
            rc = libc::pthread_mutex_init(m, attr_ptr);
        }
        libc::pthread_mutexattr_destroy(attr_ptr);
        rc
    }
}

/// Initialises the mutex in a new segment's header.
pub(crate) fn init(name: &str, word: &LockWord) -> Result<()> {
    // SAFETY: the word is 64 bytes aligned to 64, room for a pthread_mutex_t (asserted in
    // header.rs), in a segment this process is creating and nobody uses before it is ready.
    let rc = unsafe { init_at(mutex(word)) };
    if rc != 0 {
        return Err(Error::Io {
            name: name.to_owned(),
            op: "pthread_mutex_init",
            source: io::Error::from_raw_os_error(rc),
        });
    }
    Ok(())
}

/// Byte range of glibc's `__kind` in a `pthread_mutex_t` (after `__lock`, `__count`,
/// `__owner`, `__nusers`), on every 64-bit glibc target.
const KIND: std::ops::Range<usize> = 16..20;

/// Whether the lock word of an opened segment carries the kind our `init` gives (robust,
/// process-shared, error-checking): a garbage word would make pthread misbehave.
pub(crate) fn looks_initialised(word: &LockWord) -> bool {
    let mut template = MaybeUninit::<libc::pthread_mutex_t>::zeroed();
    // SAFETY: `template` is local, writable and unused by anyone else.
    if unsafe { init_at(template.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: the template is local, was zeroed and then initialised, and is at least 24 bytes:
    // bytes 16..20 are initialised and 4-aligned (the mutex is 8-aligned).
    let want = unsafe {
        (template.as_ptr() as *const u32)
            .byte_add(KIND.start)
            .read()
    };
    // SAFETY: bytes 16..20 of the 64-byte, 64-aligned lock word are inside it and 4-aligned; any
    // bits are a valid `AtomicU32`; glibc reads `__kind` atomically too, and the word lives as
    // long as `word`.
    let kind = unsafe { &*((word.0.get() as *const u8).add(KIND.start) as *const AtomicU32) };
    kind.load(Ordering::Relaxed) == want
}

fn monotonic_deadline(timeout: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let at = Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
    .saturating_add(timeout);
    libc::timespec {
        tv_sec: at.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: at.subsec_nanos() as libc::c_long,
    }
}

extern "C" {
    // glibc 2.30 and later; not (yet) in the libc crate. Like `pthread_mutex_timedlock`, but on
    // the clock given, so that setting the wall clock neither shortens nor stretches a wait.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// How long to wait: forever, not at all, or until a deadline.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Forever,
    Try,
    Until(Instant),
}

/// Locks the segment's mutex. A holder found dead with no write in progress poisons the lock
/// (sticky); whether the lock is poisoned is for the caller to read with [`poisoned`], after it
/// has rolled back a dead writer's update if there was one.
pub(crate) fn lock(h: &Header, wait: Wait) -> std::result::Result<(), Failed> {
    let mut checked_owner = false;
    // The uncontended path is one trylock: no clock reads.
    let mut first = true;
    loop {
        let m = mutex(&h.lock);
        // Block in slices, so that an owner that vanished without the kernel noticing (a
        // thread id written by a peer) is found out.
        let until = match wait {
            _ if first => None,
            Wait::Forever => Some(Instant::now() + OWNER_CHECK),
            Wait::Try => None,
            Wait::Until(deadline) => Some(deadline.min(Instant::now() + OWNER_CHECK)),
        };
        first = false;
        // SAFETY: `m` points to the header's lock word, initialised by the segment's creator
        // (and its kind checked at open); pthread accesses it atomically, so concurrent use by
        // other processes is what it is made for.
        let rc = unsafe {
            match until {
                None => libc::pthread_mutex_trylock(m),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    let abs = monotonic_deadline(left);
                    pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &abs)
                }
            }
        };
        match rc {
            0 => return Ok(()),
            libc::EOWNERDEAD => {
                took_from_dead_owner(h, m);
                return Ok(());
            }
            libc::EBUSY | libc::ETIMEDOUT => {
                if let Wait::Try = wait {
                    // Is the owner still there? If a peer planted a dead one, try once more.
                    if checked_owner || !mark_owner_dead_if_gone(h) {
                        return Err(Failed::Busy);
                    }
                    checked_owner = true;
                } else if rc == libc::ETIMEDOUT {
                    if let Wait::Until(deadline) = wait {
                        if Instant::now() >= deadline {
                            return Err(Failed::Busy);
                        }
                    }
                    mark_owner_dead_if_gone(h);
                }
            }
            libc::EDEADLK => return Err(Failed::Deadlock),
            libc::EINVAL | libc::ENOTRECOVERABLE => {
                if !repair(h) {
                    return Err(Failed::Unusable);
                }
                // Repaired, by us or by another process: try again.
            }
            _ => return Err(Failed::Unusable),
        }
    }
}

/// After `EOWNERDEAD` (the mutex is held by this thread, taken from a dead owner): makes the mutex
/// consistent, so that later lockers proceed normally, and poisons the lock unless the dead owner
/// was inside a write window. With `seq` odd the journal holds what is needed to roll its update
/// back, which the caller does next (`seqlock::recover`): that repairs it. With `seq` even the
/// owner died holding `lock()`'s guard, or inside `update`'s closure (which runs before the write
/// window), and whatever it changed under the lock cannot be undone. `seq` cannot change
/// meanwhile: every writer of it holds the lock.
fn took_from_dead_owner(h: &Header, m: *mut libc::pthread_mutex_t) {
    // SAFETY: `m` is the header's mutex and this thread holds it (EOWNERDEAD means acquired);
    // marking it consistent is what lets later lockers succeed.
    unsafe { libc::pthread_mutex_consistent(m) };
    if h.seq.load(Ordering::Acquire) & 1 == 0 {
        poison(h);
    }
}

/// How long a blocked locker waits before checking that the lock's owner still exists.
const OWNER_CHECK: Duration = Duration::from_millis(100);

/// The kernel's robust-futex ABI (linux/futex.h): the lock word holds the owner's thread id,
/// and this bit when the owner died holding it.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// The futex word of the mutex: glibc's `__lock`, its first field.
fn futex_word(h: &Header) -> &std::sync::atomic::AtomicU32 {
    // SAFETY: the lock word is 64 bytes aligned to 64 inside the header, so its first 4 bytes
    // are a valid, aligned `AtomicU32` for as long as the header lives; glibc and the kernel
    // access that word only atomically.
    unsafe { &*(h.lock.0.get() as *const std::sync::atomic::AtomicU32) }
}

/// If the lock word names an owner thread that does not exist — which the kernel would have
/// marked itself had that thread died holding it, so a peer wrote it — marks the owner dead the
/// way the kernel does, so the next locker gets `EOWNERDEAD`. Returns whether it did.
fn mark_owner_dead_if_gone(h: &Header) -> bool {
    let word = futex_word(h);
    let w = word.load(Ordering::Acquire);
    let tid = w & FUTEX_TID_MASK;
    if tid == 0 || w & FUTEX_OWNER_DIED != 0 || thread_exists(tid) {
        return false;
    }
    word.compare_exchange(w, w | FUTEX_OWNER_DIED, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Marks the owner dead although the word names this very thread: used when this thread is
/// known not to hold the lock (a peer wrote our thread id into it).
pub(crate) fn disown(h: &Header) {
    let word = futex_word(h);
    let w = word.load(Ordering::Acquire);
    let _ = word.compare_exchange(w, w | FUTEX_OWNER_DIED, Ordering::AcqRel, Ordering::Relaxed);
}

fn thread_exists(tid: u32) -> bool {
    if tid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill accepts any thread id and only checks it exists.
    let rc = unsafe { libc::kill(tid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Re-initialises a lock word that pthread can no longer use (scribbled over by a peer, or left
/// unrecoverable by a foreign implementation that unlocked without `pthread_mutex_consistent`).
///
/// Repairers take turns through the header's `repair` word. Each checks, while it has the turn,
/// that the mutex is still unusable before re-initialising it: an unusable mutex has no holder, so
/// no holder can be wiped out. The next locker is told the data may be inconsistent.
fn repair(h: &Header) -> bool {
    let me = std::process::id();
    if let Err(other) = h
        .repair
        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
    {
        if !(ProcessId {
            pid: other,
            start: 0,
        })
        .is_alive()
        {
            // A repairer died mid-repair: free the turn for the next try.
            let _ = h
                .repair
                .compare_exchange(other, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
        return false;
    }
    let m = mutex(&h.lock);
    // SAFETY: a trylock on the header's lock word, as in `lock`.
    let rc = unsafe { libc::pthread_mutex_trylock(m) };
    let usable = match rc {
        libc::EINVAL | libc::ENOTRECOVERABLE => {
            // SAFETY: pthread reports the mutex unusable, so nobody holds it, and repairers take
            // turns: nobody else re-initialises it now.
            let repaired = unsafe { init_at(m) } == 0;
            if repaired {
                poison(h);
            }
            repaired
        }
        0 | libc::EOWNERDEAD => {
            // Usable again (someone repaired it first): release what we just took. A dead
            // writer's odd `seq` is left for the next locker, which rolls it back.
            if rc == libc::EOWNERDEAD {
                took_from_dead_owner(h, m);
            }
            // SAFETY: we hold it, on this thread.
            unsafe { libc::pthread_mutex_unlock(m) };
            true
        }
        // Busy: it works, someone holds it.
        _ => true,
    };
    h.repair.store(0, Ordering::Release);
    usable
}

/// Unlocks the mutex, held by this thread.
pub(crate) fn unlock(h: &Header) {
    // SAFETY: callers hold the lock on this thread (a `Guard` is `!Send` and unlocks once).
    unsafe { libc::pthread_mutex_unlock(mutex(&h.lock)) };
}

/// Poisons the lock: set until [`clear`] (a holder died or panicked with nothing rolled back, or
/// the lock word was re-initialised).
pub(crate) fn poison(h: &Header) {
    h.poison.store(1, Ordering::Release);
}

/// Clears the poisoning: what `clear_poison` does once no unnoticed death is left in the lock
/// word.
pub(crate) fn clear(h: &Header) {
    h.poison.store(0, Ordering::Release);
}

/// Whether the poison word is set (read by a holder of the lock, after it rolled back a dead
/// writer's update).
pub(crate) fn poisoned(h: &Header) -> bool {
    // A relaxed load and an acquire fence (the same ordering as an acquire load): the only
    // atomic loads Rust allows on a read-only mapping, which `is_poisoned` also serves.
    let p = h.poison.load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    p != 0
}

/// Whether the lock is poisoned, as `is_poisoned()` reports it to users: the poison word is set,
/// or the lock word says its owner died (the kernel's owner-died bit, or an owner thread that no
/// longer exists) while no write is in progress — a death that the next locker will turn into a
/// poisoning, reported before anyone has locked. A death inside a write window (`seq` odd) is not
/// one: the next reader or locker rolls it back.
///
/// Takes no lock and changes nothing: it makes only relaxed loads of at most 8 bytes (ordered by
/// fences), so it also serves a read-only mapping (see `read_only.rs` for Rust's rule).
pub(crate) fn is_poisoned(h: &Header) -> bool {
    if poisoned(h) {
        return true;
    }
    // `seq` before and after the lock word: a write window opened or a death repaired meanwhile
    // shows as a change (a repairer takes the lock, which clears the owner-died bit, before it
    // makes `seq` even). A few tries; a segment that keeps changing has a live writer at work.
    let seq = || {
        let s = h.seq.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        s
    };
    for _ in 0..4 {
        let before = seq();
        if before & 1 != 0 {
            break;
        }
        let dead = owner_died(h);
        if seq() == before {
            return dead || poisoned(h);
        }
    }
    poisoned(h)
}

/// Whether the lock word names an owner that died holding it: the owner-died bit (set by the
/// kernel when the owner's thread exits, or by a locker that found a vanished owner), or an owner
/// thread id that names no thread — read twice, so that an owner that released the lock and then
/// exited is not taken for a dead holder.
fn owner_died(h: &Header) -> bool {
    let word = futex_word(h);
    let load = || {
        let w = word.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        w
    };
    let w = load();
    if w & FUTEX_OWNER_DIED != 0 {
        return true;
    }
    let tid = w & FUTEX_TID_MASK;
    tid != 0 && !thread_exists(tid) && load() == w
}
