//! `Text<N>`: UTF-8 text of at most `N` bytes, held in place, and its atomic twin.

use core::borrow::Borrow;
use core::cmp::Ordering as CmpOrdering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;
use core::str::FromStr;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::layout::MAX_TEXT_CAPACITY;
use crate::{Layout, SharedLayout};

/// UTF-8 text of at most `N` bytes, stored in place (no pointer), so it can live in a segment:
/// a field such as `client: Text<64>` holds a peer's address, a request line, a name.
///
/// ```
/// use shm_core::Text;
///
/// let client = Text::<16>::try_from("10.0.0.7")?;
/// assert_eq!(client, "10.0.0.7");
/// assert_eq!(client.as_str().len(), 8);
/// assert_eq!(format!("{client} / {client:?}"), r#"10.0.0.7 / "10.0.0.7""#);
/// assert!(Text::<4>::try_from("too long").is_err());
/// assert_eq!(Text::<4>::truncated("añob"), "año"); // cut at a character boundary
/// assert_eq!(Text::<4>::default(), "");
/// # Ok::<(), shm_core::TextTooLong>(())
/// ```
///
/// In a segment it is a `u32` length followed by the `N` bytes (after the text, zeros), the
/// size rounded up to a multiple of 4: `Text<64>` takes 68 bytes, aligned to 4. Its atomic
/// twin is [`AtomicText`].
///
/// # What another process may have written
///
/// A `Text` is always valid UTF-8 of at most `N` bytes: safe code cannot make one that is not,
/// and whatever bytes another process (or another language) left in a segment, reading them
/// gives a valid `Text`, so [`as_str`](Self::as_str) never panics. A length above `N` counts as
/// `N`; if the bytes up to the length are not all UTF-8, the text is their longest prefix that
/// is (it ends where the first invalid sequence starts). It never holds bytes that were not
/// there, such as a replacement character.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Text<const N: usize> {
    /// Invariant: at most `N`.
    len: u32,
    /// Invariant: `bytes[..len]` is UTF-8, `bytes[len..]` is all zeros.
    bytes: [u8; N],
}

/// Why a string does not fit in a [`Text<N>`](Text): it is longer than `N` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTooLong {
    len: usize,
    capacity: usize,
}

impl TextTooLong {
    /// Length of the string, in bytes of UTF-8.
    pub fn text_len(&self) -> usize {
        self.len
    }

    /// The most bytes the text can hold: `N` of `Text<N>`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl fmt::Display for TextTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "text of {} bytes does not fit in a Text<{}>, which holds at most {} bytes of UTF-8",
            self.len, self.capacity, self.capacity
        )
    }
}

impl std::error::Error for TextTooLong {}

/// The text that `bytes`, with the length word `len`, hold as a reader takes it: the length
/// clamped to the bytes, then the longest prefix that is UTF-8.
pub(crate) fn readable(len: u32, bytes: &[u8]) -> &str {
    let recorded = &bytes[..bytes.len().min(len as usize)];
    match core::str::from_utf8(recorded) {
        Ok(s) => s,
        // `valid_up_to` bytes are UTF-8 by definition: the second parse cannot fail.
        Err(e) => core::str::from_utf8(&recorded[..e.valid_up_to()]).unwrap_or_default(),
    }
}

impl<const N: usize> Text<N> {
    /// The most bytes this text can hold.
    pub const CAPACITY: usize = N;

    /// The empty text.
    pub const fn new() -> Self {
        Text {
            len: 0,
            bytes: [0; N],
        }
    }

    /// The longest prefix of `s` that fits in `N` bytes, cut at a character boundary: for text
    /// that may be longer than the field, such as a request line.
    pub fn truncated(s: &str) -> Self {
        let mut end = s.len().min(N).min(MAX_TEXT_CAPACITY);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self::from_fitting(&s[..end])
    }

