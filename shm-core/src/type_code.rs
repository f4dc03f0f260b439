//! Type codes: the one-letter names Python's `array` and `multiprocessing` modules give primitives.

use core::fmt;

/// The primitive kinds a segment can hold, named by Python's type codes.
///
/// Python's codes are C types whose width depends on the platform; here every code has one fixed
/// width, so a segment means the same thing to every process that attaches to it:
///
/// | code | Rust | bytes | | code | Rust | bytes |
/// | --- | --- | --- | --- | --- | --- | --- |
/// | `b` | `i8` | 1 | | `B` | `u8` | 1 |
/// | `h` | `i16` | 2 | | `H` | `u16` | 2 |
/// | `i` | `i32` | 4 | | `I` | `u32` | 4 |
/// | `l`, `q` | `i64` | 8 | | `L`, `Q` | `u64` | 8 |
/// | `f` | `f32` | 4 | | `d` | `f64` | 8 |
/// | `u` | `char` | 4 | | `?` | `bool` | 1 |
/// | `c` | `u8` | 1 | | | | |
///
/// `l`/`L` and `c` are accepted by [`TypeCode::from_char`] as aliases of `q`/`Q` and `B`; a
/// segment always records the canonical code.
///
/// ```
/// use shm_core::{SharedLayout, TypeCode};
///
/// assert_eq!(TypeCode::from_char('d'), Some(TypeCode::F64));
/// assert_eq!(TypeCode::from_char('l'), Some(TypeCode::I64));
/// assert_eq!(TypeCode::I32.as_char(), 'i');
/// assert_eq!(TypeCode::F64.size(), 8);
/// assert_eq!(<u16 as shm_core::Primitive>::CODE, TypeCode::U16);
/// # let _ = <i8 as SharedLayout>::LAYOUT;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TypeCode {
    /// `b`: `i8`.
    I8,
    /// `B` (alias `c`): `u8`.
    U8,
    /// `h`: `i16`.
    I16,
    /// `H`: `u16`.
    U16,
    /// `i`: `i32`.
    I32,
    /// `I`: `u32`.
    U32,
    /// `q` (alias `l`): `i64`.
    I64,
    /// `Q` (alias `L`): `u64`.
    U64,
    /// `f`: `f32`.
    F32,
    /// `d`: `f64`.
    F64,
    /// `?`: `bool`, one byte, 0 or 1.
    Bool,
    /// `u`: `char`, four bytes, a Unicode scalar value (`wchar_t` on Linux).
    Char,
}

impl TypeCode {
    /// Every type code, in the order of the table above.
    pub const ALL: [TypeCode; 12] = [
        TypeCode::I8,
        TypeCode::U8,
        TypeCode::I16,
        TypeCode::U16,
        TypeCode::I32,
        TypeCode::U32,
        TypeCode::I64,
        TypeCode::U64,
        TypeCode::F32,
        TypeCode::F64,
        TypeCode::Bool,
        TypeCode::Char,
    ];

    /// The code for a Python type-code letter, or `None` for a letter that has no fixed-width
    /// meaning here.
    pub const fn from_char(c: char) -> Option<TypeCode> {
        Some(match c {
            'b' => TypeCode::I8,
            'B' | 'c' => TypeCode::U8,
            'h' => TypeCode::I16,
            'H' => TypeCode::U16,
            'i' => TypeCode::I32,
            'I' => TypeCode::U32,
            'l' | 'q' => TypeCode::I64,
            'L' | 'Q' => TypeCode::U64,
            'f' => TypeCode::F32,
            'd' => TypeCode::F64,
            '?' => TypeCode::Bool,
            'u' => TypeCode::Char,
            _ => return None,
        })
    }

    /// The canonical letter of this code (`q`, not `l`, for `i64`).
    pub const fn as_char(self) -> char {
        match self {
            TypeCode::I8 => 'b',
            TypeCode::U8 => 'B',
            TypeCode::I16 => 'h',
            TypeCode::U16 => 'H',
            TypeCode::I32 => 'i',
            TypeCode::U32 => 'I',
            TypeCode::I64 => 'q',
            TypeCode::U64 => 'Q',
            TypeCode::F32 => 'f',
            TypeCode::F64 => 'd',
            TypeCode::Bool => '?',
            TypeCode::Char => 'u',
        }
    }

    /// Width in bytes (also the alignment in a segment).
    pub const fn size(self) -> usize {
        match self {
            TypeCode::I8 | TypeCode::U8 | TypeCode::Bool => 1,
            TypeCode::I16 | TypeCode::U16 => 2,
            TypeCode::I32 | TypeCode::U32 | TypeCode::F32 | TypeCode::Char => 4,
            TypeCode::I64 | TypeCode::U64 | TypeCode::F64 => 8,
        }
    }

    /// The Rust type this code stands for, as written in source (`"f64"`).
    pub const fn rust_name(self) -> &'static str {
        match self {
            TypeCode::I8 => "i8",
            TypeCode::U8 => "u8",
            TypeCode::I16 => "i16",
            TypeCode::U16 => "u16",
            TypeCode::I32 => "i32",
            TypeCode::U32 => "u32",
            TypeCode::I64 => "i64",
            TypeCode::U64 => "u64",
            TypeCode::F32 => "f32",
            TypeCode::F64 => "f64",
            TypeCode::Bool => "bool",
            TypeCode::Char => "char",
        }
    }

    /// Whether this is an integer code (`i8` to `u64`): one an enum's `#[repr]` may be.
    pub const fn is_integer(self) -> bool {
        self.int_range().is_some()
    }

    /// The smallest and largest value of an integer code; `None` for the others.
    pub(crate) const fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            TypeCode::I8 => (i8::MIN as i128, i8::MAX as i128),
            TypeCode::U8 => (0, u8::MAX as i128),
            TypeCode::I16 => (i16::MIN as i128, i16::MAX as i128),
            TypeCode::U16 => (0, u16::MAX as i128),
            TypeCode::I32 => (i32::MIN as i128, i32::MAX as i128),
            TypeCode::U32 => (0, u32::MAX as i128),
            TypeCode::I64 => (i64::MIN as i128, i64::MAX as i128),
            TypeCode::U64 => (0, u64::MAX as i128),
            _ => return None,
        })
    }

    /// Whether `value` is a value of this integer code.
    pub(crate) const fn holds(self, value: i128) -> bool {
        match self.int_range() {
            Some((min, max)) => min <= value && value <= max,
            None => false,
        }
    }

    /// The code for a canonical letter stored as a byte in a segment descriptor.
    pub(crate) fn from_byte(b: u8) -> Option<TypeCode> {
        match b {
            b'c' | b'l' | b'L' => None,
            _ => TypeCode::from_char(b as char),
        }
    }
}

impl fmt::Display for TypeCode {
    /// Writes the Rust type name, e.g. `f64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rust_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_letter() {
        for code in TypeCode::ALL {
            assert_eq!(TypeCode::from_char(code.as_char()), Some(code));
            assert_eq!(TypeCode::from_byte(code.as_char() as u8), Some(code));
        }
    }

    #[test]
    fn aliases_map_to_fixed_widths() {
        assert_eq!(TypeCode::from_char('l'), Some(TypeCode::I64));
        assert_eq!(TypeCode::from_char('L'), Some(TypeCode::U64));
        assert_eq!(TypeCode::from_char('c'), Some(TypeCode::U8));
        // A descriptor only ever holds canonical letters.
        assert_eq!(TypeCode::from_byte(b'l'), None);
        assert_eq!(TypeCode::from_char('x'), None);
        assert_eq!(TypeCode::from_char('g'), None);
    }
}
