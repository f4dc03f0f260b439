//! The seqlock that makes `update` and `snapshot` consistent across processes.
//!
//! Writers hold the segment's lock, make the header's sequence counter odd, journal what they
//! change (piece by piece, each piece right before storing it), store, clear the journal, and
//! make the counter even again. Readers never write and
//! never lock in the common case: they read the counter, the fields (relaxed atomic loads), and
//! the counter again, and retry if it was odd or changed.
//!
//! A writer killed while the counter is odd would make readers wait forever; instead, a reader
//! that has seen it odd for a while tries the lock: if it gets it, no writer is at work, so the
//! writer is dead. The reader undoes the dead writer's half-done stores from the journal and makes
//! the counter even. A locker that finds the counter odd does the same. Nothing is left
//! half-changed, so neither poisons the lock (see `lock.rs` for what does).

use std::mem::ManuallyDrop;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use crate::cell::Region;
use crate::held;
use crate::journal;
use crate::lock::{self, Wait};
use crate::segment::Segment;
use crate::Result;

/// A seqlock write in progress: the counter is odd, and the journal records what it stores.
/// Dropping it ends the write: it clears the journal and makes the counter even; if the write
/// panicked, it undoes it first and poisons the lock.
pub(crate) struct Write<'a> {
    seg: &'a Segment,
    /// The odd counter value of the write; [`ENDED`] once it has ended.
    odd: u64,
    /// Taken when the write ends, by [`finish`](Write::finish) or by the drop of an unfinished
    /// write: never dropped otherwise, so that the drop glue of a finished write is the
    /// inlined check of `odd` alone (a side journal's hold made it a call).
    log: ManuallyDrop<Option<journal::Log<'a>>>,
}

impl<'a> Write<'a> {
    /// Begins a write whose journal entries take `need` bytes: makes room for them (see
    /// [`journal::Log::prepare`]), then makes the counter odd. The caller holds the segment's
    /// lock (so a dead writer's leftovers were already undone by `recover`).
    ///
    /// # Errors
    /// If `required` and there is no room for the journal; then nothing has changed.
    #[inline(always)]
    pub(crate) fn begin(seg: &'a Segment, need: usize, required: bool) -> Result<Write<'a>> {
        let log = journal::Log::prepare(seg, need, required)?;
        let h = seg.header();
        // A record left by the last write (see `begin_committed`) is not this write's: gone
        // before the counter is odd, which is when an undo would read it.
        if h.journal_len.load(Ordering::Relaxed) != 0 {
            h.journal_len.store(0, Ordering::Relaxed);
        }
        let odd = h.seq.load(Ordering::Relaxed) | 1;
        // Release: an undo that reads the odd counter (acquire) sees `journal_len` as above.
        h.seq.store(odd, Ordering::Release);
        // Orders the odd counter before every store of the write: a reader that sees any of
        // them sees an odd or newer counter on its second read.
        log.start();
        Ok(Write {
            seg,
            odd,
            log: ManuallyDrop::new(Some(log)),
        })
    }

    /// Begins a write whose record is written already, a [`journal::First`] entry: makes the
    /// counter odd, which commits it (an undo reads a record only while the counter is odd).
    /// The record stays when the write ends. The caller holds the segment's lock.
    #[inline(always)]
    pub(crate) fn begin_committed(seg: &'a Segment) -> Write<'a> {
        let h = seg.header();
        let odd = h.seq.load(Ordering::Relaxed) | 1;
        // Release: an undo that reads the odd counter (acquire) sees the whole record.
        h.seq.store(odd, Ordering::Release);
        // Orders the odd counter before every store of the write, as `begin` does.
        fence(Ordering::Release);
        Write {
            seg,
            odd,
            log: ManuallyDrop::new(None),
        }
    }

    /// Journals payload bytes `start..start + len` (see [`journal::Log::append`]); the write may
    /// store them once this returns.
    #[inline(always)]
    pub(crate) fn journal(
        &mut self,
        start: usize,
        len: usize,
        kind: journal::Kind,
        fill: impl FnOnce(Region<'_>, Option<Region<'_>>),
    ) {
        if let Some(log) = self.log.as_mut() {
            log.append(start, len, kind, fill);
        }
    }
}

impl Write<'_> {
    /// Ends the write, as dropping it does when not panicking: clears the journal, makes the
    /// counter even and announces the change. Always inlined, as `begin` is, and by reference:
    /// an out-of-line drop, or a move into this call, made `update` copy the whole `Write`
    /// through memory (a store-forwarding stall) on every write. Dropping it afterwards does
    /// nothing more, and is inlined (see [`Write::log`]).
    #[inline(always)]
    pub(crate) fn finish(&mut self) {
        if let Some(log) = &*self.log {
            log.end();
        }
        // Dropped in place (a side journal's hold released), not moved out.
        *self.log = None;
        make_even(self.seg, self.odd);
        self.odd = ENDED;
    }
}

/// Makes the counter even after the write whose odd value was `odd`. (The change is announced
/// to waiters when the lock is released: see `wait.rs`.)
#[inline(always)]
fn make_even(seg: &Segment, odd: u64) {
    seg.header()
        .seq
        .store(odd.wrapping_add(1), Ordering::Release);
}

/// `Write::odd` once the write has ended: no odd counter value is 0.
const ENDED: u64 = 0;

impl Drop for Write<'_> {
    /// Nothing for a finished write; a write not [finished](Write::finish) is ended out of line.
    #[inline(always)]
    fn drop(&mut self) {
        if self.odd != ENDED {
            // By value, not by reference: a cold call given the write's address kept it in
            // memory on every write.
            unfinished(self.seg, self.odd, self.log.take());
        }
    }
}

