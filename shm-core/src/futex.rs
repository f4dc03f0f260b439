//! Futex calls on words in a segment: always shared futexes (no `FUTEX_PRIVATE_FLAG`), since the
//! waiters and wakers are in different processes, each with its own mapping of the word.
//!
//! The kernel keys a shared futex by the page and offset it lies in, so every process's mapping
//! of the same word meets in one wait queue. It only reads the word (to compare it), atomically,
//! and never follows anything stored in it.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The futex half of a 64-bit word: its low 32 bits, wherever the byte order puts them.
fn low_half(word: &AtomicU64) -> *const u32 {
    let at = if cfg!(target_endian = "little") { 0 } else { 4 };
    // The pointer is only handed to the kernel: Rust code never accesses the word as a `u32`,
    // which would mix access sizes on one atomic.
    (word.as_ptr() as *const u8).wrapping_add(at) as *const u32
}

/// Sleeps while the `u32` at `addr` holds `expected`, at most `timeout`.
///
/// `addr` must be 4-aligned and point into memory that stays mapped during the call (the kernel
/// reports EFAULT otherwise, and touches nothing).
fn sys_wait(addr: *const u32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the kernel reads the `u32` at `addr` (4-aligned and mapped, by the callers'
    // arguments below) with an atomic load to compare it with `expected`, and reads `ts`, a valid
    // relative timeout that outlives the call; it writes nothing. A bad address would only make
    // it fail with EFAULT.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

fn sys_wake(addr: *const u32, n: i32) {
    // SAFETY: FUTEX_WAKE uses the address only as the key of a wait queue; it neither reads nor
    // writes through it.
    unsafe {
        libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAKE, n);
    }
}

/// Sleeps while the low 32 bits of `word` hold `expected`, for at most `timeout` (or until
/// woken, or a signal). Returns at once if they hold another value. Spurious returns are
/// possible: callers re-check what they wait for.
pub(crate) fn wait_low(word: &AtomicU64, expected: u32, timeout: Duration) {
    // `word` is 8-aligned and alive for the call, so its low half is 4-aligned and mapped.
    sys_wait(low_half(word), expected, timeout)
}

/// Wakes at most `n` processes or threads sleeping in [`wait_low`] on `word`.
pub(crate) fn wake_low(word: &AtomicU64, n: i32) {
    sys_wake(low_half(word), n)
}
