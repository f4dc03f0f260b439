//! The two exposition formats: Prometheus' text format 0.0.4 and OpenMetrics 1.0.0.
//!
//! They differ in little here: OpenMetrics names a counter's family without its `_total` (and an
//! info's without its `_info`), has `info` and `stateset` types (the 0.0.4 format writes both as
//! gauges, with the same samples), escapes `"` in HELP text, allows no comment lines and ends
//! with `# EOF`.

use std::fmt::Write;

use super::metrics::{Family, Kind};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format, version 0.0.4.
    Text,
    /// OpenMetrics text, version 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The page of a scrape: `notes` as comment lines (in the text format only: OpenMetrics has
/// none), then every family that has samples.
pub fn page(format: Format, families: &[Family], notes: &[String]) -> String {
    let mut out = String::new();
    if format == Format::Text {
        for note in notes {
            // One line, whatever the message holds.
            let line = note.replace(['\n', '\r'], " ");
            let _ = writeln!(out, "# {line}");
        }
    }
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        write_family(&mut out, format, family);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_family(out: &mut String, format: Format, family: &Family) {
    let sample_name = family.sample_name();
    let (name, kind) = match format {
        Format::Text => (
            sample_name.as_str(),
            match family.kind {
                Kind::Gauge | Kind::Info | Kind::StateSet => "gauge",
                Kind::Counter => "counter",
            },
        ),
        Format::OpenMetrics => (
            family.name.as_str(),
            match family.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
                Kind::Info => "info",
                Kind::StateSet => "stateset",
            },
        ),
    };
    let help = escape(&family.help(), format == Format::OpenMetrics);
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for sample in &family.samples {
        out.push_str(&sample_name);
        // A state set's variant goes in the label named after the family (OpenMetrics' rule).
        let state = sample.state.iter().map(|v| (family.name.as_str(), v));
        let mut labels = sample
            .labels
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(state)
            .peekable();
        if labels.peek().is_some() {
            out.push('{');
            for (i, (label, value)) in labels.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{label}=\"{}\"", escape(value, true));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", sample.value);
    }
}

/// Escapes `\` and line feeds, and `"` if `quote` (label values in both formats, HELP text in
/// OpenMetrics; the 0.0.4 format reads `\"` in HELP text as two characters).
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::metrics::Sample;

    fn families() -> Vec<Family> {
        let mut hits = Family::own("shm_hits", Kind::Counter, "Hits \"so far\" \\ here.");
        hits.samples.push(Sample {
            labels: vec![("segment", "a\"b\\c\nd".to_owned())],
            state: None,
            value: "3".to_owned(),
        });
        let mut grade = Family::own("shm_grade", Kind::Info, "Grade.");
        grade.samples.push(Sample {
            labels: vec![("segment", "a".to_owned()), ("value", "x".to_owned())],
            state: None,
            value: "1".to_owned(),
        });
        let mut state = Family::own("shm_state", Kind::StateSet, "State.");
        for (variant, on) in [("Idle", "0"), ("Busy", "1")] {
            state.samples.push(Sample {
                labels: vec![("segment", "a".to_owned())],
                state: Some(variant.to_owned()),
                value: on.to_owned(),
            });
        }
        let empty = Family::own("shm_nothing", Kind::Gauge, "Nothing.");
        vec![hits, grade, state, empty]
    }

    #[test]
    fn text_format() {
        let notes = ["skipped `x`:\nbroken".to_owned()];
        assert_eq!(
            page(Format::Text, &families(), &notes),
            "# skipped `x`: broken\n\
             # HELP shm_hits_total Hits \"so far\" \\\\ here.\n\
             # TYPE shm_hits_total counter\n\
             shm_hits_total{segment=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP shm_grade_info Grade.\n\
             # TYPE shm_grade_info gauge\n\
             shm_grade_info{segment=\"a\",value=\"x\"} 1\n\
             # HELP shm_state State.\n\
             # TYPE shm_state gauge\n\
             shm_state{segment=\"a\",shm_state=\"Idle\"} 0\n\
             shm_state{segment=\"a\",shm_state=\"Busy\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_format() {
        let notes = ["skipped".to_owned()];
        assert_eq!(
            page(Format::OpenMetrics, &families(), &notes),
            "# HELP shm_hits Hits \\\"so far\\\" \\\\ here.\n\
             # TYPE shm_hits counter\n\
             shm_hits_total{segment=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP shm_grade Grade.\n\
             # TYPE shm_grade info\n\
             shm_grade_info{segment=\"a\",value=\"x\"} 1\n\
             # HELP shm_state State.\n\
             # TYPE shm_state stateset\n\
             shm_state{segment=\"a\",shm_state=\"Idle\"} 0\n\
             shm_state{segment=\"a\",shm_state=\"Busy\"} 1\n\
             # EOF\n"
        );
    }
}
