//! JSON output, written by hand: a few value shapes do not need a serialization framework.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use shm_core::inspect::{Datum, SegmentInfo};
use shm_core::{Descriptor, DescriptorKind};

/// A JSON value. Numbers are kept as their text, so each type prints at its own precision.
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs, in order.
    pub fn obj<const N: usize>(pairs: [(&str, Json); N]) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    pub fn num(n: impl std::fmt::Display) -> Json {
        Json::Num(n.to_string())
    }

    /// Pretty-printed, two spaces per level, with a final newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(d));
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => quote(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                // Arrays of numbers stay on one line.
                let flat = items
                    .iter()
                    .all(|i| matches!(i, Json::Num(_) | Json::Bool(_) | Json::Null));
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        if flat {
                            out.push(' ');
                        }
                    }
                    if !flat {
                        pad(out, depth + 1);
                    }
                    item.write(out, depth + 1);
                }
                if !flat {
                    pad(out, depth);
                }
                out.push(']');
            }
            Json::Obj(pairs) if pairs.is_empty() => out.push_str("{}"),
            Json::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    quote(out, k);
                    out.push_str(": ");
                    v.write(out, depth + 1);
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float: its shortest exact text, or `"NaN"`, `"inf"`, `"-inf"` (JSON has no such numbers).
fn float(finite: bool, text: String) -> Json {
    if finite {
        Json::Num(text)
    } else {
        Json::Str(text)
    }
}

/// A value: numbers, booleans, one-character strings, an enum's variant name (or, for a number
/// that is no variant, the number), text as a string, arrays, and objects in field order.
pub fn datum(d: &Datum) -> Json {
    match d {
        Datum::Enum {
            variant,
            known: true,
            ..
        } => Json::str(variant.clone()),
        Datum::Enum { value, .. } => Json::num(value),
        Datum::Text(s) => Json::str(s.clone()),
        Datum::F32(v) => float(v.is_finite(), format!("{v:?}")),
        Datum::F64(v) => float(v.is_finite(), format!("{v:?}")),
        Datum::Bool(b) => Json::Bool(*b),
        Datum::Char(c) => Json::Str(c.to_string()),
        Datum::Array(items) => Json::Arr(items.iter().map(datum).collect()),
        Datum::Struct(fields) => Json::Obj(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), datum(value)))
                .collect(),
        ),
        other => Json::num(other),
    }
}

/// A layout: `kind` is `primitive` (with `code`), `array` (with `len` and `elem`), `struct`
/// (with `fields`: name, offset, type), `enum` (with `code`, the repr's, `variants`: name and
/// value, and `default`, the name a number that is no variant reads as) or `text` (with
/// `capacity` in bytes).
pub fn descriptor(d: &Descriptor) -> Json {
    let mut pairs = vec![
        ("type".to_owned(), Json::str(d.to_string())),
        ("size".to_owned(), Json::num(d.size)),
        ("align".to_owned(), Json::num(d.align)),
    ];
    match &d.kind {
        DescriptorKind::Primitive(code) => {
            pairs.push(("kind".to_owned(), Json::str("primitive")));
            pairs.push(("code".to_owned(), Json::str(code.as_char().to_string())));
        }
        DescriptorKind::Array { elem, len } => {
            pairs.push(("kind".to_owned(), Json::str("array")));
            pairs.push(("len".to_owned(), Json::num(len)));
            pairs.push(("elem".to_owned(), descriptor(elem)));
        }
        DescriptorKind::Enum {
            repr,
            variants,
            default,
        } => {
            pairs.push(("kind".to_owned(), Json::str("enum")));
            pairs.push(("code".to_owned(), Json::str(repr.as_char().to_string())));
            pairs.push((
                "variants".to_owned(),
                Json::Arr(
                    variants
                        .iter()
                        .map(|v| {
                            Json::obj([
                                ("name", Json::str(v.name.clone())),
                                ("value", Json::num(v.value)),
                            ])
                        })
                        .collect(),
                ),
            ));
            let default = variants.get(*default).map(|v| v.name.clone());
            pairs.push(("default".to_owned(), default.map_or(Json::Null, Json::Str)));
        }
        DescriptorKind::Text { capacity } => {
            pairs.push(("kind".to_owned(), Json::str("text")));
            pairs.push(("capacity".to_owned(), Json::num(capacity)));
        }
        DescriptorKind::Struct { fields } => {
            pairs.push(("kind".to_owned(), Json::str("struct")));
            pairs.push((
                "fields".to_owned(),
                Json::Arr(
                    fields
                        .iter()
                        .map(|f| {
                            Json::obj([
                                ("name", Json::str(f.name.clone())),
                                ("offset", Json::num(f.offset)),
                                ("layout", descriptor(&f.ty)),
                            ])
                        })
                        .collect(),
                ),
            ));
        }
    }
    Json::Obj(pairs)
}

/// What `ls` and `inspect` say about a valid segment.
pub fn info(i: &SegmentInfo) -> Vec<(String, Json)> {
    let created = i
        .created_at
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(Json::Null, |d| Json::num(d.as_secs()));
    let age = i.age().map_or(Json::Null, |d| Json::num(d.as_secs()));
    [
        ("name", Json::str(i.name.clone())),
        ("type", Json::str(i.type_name())),
        ("rust_type", Json::str(i.rust_type())),
        ("array", Json::Bool(i.is_array)),
        ("count", Json::num(i.count)),
        ("elem_size", Json::num(i.descriptor.size)),
        ("payload_len", Json::num(i.payload_len)),
        ("object_len", Json::num(i.object_len)),
        ("fingerprint", Json::str(format!("{:#018x}", i.fingerprint))),
        ("creator_pid", Json::num(i.creator_pid)),
        ("creator_alive", Json::Bool(i.creator_alive)),
        ("kept", Json::Bool(i.kept)),
        ("stale", Json::Bool(i.is_stale())),
        ("created_at", created),
        ("age_secs", age),
        ("uid", Json::num(i.uid)),
        ("gid", Json::num(i.gid)),
        ("mode", Json::str(format!("{:04o}", i.mode))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_compact_json() {
        let v = Json::obj([
            ("s", Json::str("a\"b\\c\n\u{1}")),
            ("n", Json::Arr(vec![Json::num(1), Json::num(-2.5)])),
            ("e", Json::Arr(vec![])),
            ("o", Json::obj([("x", Json::Null)])),
            ("f", datum(&Datum::F64(f64::NAN))),
        ]);
        assert_eq!(
            v.render(),
            "{\n  \"s\": \"a\\\"b\\\\c\\n\\u0001\",\n  \"n\": [1, -2.5],\n  \"e\": [],\n  \"o\": {\n    \"x\": null\n  },\n  \"f\": \"NaN\"\n}\n"
        );
    }
}
