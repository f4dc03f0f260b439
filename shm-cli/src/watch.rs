//! `shm watch`: a segment's values, refreshed, with the rate of change of integer fields.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use shm_core::inspect::{Datum, RawSegment, SegmentInfo};

use crate::out::emit;
use crate::show::{leaves, Values};
use crate::table::Table;
use crate::units;

/// Integer values of the previous refresh, by path, and when they were read.
struct Sample {
    at: Instant,
    ints: HashMap<String, i128>,
}

pub fn run(name: &str, interval: Duration, count: Option<u64>, limit: usize) -> Result<(), String> {
    let raw = RawSegment::open_readonly(name).map_err(|e| e.to_string())?;
    // On a terminal, redraw in place; into a pipe or a file, one block per refresh.
    let tty = std::io::stdout().is_terminal();
    let mut prev: Option<Sample> = None;
    let mut done = 0u64;
    loop {
        if raw.is_removed() {
            return Err(format!("segment `{name}` was removed"));
        }
        let info = raw.info().map_err(|e| e.to_string())?;
        let values = Values::read(&raw, limit)?;
        let now = Instant::now();
        let mut flat = Vec::new();
        match &values {
            Values::One(v) => leaves(v, String::new(), &mut flat),
            Values::Elements(items) => {
                for (i, item) in items.iter().enumerate() {
                    leaves(item, format!("[{i}]"), &mut flat);
                }
            }
        }
        let rates = prev.as_ref().map(|p| rates(p, now, &flat));
        done += 1;
        let mut block = heading(&info, done, count, interval);
        block.push_str(&match &values {
            Values::Elements(items) if matches!(items.first(), Some(Datum::Struct(_))) => {
                element_table(items, rates.as_ref()).render(0)
            }
            _ => field_table(&flat, rates.as_ref()).render(0),
        });
        if items_hidden(&values, &raw) > 0 {
            block.push_str(&format!(
                "... {} more elements (--limit 0 shows all)\n",
                items_hidden(&values, &raw)
            ));
        }
        emit(&if tty {
            format!("\x1b[H\x1b[2J{block}")
        } else {
            format!("{block}\n")
        });
        prev = Some(Sample {
            at: now,
            ints: flat
                .iter()
                .filter_map(|(p, v)| Some((p.clone(), v.as_integer()?)))
                .collect(),
        });
        if count.is_some_and(|c| done >= c) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn items_hidden(values: &Values, raw: &RawSegment) -> usize {
    match values {
        Values::Elements(items) => raw.len().saturating_sub(items.len()),
        Values::One(_) => 0,
    }
}

fn heading(info: &SegmentInfo, done: u64, count: Option<u64>, interval: Duration) -> String {
    let of = count.map_or_else(String::new, |c| format!("/{c}"));
    format!(
        "{}  {}  creator {} {}  {}  refresh {done}{of} every {interval:?}\n",
        info.name,
        info.rust_type(),
        info.creator_pid,
        if info.creator_alive { "alive" } else { "dead" },
        units::utc(SystemTime::now()),
    )
}

/// Change per second of every integer that was there last time.
fn rates(prev: &Sample, now: Instant, flat: &[(String, &Datum)]) -> HashMap<String, f64> {
    let secs = now.duration_since(prev.at).as_secs_f64();
    if secs <= 0.0 {
        return HashMap::new();
    }
    flat.iter()
        .filter_map(|(path, v)| {
            let before = prev.ints.get(path)?;
            Some((path.clone(), (v.as_integer()? - before) as f64 / secs))
        })
        .collect()
}

fn rate_text(r: f64) -> String {
    if r == 0.0 {
        "0/s".to_owned()
    } else {
        format!("{r:+.1}/s")
    }
}

/// One row per primitive: path, value, rate.
fn field_table(flat: &[(String, &Datum)], rates: Option<&HashMap<String, f64>>) -> Table {
    let mut t = Table::new(&["FIELD", "VALUE", "RATE"]);
    for (path, v) in flat {
        let rate = rates
            .and_then(|r| r.get(path))
            .map_or_else(String::new, |&r| rate_text(r));
        t.row(vec![path.clone(), v.to_string(), rate]);
    }
    t
}

/// One row per struct element, one column per primitive; integers followed by their rate.
fn element_table(items: &[Datum], rates: Option<&HashMap<String, f64>>) -> Table {
    let mut columns = Vec::new();
    if let Some(first) = items.first() {
        leaves(first, String::new(), &mut columns);
    }
    let header: Vec<String> = std::iter::once("#".to_owned())
        .chain(columns.iter().map(|(p, _)| p.to_uppercase()))
        .collect();
    let mut t = Table::new(&header);
    for (i, item) in items.iter().enumerate() {
        let mut cells = Vec::new();
        leaves(item, String::new(), &mut cells);
        let mut row = vec![i.to_string()];
        for (path, v) in cells {
            let rate = rates.and_then(|r| r.get(&format!("[{i}].{path}")));
            // Only what moves gets a rate: a pid or a flag would just say 0/s.
            row.push(match rate {
                Some(&r) if r != 0.0 => format!("{v} ({})", rate_text(r)),
                _ => v.to_string(),
            });
        }
        t.row(row);
    }
    t
}
