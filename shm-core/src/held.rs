//! The locks this thread holds: a second `lock()` of one of them is a bug of the caller
//! (reported by a panic, not a deadlock), and a reader that holds the lock knows no writer is at
//! work.

use std::cell::RefCell;

use crate::segment::Segment;

thread_local! {
    /// The identities of the segments whose lock this thread holds.
    static HELD: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
}

/// The segment's identity: the object's device and inode, the same for every handle and mapping
/// of it in this process.
fn key(seg: &Segment) -> (u64, u64) {
    seg.identity()
}

/// Records that this thread holds `seg`'s lock.
pub(crate) fn note_held(seg: &Segment) {
    HELD.with(|held| held.borrow_mut().push(key(seg)));
}

/// Records that this thread released `seg`'s lock.
pub(crate) fn note_released(seg: &Segment) {
    let k = key(seg);
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if let Some(i) = held.iter().rposition(|&a| a == k) {
            held.swap_remove(i);
        }
    });
}

/// Whether this thread holds `seg`'s lock.
pub(crate) fn by_this_thread(seg: &Segment) -> bool {
    let k = key(seg);
    HELD.with(|held| held.borrow().contains(&k))
}
