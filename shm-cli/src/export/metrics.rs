//! What a segment's values become: metric families named from field paths, with the labels
//! `segment`, `type` and `index`; a name ending in `_total` is a counter, the rest are gauges.
//!
//! [`Walk::node`] is the one place that says what each kind of descriptor node becomes; a new
//! kind of node gets its arm there.

use std::collections::{BTreeSet, HashMap, HashSet};

use shm_core::inspect::Datum;
use shm_core::{Descriptor, DescriptorKind, TypeCode};

/// Every metric name made from a field path starts with this.
pub const PREFIX: &str = "shm_";
/// Names the exporter's own metrics use; no field may take one.
pub const RESERVED: &str = "shm_export_";
/// The label of an info sample that holds its text.
pub const TEXT_LABEL: &str = "value";

/// The kind of a family, as OpenMetrics names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// Samples are named `<family>_total`.
    Counter,
    /// One sample of value 1 whose `value` label holds the text; samples are named
    /// `<family>_info`. The 0.0.4 text format has no info type: there it is a gauge.
    Info,
}

impl Kind {
    /// What the sample names add to the family name.
    fn suffix(self) -> &'static str {
        match self {
            Kind::Gauge => "",
            Kind::Counter => "_total",
            Kind::Info => "_info",
        }
    }
}

/// One sample: its labels, in order, and its value, already written as both text formats write
/// numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `segment`, `type`, then `index` and an info's `value` if it has them.
    pub labels: Vec<(&'static str, String)>,
    /// `17`, `0.7`, `NaN`, `+Inf`.
    pub value: String,
}

impl Sample {
    /// Which series of its family this is: its labels except an info sample's text, which
    /// is what the series says, not which one it is.
    fn key(&self) -> Vec<(&'static str, String)> {
        self.labels
            .iter()
            .filter(|(k, _)| *k != TEXT_LABEL)
            .cloned()
            .collect()
    }
}

/// A metric family: samples of one name and kind, from one or several segments.
#[derive(Debug)]
pub struct Family {
    /// The OpenMetrics family name: without the `_total` of a counter or the `_info` of an info.
    pub name: String,
    /// Gauge, counter or info.
    pub kind: Kind,
    /// Where the samples come from (`load (f64) of Shared<WebStats>`), for the HELP text.
    sources: BTreeSet<String>,
    /// The HELP text of the exporter's own families, which come from no segment.
    fixed_help: Option<&'static str>,
    /// In the order they were added: segments by name, fields in order.
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family of samples read from segments, `source` the first of them.
    pub fn new(name: &str, kind: Kind, source: &str) -> Family {
        Family {
            name: name.to_owned(),
            kind,
            sources: BTreeSet::from([source.to_owned()]),
            fixed_help: None,
            samples: Vec::new(),
        }
    }

    /// One of the exporter's own families, with its HELP text.
    pub fn own(name: &str, kind: Kind, help: &'static str) -> Family {
        Family {
            name: name.to_owned(),
            kind,
            sources: BTreeSet::new(),
            fixed_help: Some(help),
            samples: Vec::new(),
        }
    }

    /// The name its samples have, which is also its name in the 0.0.4 text format.
    pub fn sample_name(&self) -> String {
        format!("{}{}", self.name, self.kind.suffix())
    }

    /// The HELP text: what it is read from, generated from the type and the path (descriptors
    /// carry no doc comments).
    pub fn help(&self) -> String {
        if let Some(help) = self.fixed_help {
            return help.to_owned();
        }
        const SHOWN: usize = 4;
        let mut parts: Vec<&str> = self
            .sources
            .iter()
            .map(String::as_str)
            .take(SHOWN)
            .collect();
        let more = self.sources.len().saturating_sub(SHOWN);
        let more_text = format!("and {more} more");
        if more > 0 {
            parts.push(&more_text);
        }
        format!("Read from shm segments: {}.", parts.join("; "))
    }
}

/// Why a field was not exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The field's path, as `shm set` spells it.
    pub path: String,
    /// The sample name it would have had.
    pub metric: String,
    /// Why that name could not be used.
    pub reason: &'static str,
}

