//! `segments.json`: base segments as created, and crafted ones with the outcome of opening them.

use std::collections::HashMap;

use shm_core::Descriptor;
use tests::{error_kind, TestName};

use super::descriptors::{p, st};
use super::json::{hex64, join, J};
use crate::run::{self, hex, HeaderFields};

/// The header fields and where they are (docs/FORMAT.md, "Header").
pub const HEADER_FIELDS: &[(&str, usize, usize)] = &[
    ("magic", 0, 8),
    ("version", 8, 4),
    ("state", 12, 4),
    ("fingerprint", 16, 8),
    ("descriptor_len", 24, 4),
    ("flags", 28, 4),
    ("payload_offset", 32, 8),
    ("payload_len", 40, 8),
    ("elem_count", 48, 8),
    ("elem_size", 56, 8),
    ("creator_pid", 64, 4),
    ("journal_where", 68, 4),
    ("creator_start", 72, 8),
    ("created_at", 80, 8),
    ("poison", 88, 4),
    ("journal_offset", 96, 8),
    ("journal_cap", 104, 8),
    ("journal_len", 112, 8),
    ("journal_id", 120, 8),
    ("seq", 128, 8),
    ("changes", 136, 4),
    ("waiters0", 140, 4),
    ("waiters1", 144, 4),
    ("lock", 192, 8),
    ("lock_pidns", 200, 4),
    ("lock_timens", 204, 4),
    ("lock_foreign", 208, 4),
];

/// The fields of a freshly created segment the vectors pin down (not the creator's pid, start
/// time and creation time, the random journal id, nor the namespaces the lock area records).
const BASE_FIELDS: &[&str] = &[
    "version",
    "state",
    "fingerprint",
    "descriptor_len",
    "flags",
    "payload_offset",
    "payload_len",
    "elem_count",
    "elem_size",
    "poison",
    "journal_where",
    "journal_offset",
    "journal_cap",
    "journal_len",
    "seq",
    "changes",
    "waiters0",
    "waiters1",
    "lock",
];

/// `header_fields`: the name, offset and width of each.
pub fn header_fields() -> J {
    J::Obj(
        HEADER_FIELDS
            .iter()
            .map(|&(name, at, width)| (name.to_owned(), J::Arr(vec![J::from(at), J::from(width)])))
            .collect(),
    )
}

/// A base segment as created, and its JSON.
pub struct Base {
    pub json: J,
    h: HashMap<String, u64>,
    size: usize,
    pub descriptor: Vec<u8>,
}

impl Base {
    pub fn new(id: &str, layout: &str, array: bool, count: usize) -> Base {
        let fields = HeaderFields::from_json(&header_fields().value());
        let spec = obj! { "id": id, "layout": layout, "array": array, "count": count }.value();
        let name = TestName::new("vec-gen");
        run::create_base(&name, &spec).expect("create the base");
        let bytes = std::fs::read(name.path()).expect("read the base");
        let h: HashMap<String, u64> = HEADER_FIELDS
            .iter()
            .map(|&(f, _, _)| (f.to_owned(), fields.get(&bytes, f)))
            .collect();
        let header = set(&BASE_FIELDS.iter().map(|&f| (f, h[f])).collect::<Vec<_>>());
        let descriptor = bytes[256..256 + h["descriptor_len"] as usize].to_vec();
        Base {
            json: obj! {
                "id": id, "layout": layout, "array": array, "count": count,
                "size": bytes.len(), "header": header,
            },
            h,
            size: bytes.len(),
            descriptor,
        }
    }

    /// A header field as created.
    fn get(&self, field: &str) -> u64 {
        self.h[field]
    }
}

/// A hand-written case: a base, a patch and how to open; the outcome is what shm-core does.
struct Case {
    id: &'static str,
    why: &'static str,
    base: &'static str,
    patch: J,
    open: J,
    /// Refused, with a phrase the message must contain (`Some(None)`: the kind alone is pinned).
    refused: Option<Option<&'static str>>,
}