/// Ends a write dropped unfinished: by a panic's unwinding (undone, and the lock poisoned) or by
/// a writer that returns early.
#[cold]
#[inline(never)]
fn unfinished(seg: &Segment, odd: u64, log: Option<journal::Log<'_>>) {
    if std::thread::panicking() {
        undo_panicked(seg, log);
    } else if let Some(log) = log {
        log.end();
    }
    make_even(seg, odd);
}

/// A write that panicked: undone, and the lock poisoned.
#[cold]
fn undo_panicked(seg: &Segment, log: Option<journal::Log<'_>>) {
    // Let go of the side journal first: undoing maps it again.
    drop(log);
    journal::undo(seg);
    lock::poison(seg.header());
}

/// Runs `f` (an update under the lock, its closure included); if it panics, the lock is poisoned,
/// as std's `Mutex` is by a panic. Free unless it does (the poisoning is on the unwinding path).
#[inline(always)]
pub(crate) fn poison_on_panic<R>(seg: &Segment, f: impl FnOnce() -> R) -> R {
    struct Poison<'a>(&'a Segment);
    impl Drop for Poison<'_> {
        fn drop(&mut self) {
            lock::poison(self.0.header());
        }
    }
    let armed = Poison(seg);
    let r = f();
    std::mem::forget(armed);
    r
}

/// If a writer died mid-write (the counter is odd while the caller holds the lock), undoes its
/// stores and makes the counter even. Returns whether it did. A write that cannot be undone (it
/// had no room for a journal) poisons the lock.
#[inline]
pub(crate) fn recover(seg: &Segment) -> bool {
    let seq = seg.header().seq.load(Ordering::Acquire);
    seq & 1 != 0 && undo_dead_write(seg, seq)
}

#[cold]
fn undo_dead_write(seg: &Segment, seq: u64) -> bool {
    journal::undo(seg);
    seg.header()
        .seq
        .store(seq.wrapping_add(1), Ordering::Release);
    true
}

