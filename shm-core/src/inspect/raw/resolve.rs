//! Paths: following one from the segment's root to an offset in the payload, and, when it leads
//! nowhere or to what cannot be written, saying what is there and what to write instead.

use super::{is_leaf, FieldError, Node, RawSegment};
use crate::descriptor::{Descriptor, DescriptorKind};
use crate::inspect::path::{self, FieldPath, Primitives, Step, FEW};

impl RawSegment {
    pub(super) fn parse_path(&self, path: &str) -> Result<FieldPath, FieldError> {
        path::parse(path).map_err(|reason| FieldError::Syntax {
            segment: self.name().to_owned(),
            path: path.to_owned(),
            reason,
        })
    }

    /// Follows `parsed` from the segment's root to a byte offset in the payload and what is there.
    pub(super) fn resolve(
        &self,
        path: &str,
        parsed: &FieldPath,
    ) -> Result<(u64, Node<'_>), FieldError> {
        let mut node = self.root();
        let mut offset = 0u64;
        for (i, step) in parsed.0.iter().enumerate() {
            let at = parsed.prefix(i);
            let here = describe(&at);
            let fail = |reason: String| FieldError::NoSuchField {
                segment: self.name().to_owned(),
                path: path.to_owned(),
                reason,
            };
            match (node, step) {
                (Node::Elements, Step::Index(n)) => {
                    let count = self.len() as u64;
                    if *n >= count {
                        return Err(fail(format!(
                            "index {n} is out of range: the segment is an array of {count} `{}`",
                            self.descriptor
                        )));
                    }
                    offset = n.saturating_mul(self.descriptor.size);
                    node = Node::Value(&self.descriptor);
                }
                (Node::Elements, Step::Field(name)) => {
                    let hint = self.bracketed(parsed, i).unwrap_or_else(|| {
                        // `count` for `[0].count`: the same field of the first element.
                        let field = match &self.descriptor.kind {
                            DescriptorKind::Struct { fields } => {
                                fields.iter().find(|f| &f.name == name)
                            }
                            _ => None,
                        };
                        let first = FieldPath(vec![Step::Index(0)]);
                        let under = match field {
                            Some(f) => {
                                let mut p = first;
                                p.0.push(Step::Field(f.name.clone()));
                                Primitives::of(&p, &f.ty, FEW)
                            }
                            None => Primitives::of_elements(
                                &FieldPath(Vec::new()),
                                &self.descriptor,
                                count_of(self.len()),
                                FEW,
                            ),
                        };
                        if under.is_empty() {
                            "its elements hold no primitive to write".to_owned()
                        } else {
                            format!("start with an element's index, e.g. {under}")
                        }
                    });
                    return Err(fail(format!(
                        "the segment is an array of {} `{}`: {hint}",
                        self.len(),
                        self.descriptor
                    )));
                }
                (Node::Value(d), Step::Field(name)) => match &d.kind {
                    DescriptorKind::Struct { fields } => {
                        let Some(f) = fields.iter().find(|f| &f.name == name) else {
                            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                            return Err(fail(format!(
                                "`{}` has no field `{name}`; its fields are {}",
                                d.name,
                                if names.is_empty() {
                                    "none".to_owned()
                                } else {
                                    names.join(", ")
                                }
                            )));
                        };
                        offset = offset.saturating_add(f.offset);
                        node = Node::Value(&f.ty);
                    }
                    DescriptorKind::Array { .. } => {
                        let hint = self
                            .bracketed(parsed, i)
                            .unwrap_or_else(|| primitives_in(&at, d));
                        return Err(fail(format!(
                            "{here} is {}, which has no fields: {hint}",
                            a_kind(d)
                        )));
                    }
                    DescriptorKind::Primitive(_)
                    | DescriptorKind::Enum { .. }
                    | DescriptorKind::Text { .. } => {
                        return Err(fail(format!(
                            "{here} is {}, which has no fields: write `{at}` for it",
                            a_kind(d)
                        )));
                    }
                },
                (Node::Value(d), Step::Index(n)) => match &d.kind {
                    DescriptorKind::Array { elem, len } => {
                        if n >= len {
                            return Err(fail(format!(
                                "index {n} is out of range: {here} is {d}, of {len} elements"
                            )));
                        }
                        offset = offset.saturating_add(n.saturating_mul(elem.size));
                        node = Node::Value(elem);
                    }
                    DescriptorKind::Struct { .. } => {
                        return Err(fail(format!(
                            "{here} is {}, not an array: {}",
                            a_kind(d),
                            primitives_in(&at, d)
                        )));
                    }
                    DescriptorKind::Primitive(_)
                    | DescriptorKind::Enum { .. }
                    | DescriptorKind::Text { .. } => {
                        return Err(fail(format!(
                            "{here} is {}, not an array: write `{at}` for it",
                            a_kind(d)
                        )));
                    }
                },
            }
        }
        Ok((offset, node))
    }