/// A case of the base `base`, unpatched, opened untyped, expected to open.
fn case(id: &'static str, why: &'static str, base: &'static str) -> Case {
    Case {
        id,
        why,
        base,
        patch: obj! {},
        open: any(),
        refused: None,
    }
}

impl Case {
    fn patch(self, patch: J) -> Case {
        Case { patch, ..self }
    }

    fn open(self, open: J) -> Case {
        Case { open, ..self }
    }

    fn refused(self, reason: &'static str) -> Case {
        Case {
            refused: Some(Some(reason)),
            ..self
        }
    }

    /// Refused, the kind of error alone pinned down (its message is the implementation's).
    fn refused_somehow(self) -> Case {
        Case {
            refused: Some(None),
            ..self
        }
    }
}

/// Header fields and their values, as a patch's `set` (and a base's `header`) writes them.
pub fn set(fields: &[(&str, u64)]) -> J {
    let value = |field, v| match field {
        "fingerprint" => hex64(v),
        _ => J::from(v),
    };
    J::Obj(
        fields
            .iter()
            .map(|&(f, v)| (f.to_owned(), value(f, v)))
            .collect(),
    )
}

/// A patch's `write` of `bytes` at `at` in `region`.
pub fn put(region: &str, at: usize, bytes: &[u8]) -> J {
    obj! { "region": region, "at": at, "hex": hex(bytes) }
}

fn any() -> J {
    obj! { "as": "any" }
}

fn any_wait(ms: u64) -> J {
    obj! { "as": "any", "wait_ms": ms }
}

fn single(layout: &str) -> J {
    obj! { "as": "single", "expect": layout }
}

fn array(layout: &str) -> J {
    obj! { "as": "array", "expect": layout }
}

/// The position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are there")
}

