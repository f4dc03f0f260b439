//! How a descriptor found in a segment differs from the one a program expects, in words: the
//! first field that differs, and how.

use super::{Descriptor, DescriptorKind};

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
        (K::Struct { .. }, K::Struct { .. }) => Some(at(format!(
            "segment holds `{}`, this program expects `{}`",
            found.name, want.name
        ))),
        _ => Some(at(format!(
            "segment holds {found}, this program expects {want}"
        ))),
    }
}
