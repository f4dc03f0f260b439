//! The conformance vectors in `docs/vectors` checked against shm-core: every layout's descriptor
//! bytes and fingerprint, every hostile descriptor's error, every crafted segment's outcome at
//! open, every undo case's payload after recovery, every waiting case's words after its steps,
//! every lock word's outcome for a locker. `python/tests/test_vectors.py` checks the same
//! files against the Python module. The files, not this code, are the spec: `generate.rs` wrote
//! them once from this implementation, and a reviewer read them.

mod generate;
mod run;
mod types;

use serde_json::Value;
use shm_core::{Descriptor, DescriptorKind, SharedLayout, FORMAT_VERSION};
use tests::{error_kind, TestName};

use run::{hex, int_of, load, str_of, unhex, HeaderFields, Opened, Owners, Regions};
use types::Visit;

/// Asserts that `failures` is empty, listing every one.
fn report(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of the {what} disagree with the vectors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The items of a vector file's list `key`.
fn list<'a>(file: &'a Value, key: &str) -> &'a Vec<Value> {
    file[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not a list"))
}

/// A descriptor as the vectors' `type` trees write it: a primitive's Rust name,
/// `{"array": T, "len": N}`, `{"struct": NAME, "fields": [{"name", "type"}...]}` with
/// `"align": N` when `#[repr(align(N))]` raises the alignment above its fields',
/// `{"enum": NAME, "repr": R, "variants": [{"name", "value"}...], "default": NAME}`, or
/// `{"text": N}`.
pub fn type_tree(d: &Descriptor) -> Value {
    match &d.kind {
        DescriptorKind::Enum {
            repr,
            variants,
            default,
        } => serde_json::json!({
            "enum": d.name,
            "repr": repr.to_string(),
            "variants": variants
                .iter()
                .map(|v| serde_json::json!({ "name": v.name, "value": i64::try_from(v.value).map_or_else(|_| Value::from(v.value as u64), Value::from) }))
                .collect::<Vec<_>>(),
            "default": variants[*default].name,
        }),
        DescriptorKind::Text { capacity } => serde_json::json!({ "text": capacity }),
        DescriptorKind::Primitive(code) => Value::from(code.to_string()),
        DescriptorKind::Array { elem, len } => {
            serde_json::json!({ "array": type_tree(elem), "len": len })
        }
        DescriptorKind::Struct { fields } => {
            let mut tree = serde_json::json!({
                "struct": d.name,
                "fields": fields
                    .iter()
                    .map(|f| serde_json::json!({ "name": f.name, "type": type_tree(&f.ty) }))
                    .collect::<Vec<_>>(),
            });
            let natural = fields.iter().map(|f| f.ty.align).max().unwrap_or(1);
            if d.align > natural {
                tree["align"] = Value::from(d.align);
            }
            tree
        }
    }
}

