//! `shm export`: segments as Prometheus metrics over HTTP, with no code in the services.
//!
//! Each scrape finds the selected segments, reads each with one consistent snapshot (a seqlock
//! read, as `Shared::snapshot` is), maps the values to metric families ([`metrics`]) and writes
//! them in the format the scraper asked for ([`render`]); [`server`] answers HTTP. A segment that
//! cannot be read is skipped with a comment line and counted in `shm_export_errors_total`: a
//! scrape always answers.

mod metrics;
mod render;
mod server;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use shm_core::inspect::{self, RawSegment, SHM_DIR};
use shm_core::{Error, Options};

use metrics::{Families, Family, Kind, Sample, SegmentView};
pub use render::Format;

/// Default of `--max-samples`: more samples than this from one segment skip it.
pub const DEFAULT_MAX_SAMPLES: u64 = 100_000;

/// How many `segment`/`kind` pairs `shm_export_errors_total` keeps apart; later ones are counted
/// under [`OTHER_SEGMENTS`], so an exporter that sees segments come and go for months does not
/// grow without bound.
const MAX_ERROR_SERIES: usize = 1000;
/// The `segment` label of errors beyond [`MAX_ERROR_SERIES`].
const OTHER_SEGMENTS: &str = "(other)";

/// How long a scrape waits for a segment that is not ready yet.
const CREATION_WAIT: Duration = Duration::from_millis(100);

/// How long a scrape waits for one segment's snapshot. A snapshot waits while a write is in
/// progress: a writer stopped in the middle of one (or a peer that keeps the sequence counter odd
/// while holding the lock) would hold the scrape, and in the end every worker, forever.
const READ_DEADLINE: Duration = Duration::from_millis(500);

/// Which segments a scrape exports.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every segment of this library in `/dev/shm` (what `shm ls` lists): broken ones are
    /// reported, other programs' objects and other users' left out silently.
    All,
    /// These names, each reported if it cannot be exported (missing, broken, another user's).
    Names(Vec<String>),
    /// Every object whose name starts with this, each reported if it cannot be exported.
    Prefix(String),
}

/// Serves `GET /metrics` on `listen` until killed.
pub fn run(listen: &str, selection: Selection, max_samples: u64) -> Result<(), String> {
    server::serve(listen, Exporter::new(selection, max_samples))
}

/// What every scrape shares: the selection, and the error counts, which count across scrapes.
pub struct Exporter {
    selection: Selection,
    max_samples: u64,
    errors: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Segments whose snapshot missed [`READ_DEADLINE`] and is still running on its thread:
    /// skipped at once until it ends, so a stuck segment holds one thread, not one a scrape.
    stuck: Arc<Mutex<HashSet<String>>>,
}

/// A segment left out of a scrape, and why.
struct Skip {
    segment: String,
    kind: &'static str,
    message: String,
}

impl Skip {
    fn of(e: &Error) -> Skip {
        Skip {
            segment: e.name().to_owned(),
            kind: error_kind(e),
            message: e.to_string(),
        }
    }
}

/// A name a scrape looks at; `asked` if it was named or matched the prefix, so that whatever
/// keeps it out is reported.
struct Target {
    name: String,
    asked: bool,
}

