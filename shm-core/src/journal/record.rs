//! The record a write makes before it stores: where each entry of it and each part of an entry
//! lies (docs/FORMAT.md, "The journal record").
//!
//! A record is a run of entries, one after the other from offset 0 of the journal area (the
//! segment's own, or the side object's). An entry describes payload bytes `start..start + len`
//! and holds their old values, and for a [`Kind::Changed`] entry also their new values:
//!
//! ```text
//! at       start:u64  len:u64  kind:u64  0:u64
//! old      len bytes: the old values             (old ≡ start modulo 16)
//! new      len bytes: the new values, if Changed (new ≡ start modulo 16)
//! end      the next multiple of 16
//! ```
//!
//! Each part sits at an offset congruent to `start` modulo 16, and the journal areas start on a
//! multiple of 128 as the payload does, so every primitive in a copy is aligned as it is in the
//! payload and a copy between the two can move 16 aligned bytes at a time.

/// Bytes of an entry's header: `start`, `len`, `kind` and a zero word.
pub(crate) const HEADER: usize = 32;

/// Entries start, and their parts are placed, on multiples of this.
pub(crate) const ALIGN: usize = 16;

/// What undoing an entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Every primitive of the run gets its old value back: the write stored every one of them.
    All = 1,
    /// A primitive of the run gets its old value back if its old and new values differ: the
    /// write left the others alone, and field atomics of other processes may have changed them.
    Changed = 2,
}

impl Kind {
    /// The kind a `kind` word names, if any.
    pub(crate) fn from_word(word: u64) -> Option<Kind> {
        match word {
            1 => Some(Kind::All),
            2 => Some(Kind::Changed),
            _ => None,
        }
    }
}

/// Where an entry and its parts lie, in bytes from the start of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The payload bytes it covers: `start..start + len`.
    pub start: usize,
    pub len: usize,
    pub kind: Kind,
    /// Where the header is.
    pub at: usize,
    /// Where the old values are.
    pub old: usize,
    /// Where the new values are (a `Changed` entry only).
    pub new: Option<usize>,
    /// Where the next entry may start.
    pub end: usize,
}

impl Entry {
    /// The entry for payload bytes `start..start + len` placed at `at` (a multiple of
    /// [`ALIGN`]); `None` if an offset overflows.
    #[inline]
    pub(crate) fn place(at: usize, start: usize, len: usize, kind: Kind) -> Option<Entry> {
        let skew = start % ALIGN;
        let old = at.checked_add(HEADER + skew)?;
        let after_old = old.checked_add(len)?.checked_next_multiple_of(ALIGN)?;
        let (new, end) = match kind {
            Kind::All => (None, after_old),
            Kind::Changed => {
                let new = after_old + skew;
                (
                    Some(new),
                    new.checked_add(len)?.checked_next_multiple_of(ALIGN)?,
                )
            }
        };
        Some(Entry {
            start,
            len,
            kind,
            at,
            old,
            new,
            end,
        })
    }
}

/// How many bytes an entry for `len` payload bytes from `start` takes, wherever it is placed (on
/// a multiple of [`ALIGN`]); `None` if that overflows.
#[inline]
pub(crate) fn size(start: usize, len: usize, kind: Kind) -> Option<usize> {
    Entry::place(0, start, len, kind).map(|e| e.end)
}

/// How a write of many bytes is cut into entries: pieces of at most this many bytes, each
/// journaled right before it is stored, so that the bytes the journal copies are still in the
/// caches when they are stored, and a writer killed at any moment has journaled every byte it
/// stored.
pub(crate) const PIECE: usize = 64 << 10;

/// The pieces of payload bytes `start..start + len`, cut on multiples of `unit` (the width of the
/// cells the write stores, or its element's size): no piece longer than [`PIECE`] unless `unit`
/// is.
pub(crate) fn pieces(
    start: usize,
    len: usize,
    unit: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let step = (PIECE / unit.max(1)).max(1) * unit.max(1);
    let end = start + len;
    (start..end)
        .step_by(step)
        .map(move |s| (s, step.min(end - s)))
}

/// The bytes of the entries of a write cut into [`pieces`].
pub(crate) fn size_in_pieces(start: usize, len: usize, unit: usize, kind: Kind) -> Option<usize> {
    pieces(start, len, unit).try_fold(0usize, |total, (s, l)| total.checked_add(size(s, l, kind)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_aligned_as_in_the_payload() {
        for start in 0..40 {
            for len in [0, 1, 7, 16, 33] {
                for kind in [Kind::All, Kind::Changed] {
                    let e = Entry::place(48, start, len, kind).unwrap();
                    assert_eq!(e.old % ALIGN, start % ALIGN);
                    assert!(e.old >= 48 + HEADER && e.old < 48 + HEADER + ALIGN);
                    if let Some(new) = e.new {
                        assert_eq!(new % ALIGN, start % ALIGN);
                        assert!(new >= e.old + len);
                        assert!(e.end >= new + len);
                    } else {
                        assert!(e.end >= e.old + len);
                    }
                    assert_eq!(e.end % ALIGN, 0);
                    assert!(e.end - e.at < HEADER + 2 * len + 4 * ALIGN);
                    assert_eq!(size(start, len, kind), Some(e.end - 48));
                }
            }
        }
        assert_eq!(Entry::place(usize::MAX - 40, 0, 8, Kind::All), None);
        assert_eq!(size(0, usize::MAX - 8, Kind::Changed), None);
    }

    #[test]
    fn pieces_cover_the_range_on_unit_boundaries() {
        let cut: Vec<_> = pieces(24, 3 * PIECE + 8, 24).collect();
        assert_eq!(cut.first().unwrap().0, 24);
        let mut at = 24;
        for &(s, l) in &cut {
            assert_eq!(s, at);
            assert!(l <= PIECE && l % 24 == 0 || s + l == 24 + 3 * PIECE + 8);
            at += l;
        }
        assert_eq!(at, 24 + 3 * PIECE + 8);
        assert_eq!(pieces(0, 0, 8).count(), 0);
        // A unit larger than a piece: one unit a piece.
        assert!(pieces(0, 3 * (PIECE + 8), PIECE + 8).all(|(_, l)| l == PIECE + 8));
        assert_eq!(
            size_in_pieces(0, 2 * PIECE, 8, Kind::All),
            Some(2 * (HEADER + PIECE))
        );
    }
}