/// Runs `read` until it ran while no write was in progress, and returns its result.
///
/// This is what a `snapshot` compiles to in the caller's code, so it is kept small and always
/// inlined: read the counter, run `read` (relaxed loads), fence, read the counter again and
/// compare. Everything else — an odd counter (a write in progress, or a dead writer to roll
/// back), lost races, the backoff, the clock, the read under the lock after too many lost races
/// — is in [`read_slow`], out of line, cold, and not generic: it gets `read` as a `dyn` closure
/// that leaves the result in a local here. So the caller's code holds the fast path and one
/// call, nothing of it has to survive a call in registers, and the result stays in registers
/// instead of coming back through memory.
#[inline(always)]
pub(crate) fn read<R>(seg: &Segment, mut read: impl FnMut() -> R) -> R {
    let seq = seg.seq();
    let before = seq.load(Ordering::Acquire);
    let r = read();
    // Orders the loads in `read` before the second counter read.
    fence(Ordering::Acquire);
    // One comparison for both conditions: the counter was even and has not moved. It never
    // goes back (a reader's two loads of it see it in order), so an odd `before`, which the
    // second load can only equal or pass, never equals `before & !1`; a run of `read` during a
    // write is thrown away like one that lost a race (its loads are atomic: torn, not unsound).
    if seq.load(Ordering::Relaxed) == before & !1 {
        return r;
    }
    let mut out = None;
    let slot = &mut out;
    // `move`: `read` itself goes into the slow path's closure, so that only this cold block puts
    // it in memory, and the fast path above keeps what it captured in registers and constants.
    read_slow(seg, &mut move || *slot = Some(read()));
    match out {
        Some(r) => r,
        None => no_read(),
    }
}

/// Lost races after which a reader reads under the lock.
const MAX_RACES: u32 = 64;

/// The slow path of [`read`], after an attempt that found the counter odd (a write in progress,
/// or a writer that died in one) or lost a race (a write began and ended meanwhile): runs `read`
/// until one run saw no write, and returns after that run. (A panic in `read` goes on.)
///
/// A counter odd for a millisecond may be a dead writer's: if the lock is free (or held by this
/// very thread), no writer is at work, and the dead one's half-done update is rolled back from
/// the journal. A read slower than the gap between writes would never finish: after
/// [`MAX_RACES`] lost races it is done once under the lock, which holds the writers off.
#[cold]
#[inline(never)]
fn read_slow(seg: &Segment, read: &mut dyn FnMut()) {
    let h = seg.header();
    let mut spins = 0u32;
    let mut odd_since: Option<Instant> = None;
    let mut raced = 0u32;
    loop {
        let before = h.seq.load(Ordering::Acquire);
        if before & 1 == 0 {
            read();
            fence(Ordering::Acquire);
            if h.seq.load(Ordering::Relaxed) == before {
                return;
            }
            odd_since = None;
            raced += 1;
            if raced >= MAX_RACES && read_locked(seg, read) {
                return;
            }
            continue;
        }
        // A write is in progress, or its writer died.
        let since = *odd_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_millis(1) {
            if held::by_this_thread(seg) {
                // No writer can be at work while this thread holds the lock: the one that left
                // the counter odd is gone.
                recover(seg);
            } else {
                recover_dead_writer(seg);
            }
            odd_since = Some(Instant::now());
        }
        backoff(&mut spins);
    }
}

/// [`read`]'s result is missing: `read_slow` returned without a run of `read` that counts, which
/// it never does.
#[cold]
#[inline(never)]
fn no_read() -> ! {
    unreachable!("a seqlock read ended without reading")
}

/// Runs `read` holding the segment's lock, after rolling back a dead writer's update if there is
/// one; `false` if the lock cannot be had now (a peer repairing it), in which case the caller
/// goes on trying without it. The lock is released even if `read` panics.
fn read_locked(seg: &Segment, read: &mut dyn FnMut()) -> bool {
    let h = seg.header();
    if held::by_this_thread(seg) {
        // This thread holds the lock already: no writer is at work.
        read();
        return true;
    }
    // A dead holder found here poisons the lock as for any locker (`lock::lock`); a dead
    // writer's update is rolled back, which needs no news.
    if lock::lock(h, Wait::Forever, || false).is_err() {
        return false;
    }
    struct Unlock<'a>(&'a Segment);
    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            lock::unlock(self.0.header());
        }
    }
    let _unlock = Unlock(seg);
    recover(seg);
    read();
    true
}

fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        std::hint::spin_loop();
    } else if *spins < 128 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// If no writer holds the lock while the counter is odd, the writer died: undo its write.
fn recover_dead_writer(seg: &Segment) {
    let h = seg.header();
    if lock::lock(h, Wait::Try, || false).is_err() {
        // Busy: a live writer is at work; keep waiting.
        return;
    }
    // Rolled back: the value is the one from before the dead writer's update, nothing to tell.
    recover(seg);
    lock::unlock(h);
}

