//! `Value<T>`'s `get` and `set`: Python's `Value.value` for a segment holding one primitive.

use core::sync::atomic::Ordering::SeqCst;

use crate::{Primitive, Shared};

/// Python's `Value.value`, for a handle of one primitive.
impl<T: Primitive> Shared<T> {
    /// The value, loaded with a sequentially consistent atomic load (Python's `v.value`).
    ///
    /// ```
    /// # let name = format!("doc-value-get-{}", std::process::id());
    /// let v = shm_core::Value::<i32>::create(&name, 7)?;
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn get(&self) -> T {
        T::load(self.atomic(), SeqCst)
    }

    /// Stores `value` with a sequentially consistent atomic store (Python's `v.value = x`).
    ///
    /// One atomic store, not under the lock: like Python's `v.value += 1`, `v.set(v.get() + 1)`
    /// loses increments that other processes make in between. Use `fetch_add` (through `Deref`),
    /// or [`update`](Self::update), for a change that depends on the value. Like every field
    /// atomic it wakes no waiter: call [`notify`](Self::notify) after it (a waiter that is not
    /// woken sees it within 100 ms all the same).
    ///
    /// ```
    /// # let name = format!("doc-value-set-{}", std::process::id());
    /// let v = shm_core::Value::<bool>::create(&name, false)?;
    /// v.set(true);
    /// assert!(v.get());
    /// # Ok::<(), shm_core::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        T::store(self.atomic(), &value, SeqCst)
    }
}
