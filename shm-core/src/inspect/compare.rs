//! `Compare`: the test `shm wait` makes of a field, `==`, `!=`, `<`, `<=`, `>`, `>=`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::Datum;

/// A comparison of a field's value with a given value: what
/// [`RawSegment::wait_for`](super::RawSegment::wait_for) (and `shm wait NAME FIELD OP VALUE`)
/// waits to hold. Written as in Rust: `==`, `!=`, `<`, `<=`, `>`, `>=`.
///
/// ```
/// use shm_core::inspect::{Compare, Datum};
///
/// let ge: Compare = ">=".parse()?;
/// assert!(ge.holds(&Datum::U64(100), &Datum::U64(100)));
/// assert!(!ge.holds(&Datum::F64(f64::NAN), &Datum::F64(0.0))); // NaN is ordered with nothing
/// assert!(Compare::Ne.holds(&Datum::F64(f64::NAN), &Datum::F64(f64::NAN)));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Compare {
    /// Every comparison, in the order written above.
    pub const ALL: [Compare; 6] = [
        Compare::Eq,
        Compare::Ne,
        Compare::Lt,
        Compare::Le,
        Compare::Gt,
        Compare::Ge,
    ];

    /// How it is written: `==`, `!=`, `<`, `<=`, `>`, `>=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compare::Eq => "==",
            Compare::Ne => "!=",
            Compare::Lt => "<",
            Compare::Le => "<=",
            Compare::Gt => ">",
            Compare::Ge => ">=",
        }
    }

    /// Whether `left OP right` holds. Integers compare by value whatever their widths, floats
    /// as IEEE 754 does (NaN is equal to nothing, itself included, and ordered with nothing),
    /// `false < true`, characters by code point, enums by the number stored (so `==` a variant
    /// holds for exactly that variant's number), texts as strings (byte by byte). Values of
    /// different kinds (an integer and a float, a bool and a char) and arrays or structs are
    /// never ordered; they are equal when they are the same [`Datum`].
    pub fn holds(self, left: &Datum, right: &Datum) -> bool {
        let order = order(left, right);
        match self {
            Compare::Eq => order == Some(Ordering::Equal),
            Compare::Ne => order != Some(Ordering::Equal),
            Compare::Lt => order == Some(Ordering::Less),
            Compare::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
            Compare::Gt => order == Some(Ordering::Greater),
            Compare::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
        }
    }
}

/// How `left` compares with `right`, if they can be compared.
fn order(left: &Datum, right: &Datum) -> Option<Ordering> {
    if let (Some(l), Some(r)) = (left.as_integer(), right.as_integer()) {
        return Some(l.cmp(&r));
    }
    if let (Some(l), Some(r)) = (left.as_float(), right.as_float()) {
        return l.partial_cmp(&r);
    }
    match (left, right) {
        (Datum::Bool(l), Datum::Bool(r)) => Some(l.cmp(r)),
        (Datum::Char(l), Datum::Char(r)) => Some(l.cmp(r)),
        (Datum::Enum { value: l, .. }, Datum::Enum { value: r, .. }) => Some(l.cmp(r)),
        (Datum::Text(l), Datum::Text(r)) => Some(l.cmp(r)),
        // Arrays and structs: equal or not, never ordered. A NaN inside is not equal to
        // itself, as `PartialEq` for floats says.
        (l, r) if l.code().is_none() && r.code().is_none() => (l == r).then_some(Ordering::Equal),
        _ => None,
    }
}

impl FromStr for Compare {
    type Err = String;

    /// `==`, `!=`, `<`, `<=`, `>`, `>=` (also `=`, as `test` writes it).
    fn from_str(s: &str) -> Result<Compare, String> {
        match s {
            "==" | "=" => Ok(Compare::Eq),
            "!=" => Ok(Compare::Ne),
            "<" => Ok(Compare::Lt),
            "<=" => Ok(Compare::Le),
            ">" => Ok(Compare::Gt),
            ">=" => Ok(Compare::Ge),
            _ => Err(format!(
                "`{s}` is not a comparison: write one of == != < <= > >="
            )),
        }
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_comparison_of_every_kind() {
        let truth = |op: Compare, l: &Datum, r: &Datum| op.holds(l, r);
        // (left, right, which of == != < <= > >= hold)
        let cases: &[(Datum, Datum, [bool; 6])] = &[
            (
                Datum::U64(5),
                Datum::U64(5),
                [true, false, false, true, false, true],
            ),
            (
                Datum::I8(-1),
                Datum::I8(2),
                [false, true, true, true, false, false],
            ),
            (
                Datum::U64(u64::MAX),
                Datum::I64(-1),
                [false, true, false, false, true, true],
            ),
            (
                Datum::F32(0.5),
                Datum::F32(0.25),
                [false, true, false, false, true, true],
            ),
            (
                Datum::F64(f64::NAN),
                Datum::F64(f64::NAN),
                [false, true, false, false, false, false],
            ),
            (
                Datum::F64(-0.0),
                Datum::F64(0.0),
                [true, false, false, true, false, true],
            ),
            (
                Datum::Bool(false),
                Datum::Bool(true),
                [false, true, true, true, false, false],
            ),
            (
                Datum::Char('a'),
                Datum::Char('b'),
                [false, true, true, true, false, false],
            ),
            (
                Datum::Enum {
                    variant: "Idle".into(),
                    value: 0,
                    known: true,
                },
                Datum::Enum {
                    variant: "Busy".into(),
                    value: 1,
                    known: true,
                },
                [false, true, true, true, false, false],
            ),
            (
                // A number that is no variant reads as the default variant, but is not it.
                Datum::Enum {
                    variant: "Idle".into(),
                    value: 7,
                    known: false,
                },
                Datum::Enum {
                    variant: "Idle".into(),
                    value: 0,
                    known: true,
                },
                [false, true, false, false, true, true],
            ),
            (
                Datum::Text("abc".into()),
                Datum::Text("abd".into()),
                [false, true, true, true, false, false],
            ),
            (
                Datum::U8(1),
                Datum::F64(1.0),
                [false, true, false, false, false, false],
            ),
            (
                Datum::Bool(true),
                Datum::U8(1),
                [false, true, false, false, false, false],
            ),
            (
                Datum::Array(vec![Datum::U8(1)]),
                Datum::Array(vec![Datum::U8(1)]),
                [true, false, false, true, false, true],
            ),
            (
                Datum::Array(vec![Datum::U8(1)]),
                Datum::Array(vec![Datum::U8(2)]),
                [false, true, false, false, false, false],
            ),
        ];
        for (l, r, want) in cases {
            for (op, want) in Compare::ALL.iter().zip(want) {
                assert_eq!(truth(*op, l, r), *want, "{l} {op} {r}");
            }
        }
    }

    #[test]
    fn parse_and_display_round_trip() {
        for op in Compare::ALL {
            assert_eq!(op.as_str().parse::<Compare>(), Ok(op));
            assert_eq!(op.to_string(), op.as_str());
        }
        assert_eq!("=".parse::<Compare>(), Ok(Compare::Eq));
        let err = "=>".parse::<Compare>().unwrap_err();
        assert!(err.contains("== != < <= > >="), "{err}");
    }
}
