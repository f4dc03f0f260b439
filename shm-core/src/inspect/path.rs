//! Field paths: `load`, `hist[3]`, `inner.x`, `slots[2].count`, `[2].count`; and the paths of
//! the primitives under a value, to suggest in messages.

use std::fmt;

use crate::descriptor::{Descriptor, DescriptorKind};

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

/// The first few paths of primitives under some value, in layout order: what a message suggests
/// writing instead of a path that names no primitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Primitives {
    pub paths: Vec<FieldPath>,
    /// There are more than `paths` (or the search gave up before it knew).
    pub more: bool,
}

/// How many primitives a message lists before `…`.
pub(crate) const FEW: usize = 4;

/// How many values a search looks at before it gives up: a layout of huge arrays of empty
/// structs holds no primitive, and proving it would take as long as the arrays are long.
const SEARCH_BUDGET: u32 = 4096;

impl Primitives {
    /// The first `max` primitives in a value of type `d` at `at`.
    pub fn of(at: &FieldPath, d: &Descriptor, max: usize) -> Primitives {
        let mut s = Search::new(at, max);
        s.value(d);
        s.done()
    }

    /// The first `max` primitives in `len` elements of type `elem` at `at`.
    pub fn of_elements(at: &FieldPath, elem: &Descriptor, len: u64, max: usize) -> Primitives {
        let mut s = Search::new(at, max);
        s.elements(elem, len);
        s.done()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.more
    }
}

/// `` `a.x`, `a.y[0]`, … ``.
impl fmt::Display for Primitives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.paths.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{p}`")?;
        }
        if self.more {
            f.write_str(if self.paths.is_empty() {
                "…"
            } else {
                ", …"
            })?;
        }
        Ok(())
    }
}

/// A depth-first walk that stops after `max` primitives or `SEARCH_BUDGET` values.
struct Search {
    at: Vec<Step>,
    found: Vec<FieldPath>,
    max: usize,
    budget: u32,
    more: bool,
}

impl Search {
    fn new(at: &FieldPath, max: usize) -> Search {
        Search {
            at: at.0.clone(),
            found: Vec::new(),
            max,
            budget: SEARCH_BUDGET,
            more: false,
        }
    }

    fn done(self) -> Primitives {
        Primitives {
            paths: self.found,
            more: self.more,
        }
    }

    /// Walks a value of type `d`; `false` once the walk is over.
    fn value(&mut self, d: &Descriptor) -> bool {
        if self.budget == 0 {
            self.more = true;
            return false;
        }
        self.budget -= 1;
        match &d.kind {
            // A value one `set` writes: a primitive, an enum, a text.
            DescriptorKind::Primitive(_)
            | DescriptorKind::Enum { .. }
            | DescriptorKind::Text { .. } => {
                if self.found.len() == self.max {
                    self.more = true;
                    return false;
                }
                self.found.push(FieldPath(self.at.clone()));
                true
            }
            DescriptorKind::Array { elem, len } => self.elements(elem, *len),
            DescriptorKind::Struct { fields } => fields.iter().all(|f| {
                self.at.push(Step::Field(f.name.clone()));
                let go_on = self.value(&f.ty);
                self.at.pop();
                go_on
            }),
        }
    }

    fn elements(&mut self, elem: &Descriptor, len: u64) -> bool {
        (0..len).all(|i| {
            self.at.push(Step::Index(i));
            let go_on = self.value(elem);
            self.at.pop();
            go_on
        })
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

    fn prim(code: crate::TypeCode) -> Descriptor {
        Descriptor {
            name: String::new(),
            size: code.size() as u64,
            align: code.size() as u64,
            kind: DescriptorKind::Primitive(code),
        }
    }

    fn array(elem: Descriptor, len: u64) -> Descriptor {
        Descriptor {
            name: String::new(),
            size: elem.size * len,
            align: elem.align,
            kind: DescriptorKind::Array {
                elem: Box::new(elem),
                len,
            },
        }
    }

    fn strukt(name: &str, fields: Vec<(&str, Descriptor)>) -> Descriptor {
        let mut offset = 0;
        let fields = fields
            .into_iter()
            .map(|(n, ty)| {
                let f = crate::DescriptorField {
                    name: n.to_owned(),
                    offset,
                    ty,
                };
                offset += f.ty.size;
                f
            })
            .collect();
        Descriptor {
            name: name.to_owned(),
            size: offset,
            align: 8,
            kind: DescriptorKind::Struct { fields },
        }
    }

    #[test]
    fn primitives_are_listed_in_layout_order_a_few_then_an_ellipsis() {
        use crate::TypeCode::{U16, U32};
        let inner = strukt("Inner", vec![("x", prim(U16)), ("y", array(prim(U32), 3))]);
        let root = parse("inner").unwrap();
        let all = Primitives::of(&root, &inner, FEW);
        assert_eq!(
            all.to_string(),
            "`inner.x`, `inner.y[0]`, `inner.y[1]`, `inner.y[2]`"
        );
        assert!(!all.more);
        let few = Primitives::of(&root, &inner, 2);
        assert_eq!(few.to_string(), "`inner.x`, `inner.y[0]`, …");
        let slots = Primitives::of_elements(&FieldPath(vec![]), &inner, 3, FEW);
        assert_eq!(
            slots.to_string(),
            "`[0].x`, `[0].y[0]`, `[0].y[1]`, `[0].y[2]`, …"
        );
        let grid = array(array(prim(U32), 3), 2);
        assert_eq!(
            Primitives::of(&parse("grid").unwrap(), &grid, FEW).to_string(),
            "`grid[0][0]`, `grid[0][1]`, `grid[0][2]`, `grid[1][0]`, …"
        );
        // A single value is its own path.
        assert_eq!(
            Primitives::of(&FieldPath(vec![]), &prim(U32), FEW).to_string(),
            "`.`"
        );
    }

    #[test]
    fn a_layout_without_primitives_is_searched_within_a_budget() {
        let empty = strukt("Empty", vec![]);
        let none = Primitives::of(&FieldPath(vec![]), &array(empty.clone(), 3), FEW);
        assert!(none.is_empty(), "{none}");
        // 2^60 empty structs: the search gives up and says there may be more.
        let huge = Primitives::of(&FieldPath(vec![]), &array(empty, 1 << 60), FEW);
        assert_eq!((huge.paths.len(), huge.more), (0, true));
        assert_eq!(huge.to_string(), "…");
    }
}