#[test]
fn layouts_encode_and_fingerprint_as_the_vectors_say() {
    struct Check<'a>(&'a Value);
    impl Visit for Check<'_> {
        type Out = Vec<String>;
        fn visit<T: SharedLayout + Default>(self) -> Vec<String> {
            let v = self.0;
            let id = str_of(v, "id");
            let mut bad = Vec::new();
            let check = |bad: &mut Vec<String>, what: &str, got: String, want: String| {
                if got != want {
                    bad.push(format!(
                        "layout `{id}`: {what} is {got}, the vector says {want}"
                    ));
                }
            };
            let layout = &T::LAYOUT;
            let want_bytes = unhex(str_of(v, "descriptor"));
            let want_fp = str_of(v, "fingerprint").to_owned();
            check(
                &mut bad,
                "the descriptor",
                hex(&layout.encode()),
                hex(&want_bytes),
            );
            check(
                &mut bad,
                "the fingerprint",
                format!("{:#018x}", layout.fingerprint()),
                want_fp.clone(),
            );
            check(
                &mut bad,
                "the fingerprint of the vector's bytes",
                format!("{:#018x}", Descriptor::fingerprint_of(&want_bytes)),
                want_fp,
            );
            check(
                &mut bad,
                "the size",
                layout.size.to_string(),
                int_of(&v["size"]).to_string(),
            );
            check(
                &mut bad,
                "the alignment",
                layout.align.to_string(),
                int_of(&v["align"]).to_string(),
            );
            match Descriptor::parse(&want_bytes) {
                Ok(parsed) => {
                    if parsed != Descriptor::from_layout(layout) {
                        bad.push(format!(
                            "layout `{id}`: the vector's bytes parse to another layout"
                        ));
                    }
                    check(
                        &mut bad,
                        "the type tree",
                        type_tree(&parsed).to_string(),
                        v["type"].to_string(),
                    );
                }
                Err(e) => bad.push(format!(
                    "layout `{id}`: the vector's bytes do not parse: {e}"
                )),
            }
            bad
        }
    }
    let file = load("layouts.json");
    assert_eq!(int_of(&file["format_version"]), u64::from(FORMAT_VERSION));
    let layouts = list(&file, "layouts");
    let ids: Vec<&str> = layouts.iter().map(|l| str_of(l, "id")).collect();
    assert_eq!(
        ids,
        types::IDS,
        "the vectors and the Rust types list other layouts"
    );
    let failures = layouts
        .iter()
        .flat_map(|l| types::visit(str_of(l, "id"), Check(l)).expect("a known id"))
        .collect();
    report("layouts", failures);
}

#[test]
fn descriptors_parse_or_fail_as_the_vectors_say() {
    let file = load("descriptors.json");
    let mut failures = Vec::new();
    for case in list(&file, "cases") {
        let id = str_of(case, "id");
        let bytes = unhex(str_of(case, "hex"));
        match (Descriptor::parse(&bytes), case.get("ok"), case.get("error")) {
            (Ok(d), Some(ok), None) => {
                let got = (
                    d.size,
                    d.align,
                    format!("{:#018x}", Descriptor::fingerprint_of(&bytes)),
                );
                let want = (
                    int_of(&ok["size"]),
                    int_of(&ok["align"]),
                    str_of(ok, "fingerprint").to_owned(),
                );
                if got != want {
                    failures.push(format!(
                        "`{id}`: parsed as {got:?} (size, align, fingerprint), not {want:?}"
                    ));
                }
            }
            (Err(e), None, Some(err)) => {
                let at = int_of(&err["at"]) as usize;
                let reason = str_of(err, "reason");
                if e.at != at || !e.reason.contains(reason) {
                    failures.push(format!(
                        "`{id}`: refused with \"{e}\", the vector says at byte {at}, \"{reason}\""
                    ));
                }
            }
            (got, ok, err) => failures.push(format!(
                "`{id}`: parse gave {got:?}; the vector says ok {ok:?}, error {err:?}"
            )),
        }
    }
    report("descriptors", failures);
}

#[test]
fn bases_are_created_as_the_vectors_say() {
    let layouts = load("layouts.json");
    let fields = HeaderFields::from_json(&load("segments.json")["header_fields"]);
    let mut failures = Vec::new();
    for f in ["segments.json", "journal.json", "waiting.json"] {
        for base in list(&load(f), "bases") {
            let id = str_of(base, "id");
            let name = TestName::new("vec-base");
            if let Err(e) = run::create_base(&name, base) {
                failures.push(format!("{f} base `{id}`: create failed: {e}"));
                continue;
            }
            let bytes = std::fs::read(name.path()).expect("read the base");
            let mut bad = Vec::new();
            if bytes.len() as u64 != int_of(&base["size"]) {
                bad.push(format!("size {}, not {}", bytes.len(), base["size"]));
            }
            for (field, want) in base["header"].as_object().expect("`header` is an object") {
                let got = fields.get(&bytes, field);
                if got != int_of(want) {
                    bad.push(format!("`{field}` is {got}, not {want}"));
                }
            }
            let layout = list(&layouts, "layouts")
                .iter()
                .find(|l| str_of(l, "id") == str_of(base, "layout"))
                .unwrap_or_else(|| panic!("base `{id}`: no layout `{}`", base["layout"]));
            let descriptor = str_of(layout, "descriptor");
            if bytes
                .get(256..256 + descriptor.len() / 2)
                .map(hex)
                .as_deref()
                != Some(descriptor)
            {
                bad.push("it holds another descriptor than its layout's".to_owned());
            }
            if !bad.is_empty() {
                failures.push(format!("{f} base `{id}`: {}", bad.join("; ")));
            }
        }
    }
    report("bases", failures);
}

