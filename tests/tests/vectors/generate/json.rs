//! A JSON writer that keeps fields in the order they are written (`serde_json` sorts them), and
//! writes short values on one line: vector files meant to be read.

/// A JSON value.
#[derive(Clone)]
pub enum J {
    Bool(bool),
    /// Wide enough for every value of every integer type code.
    Int(i128),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<u64> for J {
    fn from(n: u64) -> J {
        J::Int(n.into())
    }
}
impl From<usize> for J {
    fn from(n: usize) -> J {
        J::Int(n as i128)
    }
}
impl From<&str> for J {
    fn from(s: &str) -> J {
        J::Str(s.to_owned())
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::Str(s)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::Arr(v)
    }
}

macro_rules! obj {
    ($($key:literal: $value:expr),* $(,)?) => {
        J::Obj(vec![$(($key.to_owned(), J::from($value))),*])
    };
}

/// A 64-bit value as the vectors write it: `0x` and 16 hex digits.
pub fn hex64(v: u64) -> J {
    J::Str(format!("{v:#018x}"))
}

impl J {
    /// A `serde_json` value, with the keys in an order meant for reading.
    pub fn from_value(v: &serde_json::Value) -> J {
        const ORDER: [&str; 13] = [
            "id", "struct", "array", "enum", "text", "repr", "len", "align", "name", "type",
            "value", "variants", "default",
        ];
        match v {
            serde_json::Value::Bool(b) => J::Bool(*b),
            serde_json::Value::Number(n) => J::Int(match n.as_u64() {
                Some(u) => u.into(),
                None => n.as_i64().expect("an integer").into(),
            }),
            serde_json::Value::String(s) => J::Str(s.clone()),
            serde_json::Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            serde_json::Value::Object(o) => {
                let mut fields: Vec<_> = o
                    .iter()
                    .map(|(k, v)| (k.clone(), J::from_value(v)))
                    .collect();
                fields
                    .sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
                J::Obj(fields)
            }
            serde_json::Value::Null => panic!("no nulls in the vectors"),
        }
    }

    fn inline(&self) -> String {
        match self {
            J::Bool(b) => b.to_string(),
            J::Int(n) => n.to_string(),
            J::Str(s) => serde_json::to_string(s).expect("a string"),
            J::Arr(a) => format!(
                "[{}]",
                a.iter().map(J::inline).collect::<Vec<_>>().join(", ")
            ),
            J::Obj(o) => format!(
                "{{{}}}",
                o.iter()
                    .map(|(k, v)| format!("{}: {}", J::Str(k.clone()).inline(), v.inline()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Pretty, `indent` spaces deep, starting at column `col`: anything that fits before column
    /// 100 on one line.
    pub fn pretty(&self, indent: usize, col: usize, out: &mut String) {
        let line = self.inline();
        if col + line.len() <= 100 {
            out.push_str(&line);
            return;
        }
        let pad = " ".repeat(indent + 2);
        match self {
            J::Arr(a) => {
                out.push_str("[\n");
                for (i, v) in a.iter().enumerate() {
                    out.push_str(&pad);
                    v.pretty(indent + 2, indent + 2, out);
                    out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
                }
                out.push_str(&" ".repeat(indent));
                out.push(']');
            }
            J::Obj(o) => {
                out.push_str("{\n");
                for (i, (k, v)) in o.iter().enumerate() {
                    let key = J::Str(k.clone()).inline();
                    out.push_str(&pad);
                    out.push_str(&key);
                    out.push_str(": ");
                    v.pretty(indent + 2, indent + 2 + key.len() + 2, out);
                    out.push_str(if i + 1 < o.len() { ",\n" } else { "\n" });
                }
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
            // A long string stays on its line.
            _ => out.push_str(&line),
        }
    }

    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.inline()).expect("the writer writes JSON")
    }
}

/// The fields of `a`, then those of `b` (both objects).
pub fn join(a: J, b: J) -> J {
    match (a, b) {
        (J::Obj(mut a), J::Obj(b)) => {
            a.extend(b);
            J::Obj(a)
        }
        _ => panic!("join two objects"),
    }
}