#[cfg(test)]
mod model {
    //! An exhaustive check of the seqlock protocol: every interleaving of a writer doing two
    //! updates (and possibly dying after any step) with one reader taking a snapshot, with the
    //! reader's recovery of a dead writer. Sequentially consistent steps: the fences in `write`
    //! and `read` are what carry the same argument over to the hardware's memory model.

    use std::collections::HashSet;

    /// The writer's steps for update `k` (k = 1, 2): make seq odd, store a = k, store b = -k,
    /// make seq even.
    const WRITER_STEPS: u8 = 8;

    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    struct State {
        seq: u64,
        a: i64,
        b: i64,
        /// Writer program counter, 0..=WRITER_STEPS; `dead` stops it for good.
        wpc: u8,
        dead: bool,
        /// Writer holds the lock (from step 0 of an update to its last step).
        locked: bool,
        /// Reader: 0 read seq, 1 read a, 2 read b, 3 read seq again, 4 done.
        rpc: u8,
        /// Reader: in the slow path (after a failed first attempt), which waits for an even
        /// counter and recovers a dead writer's; the first attempt reads whatever it finds and
        /// lets the final comparison throw an odd start away.
        slow: bool,
        s1: u64,
        ra: i64,
        rb: i64,
    }

    fn writer_step(mut s: State) -> State {
        let k = i64::from(s.wpc / 4) + 1;
        match s.wpc % 4 {
            0 => {
                s.locked = true;
                s.seq |= 1;
            }
            1 => s.a = k,
            2 => s.b = -k,
            _ => {
                s.seq += 1;
                s.locked = false;
            }
        }
        s.wpc += 1;
        s
    }

    fn reader_step(mut s: State) -> State {
        match s.rpc {
            0 => {
                s.s1 = s.seq;
                if s.slow && s.s1 & 1 == 1 {
                    // Recovery: the lock is free while the counter is odd only if the writer died.
                    if !s.locked || s.dead {
                        s.seq += 1;
                    }
                } else {
                    s.rpc = 1;
                }
            }
            1 => {
                s.ra = s.a;
                s.rpc = 2;
            }
            2 => {
                s.rb = s.b;
                s.rpc = 3;
            }
            _ => {
                // `read`'s one comparison: even at the start, and unchanged.
                if s.seq == s.s1 & !1 {
                    s.rpc = 4;
                } else {
                    s.slow = true;
                    s.rpc = 0;
                }
            }
        }
        s
    }

