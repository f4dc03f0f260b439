//! Field paths: `load`, `hist[3]`, `inner.x`, `slots[2].count`, `[2].count`.

use std::fmt;

/// One step of a path: into a struct field, or into an array element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Field(String),
    Index(u64),
}

/// A parsed path. Empty for the whole value (written `""` or `"."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath(pub Vec<Step>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Field(name) if i == 0 => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl FieldPath {
    /// The path of the first `n` steps, for messages about where resolution stopped.
    pub fn prefix(&self, n: usize) -> FieldPath {
        FieldPath(self.0[..n.min(self.0.len())].to_vec())
    }
}

/// Parses `text`; on failure, says what is wrong and where.
pub(crate) fn parse(text: &str) -> Result<FieldPath, String> {
    if text.is_empty() || text == "." {
        return Ok(FieldPath(Vec::new()));
    }
    let bytes = text.as_bytes();
    let mut steps = Vec::new();
    let mut pos = 0;
    // After a name or an index: `.`, `[` or the end may follow. At the start: a name or `[`.
    let mut need_name = false;
    while pos < bytes.len() {
        match bytes[pos] {
            b'[' if !need_name => {
                let close = text[pos..]
                    .find(']')
                    .map(|i| pos + i)
                    .ok_or_else(|| format!("`[` at byte {pos} is not closed"))?;
                let digits = &text[pos + 1..close];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "`[{digits}]` is not an index: write a number, e.g. `[0]`"
                    ));
                }
                let n = digits
                    .parse::<u64>()
                    .map_err(|_| format!("index {digits} is too large"))?;
                steps.push(Step::Index(n));
                pos = close + 1;
            }
            b'.' if !steps.is_empty() && !need_name => {
                need_name = true;
                pos += 1;
            }
            b'.' | b'[' | b']' => {
                return Err(format!("unexpected `{}` at byte {pos}", bytes[pos] as char))
            }
            _ if need_name || steps.is_empty() => {
                let end = text[pos..]
                    .find(['.', '[', ']'])
                    .map_or(text.len(), |i| pos + i);
                steps.push(Step::Field(text[pos..end].to_owned()));
                need_name = false;
                pos = end;
            }
            _ => {
                return Err(format!(
                    "expected `.` or `[` at byte {pos}, found `{}`",
                    &text[pos..].chars().next().unwrap_or(' ')
                ))
            }
        }
    }
    if need_name {
        return Err("a field name must follow the last `.`".to_owned());
    }
    Ok(FieldPath(steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Step {
        Step::Field(s.to_owned())
    }

    #[test]
    fn paths_parse_and_print_back() {
        for (text, steps) in [
            ("load", vec![f("load")]),
            ("hist[3]", vec![f("hist"), Step::Index(3)]),
            ("inner.x", vec![f("inner"), f("x")]),
            (
                "slots[2].count",
                vec![f("slots"), Step::Index(2), f("count")],
            ),
            ("[2].count", vec![Step::Index(2), f("count")]),
            (
                "grid[1][2]",
                vec![f("grid"), Step::Index(1), Step::Index(2)],
            ),
            ("pair.0", vec![f("pair"), f("0")]),
            ("[0]", vec![Step::Index(0)]),
        ] {
            let p = parse(text).unwrap();
            assert_eq!(p.0, steps, "{text}");
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(parse("").unwrap().0, vec![]);
        assert_eq!(parse(".").unwrap().to_string(), ".");
    }

    #[test]
    fn malformed_paths_are_explained() {
        for (text, why) in [
            ("hist[", "not closed"),
            ("hist[x]", "not an index"),
            ("hist[]", "not an index"),
            ("hist[-1]", "not an index"),
            ("a..b", "unexpected `.`"),
            (".a", "unexpected `.`"),
            ("a.", "must follow"),
            ("a]", "unexpected `]`"),
            ("hist[1]x", "expected `.` or `[`"),
            ("hist[99999999999999999999999]", "too large"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
