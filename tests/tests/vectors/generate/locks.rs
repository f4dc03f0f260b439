//! `locks.json`: lock words — free, held by a live owner, a dead one, a recycled thread id, this
//! thread, garbage — and what a process that opens the segment makes of each.

use super::json::{hex64, J};
use super::segments::{header_fields, set, Base};
use crate::run::{self, HeaderFields, Owners};

/// A word naming `owner` (`live`, `dead`, `self`) with its `tag` (`right`, `wrong`).
fn owner(owner: &str, tag: &str) -> J {
    obj! { "owner": owner, "tag": tag }
}

/// The same, with `flags` set.
fn owner_with(who: &str, tag: &str, flags: u64) -> J {
    obj! { "owner": who, "tag": tag, "flags": hex64(flags) }
}

const WAITERS: u64 = 1 << 31;

/// The cases, and what this implementation makes of each.
pub fn locks() -> J {
    let base = Base::new("u64", "u64", false, 1);
    // (id, why, word, header fields set)
    let cases: Vec<(&str, &str, J, J)> = vec![
        ("free", "a word of 0", hex64(0), set(&[])),
        (
            "free, other bits set",
            "no thread id: free whatever the waiters bit, bit 30 and the tag say",
            hex64(0xffff_ffff_c000_0000),
            set(&[]),
        ),
        (
            "held by a live owner",
            "its thread exists and started when the tag says",
            owner("live", "right"),
            set(&[]),
        ),
        (
            "held by a live owner, waiters asleep",
            "the waiters bit changes nothing about who holds it",
            owner_with("live", "right", WAITERS),
            set(&[]),
        ),
        (
            "held by a dead owner",
            "its thread has exited; seq even: it died outside a write window, so the locker \
             takes the lock over poisoned",
            owner("dead", "right"),
            set(&[]),
        ),
        (
            "held by a dead owner, waiters asleep",
            "taken over all the same; the waiters bit is the taker's to clear on unlock",
            owner_with("dead", "right", WAITERS),
            set(&[]),
        ),
        (
            "held by a dead owner inside a write window",
            "seq odd: its update is rolled back (here nothing was journaled), which poisons \
             nothing",
            owner("dead", "right"),
            set(&[("seq", 1)]),
        ),
        (
            "a recycled thread id",
            "a live thread has the id, but it started at another time: the owner is dead",
            owner("live", "wrong"),
            set(&[]),
        ),
        (
            "this thread's name, not held",
            "a peer wrote the locker's own name: from outside its owner lives; the locker itself \
             knows it holds nothing and takes the lock over as from a dead owner",
            owner("self", "right"),
            set(&[]),
        ),
        (
            "all ones",
            "thread id 0x3fffffff: no thread can have it (pid_max is at most 2^22)",
            hex64(u64::MAX),
            set(&[]),
        ),
        (
            "garbage",
            "thread id 0x3c3c3c3c, another impossible id",
            hex64(0x5a5a_5a5a_3c3c_3c3c),
            set(&[]),
        ),
        (
            "a dead owner of a foreign lock",
            "lock_foreign set: nobody takes an owner for dead; the lock stays held",
            owner("dead", "right"),
            set(&[("lock_foreign", 1)]),
        ),
        (
            "a dead owner, created in another pid namespace",
            "lock_pidns is not the opener's: the opener marks the lock foreign, and waits",
            owner("dead", "right"),
            set(&[("lock_pidns", 1)]),
        ),
        (
            "a dead owner, created in another time namespace",
            "lock_timens is not the opener's: start times may read otherwise; foreign",
            owner("dead", "right"),
            set(&[("lock_timens", 1)]),
        ),
        (
            "a live owner of a foreign lock",
            "held, and its life cannot be told",
            owner("live", "right"),
            set(&[("lock_foreign", 1)]),
        ),
        (
            "poisoned and free",
            "the poison word is sticky: every locker is told",
            hex64(0),
            set(&[("poison", 1)]),
        ),
    ];
    let owners = Owners::start();
    let fields = HeaderFields::from_json(&header_fields().value());
    let file_so_far = obj! { "bases": vec![base.json.clone()] }.value();
    let cases = cases
        .into_iter()
        .map(|(id, why, word, sets)| {
            let outcome = run_case(&owners, &fields, &file_so_far, &word, &sets);
            let (poisoned, holder, try_lock, after) = outcome;
            obj! {
                "id": id, "why": why, "base": "u64", "word": word, "set": sets,
                "is_poisoned": poisoned, "holder": holder, "try_lock": try_lock, "after": after,
            }
        })
        .collect::<Vec<_>>();
    obj! {
        "word": obj! {
            "tid_mask": hex64(0x3fff_ffff),
            "waiters": hex64(WAITERS),
            "tag_shift": 32u64,
        },
        "bases": vec![base.json],
        "cases": cases,
    }
}

/// Makes the base, writes the word and the fields, and records what an opener makes of it.
fn run_case(
    owners: &Owners,
    fields: &HeaderFields,
    file: &serde_json::Value,
    word: &J,
    sets: &J,
) -> (bool, &'static str, &'static str, J) {
    let word = owners.word(&word.value());
    let mut patch = sets.value();
    patch
        .as_object_mut()
        .expect("an object")
        .insert("lock".to_owned(), hex64(word).value());
    let spec = obj! { "id": "", "base": "u64" }.value();
    let mut spec = spec;
    spec["patch"] = serde_json::json!({ "set": patch });
    crate::crafted(fields, file, &spec, |name, _| {
        let (poisoned, holder, try_lock) =
            run::lock_outcome(name).unwrap_or_else(|e| panic!("open: {e}"));
        let bytes = std::fs::read(name.path()).expect("read the segment");
        let lock = fields.get(&bytes, "lock");
        let after = obj! {
            "lock": if lock == word { J::from("as written") } else { hex64(lock) },
            "poison": fields.get(&bytes, "poison"),
            "seq": fields.get(&bytes, "seq"),
            "lock_foreign": fields.get(&bytes, "lock_foreign"),
        };
        (poisoned, holder, try_lock, after)
    })
}
