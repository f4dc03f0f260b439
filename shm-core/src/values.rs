//! The private copies `Array::update` works on: the values it loaded, and the copy its closure
//! changes.
//!
//! For numbers they are loaded and copied in bulk. A large copy of numbers lives in a mapping of
//! its own that asks the kernel for transparent huge pages: a fresh 64 MiB buffer in 4 KiB pages
//! costs 16384 page faults, which take several times longer than copying 64 MiB into it.

use core::mem::size_of;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::Ordering::Relaxed;

use crate::bulk;
use crate::cell::Region;
use crate::shared_layout::duplicate;
use crate::SharedLayout;

/// Copies of numbers at least this large get a mapping of their own, in huge pages.
const MAPPED: usize = 2 << 20;

/// Values of `T` in memory of their own.
pub(crate) struct Values<T: SharedLayout> {
    store: Store<T>,
}

enum Store<T> {
    Heap(Vec<T>),
    /// `len` values of a `PLAIN_BYTES` type at the start of an anonymous mapping of `bytes`.
    Mapped {
        ptr: NonNull<T>,
        len: usize,
        bytes: usize,
    },
}

impl<T: SharedLayout> Values<T> {
    /// The values of `twins`, loaded with relaxed atomic loads.
    pub(crate) fn load(twins: &[T::Atomic]) -> Values<T> {
        if T::PLAIN_BYTES {
            if let Some(unit) = const { bulk::uniform_width::<T>() } {
                let mut out = Self::zeroed(twins.len());
                // SAFETY: every primitive of `T`, so of the twins, is `unit` wide, the width of
                // every access to them.
                unsafe { bulk::load_cells(Region::of::<T>(twins), out.bytes_mut(), unit) };
                return out;
            }
        }
        Values {
            store: Store::Heap(twins.iter().map(|t| T::load(t, Relaxed)).collect()),
        }
    }

    /// A copy, field by field (as bytes for numbers).
    pub(crate) fn copy(&self) -> Values<T> {
        if T::PLAIN_BYTES {
            let mut out = Self::zeroed(self.len());
            out.bytes_mut().copy_from_slice(self.bytes());
            return out;
        }
        Values {
            store: Store::Heap(self.iter().map(duplicate).collect()),
        }
    }

    /// `n` values of a `PLAIN_BYTES` type whose bytes are all zero.
    fn zeroed(n: usize) -> Values<T> {
        debug_assert!(T::PLAIN_BYTES);
        let bytes = n
            .checked_mul(size_of::<T>())
            .expect("as many values as twins in memory");
        if bytes >= MAPPED {
            if let Some(ptr) = map(bytes) {
                return Values {
                    store: Store::Mapped {
                        ptr: ptr.cast(),
                        len: n,
                        bytes,
                    },
                };
            }
        }
        let mut v = Vec::with_capacity(n);
        // SAFETY: room for `n` values (reserved just above), whose bytes are then written as
        // zeros: all zeros is a value of a `PLAIN_BYTES` type, which has no padding.
        unsafe {
            core::ptr::write_bytes(v.as_mut_ptr(), 0, n);
            v.set_len(n);
        }
        Values {
            store: Store::Heap(v),
        }
    }

    fn bytes(&self) -> &[u8] {
        debug_assert!(T::PLAIN_BYTES);
        // SAFETY: only called for `PLAIN_BYTES` types, which have no padding: every byte of the
        // values is initialised; borrowed as long as `self`.
        unsafe { core::slice::from_raw_parts(self.as_ptr().cast(), size_of_val(&**self)) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        debug_assert!(T::PLAIN_BYTES);
        let len = size_of_val(&**self);
        // SAFETY: as in `bytes`; and any bytes are a value of a `PLAIN_BYTES` type, so whatever
        // is written leaves valid values. The borrow is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.as_mut_ptr().cast(), len) }
    }
}

/// A private anonymous mapping of `bytes` (zeros) that asks for transparent huge pages.
fn map(bytes: usize) -> Option<NonNull<u8>> {
    // SAFETY: a fresh private anonymous mapping chosen by the kernel; it aliases nothing.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: advice on the mapping just made; refused advice (no THP) changes nothing.
    unsafe { libc::madvise(ptr, bytes, libc::MADV_HUGEPAGE) };
    NonNull::new(ptr.cast())
}

impl<T: SharedLayout> Deref for Values<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.store {
            Store::Heap(v) => v,
            // SAFETY: `len` initialised values (zeroed, then written as bytes) at the start of a
            // page-aligned mapping this owns, so aligned for `T` (at most a page); borrowed as
            // long as `self`.
            Store::Mapped { ptr, len, .. } => unsafe {
                core::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }
}

impl<T: SharedLayout> DerefMut for Values<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.store {
            Store::Heap(v) => v,
            // SAFETY: as in `deref`, exclusively.
            Store::Mapped { ptr, len, .. } => unsafe {
                core::slice::from_raw_parts_mut(ptr.as_ptr(), *len)
            },
        }
    }
}

impl<T: SharedLayout> Drop for Values<T> {
    fn drop(&mut self) {
        if let Store::Mapped { ptr, bytes, .. } = self.store {
            // SAFETY: the mapping made by `map`, unmapped once; its values need no `Drop`
            // (`PLAIN_BYTES`), and no borrow of them outlives `self`.
            unsafe { libc::munmap(ptr.as_ptr().cast(), bytes) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU32;

    #[test]
    fn small_and_mapped_copies_hold_the_values() {
        for n in [0, 3, (MAPPED / 4) + 5] {
            let twins: Vec<AtomicU32> = (0..n as u32).map(AtomicU32::new).collect();
            let v = Values::<u32>::load(&twins);
            assert_eq!(matches!(v.store, Store::Mapped { .. }), n * 4 >= MAPPED);
            let mut c = v.copy();
            assert!(v.iter().copied().eq(0..n as u32));
            if n > 0 {
                c[n - 1] = 7;
                assert_eq!(v[n - 1], n as u32 - 1);
            }
        }
        let twins = [crate::AtomicBool::new(true), crate::AtomicBool::new(false)];
        assert_eq!(&*Values::<bool>::load(&twins).copy(), &[true, false]);
    }
}
