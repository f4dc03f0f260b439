//! `journal.json`: what a writer killed mid-update leaves, and the payload after recovery.

use shm_core::{Descriptor, DescriptorKind, SharedLayout};

use super::json::J;
use super::segments::{header_fields, put, set, Base};
use crate::run::{self, hex, HeaderFields, Regions};
use crate::types::{Everything, Padded, Stats, Worker};

/// The payload offset of `path` (`a`, `a.b`, `a[2]`, `grid[1][2]`) in `d`.
fn offset(d: &Descriptor, path: &str) -> usize {
    let mut d = d;
    let mut at = 0u64;
    for part in path.split('.') {
        let (name, indices) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !name.is_empty() {
            let DescriptorKind::Struct { fields } = &d.kind else {
                panic!("{path}: not a struct")
            };
            let f = fields
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{path}: no {name}"));
            at += f.offset;
            d = &f.ty;
        }
        for index in indices.split('[').skip(1) {
            let i: u64 = index.trim_end_matches(']').parse().expect("an index");
            let DescriptorKind::Array { elem, .. } = &d.kind else {
                panic!("{path}: not an array")
            };
            at += i * elem.size;
            d = elem;
        }
    }
    at as usize
}

/// Payload bytes being built.
#[derive(Clone)]
struct Image<'a> {
    d: &'a Descriptor,
    bytes: Vec<u8>,
}

impl<'a> Image<'a> {
    fn zeros(d: &'a Descriptor, len: usize) -> Image<'a> {
        Image {
            d,
            bytes: vec![0; len],
        }
    }

    fn with(mut self, path: &str, value: &[u8]) -> Image<'a> {
        let at = offset(self.d, path);
        self.bytes[at..at + value.len()].copy_from_slice(value);
        self
    }

    fn at(mut self, at: usize, value: &[u8]) -> Image<'a> {
        self.bytes[at..at + value.len()].copy_from_slice(value);
        self
    }
}

/// An entry of a journal record (docs/FORMAT.md, "The journal record") for payload bytes from
/// `start`: its header, its old values and, for kind 2 (`new` given), its new values, each copy at
/// an offset congruent to `start` modulo 16, the whole padded to a multiple of 16.
fn entry_of_kind(kind: u64, start: usize, old: &[u8], new: Option<&[u8]>) -> Vec<u8> {
    let skew = start % 16;
    let mut e = Vec::new();
    for word in [start as u64, old.len() as u64, kind, 0] {
        e.extend_from_slice(&word.to_le_bytes());
    }
    for copy in std::iter::once(old).chain(new) {
        e.resize(e.len() + skew, 0);
        e.extend_from_slice(copy);
        e.resize(e.len().next_multiple_of(16), 0);
    }
    e
}

/// A kind-2 entry: old and new values, restored where they differ.
fn changed(start: usize, old: &[u8], new: &[u8]) -> Vec<u8> {
    entry_of_kind(2, start, old, Some(new))
}

/// A kind-1 entry: old values, all restored.
fn all(start: usize, old: &[u8]) -> Vec<u8> {
    entry_of_kind(1, start, old, None)
}

/// A dead writer's leftovers: `seq`, where its record is and how much of it is committed, the
/// record (in the journal area, or with `side` in a side journal, whose header may carry another
/// id), and the payload.
fn leftovers(seq: u64, place: u64, len: usize, record: &[u8], payload: &[u8]) -> J {
    let mut patch = vec![
        (
            "set".to_owned(),
            set(&[
                ("seq", seq),
                ("journal_where", place),
                ("journal_len", len as u64),
            ]),
        ),
        (
            "write".to_owned(),
            J::Arr(if place == 1 {
                vec![put("payload", 0, payload)]
            } else {
                vec![put("payload", 0, payload), put("journal", 0, record)]
            }),
        ),
    ];
    if place == 1 {
        patch.push(("side".to_owned(), obj! { "hex": hex(record) }));
    }
    J::Obj(patch)
}

/// Leftovers whose record is in a side journal stamped with another id than the segment's.
fn in_anothers_side(seq: u64, len: usize, record: &[u8], payload: &[u8]) -> J {
    obj! {
        "set": set(&[("seq", seq), ("journal_where", 1), ("journal_len", len as u64)]),
        "write": vec![put("payload", 0, payload)],
        "side": obj! { "hex": hex(record), "id": 12345u64 },
    }
}

