//! Text to a primitive of a given type code, range-checked: what `shm set` writes.

use std::num::IntErrorKind;

use super::Datum;
use crate::TypeCode;

/// Parses `text` as a value of `code`. The error says why, in words that fit after "cannot
/// write `text` to a u8 field: ".
pub(crate) fn parse(code: TypeCode, text: &str) -> Result<Datum, String> {
    let t = text.trim();
    match code {
        TypeCode::I8 => int(t, code).map(|v| Datum::I8(v as i8)),
        TypeCode::U8 => int(t, code).map(|v| Datum::U8(v as u8)),
        TypeCode::I16 => int(t, code).map(|v| Datum::I16(v as i16)),
        TypeCode::U16 => int(t, code).map(|v| Datum::U16(v as u16)),
        TypeCode::I32 => int(t, code).map(|v| Datum::I32(v as i32)),
        TypeCode::U32 => int(t, code).map(|v| Datum::U32(v as u32)),
        TypeCode::I64 => int(t, code).map(|v| Datum::I64(v as i64)),
        TypeCode::U64 => int(t, code).map(|v| Datum::U64(v as u64)),
        TypeCode::F32 => float(t, code).map(|v| Datum::F32(v as f32)),
        TypeCode::F64 => float(t, code).map(Datum::F64),
        TypeCode::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Datum::Bool(true)),
            "false" | "0" => Ok(Datum::Bool(false)),
            _ => Err("a bool is `true` or `false` (or 1 or 0)".to_owned()),
        },
        TypeCode::Char => {
            // Not trimmed: a space is a character.
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Datum::Char(c)),
                _ => Err("a char is exactly one Unicode character".to_owned()),
            }
        }
    }
}

/// The range of an integer code, as `(min, max)`.
fn range(code: TypeCode) -> (i128, i128) {
    match code {
        TypeCode::I8 => (i8::MIN.into(), i8::MAX.into()),
        TypeCode::U8 => (0, u8::MAX.into()),
        TypeCode::I16 => (i16::MIN.into(), i16::MAX.into()),
        TypeCode::U16 => (0, u16::MAX.into()),
        TypeCode::I32 => (i32::MIN.into(), i32::MAX.into()),
        TypeCode::U32 => (0, u32::MAX.into()),
        TypeCode::I64 => (i64::MIN.into(), i64::MAX.into()),
        _ => (0, u64::MAX.into()),
    }
}

/// An integer in decimal, or in hex, octal or binary with `0x`, `0o`, `0b`; `_` separators
/// allowed; checked against the range of `code` (an integer code). The value returned is in
/// range, so the caller's `as` casts are exact.
fn int(t: &str, code: TypeCode) -> Result<i128, String> {
    let (min, max) = range(code);
    let out_of_range = || format!("out of range for {code} ({min} to {max})");
    let (negative, rest) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = match rest.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => (16, &rest[2..]),
        Some("0o") => (8, &rest[2..]),
        Some("0b") => (2, &rest[2..]),
        _ => (10, rest),
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    // from_str_radix would accept a second sign; the sign was taken above.
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(format!(
            "not an integer (a {code} is written like 42 or 0x2a)"
        ));
    }
    let magnitude = match u128::from_str_radix(&digits, radix) {
        Ok(m) => m,
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => return Err(out_of_range()),
        Err(_) => {
            return Err(format!(
                "not an integer (a {code} is written like 42 or 0x2a)"
            ));
        }
    };
    let value = match i128::try_from(magnitude) {
        Ok(m) if negative => -m,
        Ok(m) => m,
        Err(_) => return Err(out_of_range()),
    };
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(value)
}

