//! Why a field could not be read or written: [`FieldError`] and its messages.

use std::fmt;
use std::time::Duration;

use super::LockHolder;
use crate::TypeCode;

/// Why a field could not be read or written. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// The path is not of the form `a.b[3].c`.
    Syntax {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No field or element of the segment has this path: an unknown name, an index out of range,
    /// a field of something that is not a struct.
    NoSuchField {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// Where the path stopped making sense, and what is there.
        reason: String,
    },
    /// The path is empty (`""`, what an unset variable in a script gives). A write names its
    /// field, or `.` for the value of a single-value segment.
    EmptyPath {
        /// The segment's name.
        segment: String,
        /// What the segment holds, and what to write instead.
        reason: String,
    },
    /// The path names an array or a struct; a write changes one primitive.
    NotPrimitive {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// What the path names, and how to name one of its primitives.
        reason: String,
    },
    /// The text is not a value of the field's type, or is out of its range.
    BadValue {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// The field's type.
        code: TypeCode,
        /// The text as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The text names no variant of the enum at the path.
    NoSuchVariant {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// The enum's name.
        enum_name: String,
        /// The text as given.
        value: String,
        /// The names of the enum's variants, in declaration order.
        variants: Vec<String>,
    },
    /// The text is longer than the text field at the path can hold.
    TextTooLong {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// The text's length in bytes (UTF-8).
        len: usize,
        /// The most bytes the field holds.
        capacity: u64,
    },
    /// The payload cannot hold what the descriptor describes (a segment that passed `open`'s
    /// checks never gets here).
    Corrupt {
        /// The segment's name.
        segment: String,
        /// What is wrong.
        reason: String,
    },
    /// The handle is attached read only
    /// ([`RawSegment::open_readonly`](super::RawSegment::open_readonly)): it cannot write.
    ReadOnly {
        /// The segment's name.
        segment: String,
    },
    /// The segment's lock stayed held for the whole wait
    /// [`RawSegment::set_timeout`](super::RawSegment::set_timeout) was given.
    LockTimeout {
        /// The segment's name.
        segment: String,
        /// The path as given.
        path: String,
        /// How long the call waited.
        waited: Duration,
        /// Who held the lock when the wait ended; `None` if the lock word named nobody then (it
        /// was released at that moment, or was being repaired).
        holder: Option<LockHolder>,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Syntax {
                segment,
                path,
                reason,
            } => write!(
                f,
                "segment `{segment}`: `{path}` is not a field path ({reason}); write e.g. `load`, `hist[3]`, `inner.x`, `[2].count`"
            ),
            FieldError::NoSuchField {
                segment,
                path,
                reason,
            } => write!(f, "segment `{segment}` has no field `{path}`: {reason}"),
            FieldError::EmptyPath { segment, reason } => {
                write!(f, "segment `{segment}`: the field path is empty: {reason}")
            }
            FieldError::NotPrimitive {
                segment,
                path,
                reason,
            } => write!(f, "segment `{segment}`: `{path}` {reason}"),
            FieldError::BadValue {
                segment,
                path,
                code,
                value,
                reason,
            } => write!(
                f,
                "segment `{segment}`: cannot write {value:?} to `{path}` ({code}, type code `{}`): {reason}",
                code.as_char()
            ),
            FieldError::NoSuchVariant {
                segment,
                path,
                enum_name,
                value,
                variants,
            } => write!(
                f,
                "segment `{segment}`: cannot write {value:?} to `{path}`: `{enum_name}` has no such variant; its variants are {}",
                variants.join(", ")
            ),
            FieldError::TextTooLong {
                segment,
                path,
                len,
                capacity,
            } => write!(
                f,
                "segment `{segment}`: cannot write a text of {len} bytes to `{path}`, which holds at most {capacity} bytes of UTF-8"
            ),
            FieldError::Corrupt { segment, reason } => {
                write!(f, "segment `{segment}` is not a valid segment: {reason}")
            }
            FieldError::ReadOnly { segment } => write!(
                f,
                "segment `{segment}` is attached read-only: it cannot be written through this handle (open it read-write to write)"
            ),
            FieldError::LockTimeout {
                segment,
                path,
                waited,
                holder,
            } => {
                write!(f, "segment `{segment}`: `{path}` not written: its lock was ")?;
                match holder {
                    Some(h) => write!(f, "still held by {h}")?,
                    None => f.write_str("still taken (its lock word names no holder)")?,
                }
                write!(f, " after waiting {}", seconds(*waited))
            }
        }
    }
}

impl std::error::Error for FieldError {}

/// `500ms`, `2.0s`: how long a wait took.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