fn segment_cases(b: &HashMap<&str, Base>) -> Vec<Case> {
    let u = &b["u64"];
    let (po, jo, cap, size) = (
        u.get("payload_offset"),
        u.get("journal_offset"),
        u.get("journal_cap"),
        u.size as u64,
    );
    let fp = u.get("fingerprint");
    let flags = u.get("flags");
    // Every byte of the lock area set: a lock word naming a thread that cannot exist, and the
    // lock marked foreign.
    let garbage_lock = || put("object", 192, &[0xff; 64]);
    let magic = |bytes: &[u8; 8]| put("object", 0, bytes);
    // A single u64 claiming two elements, with a header that adds up (the journal area starts
    // 128 bytes after the payload).
    let two = set(&[("elem_count", 2), ("payload_len", 16)]);
    // Another descriptor in the base, with its fingerprint.
    let descriptor = |d: &[u8]| {
        obj! {
            "set": set(&[("fingerprint", Descriptor::fingerprint_of(d))]),
            "write": vec![put("descriptor", 0, d)],
        }
    };
    let stats = &b["Stats"].descriptor;
    let errors_at = find(stats, b"\x06errors");
    let mut stats_i32 = stats.clone();
    stats_i32[errors_at + find(&stats[errors_at..], b"\x03u32") + 4] = b'i';
    let mut stats_renamed = stats.clone();
    stats_renamed[errors_at + 6] = b'z';
    let empty = st(0, 1, b"E", &[]);
    vec![
        case("valid", "a segment as created", "u64"),
        case("valid, typed", "opened as the type it holds", "u64").open(single("u64")),
        case("valid array", "an array of 4 u32", "u32x4"),
        case("valid array, typed", "opened as an array of u32", "u32x4").open(array("u32")),
        case(
            "valid struct",
            "a struct with padding and an array field",
            "Stats",
        )
        .open(single("Stats")),
        case("valid aligned array", "align(64) elements", "Slotx2").open(array("Slot")),
        case(
            "mode 0644",
            "step 1: the object is open to more users than asked",
            "u64",
        )
        .patch(obj! { "chmod": 0o644u64 })
        .refused("opens it to more users"),
        case(
            "mode 0644 and truncated",
            "step 1: the object before its size",
            "u64",
        )
        .patch(obj! { "chmod": 0o644u64, "truncate": 10u64 })
        .refused("opens it to more users"),
        case(
            "empty object",
            "step 1: size 0 is a creator before ftruncate: wait",
            "u64",
        )
        .patch(obj! { "truncate": 0u64 })
        .open(any_wait(50))
        .refused_somehow(),
        case("shorter than a header", "step 1: 255 bytes", "u64")
            .patch(obj! { "truncate": 255u64 })
            .refused("fewer than the 256 of a header"),
        case(
            "short and foreign",
            "step 1 before step 2: the size before the magic",
            "u64",
        )
        .patch(obj! { "write": vec![magic(b"NOTOURS!")], "truncate": 100u64 })
        .refused("fewer than the 256 of a header"),
        case("foreign magic", "step 2", "u64")
            .patch(obj! { "write": vec![magic(b"NOTOURS!")] })
            .refused("magic"),
        case(
            "foreign magic, state 0",
            "step 2: not a segment being created",
            "u64",
        )
        .patch(obj! { "write": vec![magic(b"NOTOURS!")], "set": set(&[("state", 0)]) })
        .refused("magic"),
        case("no magic, ready", "step 2: ready without the magic", "u64")
            .patch(obj! { "write": vec![magic(&[0; 8])] })
            .refused("magic"),
        case(
            "no magic, state 0",
            "step 2: nothing written yet: wait",
            "u64",
        )
        .patch(obj! { "write": vec![magic(&[0; 8])], "set": set(&[("state", 0)]) })
        .open(any_wait(50))
        .refused_somehow(),
        case(
            "being created",
            "step 2: state 0, its creator (the test) alive: wait",
            "u64",
        )
        .patch(obj! { "set": set(&[("state", 0)]) })
        .open(any_wait(50))
        .refused_somehow(),
        case(
            "creator gone",
            "step 2: state 0, no process has the creator's pid",
            "u64",
        )
        .patch(obj! { "set": set(&[("state", 0), ("creator_pid", 0x7fff_ffff)]) })
        .open(any_wait(50))
        .refused_somehow(),
        case(
            "creator's pid reused",
            "step 2: state 0, the pid started at another time",
            "u64",
        )
        .patch(obj! { "set": set(&[("state", 0), ("creator_start", 1)]) })
        .open(any_wait(50))
        .refused_somehow(),
        case("unknown state", "step 2", "u64")
            .patch(obj! { "set": set(&[("state", 7)]) })
            .refused("unknown init state 7"),
        case(
            "unknown state and version",
            "step 2: the state before the version",
            "u64",
        )
        .patch(obj! { "set": set(&[("state", 7), ("version", 5)]) })
        .refused("unknown init state 7"),
        case("version 5", "step 2: a later version", "u64")
            .patch(obj! { "set": set(&[("version", 5)]) })
            .refused("format version 5,"),
        case(
            "version 3",
            "step 2: the version before the bounded journal (its journal was two copies of the \
             payload) and the lock word (its lock was a glibc mutex with pointers in it): refused, \
             naming both versions",
            "u64",
        )
        .patch(obj! { "set": set(&[("version", 3)]) })
        .refused("format version 3, and this shm-core reads only version 4"),
        case(
            "version 2",
            "step 2: the version before the waiting words, whose writers announce nothing: a \
             waiter would miss their changes for up to 100 ms each",
            "u64",
        )
        .patch(obj! { "set": set(&[("version", 2)]) })
        .refused("format version 2,"),
        case(
            "version 1",
            "step 2: the version before enums and texts; its descriptors mean the same, but a \
             version 1 reader would refuse later ones, so neither reads the other",
            "u64",
        )
        .patch(obj! { "set": set(&[("version", 1)]) })
        .refused("format version 1,"),
        case(
            "version 0, header not adding up",
            "step 2 before step 3",
            "u64",
        )
        .patch(obj! { "set": set(&[("version", 0), ("payload_len", 9)]) })
        .refused("format version 0"),
        case("descriptor over 64 KiB", "step 3", "u64")
            .patch(obj! { "set": set(&[("descriptor_len", 65537)]) })
            .refused("does not add up"),
        case(
            "descriptor into the payload",
            "step 3: 256 + descriptor_len > payload_offset",
            "u64",
        )
        .patch(obj! { "set": set(&[("descriptor_len", po - 255)]) })
        .refused("does not add up"),
        case(
            "element size 0",
            "step 3 (in Rust's own words: the kind alone is pinned)",
            "u64",
        )
        .patch(obj! { "set": set(&[("elem_size", 0)]) })
        .refused_somehow(),
        case(
            "count times size is not the payload length",
            "step 3",
            "u64",
        )
        .patch(obj! { "set": set(&[("elem_count", 2)]) })
        .refused("does not add up"),
        case(
            "count times size overflows",
            "step 3: 2^61 x 8 wraps to 0, the payload length: a wrapping product would pass",
            "u64",
        )
        .patch(obj! { "set": set(&[("elem_count", 1 << 61), ("payload_len", 0)]) })
        .refused("does not add up"),
        case(
            "journal overlaps the payload",
            "step 3: journal_offset < payload end",
            "u64",
        )
        .patch(obj! { "set": set(&[("journal_offset", po + 4)]), "truncate": po + 4 + cap })
        .refused("does not add up"),
        case(
            "journal area one byte longer",
            "step 3: the object's size is the journal area's end",
            "u64",
        )
        .patch(obj! { "set": set(&[("journal_cap", cap + 1)]) })
        .refused("does not add up"),
        case(
            "no journal area",
            "step 3: any journal_cap adds up if the object ends with it (every record then goes \
             to the side journal)",
            "u64",
        )
        .patch(obj! { "set": set(&[("journal_cap", 0)]), "truncate": jo })
        .open(single("u64")),
        case("journal id 0", "step 3", "u64")
            .patch(obj! { "set": set(&[("journal_id", 0)]) })
            .refused("journal id is 0"),
        case(
            "object one byte longer",
            "step 3: the object's size is the journal's end",
            "u64",
        )
        .patch(obj! { "truncate": size + 1 })
        .refused("does not add up"),
        case("object one byte shorter", "step 3", "u64")
            .patch(obj! { "truncate": size - 1 })
            .refused("does not add up"),
        case(
            "descriptor with a bad tag",
            "step 4: parsed before the (stale) fingerprint",
            "u64",
        )
        .patch(obj! { "write": vec![put("descriptor", 0, b"X")] })
        .refused("unknown node tag 0x58"),
        case(
            "descriptor with a trailing byte",
            "step 4: descriptor_len 1 too many",
            "u64",
        )
        .patch(obj! { "set": set(&[("descriptor_len", u.get("descriptor_len") + 1)]) })
        .refused("1 bytes after the end"),
        case("stale fingerprint", "step 4", "u64")
            .patch(obj! { "set": set(&[("fingerprint", fp ^ 1)]) })
            .refused("fingerprint does not match its descriptor"),
        case(
            "stale fingerprint and a garbage lock area",
            "step 4: the lock area changes nothing about it",
            "u64",
        )
        .patch(obj! { "set": set(&[("fingerprint", fp ^ 1)]), "write": vec![garbage_lock()] })
        .refused("fingerprint does not match its descriptor"),
        case(
            "descriptor of another size",
            "step 4: an i32 descriptor, 8-byte elements",
            "u64",
        )
        .patch(descriptor(&p::<i32>()))
        .refused("its elements are 8 bytes but its descriptor says 4"),
        case(
            "descriptor of another size and a garbage lock area",
            "step 4: the lock area changes nothing about it",
            "u64",
        )
        .patch(obj! {
            "set": set(&[("fingerprint", Descriptor::fingerprint_of(&p::<i32>()))]),
            "write": vec![put("descriptor", 0, &p::<i32>()), garbage_lock()],
        })
        .refused("its elements are 8 bytes but its descriptor says 4"),
        case(
            "garbage lock area",
            "step 5: no value of the lock area makes a segment corrupt (locks.json says what a \
             locker makes of it)",
            "u64",
        )
        .patch(obj! { "write": vec![garbage_lock()] }),
        case(
            "zeroed lock area",
            "step 5: a free lock whose creator's namespaces are unknown: it opens (and the \
             opener marks the lock foreign)",
            "u64",
        )
        .patch(obj! { "write": vec![put("object", 192, &[0; 64])] }),
        case(
            "garbage lock area and two elements in a single value",
            "step 5 before step 6",
            "u64",
        )
        .patch(obj! { "set": two.clone(), "write": vec![garbage_lock()] })
        .refused("says it has 2 elements"),
        case("two elements in a single value", "step 6", "u64")
            .patch(obj! { "set": two.clone() })
            .refused("says it has 2 elements"),
        case("two elements in a single value, typed", "step 6", "u64")
            .patch(obj! { "set": two.clone() })
            .open(single("u64"))
            .refused("says it has 2 elements"),
        case(
            "two elements in a single value, another type expected",
            "step 6 before step 7: the count before the expected fingerprint",
            "u64",
        )
        .patch(obj! { "set": two })
        .open(single("i32"))
        .refused("says it has 2 elements"),
        case(
            "another type",
            "step 7: an i64 segment opened as u64",
            "u64",
        )
        .patch(descriptor(&p::<i64>()))
        .open(single("u64"))
        .refused("segment holds i64, this program expects u64"),
        case(
            "a field of another type",
            "step 7: the first difference is named",
            "Stats",
        )
        .patch(descriptor(&stats_i32))
        .open(single("Stats"))
        .refused("field `errors`: segment has i32 at offset 8, this program expects u32"),
        case("a field renamed", "step 7", "Stats")
            .patch(descriptor(&stats_renamed))
            .open(single("Stats"))
            .refused("field `errors`: missing from the segment"),
        case(
            "an array opened as a single value",
            "step 7: the shape",
            "u32x4",
        )
        .open(single("u32"))
        .refused("holds an array of 4 u32"),
        case(
            "a single value opened as an array",
            "step 7: the shape",
            "u64",
        )
        .open(array("u64"))
        .refused("holds a single u64"),
        case(
            "array flag on a single value",
            "an array of one element, untyped",
            "u64",
        )
        .patch(obj! { "set": set(&[("flags", flags | 1)]) }),
        case(
            "array flag on a single value, typed",
            "step 7: the shape",
            "u64",
        )
        .patch(obj! { "set": set(&[("flags", flags | 1)]) })
        .open(single("u64"))
        .refused("holds an array of 1 u64"),
        case(
            "another type and a misaligned payload",
            "step 7 before step 8",
            "u64",
        )
        .patch(obj! { "set": set(&[("payload_offset", po + 4)]) })
        .open(single("i32"))
        .refused("segment holds u64, this program expects i32"),
        case(
            "an array as a single value, misaligned",
            "step 7 (shape) before step 8",
            "u32x4",
        )
        .patch(obj! { "set": set(&[("payload_offset", b["u32x4"].get("payload_offset") + 2)]) })
        .open(single("u32"))
        .refused("holds an array of 4 u32"),
        case(
            "a single value as an array, misaligned",
            "step 7 (shape) before step 8",
            "u64",
        )
        .patch(obj! { "set": set(&[("payload_offset", po + 4)]) })
        .open(array("u64"))
        .refused("holds a single u64"),
        case("misaligned payload", "step 8", "u64")
            .patch(obj! { "set": set(&[("payload_offset", po + 4)]) })
            .refused("not aligned to 128"),
        case("misaligned journal", "step 8", "u64")
            .patch(obj! { "set": set(&[("journal_offset", jo - 4)]), "truncate": size - 4 })
            .refused("not aligned to 128"),
        case(
            "payload aligned for its element, not to 128",
            "step 8: multiples of 128, not only of the root alignment",
            "u64",
        )
        .patch(obj! { "set": set(&[("payload_offset", po + 8)]) })
        .refused("not aligned to 128"),
        case(
            "journal aligned for the element, not to 128",
            "step 8: the record's 8-byte words and aligned copies need the format's 128",
            "u64",
        )
        .patch(obj! { "set": set(&[("journal_offset", jo - 8)]), "truncate": size - 8 })
        .refused("not aligned to 128"),
        case(
            "zero-sized element",
            "step 3: elem_size >= 1, though a descriptor of size 0 parses and the header adds up",
            "u64",
        )
        .patch(obj! {
            "set": set(&[
                ("descriptor_len", empty.len() as u64),
                ("fingerprint", Descriptor::fingerprint_of(&empty)),
                ("elem_size", 0),
                ("payload_len", 0),
            ]),
            "write": vec![put("descriptor", 0, &empty)],
        })
        .refused("size 0"),
        case("poisoned", "the poison word does not concern open", "u64")
            .patch(obj! { "set": set(&[("poison", 1)]) })
            .open(single("u64")),
        case(
            "write in progress",
            "odd seq, journal record: for readers and lockers, not for open",
            "u64",
        )
        .patch(obj! { "set": set(&[("seq", 3), ("journal_len", 48), ("journal_where", 1)]) })
        .open(single("u64")),
        case(
            "unknown flag bits",
            "bits other than 0 and 1 are not checked at open",
            "u64",
        )
        .patch(obj! { "set": set(&[("flags", flags | 4)]) })
        .open(single("u64")),
    ]
}