/// The base of `case` in `file`.
fn base_of<'a>(file: &'a Value, case: &Value) -> &'a Value {
    let id = str_of(case, "base");
    list(file, "bases")
        .iter()
        .find(|b| str_of(b, "id") == id)
        .unwrap_or_else(|| panic!("case `{}`: no base `{id}`", case["id"]))
}

/// Makes the base of `case`, applies its patch, and runs `then` on it.
fn crafted<R>(
    fields: &HeaderFields,
    file: &Value,
    case: &Value,
    then: impl FnOnce(&TestName, &Regions) -> R,
) -> R {
    let base = base_of(file, case);
    let regions = Regions::of_base(base);
    let name = TestName::new("vec");
    run::create_base(&name, base).unwrap_or_else(|e| panic!("create the base: {e}"));
    run::apply(&name.path(), &case["patch"], fields, &regions);
    then(&name, &regions)
}

/// How an outcome of open is written in the vectors.
pub fn outcome(opened: &Opened) -> String {
    match opened {
        Ok((array, count)) => format!("ok: array {array}, count {count}"),
        Err(e) => format!("{}: {e}", error_kind(e)),
    }
}

#[test]
fn crafted_segments_open_as_the_vectors_say() {
    let file = load("segments.json");
    let fields = HeaderFields::from_json(&file["header_fields"]);
    let mut failures = Vec::new();
    for case in list(&file, "cases") {
        let id = str_of(case, "id");
        let opened = crafted(&fields, &file, case, |name, _| {
            run::open(name, &case["open"])
        });
        let agrees = match (&opened, case.get("ok"), case.get("error")) {
            (Ok((array, count)), Some(ok), None) => {
                ok["array"].as_bool() == Some(*array) && int_of(&ok["count"]) == *count as u64
            }
            (Err(e), None, Some(err)) => {
                // The reason is optional: without one, the kind alone is pinned.
                error_kind(e) == str_of(err, "kind")
                    && err
                        .get("reason")
                        .is_none_or(|r| e.to_string().contains(r.as_str().expect("a string")))
            }
            _ => false,
        };
        if !agrees {
            failures.push(format!(
                "`{id}`: {}; the vector says ok {:?}, error {:?}",
                outcome(&opened),
                case.get("ok"),
                case.get("error")
            ));
        }
    }
    report("crafted segments", failures);
}

#[test]
fn undo_cases_recover_as_the_vectors_say() {
    let file = load("journal.json");
    let fields = HeaderFields::from_json(&load("segments.json")["header_fields"]);
    let mut failures = Vec::new();
    for case in list(&file, "cases") {
        let id = str_of(case, "id");
        let got = crafted(&fields, &file, case, |name, regions| {
            run::recover(name)?;
            let bytes = std::fs::read(name.path()).expect("read the segment");
            let payload = hex(&bytes[regions.payload..regions.payload + regions.payload_len]);
            let side = case["after"]
                .get("side_after_remove")
                .map(|_| run::side_after_remove(name).to_owned());
            Ok::<_, shm_core::Error>((
                payload,
                fields.get(&bytes, "seq"),
                fields.get(&bytes, "journal_len"),
                fields.get(&bytes, "journal_where"),
                fields.get(&bytes, "poison"),
                side,
            ))
        });
        let after = &case["after"];
        let want = (
            str_of(after, "payload").to_owned(),
            int_of(&after["seq"]),
            int_of(&after["journal_len"]),
            int_of(&after["journal_where"]),
            int_of(&after["poison"]),
            after
                .get("side_after_remove")
                .map(|s| s.as_str().expect("a string").to_owned()),
        );
        match got {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "`{id}`: recovered to {got:?} (payload, seq, journal_len, journal_where, poison, side journal after remove), not {want:?}"
            )),
            Err(e) => failures.push(format!("`{id}`: recovery failed: {e}")),
        }
    }
    report("undo cases", failures);
}

