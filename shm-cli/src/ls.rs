//! `shm ls`: what is in /dev/shm.

use shm_core::inspect::{self, EntryKind, ListEntry, SHM_DIR};
use shm_core::Error;

use crate::json::{self, Json};
use crate::out::emit;
use crate::table::Table;
use crate::units;

pub fn run(all: bool, as_json: bool) -> Result<(), String> {
    let entries = inspect::list().map_err(|e| format!("cannot read {SHM_DIR}: {e}"))?;
    let shown: Vec<&ListEntry> = entries.iter().filter(|e| all || e.is_ours()).collect();
    if as_json {
        emit(&Json::Arr(shown.iter().map(|e| entry_json(e)).collect()).render());
        return Ok(());
    }
    if shown.is_empty() {
        emit(&if all {
            format!("{SHM_DIR} is empty\n")
        } else {
            format!("no shm-core segments in {SHM_DIR} (`shm ls --all` lists every object)\n")
        });
        return Ok(());
    }
    let mut t = Table::new(&[
        "NAME", "TYPE", "SIZE", "PAYLOAD", "COUNT", "CREATOR", "KEPT", "AGE", "NOTE",
    ]);
    for e in shown {
        t.row(row(e));
    }
    emit(&t.render(0));
    Ok(())
}

fn row(e: &ListEntry) -> Vec<String> {
    let dash = || "-".to_owned();
    match &e.kind {
        EntryKind::Segment(i) => vec![
            e.name.clone(),
            i.rust_type(),
            units::size(i.footprint),
            units::size(i.payload_len),
            i.count.to_string(),
            format!(
                "{} {}",
                i.creator_pid,
                if i.creator_alive { "alive" } else { "dead" }
            ),
            if i.kept { "yes" } else { "no" }.to_owned(),
            i.age().map_or_else(|| "?".to_owned(), units::age),
            if i.is_stale() {
                "stale: `shm gc` removes it".to_owned()
            } else {
                String::new()
            },
        ],
        EntryKind::Journal(j) => {
            let (_, note) = status(&e.kind);
            vec![
                e.name.clone(),
                "journal".to_owned(),
                units::size(j.footprint),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                note,
            ]
        }
        other => {
            let (_, note) = status(other);
            vec![
                e.name.clone(),
                dash(),
                e.object_len.map_or_else(dash, units::size),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                note,
            ]
        }
    }
}

/// The status word of an entry, and what to say about one that is not a valid segment.
pub fn status(kind: &EntryKind) -> (&'static str, String) {
    match kind {
        EntryKind::Segment(_) => ("segment", String::new()),
        EntryKind::Broken(e) => ("broken", broken_reason(e)),
        EntryKind::Denied(Error::PermissionDenied { reason, .. }) => {
            ("denied", format!("not this user's: {reason}"))
        }
        EntryKind::Denied(e) => ("denied", e.to_string()),
        EntryKind::Journal(j) if j.orphan => (
            "journal",
            format!(
                "side journal of `{}`, which is gone: `shm gc` removes it",
                j.segment
            ),
        ),
        EntryKind::Journal(j) => (
            "journal",
            format!("side journal of `{}` (counted in its size)", j.segment),
        ),
        EntryKind::Foreign(reason) => ("foreign", format!("not an shm-core segment: {reason}")),
        _ => ("unknown", String::new()),
    }
}

fn broken_reason(e: &Error) -> String {
    match e {
        Error::Corrupt { reason, .. } => format!("corrupt: {reason}"),
        Error::CreatorDied { pid, .. } => {
            format!("stale: creator {pid} died before it was ready; `shm gc` removes it")
        }
        Error::Timeout { .. } => "being created".to_owned(),
        other => other.to_string(),
    }
}

fn entry_json(e: &ListEntry) -> Json {
    let (status, reason) = status(&e.kind);
    let mut pairs = match &e.kind {
        EntryKind::Segment(i) => json::info(i),
        _ => vec![
            ("name".to_owned(), Json::str(e.name.clone())),
            (
                "object_len".to_owned(),
                e.object_len.map_or(Json::Null, Json::num),
            ),
            ("reason".to_owned(), Json::str(reason)),
            ("stale".to_owned(), Json::Bool(e.stale().is_some())),
        ],
    };
    pairs.insert(1, ("status".to_owned(), Json::str(status)));
    Json::Obj(pairs)
}