    /// `s`, which the caller has checked to be at most `N` bytes (and `u32::MAX`).
    fn from_fitting(s: &str) -> Self {
        let mut bytes = [0; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Text {
            len: s.len() as u32,
            bytes,
        }
    }

    /// The text read from a length word and bytes that another process may have written: see
    /// the type's documentation.
    pub(crate) fn from_foreign(len: u32, mut bytes: [u8; N]) -> Self {
        let valid = readable(len, &bytes).len();
        bytes[valid..].fill(0);
        Text {
            len: valid as u32,
            bytes,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        readable(self.len, &self.bytes)
    }
}

impl<const N: usize> Default for Text<N> {
    /// The empty text.
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TryFrom<&str> for Text<N> {
    type Error = TextTooLong;

    /// `s`, or [`TextTooLong`] if it is longer than `N` bytes.
    fn try_from(s: &str) -> Result<Self, TextTooLong> {
        if s.len() > N || s.len() > MAX_TEXT_CAPACITY {
            return Err(TextTooLong {
                len: s.len(),
                capacity: N,
            });
        }
        Ok(Self::from_fitting(s))
    }
}

impl<const N: usize> FromStr for Text<N> {
    type Err = TextTooLong;

    fn from_str(s: &str) -> Result<Self, TextTooLong> {
        Self::try_from(s)
    }
}

impl<const N: usize> Deref for Text<N> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> AsRef<str> for Text<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> Borrow<str> for Text<N> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> PartialEq for Text<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for Text<N> {}

impl<const N: usize> PartialEq<str> for Text<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for Text<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> PartialEq<Text<N>> for str {
    fn eq(&self, other: &Text<N>) -> bool {
        self == other.as_str()
    }
}

impl<const N: usize> PartialEq<Text<N>> for &str {
    fn eq(&self, other: &Text<N>) -> bool {
        *self == other.as_str()
    }
}

impl<const N: usize> PartialOrd for Text<N> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for Text<N> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.as_str().cmp(other.as_str())
    }
}

impl<const N: usize> Hash for Text<N> {
    /// Hashes as the `str` does, as `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The atomic twin of [`Text<N>`](Text): what a segment holds for a text field. A `u32`
/// length and `N` bytes, each an atomic.
///
/// [`load`](Self::load) and [`store`](Self::store) move the whole text, but they are not one
/// atomic step: they are one atomic access to the length and one to each byte. While another
/// process stores, a load may see part of the old text and part of the new, and two concurrent
/// stores may leave a mix of both: always valid UTF-8 (see [`Text`]), but perhaps a text nobody
/// wrote. To read or write whole texts, use `Shared::update` and `Shared::snapshot` (or their
/// `Array` forms), which never mix; use `load` and `store` where one process writes the text and
/// a torn read now and then does no harm (a status line, say).
///
/// ```
/// use shm_core::{AtomicText, Text};
/// use std::sync::atomic::Ordering::Relaxed;
///
/// let t = AtomicText::<8>::default();
/// t.store("GET /".try_into()?, Relaxed);
/// assert_eq!(t.load(Relaxed), "GET /");
/// # Ok::<(), shm_core::TextTooLong>(())
/// ```
#[repr(C)]
pub struct AtomicText<const N: usize> {
    len: AtomicU32,
    bytes: [AtomicU8; N],
}

impl<const N: usize> AtomicText<N> {
    /// A new atomic text holding `value`.
    pub fn new(value: Text<N>) -> Self {
        let t = Self::default();
        t.store(value, Ordering::Relaxed);
        t
    }

    /// Loads the text: the length, then the bytes it covers, each with `order`. The result is
    /// always a valid `Text`, whatever another process wrote (see [`Text`]); a store running
    /// meanwhile may give a mix of both texts.
    ///
    /// # Panics
    /// If `order` is `Release` or `AcqRel`, as std's atomic loads do.
    pub fn load(&self, order: Ordering) -> Text<N> {
        let len = self.len.load(order);
        let mut bytes = [0; N];
        let n = N.min(len as usize);
        for (b, cell) in bytes[..n].iter_mut().zip(&self.bytes) {
            *b = cell.load(order);
        }
        Text::from_foreign(len, bytes)
    }

    /// Stores `value`: every byte (zeros after the text), then the length, each with `order`.
    /// Not one atomic step: see the type's documentation.
    ///
    /// # Panics
    /// If `order` is `Acquire` or `AcqRel`, as std's atomic stores do.
    pub fn store(&self, value: Text<N>, order: Ordering) {
        for (cell, b) in self.bytes.iter().zip(value.bytes) {
            cell.store(b, order);
        }
        self.len.store(value.len, order);
    }
}

impl<const N: usize> Default for AtomicText<N> {
    /// The empty text: all zeros.
    fn default() -> Self {
        crate::__private::zeroed_twin::<Text<N>>()
    }
}

impl<const N: usize> fmt::Debug for AtomicText<N> {
    /// The text as a relaxed [`load`](Self::load) reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
    }
}

// SAFETY: the twin is `#[repr(C)]` of an `AtomicU32` and `N` `AtomicU8`s: atomics only, so every
// access is atomic; any bit pattern is valid for each (and padding after the bytes holds no
// value); no pointers, no `Drop`. `LAYOUT` is `Layout::text(N)`, whose size and alignment are
// asserted below to be the twin's, and the length is at offset 0 and the bytes at 4 by
// `#[repr(C)]` (an `AtomicU32` is 4 bytes, aligned to 4; an `AtomicU8` to 1).
unsafe impl<const N: usize> SharedLayout for Text<N> {
    type Atomic = AtomicText<N>;