#[test]
fn waiting_cases_announce_as_the_vectors_say() {
    let file = load("waiting.json");
    let fields = HeaderFields::from_json(&load("segments.json")["header_fields"]);
    let mut failures = Vec::new();
    for case in list(&file, "cases") {
        let id = str_of(case, "id");
        let got = crafted(&fields, &file, case, |name, _| {
            run::steps(name, &case["steps"])?;
            let bytes = std::fs::read(name.path()).expect("read the segment");
            Ok::<_, String>(bytes)
        });
        let bytes = match got {
            Ok(bytes) => bytes,
            Err(e) => {
                failures.push(format!("`{id}`: a step failed: {e}"));
                continue;
            }
        };
        for (field, want) in case["after"].as_object().expect("`after` is an object") {
            let got = fields.get(&bytes, field);
            if got != int_of(want) {
                failures.push(format!("`{id}`: `{field}` is {got}, not {want}"));
            }
        }
    }
    report("waiting cases", failures);
}

#[test]
fn lock_words_lock_as_the_vectors_say() {
    let file = load("locks.json");
    let fields = HeaderFields::from_json(&load("segments.json")["header_fields"]);
    let owners = Owners::start();
    let mut failures = Vec::new();
    for case in list(&file, "cases") {
        let id = str_of(case, "id");
        let word = owners.word(&case["word"]);
        let mut set = case["set"].clone();
        set["lock"] = Value::from(format!("{word:#018x}"));
        let mut crafted_case = case.clone();
        crafted_case["patch"] = serde_json::json!({ "set": set });
        let got = crafted(&fields, &file, &crafted_case, |name, _| {
            let (poisoned, holder, try_lock) = run::lock_outcome(name)?;
            let bytes = std::fs::read(name.path()).expect("read the segment");
            let lock = fields.get(&bytes, "lock");
            let after = serde_json::json!({
                "lock": if lock == word { "as written".to_owned() } else { format!("{lock:#018x}") },
                "poison": fields.get(&bytes, "poison"),
                "seq": fields.get(&bytes, "seq"),
                "lock_foreign": fields.get(&bytes, "lock_foreign"),
            });
            Ok::<_, shm_core::Error>((poisoned, holder, try_lock, after))
        });
        let want = (
            case["is_poisoned"]
                .as_bool()
                .expect("is_poisoned is a bool"),
            str_of(case, "holder"),
            str_of(case, "try_lock"),
        );
        match got {
            Ok((poisoned, holder, try_lock, after)) => {
                if (poisoned, holder, try_lock) != want {
                    failures.push(format!(
                        "`{id}`: (is_poisoned, holder, try_lock) is {:?}, not {want:?}",
                        (poisoned, holder, try_lock)
                    ));
                }
                let want_after = &case["after"];
                let same = ["poison", "seq", "lock_foreign"]
                    .iter()
                    .all(|f| int_of(&after[f]) == int_of(&want_after[f]))
                    && (after["lock"] == want_after["lock"]
                        || (want_after["lock"].is_string()
                            && want_after["lock"] != "as written"
                            && after["lock"].is_string()
                            && after["lock"] != "as written"
                            && int_of(&after["lock"]) == int_of(&want_after["lock"])));
                if !same {
                    failures.push(format!("`{id}`: after is {after}, not {want_after}"));
                }
            }
            Err(e) => failures.push(format!("`{id}`: {e}")),
        }
    }
    report("lock words", failures);
}