/// The families of one scrape, in the order they were first met, with the checks that keep the
/// output valid: one family per name in either format, one sample per label set.
#[derive(Debug, Default)]
pub struct Families {
    list: Vec<Family>,
    /// Family names and sample names, each to its family: in OpenMetrics a gauge `x_total` would
    /// collide with a counter `x`, and an info `x` with a gauge `x_info`.
    names: HashMap<String, usize>,
    /// The family and the series of every sample added.
    keys: HashSet<(usize, Vec<(&'static str, String)>)>,
}

impl Families {
    /// The families, in the order they were first met.
    pub fn into_vec(self) -> Vec<Family> {
        self.list
    }

    /// Adds `sample` to the family `name` of `kind`, made if it is new, with `source` for its
    /// HELP text.
    fn add(&mut self, name: &str, kind: Kind, source: &str, sample: Sample) -> Result<(), Clash> {
        let clash = |reason| Clash {
            path: String::new(),
            metric: format!("{name}{}", kind.suffix()),
            reason,
        };
        if name.starts_with(RESERVED) {
            return Err(clash("the name is reserved for the exporter's own metrics"));
        }
        let sample_name = format!("{name}{}", kind.suffix());
        let at = match (self.names.get(name), self.names.get(&sample_name)) {
            (Some(&i), Some(&j)) if i == j && self.list[i].name == name => {
                if self.list[i].kind != kind {
                    return Err(clash(
                        "another field has this name with another metric type",
                    ));
                }
                i
            }
            (None, None) => {
                let i = self.list.len();
                self.list.push(Family::new(name, kind, source));
                self.names.insert(name.to_owned(), i);
                self.names.insert(sample_name, i);
                i
            }
            _ => return Err(clash("another field's metric has this name")),
        };
        let key = (at, sample.key());
        if !self.keys.insert(key) {
            return Err(clash("another field of this segment has this metric name"));
        }
        let family = &mut self.list[at];
        family.sources.insert(source.to_owned());
        family.samples.push(sample);
        Ok(())
    }
}

/// A segment read for a scrape.
pub struct SegmentView<'a> {
    /// The segment's name: the `segment` label.
    pub name: &'a str,
    /// The layout of one element, from the segment's header.
    pub descriptor: &'a Descriptor,
    /// Whether the segment is an `Array` (the snapshot is then its elements).
    pub is_array: bool,
    /// The whole value, from one consistent snapshot: for an array segment, its elements.
    pub snapshot: &'a Datum,
}

/// Adds every sample of `seg` to `families`; returns the fields left out, whose names collide.
pub fn add_segment(families: &mut Families, seg: &SegmentView<'_>) -> Vec<Clash> {
    let rust_type = if seg.is_array {
        format!("Array<{}>", seg.descriptor)
    } else if matches!(seg.descriptor.kind, DescriptorKind::Primitive(_)) {
        format!("Value<{}>", seg.descriptor)
    } else {
        format!("Shared<{}>", seg.descriptor)
    };
    let mut walk = Walk {
        families,
        segment: seg.name,
        type_name: seg.descriptor.to_string(),
        rust_type,
        path: Vec::new(),
        clashes: Vec::new(),
    };
    match (seg.is_array, seg.snapshot) {
        (true, Datum::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk.path.push(Step::Index(i));
                walk.node(seg.descriptor, item);
                walk.path.pop();
            }
        }
        (true, _) => walk.mismatch(),
        (false, d) => walk.node(seg.descriptor, d),
    }
    walk.clashes
}

/// How many samples a segment of `count` elements of `d` gives: what a scrape checks before it
/// reads a segment (saturating: a hostile descriptor may describe more than exists).
pub fn sample_count(d: &Descriptor, count: u64) -> u64 {
    fn per_element(d: &Descriptor) -> u64 {
        match &d.kind {
            DescriptorKind::Primitive(_)
            | DescriptorKind::Enum { .. }
            | DescriptorKind::Text { .. } => 1,
            DescriptorKind::Array { elem, len } => per_element(elem).saturating_mul(*len),
            DescriptorKind::Struct { fields } => fields
                .iter()
                .fold(0u64, |n, f| n.saturating_add(per_element(&f.ty))),
        }
    }
    per_element(d).saturating_mul(count)
}