    #[test]
    fn every_interleaving_returns_a_whole_update_or_ends_a_dead_writers() {
        let start = State {
            seq: 0,
            a: 0,
            b: 0,
            wpc: 0,
            dead: false,
            locked: false,
            rpc: 0,
            slow: false,
            s1: 0,
            ra: 0,
            rb: 0,
        };
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        let mut finished = 0;
        while let Some(s) = stack.pop() {
            if !seen.insert(s) {
                continue;
            }
            let writer_can = !s.dead && s.wpc < WRITER_STEPS;
            if s.rpc == 4 {
                finished += 1;
                let whole = [(0, 0), (1, -1), (2, -2)].contains(&(s.ra, s.rb));
                // A torn result is allowed only after the writer died mid-update, and then the
                // counter must be even again (the dead write was ended).
                let torn_after_death = s.dead && s.seq % 2 == 0;
                assert!(whole || torn_after_death, "torn read {s:?}");
                continue;
            }
            // The reader is never stuck: with the writer finished or dead, it completes in a
            // bounded number of its own steps (at most one recovery and one retry).
            if !writer_can {
                // Run the reader alone: it must finish.
                let mut r = s;
                for _ in 0..16 {
                    if r.rpc == 4 {
                        break;
                    }
                    r = reader_step(r);
                }
                assert_eq!(r.rpc, 4, "reader cannot finish: {s:?}");
            }
            stack.push(reader_step(s));
            if writer_can {
                stack.push(writer_step(s));
                // The writer may be killed before any of its steps.
                stack.push(State { dead: true, ..s });
            }
        }
        // Every reachable combination was visited; make sure that is many, not a short cut.
        assert!(
            seen.len() > 400 && finished >= 10,
            "explored {} states",
            seen.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::{AcqRel, Relaxed};

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::TryLockError;

    use super::{read, MAX_RACES};
    use crate::lock::{self, Wait};
    use crate::{Array, Layout, Shared, SharedLayout, TypeCode};

    /// Makes the counter move on, as a whole write by another thread would, if the lock is free
    /// to this thread; returns whether it did (it is not when the read runs under the lock).
    fn write_meanwhile(a: &Array<u64>) -> bool {
        let h = a.segment().header();
        // Held (by the read under the lock, on this very thread): a writer would wait. (Taking
        // it here would take it over, as from a peer that wrote this thread's name.)
        if h.lock.word.load(Relaxed) != 0 || lock::lock(h, Wait::Try, || true).is_err() {
            return false;
        }
        h.seq.fetch_add(2, AcqRel);
        lock::unlock(h);
        true
    }

    /// A read that loses every race (a write lands during each run) is done under the lock after
    /// `MAX_RACES` lost races — the fast attempt, then the slow path's — and the lock is free
    /// again afterwards.
    #[test]
    fn a_read_that_always_loses_ends_under_the_lock_and_releases_it() {
        let name = format!("shmt-seqlock-races-{}", std::process::id());
        let a = Array::<u64>::create(&name, &[7, 8]).unwrap();
        let (mut runs, mut unlocked) = (0u32, 0u32);
        let got = read(a.segment(), || {
            runs += 1;
            if write_meanwhile(&a) {
                unlocked += 1;
            }
            (a[0].load(Relaxed), a[1].load(Relaxed))
        });
        assert_eq!(got, (7, 8));
        assert_eq!((runs, unlocked), (MAX_RACES + 2, MAX_RACES + 1));
        let h = a.segment().header();
        assert!(
            lock::lock(h, Wait::Try, || false).is_ok(),
            "the read kept the lock"
        );
        lock::unlock(h);
    }

    /// A value whose `store_changed` stores the new value and then panics if it is 666: a write
    /// that panics inside its window, after a store.
    struct Bomb(u64);

    // SAFETY: the twin is one `AtomicU64`, described by the `u64` layout; `Bomb` is a `u64`.
    unsafe impl SharedLayout for Bomb {
        type Atomic = AtomicU64;
        const LAYOUT: Layout = Layout::primitive(TypeCode::U64);

        fn load(atomic: &AtomicU64, order: Ordering) -> Self {
            Bomb(atomic.load(order))
        }

        fn store(atomic: &AtomicU64, value: &Self, order: Ordering) {
            atomic.store(value.0, order)
        }

        fn store_changed(atomic: &AtomicU64, _old: &Self, new: &Self, order: Ordering) {
            atomic.store(new.0, order);
            assert_ne!(new.0, 666, "a store that panics after storing");
        }
    }

    /// A write that panics inside its window (the counter odd, a store done) is undone from its
    /// journal as the panic goes on, the counter is even again, and the lock is poisoned and free.
    #[test]
    fn a_write_that_panics_after_a_store_is_undone_and_poisons() {
        let name = format!("shmt-seqlock-bomb-{}", std::process::id());
        let s = Shared::<Bomb>::create(&name, Bomb(7)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.update(|v| v.0 = 666)));
        assert!(r.is_err(), "the store did not panic");
        assert_eq!(
            s.segment().header().seq.load(Relaxed) % 2,
            0,
            "counter left odd"
        );
        assert_eq!(s.snapshot().0, 7, "the half-done write was not undone");
        assert!(s.is_poisoned());
        assert!(matches!(s.try_lock(), Err(TryLockError::Poisoned(_))));
    }

    /// A read under the lock that panics releases the lock as the panic goes on.
    #[test]
    fn a_panic_in_a_read_under_the_lock_releases_it() {
        let name = format!("shmt-seqlock-panic-{}", std::process::id());
        let a = Array::<u64>::create_zeroed(&name, 1).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read(a.segment(), || {
                if !write_meanwhile(&a) {
                    panic!("under the lock");
                }
            })
        }));
        assert!(r.is_err(), "the read did not get to the lock");
        let h = a.segment().header();
        assert!(
            lock::lock(h, Wait::Try, || false).is_ok(),
            "the panic left the lock held"
        );
        lock::unlock(h);
    }
}
