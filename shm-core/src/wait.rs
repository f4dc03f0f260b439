//! Waiting for the shared value to change: a futex on a word of the segment's header.
//!
//! Two header words serve waiters (docs/FORMAT.md, "Waiting"):
//!
//! - `changes`, the futex word: bumped (wrapping) by every *announcement*;
//! - `waiters`, two registration slots of `tag << 16 | count`, where `tag` is the second of the
//!   monotonic clock (modulo 2^16) at which the count's waiters registered, in the slot of the
//!   tag's parity.
//!
//! A waiter registers (count + 1 in the slot of this second), loads the lock word, reads
//! `changes`, checks its condition on a consistent snapshot and, if it does not hold, sleeps on
//! `changes` with `FUTEX_WAIT` for at most [`RECHECK`]; then it deregisters and starts over.
//! Every release of the lock reads both slots, and only if a count is non-zero announces:
//! bumps `changes` and makes the `FUTEX_WAKE` system call. So a write costs neither a system
//! call nor a read-modify-write of its own while nobody waits: the unlock's compare-and-swap,
//! which it makes anyway, is what waiters synchronise with. `notify` announces too, without the
//! lock. Both sides use sequentially consistent operations: either the unlocker sees the
//! registration (and wakes the waiter, or bumps `changes` before the waiter reads it), or the
//! waiter's load of the lock word reads the unlock (or a later lock or unlock, which continue
//! its release sequence) and so sees the write in its snapshot. `FUTEX_WAIT` itself refuses to
//! sleep on a value that has moved.
//!
//! The bounded sleep is what makes a change without an announcement — a field atomic with no
//! `notify`, a writer killed between its unlock and its wake — cost latency, never a hang: a
//! waiter looks again at least every [`RECHECK`].
//!
//! A waiter killed while registered cannot take its count back. Its registration is a second
//! old, though, and no live waiter stays registered that long (one sleep is at most
//! [`RECHECK`]): an announcer that finds a non-zero count in a slot whose tag is more than a
//! second away from its own clock clears that count instead of waking anyone, and a waiter that
//! registers in a slot of an older tag starts its count afresh. So a killed waiter costs the
//! unlockers of the next second or two an announcement each, and then nothing.
//!
//! The futexes are shared (no `FUTEX_PRIVATE_FLAG`): the kernel keys them by the object and the
//! offset, so processes that map the segment at different addresses meet on the same word. The
//! system calls are `futex.rs`'s, which the lock uses too.
//!
//! A read-only handle cannot register (that writes the header; on memory mapped read only Rust
//! allows nothing but relaxed loads, see `read_only.rs`): it reads `changes` with a relaxed load
//! and a fence and sleeps on it all the same, so it is woken when a registered waiter is, and
//! otherwise sees a change at its next re-check.

use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::atomic::{fence, AtomicU32};
use std::time::{Duration, Instant};

use crate::futex;
use crate::header::Header;
use crate::held;
use crate::segment::Segment;

/// The longest a waiter sleeps before it checks its condition again, woken or not: the bound on
/// the latency of a change that woke nobody.
pub(crate) const RECHECK: Duration = Duration::from_millis(100);

/// The count of a registration slot.
const COUNT: u32 = 0xffff;

/// Called after every release of the lock: announces the change if anyone waits (see the
/// module). Two loads and no system call while nobody does.
#[inline(always)]
pub(crate) fn after_unlock(h: &Header) {
    // Sequentially consistent, after the unlock's compare-and-swap (also sequentially
    // consistent), against the waiter's registration and its load of the lock word.
    if (h.waiters[0].load(SeqCst) | h.waiters[1].load(SeqCst)) & COUNT != 0 {
        announce(h);
    }
}

/// Bumps the change counter and wakes the waiters, if there are any: `notify`, and an unlock
/// that found registrations.
#[cold]
#[inline(never)]
fn announce(h: &Header) {
    h.changes.fetch_add(1, SeqCst);
    // Sequentially consistent, against the waiter's registration and its read of `changes`:
    // one of the two sides sees the other's write.
    if (h.waiters[0].load(SeqCst) | h.waiters[1].load(SeqCst)) & COUNT != 0 {
        wake(h, epoch());
    }
}

