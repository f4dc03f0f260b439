//! The segment's lock: one 64-bit word in the header that names its owner, on a shared futex.
//!
//! The word holds no pointer and nothing that anyone follows or writes through: the owner
//! thread's id and tag (see `owner.rs`), and a waiters bit. Locking is a compare-and-swap from 0
//! to this thread's value; unlocking is a compare-and-swap back to 0, and a futex wake if the
//! waiters bit was set. A blocked locker sleeps on the word's low 32 bits (a shared futex) in
//! slices, and between slices checks that the owner still lives; if it is gone (killed, say),
//! the locker takes the lock over from it by compare-and-swap. Whatever bytes a peer writes into
//! the word, the worst they do is make lockers wait (for an owner that seems alive) or take the
//! lock over (from one that seems dead).
//!
//! Poisoning is sticky: the header's `poison` word, once set, stays set until `clear_poison`
//! stores 0. It is set when a holder died with no write in progress (nothing can be rolled back,
//! so what it did under the lock may be half done), and when a holder panicked. A writer that
//! died inside its write window is not a poisoning: the next locker or reader rolls its update
//! back from the journal, which repairs it.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::futex;
use crate::header::{Header, LockArea};
use crate::owner::{self, Liveness, WAITERS};
use crate::wait;

/// Why a lock was not acquired.
#[derive(Debug)]
pub(crate) enum Failed {
    /// Someone else holds it (try or timed lock).
    Busy,
    /// The word names this thread, and this thread's own bookkeeping says it holds the lock.
    Deadlock,
}

/// Fills in a new segment's lock area: free, and the namespaces its owners' numbers mean
/// something in. A creator that cannot check owners (no usable `/proc`) marks it foreign.
pub(crate) fn init(area: &LockArea) {
    let env = owner::env();
    area.word.store(0, Ordering::Relaxed);
    area.pidns
        .store(env.map_or(0, |e| e.pidns), Ordering::Relaxed);
    area.timens
        .store(env.map_or(0, |e| e.timens), Ordering::Relaxed);
    area.foreign
        .store(u32::from(env.is_none()), Ordering::Relaxed);
}

/// Notes that this process uses the lock: if it lives in other namespaces than the segment's
/// creator (or cannot check owners at all), it marks the lock foreign before it ever locks, so
/// that no process takes an owner it cannot check for dead. Any bytes are accepted.
pub(crate) fn attach(area: &LockArea) {
    let same = owner::env().is_some_and(|env| {
        area.pidns.load(Ordering::Relaxed) == env.pidns
            && area.timens.load(Ordering::Relaxed) == env.timens
    });
    if !same {
        mark_foreign(area);
    }
}

/// Marks the lock foreign (for good): from now on no process takes an owner for dead.
fn mark_foreign(area: &LockArea) {
    if area.foreign.load(Ordering::Relaxed) == 0 {
        // SeqCst, and before this process's next compare-and-swap of the word (AcqRel): a
        // locker that reads a word this process wrote sees the mark too.
        area.foreign.store(1, Ordering::SeqCst);
    }
}

/// How long to wait: forever, not at all, or until a deadline.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Forever,
    Try,
    Until(Instant),
}

/// Re-reads of a held word before a locker sleeps: a live owner's locked section is often
/// shorter than a sleep and a wake.
const SPINS: u32 = 64;
/// How long a blocked locker waits before it first checks that the owner lives, and how often
/// after that. A check reads `/proc`: far dearer than a wait for a live owner, so not at once.
const FIRST_CHECK: Duration = Duration::from_millis(2);
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// Takes the segment's lock. A holder found dead is taken over, and poisons the lock if it died
/// with no write in progress; whether the lock is poisoned is for the caller to read with
/// [`poisoned`], after it has rolled back a dead writer's update if there was one.
///
/// `held_here` is asked when the word names this very thread: whether this thread holds the
/// lock by its own bookkeeping (then the result is [`Failed::Deadlock`]); if not, a peer wrote
/// this thread's name into the word, and the lock is taken over as from a dead owner.
#[inline]
pub(crate) fn lock(h: &Header, wait: Wait, held_here: impl Fn() -> bool) -> Result<(), Failed> {
    let me = owner::cached();
    if me != 0
        && h.lock
            .word
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        return Ok(());
    }
    lock_contended(h, wait, held_here)
}

