//! The locks this thread holds: a second `lock()` of one of them is a bug of the caller
//! (reported by a panic, not a deadlock), a lock word that names this thread while this thread
//! does not hold it was written by a peer, and a reader that holds the lock knows no writer is at
//! work.
//!
//! Noted on every lock and unlock, so kept cheap: the first few in thread-locals without
//! destructors (a plain thread-local access), any more in a vector.

use std::cell::{Cell, RefCell};
use std::hash::{DefaultHasher, Hash, Hasher};

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

/// The key of the object with `identity` (device, inode). An object on a device without a
/// major number (tmpfs, such as `/dev/shm`, which holds every segment) whose minor number is
/// below 2^20 and inode below 2^43 — every segment, unless its tmpfs numbers inodes with 64
/// bits — gets both packed into the word, one-to-one, top bit clear. Any other gets a 63-bit
/// hash of both with the top bit set: two such keys could be equal, with a chance of 2^-63 for
/// two objects a thread deals with.
pub(crate) fn key_of(identity: (u64, u64)) -> Key {
    const INODE_BITS: u32 = 43;
    let (dev, ino) = identity;
    let (major, minor) = (libc::major(dev), u64::from(libc::minor(dev)));
    if major == 0 && minor < 1 << (63 - INODE_BITS) && ino < 1 << INODE_BITS {
        return minor << INODE_BITS | ino;
    }
    let mut h = DefaultHasher::new();
    identity.hash(&mut h);
    1 << 63 | h.finish() >> 1
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
    fn keys_of_tmpfs_objects_are_one_to_one_and_others_are_hashed_apart() {
        let dev = |major, minor| libc::makedev(major, minor);
        let packed = [
            (dev(0, 0), 0),
            (dev(0, 0), 1),
            (dev(0, 1), 0),
            (dev(0, 27), 7),
            // A minor number of 256 and more, as on a busy host's container mounts.
            (dev(0, 300), 7),
            (dev(0, (1 << 20) - 1), (1 << 43) - 1),
        ];
        let hashed = [
            (dev(0, 1 << 20), 5),
            (dev(0, 27), 1 << 43),
            (dev(8, 1), 5),
            (u64::MAX, u64::MAX),
        ];
        let keys: Vec<u64> = packed.iter().chain(&hashed).map(|&id| key_of(id)).collect();
        for (i, (a, id)) in keys.iter().zip(packed.iter().chain(&hashed)).enumerate() {
            assert_eq!(key_of(*id), *a, "{id:?} keyed again");
            for b in &keys[i + 1..] {
                assert_ne!(a, b, "{id:?}");
            }
        }
        assert!(keys[..packed.len()].iter().all(|k| k >> 63 == 0));
        assert!(keys[packed.len()..].iter().all(|k| k >> 63 == 1));
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