#[derive(Debug, Clone)]
enum Step {
    Field(String),
    Index(usize),
}

struct Walk<'a> {
    families: &'a mut Families,
    segment: &'a str,
    type_name: String,
    rust_type: String,
    path: Vec<Step>,
    clashes: Vec<Clash>,
}

impl Walk<'_> {
    /// What one node of the descriptor becomes, with `datum` its value in the snapshot.
    ///
    /// - a number: one gauge sample, or a counter's if its name ends in `_total`; a bool is 0 or 1;
    /// - a char: an info sample whose `value` label is the character;
    /// - a text: an info sample whose `value` label is the text;
    /// - an enum: an info sample whose `value` label is the variant's name (`Busy`), or for a
    ///   number that is no variant, the number and what it reads as;
    /// - an array: its elements, each with its index added to the `index` label;
    /// - a struct: its fields, each adding its name to the metric name.
    fn node(&mut self, d: &Descriptor, datum: &Datum) {
        match (&d.kind, datum) {
            (DescriptorKind::Text { .. }, Datum::Text(text)) => {
                self.sample(Kind::Info, d, Some(text.clone()), "1".to_owned());
            }
            (DescriptorKind::Enum { .. }, state @ Datum::Enum { .. }) => {
                self.sample(Kind::Info, d, Some(state.to_string()), "1".to_owned());
            }
            (DescriptorKind::Primitive(TypeCode::Char), Datum::Char(c)) => {
                self.sample(
                    Kind::Info,
                    TypeCode::Char,
                    Some(c.to_string()),
                    "1".to_owned(),
                );
            }
            (DescriptorKind::Primitive(code), d) => match number(d) {
                Some(value) => {
                    let kind = if self.metric_name().ends_with("_total") {
                        Kind::Counter
                    } else {
                        Kind::Gauge
                    };
                    self.sample(kind, *code, None, value);
                }
                None => self.mismatch(),
            },
            (DescriptorKind::Array { elem, .. }, Datum::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    self.node(elem, item);
                    self.path.pop();
                }
            }
            (DescriptorKind::Struct { fields }, Datum::Struct(values)) => {
                for (field, (_, value)) in fields.iter().zip(values) {
                    self.path.push(Step::Field(field.name.clone()));
                    self.node(&field.ty, value);
                    self.path.pop();
                }
            }
            _ => self.mismatch(),
        }
    }

    /// A snapshot is read by the descriptor it is walked with, so their shapes always agree; if
    /// they ever did not, the node is left out rather than guessed at.
    fn mismatch(&mut self) {
        self.clashes.push(Clash {
            path: self.path_text(),
            metric: self.metric_name(),
            reason: "its value does not have the shape its descriptor gives",
        });
    }

    fn sample(
        &mut self,
        kind: Kind,
        ty: impl std::fmt::Display,
        text: Option<String>,
        value: String,
    ) {
        let full = self.metric_name();
        let name = match kind {
            Kind::Gauge => full.as_str(),
            Kind::Counter => full.strip_suffix("_total").unwrap_or(&full),
            // A char field named `x_info` is the family `x`, not `x_info_info`.
            Kind::Info => full.strip_suffix("_info").unwrap_or(&full),
        }
        .to_owned();
        let indices: Vec<String> = self
            .path
            .iter()
            .filter_map(|s| match s {
                Step::Index(i) => Some(i.to_string()),
                Step::Field(_) => None,
            })
            .collect();
        let mut labels = vec![
            ("segment", self.segment.to_owned()),
            ("type", self.type_name.clone()),
        ];
        if !indices.is_empty() {
            labels.push(("index", indices.join(",")));
        }
        if let Some(text) = text {
            labels.push((TEXT_LABEL, text));
        }
        let sample = Sample { labels, value };
        let source = format!("{} ({ty}) of {}", self.path_text(), self.rust_type);
        if let Err(mut clash) = self.families.add(&name, kind, &source, sample) {
            clash.path = self.path_text();
            self.clashes.push(clash);
        }
    }

    /// `shm_` and the field names along the path, sanitised, joined with `_`; `shm_value` for a
    /// path of no field (a single value, an array's element), which is always a gauge: a counter
    /// needs a field whose name says so.
    fn metric_name(&self) -> String {
        let fields: Vec<String> = self
            .path
            .iter()
            .filter_map(|s| match s {
                Step::Field(f) => Some(sanitise(f)),
                Step::Index(_) => None,
            })
            .collect();
        if fields.is_empty() {
            format!("{PREFIX}value")
        } else {
            format!("{PREFIX}{}", fields.join("_"))
        }
    }

    /// The path as the HELP text shows it: `inner.depth`, `latency[i]`, `[i].served_total`,
    /// `value` for the segment's whole value.
    fn path_text(&self) -> String {
        const LETTERS: [&str; 4] = ["i", "j", "k", "l"];
        let mut out = String::new();
        let mut depth = 0;
        for step in &self.path {
            match step {
                Step::Field(f) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(f);
                }
                Step::Index(_) => {
                    out.push('[');
                    match LETTERS.get(depth) {
                        Some(l) => out.push_str(l),
                        None => out.push_str(&format!("i{depth}")),
                    }
                    out.push(']');
                    depth += 1;
                }
            }
        }
        if out.is_empty() {
            "value".to_owned()
        } else {
            out
        }
    }
}

