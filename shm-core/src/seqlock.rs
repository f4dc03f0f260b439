//! The seqlock that makes `update` and `snapshot` consistent across processes.
//!
//! Writers hold the segment's lock, make the header's sequence counter odd, store, and make it
//! even again. Readers never write and never lock in the common case: they read the counter, the
//! fields (relaxed atomic loads), and the counter again, and retry if it was odd or changed.
//!
//! A writer killed while the counter is odd would make readers wait forever; instead, a reader
//! that has seen it odd for a while tries the lock: if it gets it, no writer is at work, so the
//! writer is dead. The reader makes the counter even (the fields stay as the dead writer left
//! them) and marks the lock poisoned so the next locker is told.

use std::cell::RefCell;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use crate::header::Header;
use crate::lock::{self, Acquired, Wait};

thread_local! {
    /// Headers whose lock this thread holds, to catch a `snapshot` inside an `update` of the
    /// same segment (it would wait for itself).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Records that this thread holds `h`'s lock.
pub(crate) fn note_held(h: &Header) {
    HELD.with(|held| held.borrow_mut().push(h as *const Header as usize));
}

/// Records that this thread released `h`'s lock.
pub(crate) fn note_released(h: &Header) {
    let addr = h as *const Header as usize;
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if let Some(i) = held.iter().rposition(|&a| a == addr) {
            held.swap_remove(i);
        }
    });
}

fn held_by_this_thread(h: &Header) -> bool {
    let addr = h as *const Header as usize;
    HELD.with(|held| held.borrow().contains(&addr))
}

/// Ends a write: the counter goes even even if the closure panics (then the lock is poisoned,
/// as std's `Mutex` is by a panic).
struct EndWrite<'a> {
    h: &'a Header,
    odd: u64,
}

impl Drop for EndWrite<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock::poison(self.h);
        }
        self.h
            .seq
            .store(self.odd.wrapping_add(1), Ordering::Release);
    }
}

/// Runs `write` as a seqlock write. The caller holds the segment's lock.
pub(crate) fn write<R>(h: &Header, write: impl FnOnce() -> R) -> R {
    // Odd already if a writer died mid-write: keep it odd, and end even.
    let odd = h.seq.load(Ordering::Relaxed) | 1;
    h.seq.store(odd, Ordering::Relaxed);
    // Orders the odd counter before every store below: a reader that sees any of them sees an
    // odd or newer counter on its second read.
    fence(Ordering::Release);
    let end = EndWrite { h, odd };
    let r = write();
    drop(end);
    r
}

/// Runs `read` until it ran while no write was in progress, and returns its result.
///
/// # Panics
/// If this thread itself holds the segment's lock (inside `update`, or with a `Guard`) while a
/// write is in progress: the read would wait for itself.
pub(crate) fn read<R>(name: &str, h: &Header, mut read: impl FnMut() -> R) -> R {
    let mut spins = 0u32;
    let mut odd_since: Option<Instant> = None;
    loop {
        let before = h.seq.load(Ordering::Acquire);
        if before & 1 == 0 {
            let r = read();
            // Orders the loads in `read` before the second counter read.
            fence(Ordering::Acquire);
            if h.seq.load(Ordering::Relaxed) == before {
                return r;
            }
            odd_since = None;
            continue;
        }
        // A write is in progress, or its writer died.
        let since = *odd_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_millis(1) {
            assert!(
                !held_by_this_thread(h),
                "segment `{name}`: snapshot() called while this thread holds its lock (inside update() or with a Guard)"
            );
            recover_dead_writer(h);
            odd_since = Some(Instant::now());
        }
        backoff(&mut spins);
    }
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

/// If no writer holds the lock while the counter is odd, the writer died: end its write.
fn recover_dead_writer(h: &Header) {
    let Ok(acquired) = lock::lock(h, Wait::Try) else {
        // Busy: a live writer is at work; keep waiting.
        return;
    };
    let seq = h.seq.load(Ordering::Acquire);
    if seq & 1 == 1 {
        h.seq.store(seq.wrapping_add(1), Ordering::Release);
        lock::poison(h);
    } else if acquired == Acquired::Poisoned {
        // Not ours to consume: leave the news for the next real locker.
        lock::poison(h);
    }
    lock::unlock(h);
}
