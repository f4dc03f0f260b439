//! The architecture-specific bulk copies: on x86_64 processors with AVX, 16-byte SSE accesses,
//! which those processors guarantee to be single-copy atomic. Elsewhere (other architectures, no
//! AVX, Miri) [`available`] is false and the bulk copies go element by element.
//!
//! Each copy takes the segment's side as a [`Region`] and copies its 16-byte-aligned middle in
//! 16-byte pieces and its ends cell by cell, as relaxed atomics of the primitives' width.

#[cfg(all(target_arch = "x86_64", not(miri)))]
pub(super) use x86_64::{available, copy, copy_to_journal, load, store};

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
pub(super) use portable::{available, copy, copy_to_journal, load, store};

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86_64 {
    use core::arch::asm;

    use crate::cell::{Region, Width};

    /// Whether the processor guarantees that aligned 16-byte SSE loads and stores are atomic.
    #[inline]
    pub(in crate::bulk) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx")
    }

    /// Copies out of a segment at least this long bypass the caches for their destination (as
    /// `memcpy` implementations do above a threshold of their own): such a copy does not stay
    /// in the L2 cache anyway, and a cached store must first read each line it overwrites.
    const STREAMING: usize = 4 << 20;

    /// `region` cut where its 16-byte-aligned middle starts and ends: the head (less than 16
    /// bytes), the body (whole 16-byte pieces, 16-byte aligned) and the tail (less than 16).
    /// The ends are often empty (an array's payload is 128-byte aligned); the copies then skip
    /// them, and the width dispatch of the cell loops with them.
    ///
    /// # Panics
    /// If the region does not start and end on a multiple of `unit`, or the processor lacks AVX.
    #[inline]
    fn pieces(region: Region<'_>, unit: Width) -> (Region<'_>, Region<'_>, Region<'_>) {
        assert!(available(), "16-byte copies on a processor without AVX");
        let (addr, len) = (region.as_ptr() as usize, region.len());
        assert!(
            unit.divides(addr) && unit.divides(len),
            "a bulk copy of cells that are not whole or not aligned"
        );
        let head = ((16 - (addr & 15)) & 15).min(len);
        let body = (len - head) & !15;
        let (head, rest) = region.split_at(head);
        let (body, tail) = rest.split_at(body);
        (head, body, tail)
    }

    /// Relaxed atomic loads of the `unit`-wide primitives of `shared`, written to `private` as
    /// they lie in memory.
    ///
    /// # Safety
    /// Every primitive of `shared` is `unit` wide, the width of every access to it (as for
    /// [`Region::cell`]).
    ///
    /// # Panics
    /// If the lengths differ, `shared` does not start and end on a multiple of `unit`, or the
    /// processor lacks AVX.
    pub(in crate::bulk) unsafe fn load(shared: Region<'_>, private: &mut [u8], unit: Width) {
        assert_eq!(shared.len(), private.len(), "bulk copy of another length");
        let (head, body, tail) = pieces(shared, unit);
        let (private_head, rest) = private.split_at_mut(head.len());
        let (private_body, private_tail) = rest.split_at_mut(body.len());
        if head.len() > 0 {
            // SAFETY: the caller's, for the ends.
            unsafe { head.load_into(private_head, unit) };
        }
        let (src, dst) = (body.as_ptr().cast_const(), private_body.as_mut_ptr());
        // SAFETY: `body` is 16-byte aligned and whole 16-byte pieces of the region (`pieces`),
        // whose primitives are all `unit` wide and naturally aligned (the caller's word; the
        // region starts on a multiple of `unit`); `private_body` is as many bytes that we hold
        // `&mut`, so valid for writes and apart from the region (whose bytes only atomics
        // access); the processor has AVX (`pieces` asserted it). The streaming loop is used only
        // where `dst` is 16-byte aligned (checked).
        unsafe {
            if body.len() >= STREAMING && dst as usize % 16 == 0 {
                load16_streaming(src, dst, body.len() / 16);
            } else {
                load16(src, dst, body.len() / 16);
            }
        }
        if tail.len() > 0 {
            // SAFETY: the caller's, for the ends.
            unsafe { tail.load_into(private_tail, unit) };
        }
    }

    /// Relaxed atomic stores of the `unit`-wide values `private` holds, as they lie in memory,
    /// into the primitives of `shared`.
    ///
    /// # Safety
    /// As for [`load`].
    ///
    /// # Panics
    /// As for [`load`].
    pub(in crate::bulk) unsafe fn store(private: &[u8], shared: Region<'_>, unit: Width) {
        assert_eq!(shared.len(), private.len(), "bulk copy of another length");
        let (head, body, tail) = pieces(shared, unit);
        let (private_head, rest) = private.split_at(head.len());
        let (private_body, private_tail) = rest.split_at(body.len());
        if head.len() > 0 {
            // SAFETY: the caller's, for the ends.
            unsafe { head.store_from(private_head, unit) };
        }
        // SAFETY: as in `load`, the other way: `body` (the destination, 16-byte aligned) only
        // atomics access, so writing it through a pointer derived from a shared borrow is
        // allowed; `private_body` is as many bytes we hold `&` to, only read.
        unsafe { store16(private_body.as_ptr(), body.as_ptr(), body.len() / 16) };
        if tail.len() > 0 {
            // SAFETY: the caller's, for the ends.
            unsafe { tail.store_from(private_tail, unit) };
        }
    }

    /// Relaxed atomic loads of the `unit`-wide primitives of `from`, stored with relaxed atomic
    /// stores into those of `to`.
    ///
    /// # Safety
    /// As for [`load`], for both regions.
    ///
    /// # Panics
    /// If the lengths differ, the two are not at the same offset modulo 16, either does not
    /// start and end on a multiple of `unit`, or the processor lacks AVX.
    pub(in crate::bulk) unsafe fn copy(from: Region<'_>, to: Region<'_>, unit: Width) {
        // SAFETY: the caller's; not streaming.
        unsafe { copy_split(from, to, unit, false) }
    }

    /// [`copy`] into a journal area, which only the holder of the segment's lock accesses: the
    /// middle with non-temporal stores, which do not read the lines they overwrite and leave
    /// the caches to the payload, which the write stores next; nothing reads the journal again
    /// unless the writer dies.
    ///
    /// # Safety
    /// As for [`copy`]; and only the holder of the segment's lock accesses `to`.
    ///
    /// # Panics
    /// As for [`copy`].
    pub(in crate::bulk) unsafe fn copy_to_journal(from: Region<'_>, to: Region<'_>, unit: Width) {
        // SAFETY: the caller's, including that only this thread accesses `to` (streaming).
        unsafe { copy_split(from, to, unit, true) }
    }

    /// [`copy`] (`streaming` false) or [`copy_to_journal`] (`streaming` true): the unaligned
    /// ends element by element, the 16-aligned middle with 16-byte accesses.
    ///
    /// # Safety
    /// As for [`copy`]; with `streaming`, also as for [`copy_to_journal`].
    unsafe fn copy_split(from: Region<'_>, to: Region<'_>, unit: Width, streaming: bool) {
        assert_eq!(from.len(), to.len(), "bulk copy of another length");
        assert!(
            (from.as_ptr() as usize ^ to.as_ptr() as usize) & 15 == 0,
            "16-byte copies between regions at different offsets modulo 16"
        );
        let (head, body, tail) = pieces(from, unit);
        let (to_head, rest) = to.split_at(head.len());
        let (to_body, to_tail) = rest.split_at(body.len());
        if head.len() > 0 {
            // SAFETY: the caller's, for the ends.
            unsafe { head.copy_to(to_head, unit) };
        }
        let chunks = body.len() / 16;
        if streaming {
            // SAFETY: as in `load` for `from`; `to_body` is 16-byte aligned (at `from`'s offset
            // modulo 16, asserted), and no access races with the stores into it: only the
            // lock's holder, this thread, accesses it (the caller's), and the `sfence` at the
            // end orders them before any later store of this thread, such as the one that
            // commits the journal entry.
            unsafe { copy16_streaming(body.as_ptr(), to_body.as_ptr(), chunks) };
        } else {
            // SAFETY: as in `load`, with both sides regions of `unit`-wide primitives: `to_body`
            // is 16-byte aligned too, being at `from`'s offset modulo 16 (asserted); writing it
            // through a pointer derived from a shared borrow is allowed, as only atomics access
            // it.
            unsafe { copy16(body.as_ptr(), to_body.as_ptr(), chunks) };
        }
        if tail.len() > 0 {
            // SAFETY: the caller's, for the ends.
            unsafe { tail.copy_to(to_tail, unit) };
        }
    }

    // Why the loops below are sound.
    //
    // Rust's memory model has no vector instructions; what counts is what an `asm!` block does
    // to the abstract machine. The block is opaque: without `nomem` or `readonly` the compiler
    // must assume it reads and writes any memory its pointer operands can reach, and it moves
    // no memory access across it. It is sound if its effect is one that Rust operations, which
    // would themselves be free of undefined behaviour, could have had: the argument that
    // taiki-e's atomic-maybe-uninit makes for atomics written in inline assembly, and that
    // "P1478: Byte-wise atomic memcpy" (implemented for Rust by taiki-e's atomic-memcpy) makes
    // for the copies inside a seqlock.
    //
    // Each `movdqa` here is a 16-byte access to a 16-byte-aligned address of cacheable
    // (write-back) memory. On a processor that reports AVX such an access is single-copy
    // atomic: Intel SDM vol. 3A §9.1.1 ("Processors that enumerate support for Intel AVX ...
    // guarantee that the 16-byte memory operations performed by the following instructions
    // will always be carried out atomically: MOVAPD, MOVAPS, and MOVDQA"), and AMD APM vol. 2
    // §7.3.2 (AVX processors "extend the atomicity for cacheable, naturally-aligned single loads
    // or stores from a quadword to a double quadword"). An aligned 16-byte window holds only
    // whole primitives (each is 1, 2, 4 or 8 bytes wide and naturally aligned, and its width
    // divides 16), so one such access cannot be told apart from relaxed atomic accesses of each
    // primitive in the window, each of the width that every other access in this crate (and
    // every process following docs/FORMAT.md) uses for it. Every access to the segment is thus
    // an atomic access of the right width: no non-atomic access and no mixed-size access to
    // shared memory, so no data race. Relaxed accesses need no order among themselves; the
    // seqlock's fences around the copy order it against the sequence counter.
    //
    // Shared memory is only ever accessed with `movdqa`. The private side (`movdqu`, any
    // alignment; or `movntdq`) is memory the caller holds `&mut` (loads) or `&` (stores) to,
    // which no other thread touches meanwhile: plain accesses, no race. `movntdq` stores are
    // weakly ordered; the `sfence` after them orders them before every later store of this
    // thread (such as the release that hands the buffer to another thread), so they act as the
    // ordinary stores they stand for.
    //
    // `rep movsb` would be faster to write but cannot be argued this way: fast-string
    // operations document no atomicity for any piece they move and may store out of order.

    /// Defines `unsafe fn $name(src, dst, chunks)`, which copies `chunks` 16-byte pieces from
    /// `src` to `dst` with the instructions `$load` and `$store`, 64 bytes an iteration, then
    /// runs `$end`.
    macro_rules! copy16 {
        ($(#[$doc:meta])* $name:ident, $load:literal, $store:literal, $end:literal) => {
            $(#[$doc])*
            unsafe fn $name(src: *const u8, dst: *mut u8, chunks: usize) {
                // SAFETY: see the comment above `copy16!`; the caller's contract (below) makes
                // every address the block touches, `src + k` or `dst + k` for
                // `k < 16 * chunks`, part of its ranges, and every `movdqa` or `movntdq`
                // address 16-aligned (the pointer is, and it advances by 16). The block does
                // not touch the stack and clobbers only the registers declared (and flags).
                unsafe {
                    asm!(
                        "cmp {n}, 4",
                        "jb 3f",
                        "2:",
                        concat!($load, " {a}, xmmword ptr [{src}]"),
                        concat!($load, " {b}, xmmword ptr [{src} + 16]"),
                        concat!($load, " {c}, xmmword ptr [{src} + 32]"),
                        concat!($load, " {d}, xmmword ptr [{src} + 48]"),
                        concat!($store, " xmmword ptr [{dst}], {a}"),
                        concat!($store, " xmmword ptr [{dst} + 16], {b}"),
                        concat!($store, " xmmword ptr [{dst} + 32], {c}"),
                        concat!($store, " xmmword ptr [{dst} + 48], {d}"),
                        "add {src}, 64",
                        "add {dst}, 64",
                        "sub {n}, 4",
                        "cmp {n}, 4",
                        "jae 2b",
                        "3:",
                        "test {n}, {n}",
                        "jz 5f",
                        "4:",
                        concat!($load, " {a}, xmmword ptr [{src}]"),
                        concat!($store, " xmmword ptr [{dst}], {a}"),
                        "add {src}, 16",
                        "add {dst}, 16",
                        "dec {n}",
                        "jnz 4b",
                        "5:",
                        $end,
                        src = inout(reg) src => _,
                        dst = inout(reg) dst => _,
                        n = inout(reg) chunks => _,
                        a = out(xmm_reg) _,
                        b = out(xmm_reg) _,
                        c = out(xmm_reg) _,
                        d = out(xmm_reg) _,
                        options(nostack),
                    );
                }
            }
        };
    }

    copy16!(
        /// Shared (`src`, 16-aligned) to private.
        ///
        /// # Safety
        /// `src` is 16-byte aligned, valid for reads of `16 * chunks` bytes and holds only
        /// naturally aligned atomics; `dst` is valid for writes of as many bytes and does not
        /// overlap it; the processor has AVX.
        load16,
        "movdqa",
        "movdqu",
        ""
    );
    copy16!(
        /// Shared to private like `load16`, with non-temporal stores: for copies too large to
        /// stay in the caches, it saves reading every destination line before overwriting it.
        ///
        /// # Safety
        /// As for `load16`, and `dst` is 16-byte aligned too.
        load16_streaming,
        "movdqa",
        "movntdq",
        "sfence"
    );
    copy16!(
        /// Private to shared (`dst`, 16-aligned).
        ///
        /// # Safety
        /// `dst` is 16-byte aligned, valid for writes of `16 * chunks` bytes and holds only
        /// naturally aligned atomics; `src` is valid for reads of as many bytes and does not
        /// overlap it; the processor has AVX.
        store16,
        "movdqu",
        "movdqa",
        ""
    );
    copy16!(
        /// Shared to a journal area, both 16-aligned, with non-temporal stores.
        ///
        /// # Safety
        /// As for `copy16`; and nothing else accesses `dst` meanwhile.
        copy16_streaming,
        "movdqa",
        "movntdq",
        "sfence"
    );
    copy16!(
        /// Shared to shared, both 16-aligned.
        ///
        /// # Safety
        /// Both are 16-byte aligned, valid for `16 * chunks` bytes (reads from `src`, writes to
        /// `dst`), hold only naturally aligned atomics, and do not overlap; the processor has
        /// AVX.
        copy16,
        "movdqa",
        "movdqa",
        ""
    );
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
mod portable {
    use crate::cell::{Region, Width};

    /// No 16-byte atomic accesses on this target: the bulk copies go element by element.
    #[inline]
    pub(in crate::bulk) fn available() -> bool {
        false
    }

    /// [`Region::load_into`]; unused while `available()` is false.
    ///
    /// # Safety
    /// As for `Region::load_into`.
    pub(in crate::bulk) unsafe fn load(shared: Region<'_>, private: &mut [u8], unit: Width) {
        // SAFETY: the caller's.
        unsafe { shared.load_into(private, unit) }
    }

    /// [`Region::store_from`]; unused while `available()` is false.
    ///
    /// # Safety
    /// As for `Region::store_from`.
    pub(in crate::bulk) unsafe fn store(private: &[u8], shared: Region<'_>, unit: Width) {
        // SAFETY: the caller's.
        unsafe { shared.store_from(private, unit) }
    }

    /// [`Region::copy_to`]; unused while `available()` is false.
    ///
    /// # Safety
    /// As for `Region::copy_to`.
    pub(in crate::bulk) unsafe fn copy_to_journal(from: Region<'_>, to: Region<'_>, unit: Width) {
        // SAFETY: the caller's.
        unsafe { from.copy_to(to, unit) }
    }

    /// [`Region::copy_to`]; unused while `available()` is false.
    ///
    /// # Safety
    /// As for `Region::copy_to`.
    pub(in crate::bulk) unsafe fn copy(from: Region<'_>, to: Region<'_>, unit: Width) {
        // SAFETY: the caller's.
        unsafe { from.copy_to(to, unit) }
    }
}