    const LAYOUT: Layout = {
        assert!(
            N <= MAX_TEXT_CAPACITY,
            "a shared Text holds at most u32::MAX bytes: its length is a u32"
        );
        let layout = Layout::text(N);
        assert!(
            core::mem::size_of::<AtomicText<N>>() == layout.size
                && core::mem::align_of::<AtomicText<N>>() == layout.align
                && core::mem::size_of::<Text<N>>() == layout.size
                && core::mem::align_of::<Text<N>>() == layout.align,
        );
        layout
    };

    #[inline]
    fn load(atomic: &AtomicText<N>, order: Ordering) -> Self {
        atomic.load(order)
    }

    #[inline]
    fn store(atomic: &AtomicText<N>, value: &Self, order: Ordering) {
        atomic.store(*value, order)
    }

    /// Stores the whole text (every byte, zeros after it, and the length) if it is another
    /// text than `old`, so what another process left after a text's end is cleared too.
    #[inline]
    fn store_changed(atomic: &AtomicText<N>, old: &Self, new: &Self, order: Ordering) {
        if old != new {
            atomic.store(*new, order)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering::Relaxed;

    #[test]
    fn try_from_refuses_what_does_not_fit_and_says_so() {
        assert_eq!(Text::<8>::try_from("12345678").unwrap(), "12345678");
        let e = Text::<8>::try_from("123456789").unwrap_err();
        assert_eq!((e.text_len(), e.capacity()), (9, 8));
        assert_eq!(
            e.to_string(),
            "text of 9 bytes does not fit in a Text<8>, which holds at most 8 bytes of UTF-8"
        );
        // Bytes, not characters: "é" is two.
        assert!(Text::<1>::try_from("é").is_err());
        assert_eq!(Text::<0>::try_from("").unwrap(), "");
        assert_eq!("ab".parse::<Text<2>>().unwrap(), "ab");
    }

    #[test]
    fn truncated_cuts_at_a_character_boundary() {
        assert_eq!(Text::<3>::truncated("añb"), "añ");
        assert_eq!(Text::<2>::truncated("añb"), "a");
        assert_eq!(Text::<1>::truncated("😀"), "");
        assert_eq!(Text::<9>::truncated("short"), "short");
    }

    #[test]
    fn equal_texts_are_equal_and_hash_alike_whatever_their_history() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |t: &Text<8>| {
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            h.finish()
        };
        let a = Text::<8>::try_from("abc").unwrap();
        let b = Text::<8>::truncated("abcdefghij");
        let b = Text::<8>::try_from(&b.as_str()[..3]).unwrap();
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        let mut h = DefaultHasher::new();
        "abc".hash(&mut h);
        assert_eq!(hash(&a), h.finish(), "hashes as its str (Borrow<str>)");
        assert!(a < Text::<8>::try_from("abd").unwrap());
        assert_eq!(format!("[{a:>5}]"), "[  abc]");
    }

    #[test]
    fn foreign_bytes_read_as_a_valid_prefix() {
        let mut bytes = [0u8; 8];
        bytes[..5].copy_from_slice(b"ok\xffno");
        // Invalid UTF-8 ends the text.
        assert_eq!(Text::<8>::from_foreign(5, bytes), "ok");
        // A length above the capacity counts as the capacity.
        let all = *b"abcdefgh";
        assert_eq!(Text::<8>::from_foreign(u32::MAX, all), "abcdefgh");
        // A multi-byte character cut by the length is not part of the text.
        let mut cut = [0u8; 8];
        cut[..3].copy_from_slice("aé".as_bytes());
        assert_eq!(Text::<8>::from_foreign(2, cut), "a");
        // What is past the text is not kept.
        let t = Text::<8>::from_foreign(1, all);
        assert_eq!(t.bytes, *b"a\0\0\0\0\0\0\0");
    }

    #[test]
    fn the_twin_round_trips_and_reads_planted_bytes_safely() {
        let twin = AtomicText::<5>::default();
        assert_eq!(twin.load(Relaxed), "");
        twin.store(Text::try_from("héllo".get(..5).unwrap()).unwrap(), Relaxed);
        assert_eq!(twin.load(Relaxed), "héll");
        twin.store(Text::try_from("x").unwrap(), Relaxed);
        assert_eq!(twin.load(Relaxed), "x");
        // Zeros after the text, so no old byte comes back with a longer length.
        assert!(twin.bytes[1..].iter().all(|b| b.load(Relaxed) == 0));
        twin.len.store(1000, Relaxed);
        twin.bytes[1].store(0xC3, Relaxed); // the start of a two-byte character, alone
        assert_eq!(twin.load(Relaxed), "x");
        assert_eq!(format!("{twin:?}"), "\"x\"");
        assert_eq!(
            <Text<5> as SharedLayout>::LAYOUT.size,
            core::mem::size_of::<AtomicText<5>>()
        );
        assert_eq!(core::mem::size_of::<Text<64>>(), 68);
    }
}
