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

/// A dead writer's leftovers: `seq`, the record, the two journal copies and the payload.
fn leftovers(seq: u64, start: usize, len: usize, old: &Image, new: &Image, payload: &Image) -> J {
    obj! {
        "set": set(&[("seq", seq), ("journal_start", start as u64), ("journal_len", len as u64)]),
        "write": vec![
            put("payload", 0, &payload.bytes),
            put("journal_old", 0, &old.bytes),
            put("journal_new", 0, &new.bytes),
        ],
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
    let i64d = Descriptor::from_layout(&i64::LAYOUT);
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

    let arr = |v: [i64; 3]| {
        Image::zeros(&i64d, 24)
            .at(0, &v[0].to_le_bytes())
            .at(8, &v[1].to_le_bytes())
            .at(16, &v[2].to_le_bytes())
    };

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

    let s_len = stats.size as usize;
    let hist_changed = s_half.clone().with("hist[3]", &9u32.to_le_bytes());
    // (id, why, base, patch)
    let cases: Vec<(&str, &str, &str, J)> =
        vec![
        (
            "killed after its first store",
            "requests stored, errors and load not yet: back to the old value",
            "Stats",
            leftovers(1, 0, s_len, &s_old, &s_new, &s_half),
        ),
        (
            "killed after its last store",
            "every field stored, the record not yet cleared: back to the old value",
            "Stats",
            leftovers(1, 0, s_len, &s_old, &s_new, &s_new),
        ),
        (
            "killed before its first store",
            "the record written, nothing stored: the old value stays",
            "Stats",
            leftovers(1, 0, s_len, &s_old, &s_new, &s_old),
        ),
        (
            "a field the update left alone changed meanwhile",
            "hist[3] is equal in both copies, so a field atomic's change to it is kept",
            "Stats",
            leftovers(1, 0, s_len, &s_old, &s_new, &hist_changed),
        ),
        (
            "killed while writing the journal",
            "seq odd, no record yet (journal_len 0): nothing to undo, whatever the copies hold",
            "Stats",
            leftovers(1, 0, 0, &s_new, &s_old, &s_old),
        ),
        (
            "a record beyond the payload",
            "journal_start + journal_len > payload_len: ignored and cleared, the payload as it is",
            "Stats",
            leftovers(1, 8, s_len, &s_old, &s_new, &s_half),
        ),
        (
            "seq at its largest",
            "an odd seq of 2^64 - 1 wraps to 0",
            "Stats",
            leftovers(u64::MAX, 0, s_len, &s_old, &s_new, &s_half),
        ),
        (
            "one element of an array",
            "element 1 journaled; element 0, outside the record, changed meanwhile: kept",
            "i64x3",
            leftovers(5, 8, 8, &arr([0, -10, 0]), &arr([0, -11, 0]), &arr([12, -11, 7])),
        ),
        (
            "copies that differ outside the record",
            "only the elements the record covers (0 and 1) are restored",
            "i64x3",
            leftovers(5, 0, 16, &arr([10, -10, 7]), &arr([11, -11, 8]), &arr([11, -11, 99])),
        ),
        (
            "every width and kind",
            "i8, u16, bool, char, a 2-D array element, a nested field; f32 0.0 and -0.0 differ \
             in bits, so restored; f64 has the same NaN in both copies, so its other NaN is kept",
            "Everything",
            leftovers(1, 0, every.size as usize, &e_old, &e_new, &e_payload),
        ),
        (
            "padding",
            "bytes that belong to no field are never written by undo",
            "Padded",
            leftovers(1, 0, padded.size as usize, &p_old, &p_new, &p_payload),
        ),
        (
            "an enum and a text",
            "the enum is restored as a u8; the text byte by byte (its length was not stored yet, \
             its first byte was), \"alpha\" again; requests, equal in both copies, keeps 4",
            "Worker",
            leftovers(1, 0, worker.size as usize, &w_old, &w_new, &w_payload),
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
                obj! {
                    "payload": hex(&bytes[at.payload..at.payload + at.payload_len]),
                    "seq": fields.get(&bytes, "seq"),
                    "journal_len": fields.get(&bytes, "journal_len"),
                }
            });
            obj! { "id": id, "why": why, "base": base, "patch": patch, "after": after }
        })
        .collect::<Vec<_>>();
    obj! { "bases": json_bases, "cases": cases }
}