/// The bases and cases, and the payload after this implementation recovered each.
pub fn journal() -> J {
    let bases = [
        ("Stats", Base::new("Stats", "Stats", false, 1)),
        ("i64x3", Base::new("i64x3", "i64", true, 3)),
        (
            "Everything",
            Base::new("Everything", "Everything", false, 1),
        ),
        ("Padded", Base::new("Padded", "Padded", false, 1)),
        ("Worker", Base::new("Worker", "Worker", false, 1)),
    ];
    let stats = Descriptor::from_layout(&Stats::LAYOUT);
    let every = Descriptor::from_layout(&Everything::LAYOUT);
    let padded = Descriptor::from_layout(&Padded::LAYOUT);
    let worker = Descriptor::from_layout(&Worker::LAYOUT);

    let s_old = Image::zeros(&stats, stats.size as usize)
        .with("requests", &10u64.to_le_bytes())
        .with("errors", &1u32.to_le_bytes())
        .with("load", &0.5f64.to_le_bytes())
        .with("hist[3]", &4u32.to_le_bytes());
    let s_new = s_old
        .clone()
        .with("requests", &11u64.to_le_bytes())
        .with("errors", &2u32.to_le_bytes())
        .with("load", &0.75f64.to_le_bytes());
    let s_half = s_old.clone().with("requests", &11u64.to_le_bytes());

    let nan_a = f64::from_bits(0x7ff8_0000_0000_0001);
    let nan_b = f64::from_bits(0x7ff8_0000_0000_0002);
    let e_old = Image::zeros(&every, every.size as usize)
        .with("i8_", &(-5i8).to_le_bytes())
        .with("u16_", &700u16.to_le_bytes())
        .with("f32_", &0.0f32.to_le_bytes())
        .with("f64_", &nan_a.to_le_bytes())
        .with("flag", &[0])
        .with("letter", &u32::from('a').to_le_bytes())
        .with("grid[1][2]", &6u32.to_le_bytes())
        .with("inner.y[1]", &(-2i32).to_le_bytes());
    let e_new = e_old
        .clone()
        .with("i8_", &(-6i8).to_le_bytes())
        .with("u16_", &701u16.to_le_bytes())
        .with("f32_", &(-0.0f32).to_le_bytes())
        .with("flag", &[1])
        .with("letter", &u32::from('b').to_le_bytes())
        .with("grid[1][2]", &7u32.to_le_bytes())
        .with("inner.y[1]", &(-3i32).to_le_bytes());
    let e_payload = e_new.clone().with("f64_", &nan_b.to_le_bytes());

    let p_old = Image::zeros(&padded, padded.size as usize)
        .with("flag", &[1])
        .with("big", &2u64.to_le_bytes())
        .with("small", &3u16.to_le_bytes());
    let p_new = p_old
        .clone()
        .with("flag", &[5])
        .with("big", &6u64.to_le_bytes())
        .with("small", &7u16.to_le_bytes());
    let p_payload = p_new.clone().at(1, &[0xaa; 7]).at(18, &[0xaa; 6]);

    // A text is its length word and one cell per byte; an enum one cell of its repr.
    let client = offset(&worker, "client");
    let text = |s: &str| {
        let mut b = (s.len() as u32).to_le_bytes().to_vec();
        b.extend(s.as_bytes());
        b.resize(4 + 15, 0);
        b
    };
    let w_old = Image::zeros(&worker, worker.size as usize)
        .with("state", &[0])
        .with("client", &text("alpha"))
        .with("requests", &3u64.to_le_bytes())
        .with("level", &(-300i16).to_le_bytes());
    let w_new = w_old
        .clone()
        .with("state", &[7])
        .with("client", &text("be"))
        .with("level", &300i16.to_le_bytes());
    // Stored so far: the state, and the text's first byte, not its length nor its other bytes;
    // meanwhile a field atomic counted a request.
    let w_payload = w_old
        .clone()
        .with("state", &[7])
        .at(client + 4, b"b")
        .with("requests", &4u64.to_le_bytes());

    let hist_changed = s_half.clone().with("hist[3]", &9u32.to_le_bytes());
    let whole = |old: &Image, new: &Image| changed(0, &old.bytes, &new.bytes);
    let s_rec = whole(&s_old, &s_new);
    let cat = |parts: &[&[u8]]| parts.concat();
    let i64s = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let two = changed(0, &i64s(&[10, -10]), &i64s(&[11, -11]));
    let third = changed(16, &i64s(&[7]), &i64s(&[99]));
    // (id, why, base, patch)
    let cases: Vec<(&str, &str, &str, J)> = vec![
        (
            "killed after its first store",
            "requests stored, errors and load not yet: back to the old value",
            "Stats",
            leftovers(1, 0, s_rec.len(), &s_rec, &s_half.bytes),
        ),
        (
            "killed after its last store",
            "every field stored, the record not yet cleared: back to the old value",
            "Stats",
            leftovers(1, 0, s_rec.len(), &s_rec, &s_new.bytes),
        ),
        (
            "killed before its first store",
            "the record committed, nothing stored: the old value stays",
            "Stats",
            leftovers(1, 0, s_rec.len(), &s_rec, &s_old.bytes),
        ),
        (
            "a field the update left alone changed meanwhile",
            "hist[3] is equal in both copies of a kind-2 entry, so a field atomic's change to it \
             is kept",
            "Stats",
            leftovers(1, 0, s_rec.len(), &s_rec, &hist_changed.bytes),
        ),
        (
            "killed while writing the journal",
            "seq odd, no entry committed yet (journal_len 0): nothing to undo, whatever the \
             journal area holds",
            "Stats",
            leftovers(1, 0, 0, &whole(&s_new, &s_old), &s_old.bytes),
        ),
        (
            "an entry beyond the payload",
            "start + len > payload_len: not restored, and the lock is poisoned (the write could \
             not be rolled back); the payload as it is",
            "Stats",
            {
                let rec = changed(8, &s_old.bytes, &s_new.bytes);
                leftovers(1, 0, rec.len(), &rec, &s_half.bytes)
            },
        ),
        (
            "seq at its largest",
            "an odd seq of 2^64 - 1 wraps to 0",
            "Stats",
            leftovers(u64::MAX, 0, s_rec.len(), &s_rec, &s_half.bytes),
        ),
        (
            "one element of an array",
            "element 1 journaled; element 0, outside the record, changed meanwhile: kept",
            "i64x3",
            {
                let rec = changed(8, &i64s(&[-10]), &i64s(&[-11]));
                leftovers(5, 0, rec.len(), &rec, &i64s(&[12, -11, 7]))
            },
        ),
        (
            "an entry past journal_len",
            "the second entry is not committed (the writer had not stored its run), so it is \
             not restored: element 2 keeps what a field atomic did",
            "i64x3",
            leftovers(
                5,
                0,
                two.len(),
                &cat(&[&two, &third]),
                &i64s(&[11, -11, 99]),
            ),
        ),
        (
            "two entries, the second partly stored",
            "kind 1: elements 0 and 1, then element 2: every committed run restored",
            "i64x3",
            {
                let rec = cat(&[&all(0, &i64s(&[10, -10])), &all(16, &i64s(&[7]))]);
                leftovers(3, 0, rec.len(), &rec, &i64s(&[11, -11, 8]))
            },
        ),
        (
            "kind 1 restores every primitive",
            "a kind-1 run was all stored by the write: element 1, equal to its old value, and \
             element 2, changed since, both get their old values back",
            "i64x3",
            {
                let rec = all(0, &i64s(&[10, -10, 7]));
                leftovers(3, 0, rec.len(), &rec, &i64s(&[11, -10, 8]))
            },
        ),
        (
            "the same bytes journaled twice",
            "entries are restored last first: the first entry's old value, the oldest, wins",
            "i64x3",
            {
                let rec = cat(&[&all(8, &i64s(&[-10])), &all(8, &i64s(&[-20]))]);
                leftovers(3, 0, rec.len(), &rec, &i64s(&[0, -30, 0]))
            },
        ),
        (
            "an entry of an unknown kind",
            "kind 3: the record cannot be read on; the entries before it are restored, and the \
             lock is poisoned",
            "i64x3",
            {
                let rec = cat(&[&two, &entry_of_kind(3, 16, &i64s(&[7]), None)]);
                leftovers(3, 0, rec.len(), &rec, &i64s(&[11, -11, 8]))
            },
        ),
        (
            "a record cut short",
            "journal_len ends inside the second entry: the first is restored, the lock poisoned",
            "i64x3",
            leftovers(
                3,
                0,
                two.len() + 40,
                &cat(&[&two, &third]),
                &i64s(&[11, -11, 99]),
            ),
        ),
        (
            "every width and kind",
            "i8, u16, bool, char, a 2-D array element, a nested field; f32 0.0 and -0.0 differ \
             in bits, so restored; f64 has the same NaN in both copies, so its other NaN is kept",
            "Everything",
            {
                let rec = whole(&e_old, &e_new);
                leftovers(1, 0, rec.len(), &rec, &e_payload.bytes)
            },
        ),
        (
            "padding",
            "bytes that belong to no field are never written by undo",
            "Padded",
            {
                let rec = whole(&p_old, &p_new);
                leftovers(1, 0, rec.len(), &rec, &p_payload.bytes)
            },
        ),
        (
            "an enum and a text",
            "the enum is restored as a u8; the text byte by byte (its length was not stored yet, \
             its first byte was), \"alpha\" again; requests, equal in both copies, keeps 4",
            "Worker",
            {
                let rec = whole(&w_old, &w_new);
                leftovers(1, 0, rec.len(), &rec, &w_payload.bytes)
            },
        ),
        (
            "a record in the side journal",
            "journal_where 1: the record is read from the side journal's record area; both \
             entries are committed, so element 2 is restored too",
            "i64x3",
            {
                let rec = cat(&[&two, &third]);
                leftovers(7, 1, rec.len(), &rec, &i64s(&[11, -11, 99]))
            },
        ),
        (
            "a side journal that is not there",
            "journal_where 1, no side journal: nothing can be restored; the lock is poisoned",
            "i64x3",
            obj! {
                "set": set(&[("seq", 7), ("journal_where", 1), ("journal_len", two.len() as u64)]),
                "write": vec![put("payload", 0, &i64s(&[11, -10, 7]))],
            },
        ),
        (
            "another segment's side journal",
            "its header's id is not this segment's journal_id: not used; the lock is poisoned",
            "i64x3",
            in_anothers_side(7, two.len(), &two, &i64s(&[11, -10, 7])),
        ),
        (
            "a side journal shorter than its record",
            "journal_len beyond the side journal's end: nothing restored, the lock poisoned",
            "i64x3",
            obj! {
                "set": set(&[("seq", 7), ("journal_where", 1), ("journal_len", two.len() as u64 + 16)]),
                "write": vec![put("payload", 0, &i64s(&[11, -10, 7]))],
                "side": obj! { "hex": hex(&two) },
            },
        ),
        (
            "a write without a record",
            "journal_where 2: the writer had no room for a record; what it stored stays, and the \
             lock is poisoned",
            "i64x3",
            obj! {
                "set": set(&[("seq", 9), ("journal_where", 2)]),
                "write": vec![put("payload", 0, &i64s(&[11, -10, 7]))],
            },
        ),
        (
            "an unknown journal_where",
            "7: not a place a record can be; the lock is poisoned",
            "i64x3",
            obj! {
                "set": set(&[("seq", 9), ("journal_where", 7), ("journal_len", two.len() as u64)]),
                "write": vec![put("payload", 0, &i64s(&[11, -10, 7])), put("journal", 0, &two)],
            },
        ),
    ];
    let json_bases: Vec<J> = bases.iter().map(|(_, b)| b.json.clone()).collect();
    let file_so_far = obj! { "bases": json_bases.clone() }.value();
    let fields = HeaderFields::from_json(&header_fields().value());
    let cases = cases
        .into_iter()
        .map(|(id, why, base, patch)| {
            let spec = obj! { "id": id, "base": base, "patch": patch.clone() }.value();
            let after = crate::crafted(&fields, &file_so_far, &spec, |name, at: &Regions| {
                run::recover(name).unwrap_or_else(|e| panic!("`{id}`: recovery failed: {e}"));
                let bytes = std::fs::read(name.path()).expect("read the segment");
                let mut after = vec![
                    (
                        "payload",
                        hex(&bytes[at.payload..at.payload + at.payload_len]).into(),
                    ),
                    ("seq", fields.get(&bytes, "seq").into()),
                    ("journal_len", fields.get(&bytes, "journal_len").into()),
                    ("journal_where", fields.get(&bytes, "journal_where").into()),
                    ("poison", fields.get(&bytes, "poison").into()),
                ];
                if patch_has_side(&spec) {
                    after.push(("side_after_remove", run::side_after_remove(name).into()));
                }
                J::Obj(
                    after
                        .into_iter()
                        .map(|(k, v): (&str, J)| (k.to_owned(), v))
                        .collect(),
                )
            });
            obj! { "id": id, "why": why, "base": base, "patch": patch, "after": after }
        })
        .collect::<Vec<_>>();
    obj! { "bases": json_bases, "cases": cases }
}

/// Whether a case's patch makes a side journal.
fn patch_has_side(case: &serde_json::Value) -> bool {
    case["patch"].get("side").is_some()
}