/// Wakes every waiter sleeping on the change counter, unless every registration is stale (a
/// waiter killed while registered): those are cleared instead. `now` is this second's tag.
#[cold]
#[inline(never)]
fn wake(h: &Header, now: u16) {
    let mut live = false;
    for slot in &h.waiters {
        let w = slot.load(SeqCst);
        if w & COUNT == 0 {
            continue;
        }
        if recent(tag(w), now) {
            live = true;
        } else {
            // Nobody stays registered that long: what is left is a dead waiter's. A failed
            // exchange means the slot changed meanwhile; the next writer looks again.
            let _ = slot.compare_exchange(w, w & !COUNT, SeqCst, Relaxed);
        }
    }
    if live {
        #[cfg(test)]
        WAKE_CALLS.with(|c| c.set(c.get() + 1));
        futex::wake(&h.changes, i32::MAX);
    }
}

/// The tag of a slot's value.
fn tag(w: u32) -> u16 {
    (w >> 16) as u16
}

/// Whether a registration tagged `tag` may still be live at the second `now`: within a second
/// either way (either side of a second's boundary, and clock reads of two processes racing).
fn recent(tag: u16, now: u16) -> bool {
    matches!(tag.wrapping_sub(now), 0 | 1 | u16::MAX)
}

/// This second of the monotonic clock, modulo 2^16: the tag of registrations made now.
fn epoch() -> u16 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u16
}

/// A waiter's registration: its count in `slot`, under `tag`, taken back on drop.
struct Registration<'a> {
    slot: &'a AtomicU32,
    tag: u16,
}

/// Registers a waiter in the slot of the second `now`: `None` if that slot counts 65535 waiters
/// already (this one then relies on the bounded sleep alone).
fn register(h: &Header, now: u16) -> Option<Registration<'_>> {
    let slot = &h.waiters[usize::from(now & 1)];
    let mut w = slot.load(Relaxed);
    loop {
        let next = if tag(w) == now {
            if w & COUNT == COUNT {
                return None;
            }
            w + 1
        } else {
            // A slot of an older second: whoever registered there is gone (see the module).
            (u32::from(now) << 16) | 1
        };
        match slot.compare_exchange_weak(w, next, SeqCst, Relaxed) {
            Ok(_) => return Some(Registration { slot, tag: now }),
            Err(seen) => w = seen,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut w = self.slot.load(Relaxed);
        // Taken back only from the count it was added to: if the slot was cleared or taken over
        // by a later second meanwhile (this thread stalled for a second), it is no longer there.
        while tag(w) == self.tag && w & COUNT != 0 {
            match self.slot.compare_exchange_weak(w, w - 1, SeqCst, Relaxed) {
                Ok(_) => return,
                Err(seen) => w = seen,
            }
        }
    }
}

/// Runs `check` (a snapshot and a condition on it) at once and after every change of the
/// segment, until it returns `Some`, or `timeout` passed (`None` waits for ever). Returns what
/// `check` returned, or `None` after the timeout (checked one last time after the last sleep).
///
/// # Panics
/// If this thread holds the segment's lock: no `update` of another process could then run.
#[track_caller]
pub(crate) fn until<R>(
    seg: &Segment,
    timeout: Option<Duration>,
    mut check: impl FnMut() -> Option<R>,
) -> Option<R> {
    assert!(
        !held::by_this_thread(seg),
        "wait_until on segment `{}` while this thread holds its lock (a Guard is alive, or \
         inside update): no update could change the value meanwhile",
        seg.name()
    );
    let h = seg.header();
    let read_only = seg.is_read_only();
    // A timeout too long to represent has no end.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    // At once, without registering: a condition that holds already writes nothing.
    if let Some(r) = check() {
        return Some(r);
    }
    let mut slept = false;
    loop {
        let limit = match deadline {
            None => RECHECK,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // Once more after the last sleep.
                    return if slept { check() } else { None };
                }
                left.min(RECHECK)
            }
        };
        // Registered before anything is read, and through the check and the sleep: an unlock
        // that does not see the registration is one whose write the check sees (see the module).
        let registered = if read_only {
            None
        } else {
            register(h, epoch())
        };
        let seen = if read_only {
            // An acquire load, in the form read-only memory allows.
            let c = h.changes.load(Relaxed);
            fence(Acquire);
            c
        } else {
            // The load that synchronises with the last unlock, if the registration came after
            // it; nothing else is done with the word.
            h.lock.word.load(SeqCst);
            h.changes.load(SeqCst)
        };
        if let Some(r) = check() {
            return Some(r);
        }
        futex::wait(&h.changes, seen, limit);
        slept = true;
        drop(registered);
    }
}