/// A float: decimal or exponent notation, `inf`, `-inf` or `NaN`. A finite number too large
/// for `code` (which would round to infinity) is refused.
fn float(t: &str, code: TypeCode) -> Result<f64, String> {
    let bad = || format!("not a number (a {code} is written like 0.5, -3 or 1e-9)");
    let v: f64 = t.parse().map_err(|_| bad())?;
    let asked_infinite = t.to_ascii_lowercase().contains("inf");
    let infinite = if code == TypeCode::F32 {
        (v as f32).is_infinite()
    } else {
        v.is_infinite()
    };
    if infinite && !asked_infinite {
        let max = if code == TypeCode::F32 {
            f64::from(f32::MAX)
        } else {
            f64::MAX
        };
        return Err(format!(
            "out of range for {code} (largest finite magnitude {max:e})"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_in_range_parse_at_their_width() {
        assert_eq!(parse(TypeCode::I8, "-128"), Ok(Datum::I8(-128)));
        assert_eq!(parse(TypeCode::U8, "255"), Ok(Datum::U8(255)));
        assert_eq!(parse(TypeCode::U8, "0xff"), Ok(Datum::U8(255)));
        assert_eq!(parse(TypeCode::I16, "-0x8000"), Ok(Datum::I16(i16::MIN)));
        assert_eq!(parse(TypeCode::U32, "0b101"), Ok(Datum::U32(5)));
        assert_eq!(parse(TypeCode::I64, "+7"), Ok(Datum::I64(7)));
        assert_eq!(parse(TypeCode::I64, "1_000"), Ok(Datum::I64(1000)));
        assert_eq!(
            parse(TypeCode::U64, "18446744073709551615"),
            Ok(Datum::U64(u64::MAX))
        );
        assert_eq!(
            parse(TypeCode::I64, "-9223372036854775808"),
            Ok(Datum::I64(i64::MIN))
        );
        assert_eq!(parse(TypeCode::I32, " 12 "), Ok(Datum::I32(12)));
    }

    #[test]
    fn integers_out_of_range_or_malformed_are_refused() {
        for (code, text, why) in [
            (TypeCode::U8, "256", "out of range for u8 (0 to 255)"),
            (TypeCode::I8, "-129", "out of range for i8 (-128 to 127)"),
            (TypeCode::U64, "-1", "out of range for u64"),
            (TypeCode::U64, "18446744073709551616", "out of range"),
            (TypeCode::I64, "9223372036854775808", "out of range"),
            (
                TypeCode::I64,
                "999999999999999999999999999999999999999999",
                "out of range",
            ),
            (TypeCode::I32, "1.5", "not an integer"),
            (TypeCode::I32, "abc", "not an integer"),
            (TypeCode::I32, "", "not an integer"),
            (TypeCode::I32, "--1", "not an integer"),
            (TypeCode::I32, "-+1", "not an integer"),
            (TypeCode::U16, "0x", "not an integer"),
            (TypeCode::U16, "0xfg", "not an integer"),
        ] {
            let e = parse(code, text).unwrap_err();
            assert!(e.contains(why), "{code} {text:?}: {e}");
        }
    }

    #[test]
    fn floats_bools_and_chars() {
        assert_eq!(parse(TypeCode::F64, "0.7"), Ok(Datum::F64(0.7)));
        assert_eq!(parse(TypeCode::F32, "-3"), Ok(Datum::F32(-3.0)));
        assert_eq!(parse(TypeCode::F64, "1e300"), Ok(Datum::F64(1e300)));
        assert_eq!(
            parse(TypeCode::F64, "-inf"),
            Ok(Datum::F64(f64::NEG_INFINITY))
        );
        assert!(matches!(parse(TypeCode::F32, "NaN"), Ok(Datum::F32(v)) if v.is_nan()));
        assert!(parse(TypeCode::F32, "1e39")
            .unwrap_err()
            .contains("out of range for f32"));
        assert!(parse(TypeCode::F64, "1e400")
            .unwrap_err()
            .contains("out of range for f64"));
        assert!(parse(TypeCode::F64, "fast")
            .unwrap_err()
            .contains("not a number"));
        assert_eq!(parse(TypeCode::Bool, "TRUE"), Ok(Datum::Bool(true)));
        assert_eq!(parse(TypeCode::Bool, "0"), Ok(Datum::Bool(false)));
        assert!(parse(TypeCode::Bool, "yes").is_err());
        assert_eq!(parse(TypeCode::Char, "é"), Ok(Datum::Char('é')));
        assert_eq!(parse(TypeCode::Char, " "), Ok(Datum::Char(' ')));
        assert!(parse(TypeCode::Char, "ab").is_err());
        assert!(parse(TypeCode::Char, "").is_err());
    }
}
