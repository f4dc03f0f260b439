//! `waiting.json`: what writes, reads and `notify` do to the waiting words.

use super::json::J;
use super::segments::{header_fields, put, set, Base};
use crate::run::{self, HeaderFields, Regions};

/// The words a case's `after` pins: `changes`, both registration slots (which nothing here
/// registers in, so they stay as they were), and `seq`.
const AFTER: &[&str] = &["changes", "waiters0", "waiters1", "seq"];

/// The bases and cases, and the words after this implementation ran each case's steps.
pub fn waiting() -> J {
    let bases = [Base::new("u32", "u32", false, 1)];
    let write = |path: &str, value: &str| obj! { "set": vec![J::from(path), J::from(value)] };
    let check = |path: &str, op: &str, value: &str| {
        obj! { "check": vec![J::from(path), J::from(op), J::from(value)] }
    };
    // A writer killed in its write window: seq odd, the journal recording 7 -> 8 (one entry of
    // kind 2 for payload bytes 0..4, docs/FORMAT.md "The journal record"), 8 stored.
    let mut entry = Vec::new();
    for word in [0u64, 4, 2, 0] {
        entry.extend_from_slice(&word.to_le_bytes());
    }
    entry.extend_from_slice(&7u32.to_le_bytes());
    entry.resize(48, 0);
    entry.extend_from_slice(&8u32.to_le_bytes());
    entry.resize(64, 0);
    let dead_writer = obj! {
        "set": set(&[("seq", 3), ("journal_where", 0), ("journal_len", entry.len() as u64)]),
        "write": vec![
            put("payload", 0, &8u32.to_le_bytes()),
            put("journal", 0, &entry),
        ],
    };
    // (id, why, base, patch, steps)
    let cases: Vec<(&str, &str, &str, J, Vec<J>)> = vec![
        (
            "a write announces nothing while nobody waits",
            "an unlock announces only if a registration slot counts waiters: changes stays",
            "u32",
            obj! {},
            vec![write(".", "5")],
        ),
        (
            "notify announces once each",
            "notify increments changes, with or without the lock, whatever the value; the \
             write among them, with nobody waiting, does not",
            "u32",
            obj! {},
            vec![
                J::from("notify"),
                J::from("notify"),
                write(".", "1"),
                J::from("notify"),
            ],
        ),
        (
            "reads announce nothing",
            "a snapshot and a wait's test leave changes alone",
            "u32",
            obj! {},
            vec![
                J::from("snapshot"),
                check(".", "==", "0"),
                check(".", ">", "0"),
            ],
        ),
        (
            "the counter wraps",
            "changes is incremented modulo 2^32",
            "u32",
            obj! { "set": set(&[("changes", u64::from(u32::MAX))]) },
            vec![J::from("notify")],
        ),
        (
            "a rollback announces nothing",
            "a reader rolls a dead writer back to the value waiters have seen: changes stays",
            "u32",
            dead_writer,
            vec![J::from("snapshot")],
        ),
        (
            "slots with no count are never written",
            "an unlock and an announcement read the slots and write only those that count waiters",
            "u32",
            obj! { "set": set(&[("waiters0", 0x1234_0000), ("waiters1", 0xffff_0000)]) },
            vec![write(".", "2"), J::from("notify")],
        ),
    ];
    let json_bases: Vec<J> = bases.iter().map(|b| b.json.clone()).collect();
    let file_so_far = obj! { "bases": json_bases.clone() }.value();
    let fields = HeaderFields::from_json(&header_fields().value());
    let cases = cases
        .into_iter()
        .map(|(id, why, base, patch, steps)| {
            let steps = J::Arr(steps);
            let spec = obj! { "id": id, "base": base, "patch": patch.clone() }.value();
            let after = crate::crafted(&fields, &file_so_far, &spec, |name, _: &Regions| {
                run::steps(name, &steps.value()).unwrap_or_else(|e| panic!("`{id}`: {e}"));
                let bytes = std::fs::read(name.path()).expect("read the segment");
                J::Obj(
                    AFTER
                        .iter()
                        .map(|&f| (f.to_owned(), J::from(fields.get(&bytes, f))))
                        .collect(),
                )
            });
            obj! { "id": id, "why": why, "base": base, "patch": patch, "steps": steps, "after": after }
        })
        .collect::<Vec<_>>();
    obj! { "bases": json_bases, "cases": cases }
}