    /// Where a path starts: the elements of an array segment, or the one value.
    fn root(&self) -> Node<'_> {
        if self.is_array {
            Node::Elements
        } else {
            Node::Value(&self.descriptor)
        }
    }

    /// `0.pid` meant as `[0].pid`: if step `i` of `parsed`, a field name, is a number, and the
    /// path with that number as an index leads somewhere, what to write instead.
    fn bracketed(&self, parsed: &FieldPath, i: usize) -> Option<String> {
        let Step::Field(name) = &parsed.0[i] else {
            return None;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut fixed = parsed.clone();
        fixed.0[i] = Step::Index(name.parse().ok()?);
        self.resolve("", &fixed).ok()?;
        Some(format!("an index goes in brackets: `{fixed}`"))
    }

    /// Why `parsed`, which leads to `node`, cannot be written, and what to write instead.
    pub(super) fn not_primitive(&self, parsed: &FieldPath, node: Node<'_>) -> String {
        let (what, under) = match node {
            Node::Elements => (
                format!(
                    "is the whole segment, an array of {} `{}`",
                    self.len(),
                    self.descriptor
                ),
                Primitives::of_elements(parsed, &self.descriptor, count_of(self.len()), FEW),
            ),
            Node::Value(d) if parsed.0.is_empty() => (
                format!("is the segment's whole value, {}", a_kind(d)),
                Primitives::of(parsed, d, FEW),
            ),
            Node::Value(d) => (format!("is {}", a_kind(d)), Primitives::of(parsed, d, FEW)),
        };
        format!("{what}, not a single value: {}", suggest(&under))
    }

    /// What to say for an empty path: what the segment holds, and what to write.
    pub(super) fn empty_path(&self) -> String {
        let root = FieldPath(Vec::new());
        match self.root() {
            Node::Elements => format!(
                "the segment is an array of {} `{}`: {}",
                self.len(),
                self.descriptor,
                suggest(&Primitives::of_elements(
                    &root,
                    &self.descriptor,
                    count_of(self.len()),
                    FEW
                ))
            ),
            Node::Value(
                d @ Descriptor {
                    kind: DescriptorKind::Primitive(_),
                    ..
                },
            ) => format!("write `.` for the segment's value, a {d}"),
            Node::Value(d) if is_leaf(d) => {
                format!("write `.` for the segment's value, {}", a_kind(d))
            }
            Node::Value(d) => format!(
                "the segment's value is {}: {}",
                a_kind(d),
                primitives_in(&root, d)
            ),
        }
    }
}

/// `` write one of the primitives in it: `a.x`, `a.y[0]`, … `` for a value of type `d` at `at`.
fn primitives_in(at: &FieldPath, d: &Descriptor) -> String {
    suggest(&Primitives::of(at, d, FEW))
}

/// `write one of the primitives in it: ...`, or that there is none.
fn suggest(under: &Primitives) -> String {
    if under.is_empty() {
        "it holds no primitive to write".to_owned()
    } else {
        format!("write one of the primitives in it: {under}")
    }
}

/// `a `Inner` struct`, `a `[u32; 4]` array`, `u64`.
fn a_kind(d: &Descriptor) -> String {
    match &d.kind {
        DescriptorKind::Struct { .. } => format!("a `{}` struct", d.name),
        DescriptorKind::Enum { .. } => format!("a `{}` enum", d.name),
        DescriptorKind::Array { .. } => format!("a `{d}` array"),
        DescriptorKind::Text { capacity } => format!("a text of at most {capacity} bytes"),
        DescriptorKind::Primitive(_) => d.to_string(),
    }
}

/// A number of elements, as a descriptor counts them.
fn count_of(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// `the segment's value` or `` `hist` ``, for messages.
fn describe(path: &FieldPath) -> String {
    if path.0.is_empty() {
        "the segment's value".to_owned()
    } else {
        format!("`{path}`")
    }
}