/// Bumps the change counter and wakes every waiter: `notify`.
pub(crate) fn notify(seg: &Segment) {
    announce(seg.header());
}

#[cfg(test)]
thread_local! {
    /// `FUTEX_WAKE` calls this thread made: what the tests count to show that a write makes
    /// none while nobody waits.
    static WAKE_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The `FUTEX_WAKE` calls this thread made so far.
#[cfg(test)]
pub(crate) fn wake_calls() -> u64 {
    WAKE_CALLS.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, Shared, Value};
    use std::sync::atomic::Ordering::Relaxed;

    fn name(tag: &str) -> String {
        format!("wait-test-{tag}-{}", std::process::id())
    }

    /// The point of the waiter count: an update while nobody waits makes no system call; one
    /// while a waiter is registered makes exactly one.
    #[test]
    fn an_update_calls_futex_wake_only_when_someone_waits() {
        let v = Value::<u64>::create(&name("syscalls"), 0).unwrap();
        let h = v.segment().header();
        let before = wake_calls();
        for _ in 0..1000 {
            v.update(|x| *x += 1);
        }
        v.notify();
        assert_eq!(
            wake_calls(),
            before,
            "a write with nobody waiting called FUTEX_WAKE"
        );

        // A waiter registered (as it is around each of its sleeps).
        let registered = register(h, epoch()).unwrap();
        v.update(|x| *x += 1);
        assert_eq!(wake_calls(), before + 1);
        v.notify();
        assert_eq!(wake_calls(), before + 2);
        drop(registered);
        v.update(|x| *x += 1);
        v.notify();
        assert_eq!(wake_calls(), before + 2);
        assert_eq!(v.load(Relaxed), 1002);
    }

    /// A waiter asleep in this process is woken by an update in another thread.
    #[test]
    fn an_update_wakes_a_sleeping_waiter() {
        let v = Value::<u64>::create(&name("wake"), 0).unwrap();
        let h = v.segment().header();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| v.wait_until(|x| *x >= 3));
            while (h.waiters[0].load(SeqCst) | h.waiters[1].load(SeqCst)) & COUNT == 0 {
                std::thread::yield_now();
            }
            v.update(|x| *x = 3);
            assert_eq!(waiter.join().unwrap(), 3);
        });
    }

    /// A waiter killed while registered leaves its count: the writers of the next second or so
    /// pay a wake call each, then a writer finds the registration stale, clears it, and writes
    /// make no call again.
    #[test]
    fn a_dead_waiters_registration_is_cleared_once_stale() {
        let v = Value::<u32>::create(&name("stale"), 0).unwrap();
        let h = v.segment().header();
        // A waiter that registered at second 7 and died (its registration is never dropped).
        std::mem::forget(register(h, 7));
        std::mem::forget(register(h, 7));
        assert_eq!(h.waiters[1].load(Relaxed), 7 << 16 | 2);
        // At seconds 6, 7 and 8 it may be live: woken (one call each).
        for now in [6, 7, 8] {
            let calls = wake_calls();
            wake(h, now);
            assert_eq!(wake_calls(), calls + 1, "second {now}");
            assert_eq!(h.waiters[1].load(Relaxed), 7 << 16 | 2);
        }
        // At second 9 it cannot be: cleared, no call, and nothing to do afterwards.
        let calls = wake_calls();
        wake(h, 9);
        assert_eq!(wake_calls(), calls);
        assert_eq!(h.waiters[1].load(Relaxed) & COUNT, 0);
        v.update(|x| *x += 1);
        assert_eq!(wake_calls(), calls);
    }

    #[test]
    fn registrations_count_per_second_and_restart_in_an_old_slot() {
        let v = Value::<u32>::create(&name("slots"), 0).unwrap();
        let h = v.segment().header();
        let a = register(h, 10).unwrap();
        let b = register(h, 10).unwrap();
        let c = register(h, 11).unwrap();
        assert_eq!(h.waiters[0].load(Relaxed), 10 << 16 | 2);
        assert_eq!(h.waiters[1].load(Relaxed), 11 << 16 | 1);
        drop(a);
        assert_eq!(h.waiters[0].load(Relaxed), 10 << 16 | 1);
        // Second 12 takes over slot 0: the count of second 10 is forgotten, and `b`, which
        // registered there, takes nothing back from second 12's count.
        let d = register(h, 12).unwrap();
        assert_eq!(h.waiters[0].load(Relaxed), 12 << 16 | 1);
        drop(b);
        assert_eq!(h.waiters[0].load(Relaxed), 12 << 16 | 1);
        drop(d);
        drop(c);
        assert_eq!(h.waiters[0].load(Relaxed) & COUNT, 0);
        assert_eq!(h.waiters[1].load(Relaxed) & COUNT, 0);
        // A full slot registers nobody more (the waiter then relies on its bounded sleep).
        h.waiters[1].store(13 << 16 | COUNT, Relaxed);
        assert!(register(h, 13).is_none());
        assert!(recent(u16::MAX, 0) && recent(0, u16::MAX) && !recent(2, 0));
    }

    /// The bounded re-check: a change with a field atomic and no notify is still seen.
    #[test]
    fn a_plain_store_is_seen_without_notify() {
        let v = Value::<u32>::create(&name("plain"), 0).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| v.wait_until_timeout(|x| *x == 5, Duration::from_secs(30)));
            v.store(5, Relaxed);
            assert_eq!(waiter.join().unwrap(), Some(5));
        });
    }

    #[test]
    fn a_timeout_returns_none_and_zero_checks_once() {
        let a = Array::<u8>::create(&name("timeout"), &[1, 2]).unwrap();
        let start = Instant::now();
        assert_eq!(
            a.wait_until_timeout(|v| v[0] == 9, Duration::from_millis(30)),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(
            a.wait_until_timeout(|v| v[1] == 2, Duration::ZERO),
            Some(vec![1, 2])
        );
        assert_eq!(a.wait_until_timeout(|v| v[1] == 3, Duration::ZERO), None);
        // A timeout too long to represent is no timeout.
        assert_eq!(
            a.wait_until_timeout(|v| v[0] == 1, Duration::MAX),
            Some(vec![1, 2])
        );
    }

    /// An observer cannot register, but waits all the same: woken with the registered waiters,
    /// or at its re-check; and it sleeps between checks rather than spinning.
    #[test]
    fn a_read_only_handle_waits_without_registering() {
        let name = name("read-only");
        let v = Value::<u64>::create(&name, 0).unwrap();
        let seen = Value::<u64>::open_readonly(&name).unwrap();
        let h = v.segment().header();
        let mut checks = 0;
        assert_eq!(
            seen.wait_until_timeout(
                |x| {
                    checks += 1;
                    *x == 1
                },
                Duration::from_millis(300)
            ),
            None
        );
        // At once, then once a re-check (100 ms) or so: not a spin.
        assert!((2..=20).contains(&checks), "{checks} checks in 300 ms");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| seen.wait_until(|x| *x == 2));
            v.store(2, Relaxed); // no notify, and the observer is not registered
            assert_eq!(waiter.join().unwrap(), 2);
        });
        assert_eq!(h.waiters[0].load(Relaxed) | h.waiters[1].load(Relaxed), 0);
    }

    #[test]
    #[should_panic(expected = "while this thread holds its lock")]
    fn waiting_while_holding_the_lock_panics() {
        let s = Shared::<u64>::create(&name("held"), 0).unwrap();
        let _g = s.lock().unwrap();
        s.wait_until_timeout(|x| *x == 1, Duration::from_millis(1));
    }
}
