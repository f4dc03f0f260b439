//! `shm inspect`: a segment's layout and a consistent snapshot of its values.

use shm_core::inspect::{Datum, RawSegment, SegmentInfo};
use shm_core::{Descriptor, DescriptorKind};

use crate::json::{self, Json};
use crate::out::emit;
use crate::table::Table;
use crate::units;

/// How many elements of an array segment are shown unless `--limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 1000;

pub fn run(name: &str, as_json: bool, limit: usize) -> Result<(), String> {
    let raw = RawSegment::open_readonly(name).map_err(|e| e.to_string())?;
    let info = raw.info().map_err(|e| e.to_string())?;
    let values = Values::read(&raw, limit)?;
    let poisoned = raw.is_poisoned();
    if as_json {
        let mut pairs = json::info(&info);
        pairs.push(("poisoned".to_owned(), Json::Bool(poisoned)));
        pairs.push(("layout".to_owned(), json::descriptor(raw.descriptor())));
        match &values {
            Values::One(v) => pairs.push(("value".to_owned(), json::datum(v))),
            Values::Elements(items) => {
                pairs.push((
                    "value".to_owned(),
                    Json::Arr(items.iter().map(json::datum).collect()),
                ));
                pairs.push(("elements_shown".to_owned(), Json::num(items.len())));
            }
        }
        emit(&Json::Obj(pairs).render());
    } else {
        emit(&format!(
            "{}{}\n{}",
            summary(&info),
            lock_line(poisoned),
            values.render(&raw)
        ));
    }
    Ok(())
}

/// A consistent snapshot: the one value, or the first elements of an array segment.
pub enum Values {
    One(Datum),
    Elements(Vec<Datum>),
}

impl Values {
    /// Reads the value, or at most `limit` elements (0: all) of an array segment.
    pub fn read(raw: &RawSegment, limit: usize) -> Result<Values, String> {
        if raw.is_array() {
            let end = if limit == 0 { raw.len() } else { limit };
            raw.snapshot_range(0..end)
                .map(Values::Elements)
                .map_err(|e| e.to_string())
        } else {
            raw.snapshot().map(Values::One).map_err(|e| e.to_string())
        }
    }

    /// The layout table (with values for a single value), and a table of the elements of an
    /// array segment or of any field that is an array of structs.
    fn render(&self, raw: &RawSegment) -> String {
        let d = raw.descriptor();
        let mut out = String::new();
        let mut arrays = Vec::new();
        match self {
            Values::One(v) => {
                let mut t = Table::new(&["OFFSET", "FIELD", "TYPE", "CODE", "VALUE"]);
                layout_rows(d, Some(v), ".", 0, 0, &mut t, &mut arrays);
                out.push_str(&t.render(0));
            }
            Values::Elements(items) => {
                let mut t = Table::new(&["OFFSET", "FIELD", "TYPE", "CODE"]);
                layout_rows(d, None, ".", 0, 0, &mut t, &mut arrays);
                out.push_str(&format!(
                    "element layout ({} bytes, align {}):\n",
                    d.size, d.align
                ));
                out.push_str(&t.render(2));
                out.push_str(&format!("\n{} elements:\n", raw.len()));
                out.push_str(&element_table(d, items).render(2));
                if items.len() < raw.len() {
                    out.push_str(&format!(
                        "  ... {} more (--limit 0 shows all)\n",
                        raw.len() - items.len()
                    ));
                }
            }
        }
        for (path, d, v) in arrays {
            let DescriptorKind::Array { elem, .. } = &d.kind else {
                continue;
            };
            let Datum::Array(items) = v else { continue };
            out.push_str(&format!("\n{path}: {d}\n"));
            out.push_str(&element_table(elem, items).render(2));
        }
        out
    }
}

/// The lines above the tables: what the segment is, who made it, the object.
pub fn summary(i: &SegmentInfo) -> String {
    let d = &i.descriptor;
    let shape = if i.is_array {
        format!("{} elements of {d}, {} bytes each", i.count, d.size)
    } else {
        format!("{d}, {} bytes, align {}", d.size, d.align)
    };
    let created = match (i.created_at, i.age()) {
        (Some(t), Some(age)) => format!("created {} ({} ago)", units::utc(t), units::age(age)),
        (Some(t), None) => format!("created {}", units::utc(t)),
        _ => "creation time unknown".to_owned(),
    };
    let fate = match (i.kept, i.creator_alive) {
        (true, _) => "kept after its creator exits",
        (false, true) => "removed when its creator drops it",
        (false, false) => "stale: its creator died without removing it (`shm gc` removes it)",
    };
    format!(
        "segment  {}\ntype     {}: {shape}\ncreator  pid {} ({}), {created}; {fate}\nobject   {} total, payload {}, mode {:04o}, uid {}, fingerprint {:#018x}\n",
        i.name,
        i.rust_type(),
        i.creator_pid,
        if i.creator_alive { "alive" } else { "dead" },
        units::size(i.object_len),
        units::size(i.payload_len),
        i.mode,
        i.uid,
        i.fingerprint
    )
}