/// A field name as a part of a metric name: ASCII letters, digits and `_`; anything else (a
/// non-ASCII letter, or whatever a hostile descriptor holds) becomes `_`. Colons are left out
/// too: Prometheus keeps them for recording rules.
fn sanitise(name: &str) -> String {
    if name.is_empty() {
        return "_".to_owned();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The value of a number or a bool as both text formats write it; `None` for anything else.
fn number(d: &Datum) -> Option<String> {
    if let Some(i) = d.as_integer() {
        return Some(i.to_string());
    }
    Some(match *d {
        Datum::Bool(b) => u8::from(b).to_string(),
        Datum::F32(v) => float(v.into(), format!("{v:?}")),
        Datum::F64(v) => float(v, format!("{v:?}")),
        _ => return None,
    })
}

/// `NaN`, `+Inf`, `-Inf`, or the shortest text that reads back as the same value (an `f32` is
/// written as itself, `0.1`, not as the `f64` it widens to).
fn float(v: f64, shortest: String) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        shortest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_core::DescriptorField;

    fn prim(code: TypeCode) -> Descriptor {
        Descriptor {
            name: code.rust_name().to_owned(),
            size: code.size() as u64,
            align: code.size() as u64,
            kind: DescriptorKind::Primitive(code),
        }
    }

    fn array(elem: Descriptor, len: u64) -> Descriptor {
        Descriptor {
            name: String::new(),
            size: elem.size.saturating_mul(len),
            align: elem.align,
            kind: DescriptorKind::Array {
                elem: Box::new(elem),
                len,
            },
        }
    }

    fn structure(name: &str, fields: Vec<(&str, Descriptor)>) -> Descriptor {
        let mut offset = 0;
        let fields = fields
            .into_iter()
            .map(|(n, ty)| {
                let f = DescriptorField {
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
            align: 1,
            kind: DescriptorKind::Struct { fields },
        }
    }

    /// `(sample name, index, text, value)` of every sample, family by family.
    fn flat(f: Families) -> Vec<(String, Option<String>, Option<String>, String)> {
        f.into_vec()
            .into_iter()
            .flat_map(|fam| {
                let name = fam.sample_name();
                fam.samples.into_iter().map(move |s| {
                    let label = |k: &str| {
                        s.labels
                            .iter()
                            .find(|(n, _)| *n == k)
                            .map(|(_, v)| v.clone())
                    };
                    (
                        name.clone(),
                        label("index"),
                        label(TEXT_LABEL),
                        s.value.clone(),
                    )
                })
            })
            .collect()
    }

    fn s(
        name: &str,
        index: Option<&str>,
        text: Option<&str>,
        value: &str,
    ) -> (String, Option<String>, Option<String>, String) {
        (
            name.to_owned(),
            index.map(str::to_owned),
            text.map(str::to_owned),
            value.to_owned(),
        )
    }

    #[test]
    fn enums_and_texts_become_info_samples() {
        let state = Descriptor {
            name: "State".to_owned(),
            size: 1,
            align: 1,
            kind: DescriptorKind::Enum {
                repr: TypeCode::U8,
                variants: vec![
                    shm_core::DescriptorVariant {
                        name: "Idle".to_owned(),
                        value: 0,
                    },
                    shm_core::DescriptorVariant {
                        name: "Busy".to_owned(),
                        value: 1,
                    },
                ],
                default: 0,
            },
        };
        let client = Descriptor {
            name: String::new(),
            size: 12,
            align: 4,
            kind: DescriptorKind::Text { capacity: 8 },
        };
        let d = structure(
            "Worker",
            vec![("state", array(state, 2)), ("client", client)],
        );
        let v = Datum::Struct(vec![
            (
                "state".into(),
                Datum::Array(vec![
                    Datum::Enum {
                        variant: "Busy".into(),
                        value: 1,
                        known: true,
                    },
                    Datum::Enum {
                        variant: "Idle".into(),
                        value: 7,
                        known: false,
                    },
                ]),
            ),
            ("client".into(), Datum::Text("10.0.0.7".into())),
        ]);
        let mut f = Families::default();
        let seg = SegmentView {
            name: "board",
            descriptor: &d,
            is_array: false,
            snapshot: &v,
        };
        assert_eq!(add_segment(&mut f, &seg), vec![]);
        assert_eq!(sample_count(&d, 1), 3);
        assert_eq!(
            f.list[1].help(),
            "Read from shm segments: client (Text<8>) of Shared<Worker>."
        );
        assert_eq!(
            flat(f),
            vec![
                s("shm_state_info", Some("0"), Some("Busy"), "1"),
                s(
                    "shm_state_info",
                    Some("1"),
                    Some("7 (no variant; reads as Idle)"),
                    "1"
                ),
                s("shm_client_info", None, Some("10.0.0.7"), "1"),
            ]
        );
    }

    #[test]
    fn fields_become_families_named_by_path() {
        let d = structure(
            "Stats",
            vec![
                ("hits_total", prim(TypeCode::U64)),
                ("load", prim(TypeCode::F32)),
                ("ok", prim(TypeCode::Bool)),
                ("grade", prim(TypeCode::Char)),
                ("grid", array(array(prim(TypeCode::I16), 2), 2)),
                (
                    "inner",
                    structure("Inner", vec![("größe", prim(TypeCode::I8))]),
                ),
            ],
        );
        let v = Datum::Struct(vec![
            ("hits_total".into(), Datum::U64(u64::MAX)),
            ("load".into(), Datum::F32(0.1)),
            ("ok".into(), Datum::Bool(true)),
            ("grade".into(), Datum::Char('"')),
            (
                "grid".into(),
                Datum::Array(vec![
                    Datum::Array(vec![Datum::I16(1), Datum::I16(2)]),
                    Datum::Array(vec![Datum::I16(3), Datum::I16(-4)]),
                ]),
            ),
            (
                "inner".into(),
                Datum::Struct(vec![("größe".into(), Datum::I8(-1))]),
            ),
        ]);
        let mut f = Families::default();
        let seg = SegmentView {
            name: "web",
            descriptor: &d,
            is_array: false,
            snapshot: &v,
        };
        assert_eq!(add_segment(&mut f, &seg), vec![]);
        let kinds: Vec<(String, Kind)> = f.list.iter().map(|x| (x.name.clone(), x.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("shm_hits".to_owned(), Kind::Counter),
                ("shm_load".to_owned(), Kind::Gauge),
                ("shm_ok".to_owned(), Kind::Gauge),
                ("shm_grade".to_owned(), Kind::Info),
                ("shm_grid".to_owned(), Kind::Gauge),
                ("shm_inner_gr__e".to_owned(), Kind::Gauge),
            ]
        );
        assert_eq!(
            f.list[4].help(),
            "Read from shm segments: grid[i][j] (i16) of Shared<Stats>."
        );
        assert_eq!(
            flat(f),
            vec![
                s("shm_hits_total", None, None, "18446744073709551615"),
                s("shm_load", None, None, "0.1"),
                s("shm_ok", None, None, "1"),
                s("shm_grade_info", None, Some("\""), "1"),
                s("shm_grid", Some("0,0"), None, "1"),
                s("shm_grid", Some("0,1"), None, "2"),
                s("shm_grid", Some("1,0"), None, "3"),
                s("shm_grid", Some("1,1"), None, "-4"),
                s("shm_inner_gr__e", None, None, "-1"),
            ]
        );
    }

    #[test]
    fn array_and_value_segments_are_named_value() {
        let mut f = Families::default();
        let u = prim(TypeCode::U32);
        let items = Datum::Array(vec![Datum::U32(5), Datum::U32(6)]);
        let arr = SegmentView {
            name: "counts",
            descriptor: &u,
            is_array: true,
            snapshot: &items,
        };
        assert_eq!(add_segment(&mut f, &arr), vec![]);
        let d = prim(TypeCode::F64);
        let one = Datum::F64(f64::NEG_INFINITY);
        let val = SegmentView {
            name: "ratio",
            descriptor: &d,
            is_array: false,
            snapshot: &one,
        };
        assert_eq!(add_segment(&mut f, &val), vec![]);
        // The segment's name does not make a counter.
        let q = prim(TypeCode::U64);
        let n = Datum::U64(3);
        let named = SegmentView {
            name: "requests_total",
            descriptor: &q,
            is_array: false,
            snapshot: &n,
        };
        assert_eq!(add_segment(&mut f, &named), vec![]);
        assert_eq!(
            f.list[0].help(),
            "Read from shm segments: [i] (u32) of Array<u32>; value (f64) of Value<f64>; value (u64) of Value<u64>."
        );
        assert_eq!(
            flat(f),
            vec![
                s("shm_value", Some("0"), None, "5"),
                s("shm_value", Some("1"), None, "6"),
                s("shm_value", None, None, "-Inf"),
                s("shm_value", None, None, "3"),
            ]
        );
    }

    #[test]
    fn colliding_names_keep_the_first_field() {
        let d = structure(
            "Clash",
            vec![
                ("a_b", prim(TypeCode::U8)),
                ("a", structure("A", vec![("b", prim(TypeCode::U8))])),
                ("c_total", prim(TypeCode::U8)),
                ("c", prim(TypeCode::U8)),
                ("export_x", prim(TypeCode::U8)),
            ],
        );
        let v = Datum::Struct(vec![
            ("a_b".into(), Datum::U8(1)),
            ("a".into(), Datum::Struct(vec![("b".into(), Datum::U8(2))])),
            ("c_total".into(), Datum::U8(3)),
            ("c".into(), Datum::U8(4)),
            ("export_x".into(), Datum::U8(5)),
        ]);
        let mut f = Families::default();
        let seg = SegmentView {
            name: "x",
            descriptor: &d,
            is_array: false,
            snapshot: &v,
        };
        let clashes: Vec<(String, String)> = add_segment(&mut f, &seg)
            .into_iter()
            .map(|c| (c.path, c.metric))
            .collect();
        assert_eq!(
            clashes,
            vec![
                ("a.b".to_owned(), "shm_a_b".to_owned()),
                ("c".to_owned(), "shm_c".to_owned()),
                ("export_x".to_owned(), "shm_export_x".to_owned()),
            ]
        );
        assert_eq!(
            flat(f),
            vec![
                s("shm_a_b", None, None, "1"),
                s("shm_c_total", None, None, "3"),
            ]
        );
    }

    #[test]
    fn sample_count_saturates() {
        let huge = array(array(prim(TypeCode::U8), u64::MAX), 3);
        assert_eq!(sample_count(&huge, 2), u64::MAX);
        let d = structure(
            "S",
            vec![
                ("a", prim(TypeCode::U8)),
                ("b", array(prim(TypeCode::U8), 4)),
            ],
        );
        assert_eq!(sample_count(&d, 10), 50);
    }
}
