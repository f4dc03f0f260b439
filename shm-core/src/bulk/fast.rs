//! The architecture-specific bulk copies: on x86_64 processors with AVX, 16-byte SSE accesses,
//! which those processors guarantee to be single-copy atomic. Elsewhere (other architectures, no
//! AVX, Miri) `available()` is false and the bulk copies go element by element.

#[cfg(all(target_arch = "x86_64", not(miri)))]
pub(super) use x86_64::{available, copy, load, store};

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
pub(super) use portable::{available, copy, load, store};

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86_64 {
    use core::arch::asm;

    use crate::bulk::{copy_units, head_len, load_units, store_units};

    /// Whether the processor guarantees that aligned 16-byte SSE loads and stores are atomic.
    #[inline]
    pub(in crate::bulk) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx")
    }

    /// Copies out of a segment at least this long bypass the caches for their destination (as
    /// `memcpy` implementations do above a threshold of their own): such a copy does not stay
    /// in the L2 cache anyway, and a cached store must first read each line it overwrites.
    const STREAMING: usize = 4 << 20;

    /// [`crate::bulk::load_units`] over `len` bytes, the 16-byte-aligned middle in 16-byte pieces.
    ///
    /// # Safety
    /// The contract of `load_units`, and the processor has AVX.
    pub(in crate::bulk) unsafe fn load(
        shared: *const u8,
        private: *mut u8,
        len: usize,
        unit: usize,
    ) {
        let head = head_len(shared, len);
        let body = (len - head) & !15;
        // SAFETY: `head` and the tail are multiples of `unit`: `shared` is `unit`-aligned and
        // `unit` divides 16, so the next multiple of 16 is a multiple of `unit` away, and so is
        // `len`. Each piece is inside the caller's ranges. `shared + head` is 16-aligned, and
        // the streaming loop is used only where `private + head` is too (checked).
        unsafe {
            load_units(shared, private, head, unit);
            let (src, dst) = (shared.add(head), private.add(head));
            if body >= STREAMING && dst as usize % 16 == 0 {
                load16_streaming(src, dst, body / 16);
            } else {
                load16(src, dst, body / 16);
            }
            let done = head + body;
            load_units(shared.add(done), private.add(done), len - done, unit);
        }
    }

    /// [`crate::bulk::store_units`] over `len` bytes, the 16-byte-aligned middle in 16-byte pieces.
    ///
    /// # Safety
    /// The contract of `store_units`, and the processor has AVX.
    pub(in crate::bulk) unsafe fn store(
        private: *const u8,
        shared: *mut u8,
        len: usize,
        unit: usize,
    ) {
        let head = head_len(shared, len);
        let body = (len - head) & !15;
        // SAFETY: as in `load`.
        unsafe {
            store_units(private, shared, head, unit);
            store16(private.add(head), shared.add(head), body / 16);
            let done = head + body;
            store_units(private.add(done), shared.add(done), len - done, unit);
        }
    }

    /// [`crate::bulk::copy_units`] over `len` bytes, the 16-byte-aligned middle in 16-byte pieces.
    ///
    /// # Safety
    /// The contract of `copy_units`; `from` and `to` are equal modulo 16; the processor has AVX.
    pub(in crate::bulk) unsafe fn copy(from: *const u8, to: *mut u8, len: usize, unit: usize) {
        let head = head_len(from, len);
        let body = (len - head) & !15;
        // SAFETY: as in `load`; `to + head` is 16-aligned too, being equal to `from` modulo 16.
        unsafe {
            copy_units(from, to, head, unit);
            copy16(from.add(head), to.add(head), body / 16);
            let done = head + body;
            copy_units(from.add(done), to.add(done), len - done, unit);
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
    /// No fast path on this target: copies go element by element.
    #[inline]
    pub(in crate::bulk) fn available() -> bool {
        false
    }

    /// Never called: `available()` is false.
    ///
    /// # Safety
    /// The contract of [`crate::bulk::load_units`].
    pub(in crate::bulk) unsafe fn load(
        shared: *const u8,
        private: *mut u8,
        len: usize,
        unit: usize,
    ) {
        // SAFETY: the caller's contract is `load_units`'s.
        unsafe { crate::bulk::load_units(shared, private, len, unit) }
    }

    /// Never called: `available()` is false.
    ///
    /// # Safety
    /// The contract of [`crate::bulk::copy_units`].
    pub(in crate::bulk) unsafe fn copy(from: *const u8, to: *mut u8, len: usize, unit: usize) {
        // SAFETY: the caller's contract is `copy_units`'s.
        unsafe { crate::bulk::copy_units(from, to, len, unit) }
    }

    /// Never called: `available()` is false.
    ///
    /// # Safety
    /// The contract of [`crate::bulk::store_units`].
    pub(in crate::bulk) unsafe fn store(
        private: *const u8,
        shared: *mut u8,
        len: usize,
        unit: usize,
    ) {
        // SAFETY: the caller's contract is `store_units`'s.
        unsafe { crate::bulk::store_units(private, shared, len, unit) }
    }
}