impl Exporter {
    /// An exporter of `selection`, skipping segments of more than `max_samples` samples.
    pub fn new(selection: Selection, max_samples: u64) -> Exporter {
        Exporter {
            selection,
            max_samples,
            errors: Mutex::new(BTreeMap::new()),
            stuck: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// One scrape, as a page in `format`.
    pub fn scrape(&self, format: Format) -> String {
        let mut families = Families::default();
        let mut notes = Vec::new();
        let mut skips = Vec::new();
        let mut exported = 0u64;
        match self.targets() {
            Ok(targets) => {
                for t in targets {
                    match self.read(&t, &mut families) {
                        Ok(added) => {
                            exported += 1;
                            for c in &added.clashes {
                                notes.push(format!(
                                    "shm export: segment `{}`: field `{}` left out: its metric {} is taken ({})",
                                    t.name, c.path, c.metric, c.reason
                                ));
                            }
                            if !added.clashes.is_empty() {
                                self.count(&t.name, "name_clash");
                            }
                            for u in &added.unknown {
                                notes.push(format!(
                                    "shm export: segment `{}`: field `{}` holds {}, which is no variant of {}: every state of its state set is 0",
                                    t.name, u.path, u.value, u.enum_name
                                ));
                            }
                            if !added.unknown.is_empty() {
                                self.count(&t.name, "unknown_variant");
                            }
                        }
                        Err(Some(skip)) => skips.push(skip),
                        Err(None) => {}
                    }
                }
            }
            Err(skip) => skips.push(skip),
        }
        for s in &skips {
            notes.push(format!(
                "shm export: skipped `{}` ({}): {}",
                s.segment, s.kind, s.message
            ));
            self.count(&s.segment, s.kind);
        }
        let mut families = families.into_vec();
        families.push(self.own_segments(exported));
        families.push(self.own_errors());
        render::page(format, &families, &notes)
    }

    /// The names this scrape looks at: in the order named (each once), else sorted.
    fn targets(&self) -> Result<Vec<Target>, Skip> {
        let (prefix, asked) = match &self.selection {
            Selection::Names(names) => {
                let mut seen = HashSet::new();
                return Ok(names
                    .iter()
                    .filter(|n| seen.insert(n.as_str()))
                    .map(|n| Target {
                        name: n.clone(),
                        asked: true,
                    })
                    .collect());
            }
            Selection::Prefix(p) => (p.as_str(), true),
            Selection::All => ("", false),
        };
        let listing = |e: std::io::Error| Skip {
            segment: SHM_DIR.to_owned(),
            kind: "io",
            message: format!("cannot list {SHM_DIR}: {e}"),
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(SHM_DIR).map_err(listing)? {
            // Names that are not UTF-8 are not segments: a segment's name is a Rust string.
            if let Some(name) = entry.map_err(listing)?.file_name().to_str() {
                if name.starts_with(prefix) {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names
            .into_iter()
            .map(|name| Target { name, asked })
            .collect())
    }

    /// Reads `t` and adds its samples; returns the fields left out and the enums holding no
    /// variant. `Err(None)`: not a segment of this library and not asked for, left out without
    /// a word.
    fn read(&self, t: &Target, families: &mut Families) -> Result<metrics::Added, Option<Skip>> {
        // Any mode: the exporter only reads, and trusts no byte anyway.
        let open =
            |wait| RawSegment::open_readonly_with(&t.name, &Options::new().mode(0o666).wait(wait));
        let raw = match open(Duration::ZERO) {
            Ok(raw) => raw,
            Err(e) => {
                if !(t.asked || is_ours(&t.name)) {
                    return Err(None);
                }
                match e {
                    // Not ready yet: most likely being created, which takes microseconds. A
                    // moment more, not the second `RawSegment::open` waits: a scrape has a
                    // deadline. (An object of zeros that was not asked for never gets here:
                    // another program's memory is common, and costs no wait.)
                    Error::Timeout { .. } => open(CREATION_WAIT).map_err(|e| Some(Skip::of(&e)))?,
                    e => return Err(Some(Skip::of(&e))),
                }
            }
        };
        let samples = metrics::sample_count(raw.descriptor(), raw.len() as u64);
        if samples > self.max_samples {
            return Err(Some(Skip {
                segment: t.name.clone(),
                kind: "too_large",
                message: format!(
                    "{} element(s) of `{}` make {samples} samples, more than --max-samples {}",
                    raw.len(),
                    raw.descriptor(),
                    self.max_samples
                ),
            }));
        }
        let (raw, snapshot) = self.snapshot(&t.name, raw).map_err(Some)?;
        Ok(metrics::add_segment(
            families,
            &SegmentView {
                name: &t.name,
                descriptor: raw.descriptor(),
                is_array: raw.is_array(),
                snapshot: &snapshot,
            },
        ))
    }

    /// `raw`'s snapshot, read on a thread of its own and waited for until [`READ_DEADLINE`].
    fn snapshot(
        &self,
        name: &str,
        raw: RawSegment,
    ) -> Result<(RawSegment, shm_core::inspect::Datum), Skip> {
        let stuck = || {
            Skip {
            segment: name.to_owned(),
            kind: "stuck",
            message: format!(
                "segment `{name}`: a consistent read did not finish within {READ_DEADLINE:?}: a write is in progress and its writer, alive and holding the lock, does not finish it (stopped?); skipped until that read ends"
            ),
        }
        };
        if lock(&self.stuck).contains(name) {
            return Err(stuck());
        }
        let (done, result) = mpsc::channel();
        let marks = Arc::clone(&self.stuck);
        let owned = name.to_owned();
        let reader = thread::Builder::new().spawn(move || {
            let snapshot = raw.snapshot();
            // Sent before the mark is cleared: a scrape that gave up either finds the result
            // when it sets the mark, or has set it before this clears it.
            let _ = done.send((raw, snapshot));
            lock(&marks).remove(&owned);
        });
        if let Err(e) = reader {
            return Err(Skip {
                segment: name.to_owned(),
                kind: "io",
                message: format!("segment `{name}`: cannot start a thread to read it: {e}"),
            });
        }
        let received = match result.recv_timeout(READ_DEADLINE) {
            Ok(r) => r,
            Err(_) => {
                let mut marks = lock(&self.stuck);
                match result.try_recv() {
                    Ok(r) => r,
                    Err(_) => {
                        marks.insert(name.to_owned());
                        return Err(stuck());
                    }
                }
            }
        };
        match received {
            (raw, Ok(snapshot)) => Ok((raw, snapshot)),
            (_, Err(e)) => Err(Skip::of(&e)),
        }
    }

    fn count(&self, segment: &str, kind: &'static str) {
        let mut errors = lock(&self.errors);
        let mut key = (segment.to_owned(), kind);
        if !errors.contains_key(&key) && errors.len() >= MAX_ERROR_SERIES {
            key.0 = OTHER_SEGMENTS.to_owned();
        }
        *errors.entry(key).or_insert(0) += 1;
    }

    fn own_segments(&self, exported: u64) -> Family {
        let mut f = Family::own(
            "shm_export_segments",
            Kind::Gauge,
            "Segments this scrape read and exported.",
        );
        f.samples.push(Sample {
            labels: Vec::new(),
            state: None,
            value: exported.to_string(),
        });
        f
    }

    fn own_errors(&self) -> Family {
        let mut f = Family::own(
            "shm_export_errors",
            Kind::Counter,
            "Segments skipped by scrapes since the exporter started, by segment and reason (kind).",
        );
        let errors = lock(&self.errors);
        for ((segment, kind), n) in errors.iter() {
            f.samples.push(Sample {
                labels: vec![("segment", segment.clone()), ("kind", (*kind).to_owned())],
                state: None,
                value: n.to_string(),
            });
        }
        f
    }
}

/// A mutex's data, poisoned or not: what these guard stays consistent whatever a panicking
/// holder did (and a panic ends the exporter anyway).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the object `name` is a segment of this library, valid or not: what `shm ls` lists.
fn is_ours(name: &str) -> bool {
    inspect::examine(name).is_ok_and(|e| e.is_ours())
}

/// The `kind` label of an error: its variant, in snake case.
fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::InvalidName { .. } => "invalid_name",
        Error::NotFound { .. } => "not_found",
        Error::PermissionDenied { .. } => "permission_denied",
        Error::LayoutMismatch { .. } => "layout_mismatch",
        Error::Corrupt { .. } => "corrupt",
        Error::CreatorDied { .. } => "creator_died",
        Error::Timeout { .. } => "timeout",
        Error::Io { .. } => "io",
        _ => "other",
    }
}
