//! Futex calls on words in a segment, for the lock (`lock.rs`) and for waiting (`wait.rs`):
//! always shared futexes (no `FUTEX_PRIVATE_FLAG`), since the waiters and wakers are in
//! different processes, each with its own mapping of the word.
//!
//! The kernel keys a shared futex by the page and offset it lies in, so every process's mapping
//! of the same word meets in one wait queue. It only reads the word (to compare it), atomically,
//! and never follows anything stored in it.

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

/// The futex half of a 64-bit word: its low 32 bits, wherever the byte order puts them.
fn low_half(word: &AtomicU64) -> *const u32 {
    let at = if cfg!(target_endian = "little") { 0 } else { 4 };
    // The pointer is only handed to the kernel: Rust code never accesses the word as a `u32`,
    // which would mix access sizes on one atomic.
    (word.as_ptr() as *const u8).wrapping_add(at) as *const u32
}

/// `futex(2)` on `addr`: `FUTEX_WAIT` (sleep while `*addr == val`, at most `limit`) or
/// `FUTEX_WAKE` (wake up to `val` sleepers). Shared, not private: the word is in a mapping
/// other processes share. Returns the system call's result.
///
/// `addr` must be 4-aligned and point into memory that stays mapped during the call (the kernel
/// reports EFAULT otherwise, and touches nothing).
fn futex(addr: *const u32, op: libc::c_int, val: u32, limit: Option<Duration>) -> libc::c_long {
    let limit = limit.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let limit_ptr = limit
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `addr` is 4-aligned and mapped for the whole call (the callers below derive it
    // from a live atomic whose borrow keeps the mapping); the kernel only reads the `u32` there
    // atomically (FUTEX_WAIT), which is no data race with the atomics other threads use on it,
    // or uses the address only as the key of a wait queue (FUTEX_WAKE). `limit_ptr` is null or
    // points to a valid timespec on this stack frame, which FUTEX_WAIT reads as a relative
    // timeout and FUTEX_WAKE ignores; the last two arguments (uaddr2, val3) are unused by both
    // operations. The call writes nothing in this process's memory; a bad address would only
    // make it fail with EFAULT.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            op,
            val,
            limit_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    }
}

/// Sleeps while the `u32` at `addr` holds `expected`, at most `limit`, unless woken. Whatever
/// ends the sleep (a wake, the value differing already, the time, a signal), the caller checks
/// again. A kernel that refuses the call (no futexes, say) gets a plain sleep instead, so that a
/// waiter never spins.
fn wait_at(addr: *const u32, expected: u32, limit: Duration) {
    if futex(addr, libc::FUTEX_WAIT, expected, Some(limit)) == -1 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        if !matches!(errno, Some(libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR)) {
            std::thread::sleep(limit);
        }
    }
}

/// Sleeps while `word` holds `expected`, for at most `limit` (see [`wait_at`]): spurious
/// returns are possible, callers re-check what they wait for.
pub(crate) fn wait(word: &AtomicU32, expected: u32, limit: Duration) {
    // `word` is 4-aligned and alive (so mapped) for the call.
    wait_at(word.as_ptr(), expected, limit)
}

/// Wakes at most `n` processes or threads sleeping in [`wait`] on `word`.
pub(crate) fn wake(word: &AtomicU32, n: i32) {
    futex(word.as_ptr(), libc::FUTEX_WAKE, n as u32, None);
}

/// Sleeps while the low 32 bits of `word` hold `expected`, for at most `limit` (see
/// [`wait_at`]).
pub(crate) fn wait_low(word: &AtomicU64, expected: u32, limit: Duration) {
    // `word` is 8-aligned and alive for the call, so its low half is 4-aligned and mapped.
    wait_at(low_half(word), expected, limit)
}

/// Wakes at most `n` processes or threads sleeping in [`wait_low`] on `word`.
pub(crate) fn wake_low(word: &AtomicU64, n: i32) {
    futex(low_half(word), libc::FUTEX_WAKE, n as u32, None);
}