#[cold]
fn lock_contended(h: &Header, wait: Wait, held_here: impl Fn() -> bool) -> Result<(), Failed> {
    let me = owner::me();
    if !owner::checkable() {
        // Others could not check this thread's name: they must never judge it.
        mark_foreign(&h.lock);
    } else if owner::diverged() {
        // Handles inherited across a fork into other namespaces were attached in the parent's.
        attach(&h.lock);
    }
    let word = &h.lock.word;
    let mut spins = 0;
    // Whether this locker slept: then others may sleep too, and it takes the lock with the
    // waiters bit set, so that its unlock wakes the next (it cannot know that none is left).
    let mut slept = false;
    let mut next_check: Option<Instant> = None;
    let mut tries = 0;
    loop {
        let w = word.load(Ordering::Acquire);
        if owner::tid_of(w) == 0 {
            let new = me | if slept { WAITERS } else { 0 };
            if word
                .compare_exchange(w, new, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(());
            }
            continue;
        }
        if owner::same(w, me) {
            if held_here() {
                return Err(Failed::Deadlock);
            }
            // Not held by this thread: a peer wrote our name. Nobody holds it.
            if take_over(h, w, me) {
                return Ok(());
            }
            continue;
        }
        let deadline = match wait {
            Wait::Try => {
                // One look at the owner (and a couple more if the word keeps changing).
                tries += 1;
                if owner::judge(&h.lock, w) == Liveness::Dead && take_over(h, w, me) {
                    return Ok(());
                }
                if tries >= 3 || word.load(Ordering::Relaxed) == w {
                    return Err(Failed::Busy);
                }
                continue;
            }
            Wait::Forever => None,
            Wait::Until(deadline) => Some(deadline),
        };
        if spins < SPINS {
            spins += 1;
            std::hint::spin_loop();
            continue;
        }
        let now = Instant::now();
        // A deadline before the first check brings the check forward: a timed lock judges the
        // owner at least once before it gives up, as a `Try` does, or a caller that polls with
        // short timeouts would never find a dead owner.
        let first = deadline.map_or(now + FIRST_CHECK, |d| d.min(now + FIRST_CHECK));
        let check = *next_check.get_or_insert(first);
        if now >= check {
            if owner::judge(&h.lock, w) == Liveness::Dead {
                if take_over(h, w, me) {
                    return Ok(());
                }
                continue;
            }
            next_check = Some(now + CHECK_EVERY);
        }
        if deadline.is_some_and(|d| now >= d) {
            if slept {
                pass_the_wake_on(word, w);
            }
            return Err(Failed::Busy);
        }
        // Say that someone sleeps, then sleep while the word still says so.
        let waiting = w | WAITERS;
        if w != waiting
            && word
                .compare_exchange(w, waiting, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let until = next_check.unwrap_or(now + FIRST_CHECK);
        let until = deadline.map_or(until, |d| d.min(until));
        futex::wait_low(word, waiting as u32, until.saturating_duration_since(now));
        slept = true;
    }
}

/// A sleeper that gives up (its deadline passed) may have been woken by an unlock for nothing:
/// another thread took the lock first, without the waiters bit, and the others still sleep.
/// Setting the bit again makes the next unlock wake one of them, instead of leaving them to their
/// next check (up to `CHECK_EVERY`). A word that moved on meanwhile is left alone: whoever
/// changed it set or cleared the bit knowing more.
fn pass_the_wake_on(word: &AtomicU64, w: u64) {
    if w & WAITERS == 0 {
        let _ = word.compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Takes the lock over from the owner word `w` names, found dead (or not this thread although
/// it names it). Returns whether it did: the word may have changed meanwhile.
///
/// The waiters bit is set, as other lockers may sleep on the dead owner's word. A holder that
/// died with `seq` even held the lock outside a write window (holding `lock()`'s guard, or in
/// `update`'s closure, which runs before the write window), so whatever it changed under the
/// lock cannot be undone: that poisons the lock. With `seq` odd the journal holds what is
/// needed to roll its update back, which the caller does next (`seqlock::recover`). `seq`
/// cannot change meanwhile: every writer of it holds the lock.
fn take_over(h: &Header, w: u64, me: u64) -> bool {
    if h.lock
        .word
        .compare_exchange(w, me | WAITERS, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    if h.seq.load(Ordering::Acquire) & 1 == 0 {
        poison(h);
    }
    true
}

/// Unlocks the lock, held by this thread.
///
/// Then announces the change to whoever waits for one (`wait.rs`): the release of the lock is
/// what a write's waiters synchronise with, so the write itself announces nothing.
#[inline]
pub(crate) fn unlock(h: &Header) {
    let me = owner::cached();
    // Sequentially consistent (on x86-64 the same `lock cmpxchg` as a release one): a waiter
    // registers and then loads the word; `wait::after_unlock` loads the registrations after
    // this. One of the two sees the other's write (see `wait.rs`).
    if me == 0
        || h.lock
            .word
            .compare_exchange(me, 0, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
    {
        unlock_contended(h);
    }
    wait::after_unlock(h);
}

#[cold]
fn unlock_contended(h: &Header) {
    let me = owner::me();
    let word = &h.lock.word;
    let mut w = word.load(Ordering::Relaxed);
    loop {
        if !owner::same(w, me) {
            // Not this thread's any more: a peer wrote the word. Releasing it now would free
            // someone else's lock; leave it.
            return;
        }
        match word.compare_exchange_weak(w, 0, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => {
                if w & WAITERS != 0 {
                    futex::wake_low(word, 1);
                }
                return;
            }
            Err(now) => w = now,
        }
    }
}

/// Poisons the lock: set until [`clear`] (a holder died or panicked with nothing rolled back).
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
#[inline]
pub(crate) fn poisoned(h: &Header) -> bool {
    // A relaxed load and an acquire fence (the same ordering as an acquire load): the only
    // atomic loads Rust allows on a read-only mapping, which `is_poisoned` also serves.
    let p = h.poison.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    p != 0
}

/// A relaxed load of `word` and an acquire fence: an acquire load, as a read-only mapping allows.
fn load_acquire(word: &AtomicU64) -> u64 {
    let w = word.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    w
}

/// Whether the lock is poisoned, as `is_poisoned()` reports it to users: the poison word is set,
/// or the lock word names an owner that died while no write was in progress — a death that the
/// next locker will turn into a poisoning, reported before anyone has locked. A death inside a
/// write window (`seq` odd) is not one: the next reader or locker rolls it back. An owner that
/// cannot be checked (a foreign lock) is taken to live.
///
/// Takes no lock and changes nothing: it makes only relaxed loads of at most 8 bytes (ordered by
/// fences), so it also serves a read-only mapping (see `read_only.rs` for Rust's rule).
pub(crate) fn is_poisoned(h: &Header) -> bool {
    if poisoned(h) {
        return true;
    }
    // `seq` before and after the lock word: a write window opened or a death repaired meanwhile
    // shows as a change (a locker takes the word over before it makes `seq` even). A few tries;
    // a segment that keeps changing has a live writer at work.
    for _ in 0..4 {
        let before = load_acquire(&h.seq);
        if before & 1 != 0 {
            break;
        }
        let dead = owner_died(h);
        if load_acquire(&h.seq) == before {
            return dead || poisoned(h);
        }
    }
    poisoned(h)
}

/// Whether the lock word names an owner that is gone — read again after the check, so that an
/// owner that released the lock and then exited is not taken for a dead holder.
fn owner_died(h: &Header) -> bool {
    let word = &h.lock.word;
    let w = load_acquire(word);
    owner::tid_of(w) != 0 && owner::judge(&h.lock, w) == Liveness::Dead && load_acquire(word) == w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::tid_of;
    use crate::Array;
    use std::sync::atomic::Ordering::Relaxed;

    fn segment(tag: &str) -> Array<u64> {
        let name = format!("shmt-lock-{tag}-{}", std::process::id());
        Array::<u64>::create(&name, &[0]).unwrap()
    }

    fn this_tid() -> u32 {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::gettid() as u32 }
    }

    #[test]
    fn the_word_names_the_holding_thread_and_is_zero_when_free() {
        let a = segment("word");
        let h = a.segment().header();
        assert_eq!(h.lock.word.load(Relaxed), 0);
        lock(h, Wait::Try, || false).unwrap();
        let w = h.lock.word.load(Relaxed);
        assert_eq!(tid_of(w), this_tid());
        assert!(owner::same(w, owner::me()));
        // Another thread finds it busy, and its owner alive.
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(lock(h, Wait::Try, || false), Err(Failed::Busy)));
                assert_eq!(owner::judge(&h.lock, w), Liveness::Alive);
            });
        });
        unlock(h);
        assert_eq!(h.lock.word.load(Relaxed), 0);
        assert!(!poisoned(h));
    }

    #[test]
    fn lockers_on_many_threads_exclude_each_other_and_sleepers_are_woken() {
        let a = segment("excl");
        let h = a.segment().header();
        let inside = std::sync::atomic::AtomicU32::new(0);
        const EACH: u64 = 2000;
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..EACH {
                        lock(h, Wait::Forever, || false).unwrap();
                        assert_eq!(inside.fetch_add(1, Relaxed), 0, "two holders at once");
                        // Now and then hold it long enough that the others sleep.
                        if i % 500 == 0 {
                            std::thread::sleep(Duration::from_millis(3));
                        }
                        a[0].store(a[0].load(Relaxed) + 1, Relaxed);
                        inside.fetch_sub(1, Relaxed);
                        unlock(h);
                    }
                });
            }
        });
        assert_eq!(a[0].load(Relaxed), 4 * EACH);
        assert_eq!(h.lock.word.load(Relaxed), 0);
        assert!(!poisoned(h));
    }

    #[test]
    fn a_dead_owner_is_taken_over_and_poisons_unless_a_write_was_in_progress() {
        let a = segment("dead");
        let h = a.segment().header();
        let dead = std::thread::spawn(owner::me).join().unwrap();
        h.lock.word.store(dead | WAITERS, Relaxed);
        // `join` returns once the thread has run to its end; the kernel may still list the
        // exiting task for a moment, and then the owner is rightly taken for alive.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !is_poisoned(h) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(is_poisoned(h), "a dead owner not seen dead within 5 s");
        lock(h, Wait::Try, || false).unwrap();
        assert!(owner::same(h.lock.word.load(Relaxed), owner::me()));
        assert!(poisoned(h));
        unlock(h);
        clear(h);
        // The same death inside a write window is the journal's to repair, not a poisoning.
        h.seq.store(1, Relaxed);
        h.lock.word.store(dead, Relaxed);
        assert!(!is_poisoned(h));
        lock(h, Wait::Forever, || false).unwrap();
        assert!(!poisoned(h));
        h.seq.store(2, Relaxed);
        unlock(h);
    }

    #[test]
    fn this_threads_name_in_the_word_is_a_deadlock_only_if_this_thread_holds_it() {
        let a = segment("self");
        let h = a.segment().header();
        lock(h, Wait::Try, || false).unwrap();
        assert!(matches!(lock(h, Wait::Try, || true), Err(Failed::Deadlock)));
        assert!(matches!(
            lock(h, Wait::Forever, || true),
            Err(Failed::Deadlock)
        ));
        unlock(h);
        // Written by a peer while this thread holds nothing: taken over, as from a dead owner.
        h.lock.word.store(owner::me(), Relaxed);
        lock(h, Wait::Forever, || false).unwrap();
        assert!(poisoned(h));
        unlock(h);
    }

    #[test]
    fn garbage_words_are_owners_that_live_or_die_and_free_words_are_free() {
        let a = segment("garbage");
        let h = a.segment().header();
        // No thread id bits: free, whatever else is set.
        h.lock.word.store(0xffff_ffff_8000_0000 | 1 << 30, Relaxed);
        lock(h, Wait::Try, || false).unwrap();
        assert!(!poisoned(h));
        unlock(h);
        // A thread id no thread can have.
        h.lock.word.store(u64::MAX, Relaxed);
        assert!(is_poisoned(h));
        lock(h, Wait::Try, || false).unwrap();
        assert!(poisoned(h));
        unlock(h);
        // A live thread's id (init's, alive as long as the machine runs) with another start
        // time: the id was recycled.
        clear(h);
        let (_, init_start) = crate::process::stat_of(1).unwrap();
        let recycled = u64::from((init_start as u32).wrapping_add(1)) << 32 | 1;
        h.lock.word.store(recycled, Relaxed);
        lock(h, Wait::Try, || false).unwrap();
        assert!(poisoned(h));
        unlock(h);
    }

    #[test]
    fn a_foreign_lock_never_takes_an_owner_for_dead() {
        let a = segment("foreign");
        let h = a.segment().header();
        let dead = std::thread::spawn(owner::me).join().unwrap();
        h.lock.word.store(dead, Relaxed);
        h.lock.foreign.store(1, Relaxed);
        assert!(!is_poisoned(h));
        assert!(matches!(lock(h, Wait::Try, || false), Err(Failed::Busy)));
        let soon = Instant::now() + FIRST_CHECK + CHECK_EVERY;
        assert!(matches!(
            lock(h, Wait::Until(soon), || false),
            Err(Failed::Busy)
        ));
        assert_eq!(h.lock.word.load(Relaxed), dead | WAITERS);
        h.lock.word.store(0, Relaxed);
    }

    /// A timed locker that slept and then gives up sets the waiters bit of a word held without
    /// it (the wake it got was for the lock, which another thread then took without the bit),
    /// so that the holder's unlock wakes the other sleepers.
    #[test]
    fn a_sleeper_that_gives_up_leaves_the_waiters_bit_for_the_others() {
        let a = segment("passon");
        let h = a.segment().header();
        lock(h, Wait::Try, || false).unwrap();
        let held = h.lock.word.load(Relaxed);
        assert_eq!(held & WAITERS, 0);
        pass_the_wake_on(&h.lock.word, held);
        assert_eq!(h.lock.word.load(Relaxed), held | WAITERS);
        // A word that changed meanwhile is not touched.
        h.lock.word.store(held, Relaxed);
        pass_the_wake_on(&h.lock.word, held ^ 1);
        assert_eq!(h.lock.word.load(Relaxed), held);
        unlock(h);
        assert_eq!(h.lock.word.load(Relaxed), 0);
    }

    #[test]
    fn a_process_attached_from_other_namespaces_marks_the_lock_foreign() {
        let a = segment("attach");
        let h = a.segment().header();
        attach(&h.lock);
        assert_eq!(h.lock.foreign.load(Relaxed), 0);
        h.lock.pidns.fetch_xor(1, Relaxed);
        attach(&h.lock);
        assert_eq!(h.lock.foreign.load(Relaxed), 1);
    }

    #[test]
    fn a_forked_child_locks_as_its_own_thread() {
        let a = segment("fork");
        let h = a.segment().header();
        // Cache this thread's identity first.
        lock(h, Wait::Try, || false).unwrap();
        unlock(h);
        // SAFETY: the child takes and releases the segment's lock (reading /proc, which
        // allocates: glibc's fork leaves malloc usable in the child) and ends with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = lock(h, Wait::Try, || false).is_ok()
                && tid_of(h.lock.word.load(Relaxed)) == this_tid()
                && this_tid() != 0;
            a[0].store(u64::from(tid_of(h.lock.word.load(Relaxed))), Relaxed);
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "the child did not lock as itself");
        assert_eq!(a[0].load(Relaxed), pid as u64);
        // The child died holding it: taken over, poisoned.
        lock(h, Wait::Forever, || false).unwrap();
        assert!(poisoned(h));
        unlock(h);
    }
}
