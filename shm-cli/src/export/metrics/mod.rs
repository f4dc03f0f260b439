//! What a segment's values become: metric families named from field paths, with the labels
//! `segment`, `type` and `index`; a name ending in `_total` is a counter, the rest are gauges;
//! an enum is a state set, a text or char an info.
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
    /// An enum: one sample per variant, of value 1 for the current one and 0 for the others,
    /// whose label named after the family holds the variant's name (OpenMetrics' rule for a
    /// state set). The 0.0.4 text format has no state set type: there it is a gauge.
    StateSet,
}

impl Kind {
    /// What the sample names add to the family name.
    fn suffix(self) -> &'static str {
        match self {
            Kind::Gauge | Kind::StateSet => "",
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
    /// A state set's sample: the variant it is for, written last, in the label named after the
    /// family.
    pub state: Option<String>,
    /// `17`, `0.7`, `NaN`, `+Inf`.
    pub value: String,
}

impl Sample {
    /// Which series of its family this is: its labels except an info sample's text, which
    /// is what the series says, not which one it is; a state set's variant.
    fn key(&self) -> Vec<(&'static str, String)> {
        self.labels
            .iter()
            .filter(|(k, _)| *k != TEXT_LABEL)
            .cloned()
            .chain(self.state.iter().map(|v| ("", v.clone())))
            .collect()
    }
}

/// A metric family: samples of one name and kind, from one or several segments.
#[derive(Debug)]
pub struct Family {
    /// The OpenMetrics family name: without the `_total` of a counter or the `_info` of an info.
    pub name: String,
    /// Gauge, counter, info or state set.
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

/// An enum field holding a number that is no variant of its enum (another process stored
/// it): exported as its state set with every state 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState {
    /// The field's path, as `shm set` spells it (`state`, `slots[2].state`).
    pub path: String,
    /// The enum's name.
    pub enum_name: String,
    /// The number stored.
    pub value: i128,
}

/// What adding a segment left out or could not say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// The fields left out, whose names collide.
    pub clashes: Vec<Clash>,
    /// The enum fields holding no variant, exported with every state 0.
    pub unknown: Vec<UnknownState>,
}

/// Adds every sample of `seg` to `families`; returns what was left out or unknown.
pub fn add_segment(families: &mut Families, seg: &SegmentView<'_>) -> Added {
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
        added: Added::default(),
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
    walk.added
}

/// How many samples a segment of `count` elements of `d` gives: what a scrape checks before it
/// reads a segment (saturating: a hostile descriptor may describe more than exists).
pub fn sample_count(d: &Descriptor, count: u64) -> u64 {
    fn per_element(d: &Descriptor) -> u64 {
        match &d.kind {
            DescriptorKind::Primitive(_) | DescriptorKind::Text { .. } => 1,
            DescriptorKind::Enum { variants, .. } => variants.len() as u64,
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
    added: Added,
}

impl Walk<'_> {
    /// What one node of the descriptor becomes, with `datum` its value in the snapshot.
    ///
    /// - a number: one gauge sample, or a counter's if its name ends in `_total`; a bool is 0 or 1;
    /// - a char: an info sample whose `value` label is the character;
    /// - a text: an info sample whose `value` label is the text;
    /// - an enum: a state set, one sample per variant, 1 for the current one and 0 for the
    ///   others; for a number that is no variant, every one 0, and the field is reported;
    /// - an array: its elements, each with its index added to the `index` label;
    /// - a struct: its fields, each adding its name to the metric name.
    fn node(&mut self, d: &Descriptor, datum: &Datum) {
        match (&d.kind, datum) {
            (DescriptorKind::Text { .. }, Datum::Text(text)) => {
                self.sample(Kind::Info, d, Some(text.clone()), "1".to_owned());
            }
            (DescriptorKind::Enum { variants, .. }, &Datum::Enum { value, known, .. }) => {
                for v in variants {
                    let on = known && v.value == value;
                    let sample = Sample {
                        labels: self.labels(),
                        state: Some(v.name.clone()),
                        value: u8::from(on).to_string(),
                    };
                    self.add(Kind::StateSet, d, sample);
                }
                if !known {
                    self.added.unknown.push(UnknownState {
                        path: self.path_text_exact(),
                        enum_name: d.name.clone(),
                        value,
                    });
                }
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
        self.added.clashes.push(Clash {
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
        let mut labels = self.labels();
        if let Some(text) = text {
            labels.push((TEXT_LABEL, text));
        }
        let sample = Sample {
            labels,
            state: None,
            value,
        };
        self.add(kind, ty, sample);
    }

    /// The labels every sample here has: `segment`, `type`, and `index` inside arrays.
    fn labels(&self) -> Vec<(&'static str, String)> {
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
        labels
    }

    /// Adds `sample` to the family of this path and `kind`, or records why it cannot be.
    fn add(&mut self, kind: Kind, ty: impl std::fmt::Display, sample: Sample) {
        let full = self.metric_name();
        let name = match kind {
            Kind::Gauge | Kind::StateSet => full.as_str(),
            Kind::Counter => full.strip_suffix("_total").unwrap_or(&full),
            // A char field named `x_info` is the family `x`, not `x_info_info`.
            Kind::Info => full.strip_suffix("_info").unwrap_or(&full),
        }
        .to_owned();
        let source = format!("{} ({ty}) of {}", self.path_text(), self.rust_type);
        if let Err(mut clash) = self.families.add(&name, kind, &source, sample) {
            clash.path = self.path_text();
            self.added.clashes.push(clash);
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
        self.path_with(false)
    }

    /// The path with the indices it has here: `slots[2].state`.
    fn path_text_exact(&self) -> String {
        self.path_with(true)
    }

    fn path_with(&self, exact: bool) -> String {
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
                Step::Index(i) => {
                    out.push('[');
                    match LETTERS.get(depth) {
                        _ if exact => out.push_str(&i.to_string()),
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
mod tests;