/// The line that says whether the segment's lock is poisoned.
fn lock_line(poisoned: bool) -> &'static str {
    if poisoned {
        "lock     POISONED: a holder of the lock died or panicked and what it may have half-changed was not repaired; the program's lock() fails until it calls clear_poison()\n"
    } else {
        "lock     not poisoned\n"
    }
}

/// The type code of the primitives an array holds (`I` for `[[u32; 2]; 3]`), if they are
/// primitives; an enum's is its repr's.
fn leaf_code(d: &Descriptor) -> String {
    match &d.kind {
        DescriptorKind::Primitive(code) | DescriptorKind::Enum { repr: code, .. } => {
            code.as_char().to_string()
        }
        DescriptorKind::Array { elem, .. } => leaf_code(elem),
        DescriptorKind::Struct { .. } | DescriptorKind::Text { .. } => String::new(),
    }
}

fn is_struct(d: &Descriptor) -> bool {
    matches!(d.kind, DescriptorKind::Struct { .. })
}

/// One row per field (nested structs indented under theirs). An array of structs gets its own
/// table, collected in `arrays`.
fn layout_rows<'a>(
    d: &'a Descriptor,
    value: Option<&'a Datum>,
    path: &str,
    offset: u64,
    depth: usize,
    t: &mut Table,
    arrays: &mut Vec<(String, &'a Descriptor, &'a Datum)>,
) {
    let indent = "  ".repeat(depth.saturating_sub(1));
    let label = format!("{indent}{}", path.rsplit('.').next().unwrap_or(path));
    let label = if path == "." { ".".to_owned() } else { label };
    let mut cells = vec![offset.to_string(), label, d.to_string(), leaf_code(d)];
    match &d.kind {
        DescriptorKind::Struct { fields } => {
            // The root struct has no row of its own: its fields are the table.
            if depth > 0 {
                if value.is_some() {
                    cells.push(String::new());
                }
                t.row(cells);
            }
            for f in fields {
                let child = value.and_then(|v| v.field(&f.name));
                let child_path = if depth == 0 {
                    f.name.clone()
                } else {
                    format!("{path}.{}", f.name)
                };
                layout_rows(
                    &f.ty,
                    child,
                    &child_path,
                    offset.saturating_add(f.offset),
                    depth + 1,
                    t,
                    arrays,
                );
            }
        }
        DescriptorKind::Array { elem, .. } if is_struct(elem) => {
            if let Some(v) = value {
                cells.push(format!("(table below: {path})"));
                arrays.push((path.to_owned(), d, v));
            }
            t.row(cells);
        }
        _ => {
            if let Some(v) = value {
                cells.push(v.to_string());
            }
            t.row(cells);
        }
    }
}

/// The columns of a table of struct elements: one per primitive or array, nested structs
/// flattened (`inner.x`).
fn columns(d: &Descriptor, prefix: &str, out: &mut Vec<String>) {
    match &d.kind {
        DescriptorKind::Struct { fields } => {
            for f in fields {
                let path = if prefix.is_empty() {
                    f.name.clone()
                } else {
                    format!("{prefix}.{}", f.name)
                };
                columns(&f.ty, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// The value at a dotted column path inside a struct value.
fn at<'a>(v: &'a Datum, path: &str) -> Option<&'a Datum> {
    if path.is_empty() {
        return Some(v);
    }
    path.split('.').try_fold(v, |v, name| v.field(name))
}

/// A table of elements: `#` and one column per field (or `VALUE` for elements that are not
/// structs).
fn element_table(elem: &Descriptor, items: &[Datum]) -> Table {
    let mut cols = Vec::new();
    if is_struct(elem) {
        columns(elem, "", &mut cols);
    }
    let header: Vec<String> = std::iter::once("#".to_owned())
        .chain(if cols.is_empty() {
            vec!["VALUE".to_owned()]
        } else {
            cols.iter().map(|c| c.to_uppercase()).collect()
        })
        .collect();
    let mut t = Table::new(&header);
    for (i, item) in items.iter().enumerate() {
        let mut row = vec![i.to_string()];
        if cols.is_empty() {
            row.push(item.to_string());
        } else {
            row.extend(
                cols.iter()
                    .map(|c| at(item, c).map_or_else(|| "?".to_owned(), ToString::to_string)),
            );
        }
        t.row(row);
    }
    t
}

/// Every primitive in `v` with its path (`hist[3]`, `inner.x`, `[2].count`), in order.
pub fn leaves<'a>(v: &'a Datum, path: String, out: &mut Vec<(String, &'a Datum)>) {
    match v {
        Datum::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                leaves(item, format!("{path}[{i}]"), out);
            }
        }
        Datum::Struct(fields) => {
            for (name, item) in fields {
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                leaves(item, p, out);
            }
        }
        primitive => out.push((
            if path.is_empty() {
                ".".to_owned()
            } else {
                path
            },
            primitive,
        )),
    }
}
