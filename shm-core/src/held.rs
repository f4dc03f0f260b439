//! The locks this thread holds: a second `lock()` of one of them is a bug of the caller
//! (reported by a panic, not a deadlock), a lock word that names this thread while this thread
//! does not hold it was written by a peer, and a reader that holds the lock knows no writer is at
//! work.
//!
//! Noted on every lock and unlock, so kept cheap: the first few in thread-locals without
//! destructors (a plain thread-local access), any more in a vector.

use std::cell::{Cell, RefCell};
use std::sync::{Mutex, PoisonError};

use crate::segment::Segment;

/// Locks noted without the vector: a thread rarely holds more at once.
const INLINE: usize = 8;

/// A segment's identity in one word (`key_of`): one store to note a lock, one compare to find it.
type Key = u64;

thread_local! {
    /// How many locks this thread holds: the first `INLINE` in `SLOTS`, the rest in `MORE`.
    static LEN: Cell<usize> = const { Cell::new(0) };
    static SLOTS: [Cell<Key>; INLINE] = const { [const { Cell::new(0) }; INLINE] };
    static MORE: RefCell<Vec<Key>> = const { RefCell::new(Vec::new()) };
}

/// The segment's key: its identity, the same for every handle and mapping of it in this process.
#[inline(always)]
fn key(seg: &Segment) -> Key {
    seg.lock_key()
}

/// The key of the object with `identity` (device, inode), one-to-one: both packed into the word
/// when they fit (the device below 2^20, the inode below 2^43: every object of a tmpfs such as
/// `/dev/shm` unless its inode numbers are 64-bit), else the place of the identity in a list of
/// such, with the top bit set.
pub(crate) fn key_of(identity: (u64, u64)) -> Key {
    const INODE_BITS: u32 = 43;
    let (dev, ino) = identity;
    if dev < 1 << (63 - INODE_BITS) && ino < 1 << INODE_BITS {
        return dev << INODE_BITS | ino;
    }
    static OTHERS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    let mut others = OTHERS.lock().unwrap_or_else(PoisonError::into_inner);
    let at = others
        .iter()
        .position(|&o| o == identity)
        .unwrap_or_else(|| {
            others.push(identity);
            others.len() - 1
        });
    1 << 63 | at as u64
}

/// Records that this thread holds `seg`'s lock.
#[inline]
pub(crate) fn note_held(seg: &Segment) {
    let k = key(seg);
    let len = LEN.with(Cell::get);
    if len < INLINE {
        SLOTS.with(|s| s[len].set(k));
    } else {
        note_more(k, len);
    }
    LEN.with(|l| l.set(len + 1));
}

#[cold]
fn note_more(k: Key, len: usize) {
    MORE.with(|m| {
        let mut m = m.borrow_mut();
        // What a fork left behind (see `forget_all`) is not this thread's.
        m.truncate(len - INLINE);
        m.push(k);
    });
}

/// Forgets every lock noted: what a forked child does, whose thread holds none of the locks its
/// parent's thread held. Touches one thread-local without a destructor (safe in a fork
/// handler); the vector's stale entries are dropped by the next `note_held` that reaches it.
pub(crate) fn forget_all() {
    LEN.with(|l| l.set(0));
}

/// Records that this thread released `seg`'s lock.
#[inline]
pub(crate) fn note_released(seg: &Segment) {
    let k = key(seg);
    let len = LEN.with(Cell::get);
    // The common case: released in the reverse order of locking, few held.
    if (1..=INLINE).contains(&len) && SLOTS.with(|s| s[len - 1].get()) == k {
        LEN.with(|l| l.set(len - 1));
        return;
    }
    release_elsewhere(k, len);
}

#[cold]
fn release_elsewhere(k: Key, len: usize) {
    if len > INLINE {
        let found = MORE.with(|m| {
            let mut m = m.borrow_mut();
            m.truncate(len - INLINE);
            let i = m.iter().rposition(|&a| a == k)?;
            m.swap_remove(i);
            Some(())
        });
        if found.is_some() {
            LEN.with(|l| l.set(len - 1));
            return;
        }
    }
    let inline = len.min(INLINE);
    let Some(i) = SLOTS.with(|s| s[..inline].iter().rposition(|a| a.get() == k)) else {
        return;
    };
    // Fill the hole with the last one noted.
    let last = if len > INLINE {
        MORE.with(|m| {
            let mut m = m.borrow_mut();
            m.truncate(len - INLINE);
            m.pop()
        })
    } else {
        Some(SLOTS.with(|s| s[len - 1].get()))
    };
    if let Some(last) = last {
        SLOTS.with(|s| s[i].set(last));
    }
    LEN.with(|l| l.set(len - 1));
}

/// Whether this thread holds `seg`'s lock.
pub(crate) fn by_this_thread(seg: &Segment) -> bool {
    let k = key(seg);
    let len = LEN.with(Cell::get);
    SLOTS.with(|s| s[..len.min(INLINE)].iter().any(|a| a.get() == k))
        || (len > INLINE && MORE.with(|m| m.borrow().iter().take(len - INLINE).any(|&a| a == k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Array;

    #[test]
    fn keys_are_one_to_one_whether_packed_or_listed() {
        let ids = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0x1f, 7),
            ((1 << 20) - 1, (1 << 43) - 1),
            // Too large to pack: listed.
            (1 << 20, 5),
            (0x1f, 1 << 43),
            (u64::MAX, u64::MAX),
        ];
        let keys: Vec<u64> = ids.iter().map(|&id| key_of(id)).collect();
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(key_of(ids[i]), *a, "{:?} keyed again", ids[i]);
            for (j, b) in keys.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "{:?} and {:?}", ids[i], ids[j]);
            }
        }
        assert!(keys[..5].iter().all(|k| k >> 63 == 0));
        assert!(keys[5..].iter().all(|k| k >> 63 == 1));
    }

    #[test]
    fn locks_held_in_any_number_and_released_in_any_order_are_tracked() {
        let pid = std::process::id();
        let segs: Vec<Array<u32>> = (0..INLINE + 4)
            .map(|i| Array::<u32>::create(&format!("shmt-held-{pid}-{i}"), &[0]).unwrap())
            .collect();
        let held = |i: usize| by_this_thread(segs[i].segment());
        for s in &segs {
            note_held(s.segment());
        }
        assert!((0..segs.len()).all(held));
        // Release from the middle of the inline slots, from the vector, and the last one.
        for i in [2, INLINE + 1, segs.len() - 1, 0] {
            note_released(segs[i].segment());
            assert!(!held(i), "{i} still noted");
        }
        let left: Vec<usize> = (0..segs.len()).filter(|&i| held(i)).collect();
        assert_eq!(left.len(), segs.len() - 4);
        for &i in left.iter().rev() {
            note_released(segs[i].segment());
        }
        assert!((0..segs.len()).all(|i| !held(i)));
        assert_eq!(LEN.with(Cell::get), 0);
        // Another thread holds nothing of this one's.
        note_held(segs[0].segment());
        std::thread::scope(|t| {
            t.spawn(|| assert!(!by_this_thread(segs[0].segment())));
        });
        note_released(segs[0].segment());
    }
}