/// The bases and cases, and what this implementation does with each.
pub fn segments() -> J {
    let bases: Vec<(&str, &str, bool, usize)> = vec![
        ("u64", "u64", false, 1),
        ("u32x4", "u32", true, 4),
        ("Stats", "Stats", false, 1),
        ("Slotx2", "Slot", true, 2),
    ];
    let bases: Vec<(&str, Base)> = bases
        .into_iter()
        .map(|(id, l, a, n)| (id, Base::new(id, l, a, n)))
        .collect();
    let json_bases: Vec<J> = bases.iter().map(|(_, b)| b.json.clone()).collect();
    let by_id: HashMap<&str, Base> = bases.into_iter().collect();
    let file_so_far = obj! { "bases": json_bases.clone() }.value();
    let fields = HeaderFields::from_json(&header_fields().value());
    let cases = segment_cases(&by_id)
        .into_iter()
        .map(|case| {
            let spec = obj! { "id": case.id, "base": case.base, "patch": case.patch.clone() };
            let opened = crate::crafted(&fields, &file_so_far, &spec.value(), |name, _| {
                run::open(name, &case.open.value())
            });
            let outcome = match (&opened, case.refused) {
                (Ok((array, count)), None) => {
                    obj! { "ok": obj! { "array": *array, "count": *count } }
                }
                (Err(e), Some(reason)) => {
                    let mut err = vec![("kind".to_owned(), J::from(error_kind(e)))];
                    if let Some(r) = reason {
                        let id = case.id;
                        assert!(
                            e.to_string().contains(r),
                            "`{id}`: \"{e}\" does not say \"{r}\""
                        );
                        err.push(("reason".to_owned(), J::from(r)));
                    }
                    obj! { "error": J::Obj(err) }
                }
                (got, _) => panic!(
                    "`{}`: {}, not the case's point",
                    case.id,
                    crate::outcome(got)
                ),
            };
            let case = obj! {
                "id": case.id,
                "why": case.why,
                "base": case.base,
                "patch": case.patch,
                "open": case.open,
            };
            join(case, outcome)
        })
        .collect::<Vec<_>>();
    obj! { "header_fields": header_fields(), "bases": json_bases, "cases": cases }
}
