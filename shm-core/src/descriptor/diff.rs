//! How a descriptor found in a segment differs from the one a program expects, in words: the
//! first field or variant that differs, and how.

use super::{Descriptor, DescriptorKind, DescriptorVariant};
use crate::TypeCode;

impl Descriptor {
    /// The first way in which `self` (found in a segment) differs from `expected`, in words, or
    /// `None` if they are the same.
    pub fn first_difference(&self, expected: &Descriptor) -> Option<String> {
        diff(self, expected, "")
    }
}

fn field_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn diff(found: &Descriptor, want: &Descriptor, path: &str) -> Option<String> {
    use DescriptorKind as K;
    let at = |what: String| {
        if path.is_empty() {
            what
        } else {
            format!("field `{path}`: {what}")
        }
    };
    match (&found.kind, &want.kind) {
        (K::Primitive(a), K::Primitive(b)) if a == b => None,
        (K::Array { elem: fe, len: fl }, K::Array { elem: we, len: wl }) if fl == wl => {
            diff(fe, we, &format!("{path}[]"))
        }
        (K::Struct { fields: ff }, K::Struct { fields: wf }) if found.name == want.name => {
            for (i, w) in wf.iter().enumerate() {
                let fpath = field_path(path, &w.name);
                let Some(f) = ff.get(i) else {
                    return Some(format!(
                        "field `{fpath}`: missing from the segment (this program expects {} at offset {})",
                        w.ty, w.offset
                    ));
                };
                if f.name != w.name {
                    let wanted_elsewhere = ff.iter().any(|x| x.name == w.name);
                    let found_elsewhere = wf.iter().any(|x| x.name == f.name);
                    return Some(match (wanted_elsewhere, found_elsewhere) {
                        (true, true) => format!(
                            "fields in another order: at offset {} the segment has `{}`, this program expects `{fpath}`",
                            f.offset,
                            field_path(path, &f.name)
                        ),
                        (false, _) => format!(
                            "field `{fpath}`: missing from the segment (this program expects {} at offset {}; the segment has `{}` there)",
                            w.ty, w.offset, f.name
                        ),
                        (true, false) => format!(
                            "field `{}`: the segment has {} at offset {}, which this program does not expect",
                            field_path(path, &f.name),
                            f.ty,
                            f.offset
                        ),
                    });
                }
                if f.offset != w.offset || f.ty.to_string() != w.ty.to_string() {
                    return Some(format!(
                        "field `{fpath}`: segment has {} at offset {}, this program expects {} at offset {}",
                        f.ty, f.offset, w.ty, w.offset
                    ));
                }
                if let Some(d) = diff(&f.ty, &w.ty, &fpath) {
                    return Some(d);
                }
            }
            if let Some(extra) = ff.get(wf.len()) {
                return Some(format!(
                    "field `{}`: the segment has {} at offset {}, which this program does not expect",
                    field_path(path, &extra.name),
                    extra.ty,
                    extra.offset
                ));
            }
            (found.size != want.size || found.align != want.align).then(|| {
                at(format!(
                    "`{}` has size {} and alignment {} in the segment, this program expects size {} and alignment {}",
                    want.name, found.size, found.align, want.size, want.align
                ))
            })
        }
        (
            K::Enum {
                repr: fr,
                variants: fv,
                default: fd,
            },
            K::Enum {
                repr: wr,
                variants: wv,
                default: wd,
            },
        ) if found.name == want.name => diff_enum(&want.name, (fr, fv, *fd), (wr, wv, *wd)).map(at),
        (K::Text { capacity: a }, K::Text { capacity: b }) if a == b => None,
        (K::Struct { .. }, K::Struct { .. }) | (K::Enum { .. }, K::Enum { .. }) => {
            Some(at(format!(
                "segment holds `{}`, this program expects `{}`",
                found.name, want.name
            )))
        }
        _ => Some(at(format!(
            "segment holds {found}, this program expects {want}"
        ))),
    }
}

/// How an enum found in a segment differs from the one expected (of the same name), naming the
/// first variant that differs; `None` if they are the same.
fn diff_enum(
    name: &str,
    (found_repr, found, found_default): (&TypeCode, &[DescriptorVariant], usize),
    (want_repr, want, want_default): (&TypeCode, &[DescriptorVariant], usize),
) -> Option<String> {
    if found_repr != want_repr {
        return Some(format!(
            "`{name}` is stored as {found_repr} in the segment, this program stores it as {want_repr}"
        ));
    }
    for w in want {
        match found.iter().find(|f| f.name == w.name) {
            None => {
                return Some(format!(
                    "variant `{}` of `{name}` ({}) is missing from the segment",
                    w.name, w.value
                ))
            }
            Some(f) if f.value != w.value => {
                return Some(format!(
                    "variant `{}` of `{name}` is {} in the segment, {} in this program",
                    w.name, f.value, w.value
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found
        .iter()
        .find(|f| !want.iter().any(|w| w.name == f.name))
    {
        return Some(format!(
            "the segment's `{name}` has variant `{}` ({}), which this program does not know",
            extra.name, extra.value
        ));
    }
    if let Some((f, w)) = found.iter().zip(want).find(|(f, w)| f.name != w.name) {
        return Some(format!(
            "the variants of `{name}` are in another order: the segment has `{}` where this program has `{}`",
            f.name, w.name
        ));
    }
    let default_of = |variants: &[DescriptorVariant], i: usize| {
        variants.get(i).map_or_else(String::new, |v| v.name.clone())
    };
    (found_default != want_default).then(|| {
        format!(
            "the default variant of `{name}` is `{}` in the segment, `{}` in this program",
            default_of(found, found_default),
            default_of(want, want_default)
        )
    })
}
