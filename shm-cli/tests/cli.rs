//! The `shm` binary, driven as a user drives it, on segments these tests create: every
//! subcommand, its JSON parsed back, and every refusal (with exit status 1 and one line on stderr,
//! or 2 for a usage error).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{chown, symlink};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use shm_core::{Array, Options, Shared, SharedLayout, Text, Value};
use tests::{requires_root, Child, TestName, NOBODY};

tests::child_roles!();

// ---------------------------------------------------------------------------------------------
// Types the tests share with the `shm` command only through the segments' descriptors.

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Inner {
    x: u16,
    y: [i32; 3],
}

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
struct Slot {
    count: u64,
    sum: f64,
    last: u32,
}

/// Every type code, a 2-D array, a nested struct and an array of structs.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Everything {
    i8_: i8,
    u8_: u8,
    i16_: i16,
    u16_: u16,
    i32_: i32,
    u32_: u32,
    i64_: i64,
    u64_: u64,
    f32_: f32,
    f64_: f64,
    flag: bool,
    letter: char,
    grid: [[u32; 3]; 2],
    inner: Inner,
    slots: [Slot; 2],
}

/// A worker's state, by name in the segment's descriptor.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(u8)]
enum State {
    #[default]
    Idle,
    Busy,
    Stopping = 9,
}

/// A scoreboard slot: an enum and a text beside a counter.
#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Worker {
    state: State,
    client: Text<16>,
    requests: u64,
}

fn sample() -> Everything {
    Everything {
        i8_: -8,
        u8_: 8,
        i16_: -16,
        u16_: 16,
        i32_: -32,
        u32_: 32,
        i64_: -64,
        u64_: u64::MAX,
        f32_: 0.25,
        f64_: 0.7,
        flag: true,
        letter: 'é',
        grid: [[1, 2, 3], [4, 5, 6]],
        inner: Inner {
            x: 7,
            y: [-1, 0, 1],
        },
        slots: [
            Slot {
                count: 1,
                sum: 1.5,
                last: 2,
            },
            Slot {
                count: 3,
                sum: -0.5,
                last: 4,
            },
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn shm(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shm");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `shm ARGS`, which must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let r = shm(args);
    assert_eq!(
        r.code, 0,
        "shm {args:?} failed\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r.stdout
}

/// Runs `shm ARGS`, which must fail with status 1 and one line on stderr; returns that line.
fn refused(args: &[&str]) -> String {
    let r = shm(args);
    assert_eq!(
        r.code, 1,
        "shm {args:?} should fail with 1\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    let line = r.stderr.trim_end();
    assert!(
        line.starts_with("shm: ") && !line.contains('\n'),
        "shm {args:?}: not one `shm:` line on stderr: {:?}",
        r.stderr
    );
    line.to_owned()
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The `shm ls --all --json` entry for `name`.
fn ls_entry(name: &str) -> Option<Json> {
    let all = json(&ok(&["ls", "--all", "--json"]));
    all.as_array()
        .expect("ls --json is an array")
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

/// Whether this test may make another user's segment (with chown): true as root.
fn can_chown() -> bool {
    requires_root("makes another user's segment with chown")
}

// ---------------------------------------------------------------------------------------------
// ls

#[test]
fn ls_lists_our_segments_with_type_size_creator_and_kept() {
    let (s, a, v) = (
        TestName::new("ls-s"),
        TestName::new("ls-a"),
        TestName::new("ls-v"),
    );
    let _s = Shared::<Everything>::create(&s, sample()).unwrap();
    let _a = Array::<Slot>::create_zeroed(&a, 5).unwrap();
    let _v = Value::<i32>::create_with(&v, 3, &Options::new().keep(true)).unwrap();

    let text = ok(&["ls"]);
    let line = |n: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("{n} not listed:\n{text}"))
            .to_owned()
    };
    let me = std::process::id().to_string();
    let ls = line(&s);
    assert!(ls.contains("Shared<Everything>"), "{ls}");
    assert!(ls.contains(&format!("{me} alive")), "{ls}");
    let la = line(&a);
    assert!(
        la.contains("Array<Slot>") && la.contains("320 B") && la.contains(" 5 "),
        "{la}"
    );
    let lv = line(&v);
    assert!(lv.contains("Value<i32>") && lv.contains("yes"), "{lv}");
    assert!(text.starts_with("NAME"), "{text}");
    // The whole object (what it takes in /dev/shm) beside the payload, under their titles.
    let header = text.lines().next().unwrap();
    let column = |row: &str, title: &str, next: &str| {
        let (from, to) = (header.find(title).unwrap(), header.find(next).unwrap());
        row[from..to].trim().to_owned()
    };
    let file_len = fs::metadata(a.path()).unwrap().len();
    // The header's 256 bytes, the payload and its journal (two copies) at least.
    assert!(file_len >= 256 + 3 * 320, "{file_len}");
    assert_eq!(
        column(&la, "SIZE", "PAYLOAD"),
        format!("{:.1} KiB", file_len as f64 / 1024.0)
    );
    assert_eq!(column(&la, "PAYLOAD", "COUNT"), "320 B");

    // JSON, parsed back.
    let list = json(&ok(&["ls", "--json"]));
    let find = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing from {list}"))
    };
    let es = find(&s);
    assert_eq!(es["status"], "segment");
    assert_eq!(es["type"], "Everything");
    assert_eq!(es["rust_type"], "Shared<Everything>");
    assert_eq!(es["array"], false);
    assert_eq!(es["count"], 1);
    assert_eq!(
        es["payload_len"],
        std::mem::size_of::<AtomicEverything>() as u64
    );
    assert_eq!(es["object_len"], fs::metadata(s.path()).unwrap().len());
    assert_eq!(es["creator_pid"], std::process::id());
    assert_eq!(es["creator_alive"], true);
    assert_eq!(es["kept"], false);
    assert_eq!(es["stale"], false);
    assert_eq!(es["mode"], "0600");
    assert!(es["age_secs"].as_u64().unwrap() < 600);
    let ea = find(&a);
    assert_eq!(
        (
            &ea["rust_type"],
            &ea["count"],
            &ea["array"],
            &ea["elem_size"]
        ),
        (
            &Json::from("Array<Slot>"),
            &Json::from(5),
            &Json::from(true),
            &Json::from(64)
        )
    );
    assert_eq!(find(&v)["kept"], true);
}

// ---------------------------------------------------------------------------------------------
// inspect

#[test]
fn inspect_shows_layout_and_values_and_json_round_trips() {
    let name = TestName::new("inspect");
    let seg = Shared::<Everything>::create(&name, sample()).unwrap();

    let text = ok(&["inspect", &name]);
    for needle in [
        format!("segment  {}", &*name),
        "type     Shared<Everything>".to_owned(),
        format!("pid {} (alive)", std::process::id()),
        "removed when its creator drops it".to_owned(),
        "OFFSET  FIELD".to_owned(),
    ] {
        assert!(text.contains(&needle), "missing {needle:?} in\n{text}");
    }
    let row = |field: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(field))
            .unwrap_or_else(|| panic!("no row {field} in\n{text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let off = |f: usize| f.to_string();
    assert_eq!(
        row("u64_"),
        [
            off(std::mem::offset_of!(AtomicEverything, u64_)),
            "u64_".into(),
            "u64".into(),
            "Q".into(),
            u64::MAX.to_string()
        ]
    );
    assert_eq!(row("f64_")[4], "0.7");
    assert_eq!(row("letter")[4], "'é'");
    assert_eq!(row("flag")[3..], ["?", "true"]);
    // The 2-D array: its type, the code of its elements, its values.
    assert!(
        text.contains("grid    [[u32; 3]; 2]  I     [[1, 2, 3], [4, 5, 6]]"),
        "{text}"
    );
    // A nested struct, its fields indented under it at their absolute offsets.
    let inner_at = std::mem::offset_of!(AtomicEverything, inner);
    let y_at = inner_at + std::mem::offset_of!(AtomicInner, y);
    assert!(
        text.contains(&format!("\n{inner_at:<6}    x ")),
        "nested field row not indented:\n{text}"
    );
    let y_row: Vec<&str> = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("y"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        y_row,
        [
            y_at.to_string().as_str(),
            "y",
            "[i32;",
            "3]",
            "i",
            "[-1,",
            "0,",
            "1]"
        ]
    );
    // An array of structs: a table of its own, one row per element.
    assert!(text.contains("slots: [Slot; 2]"), "{text}");
    assert!(text.contains("#  COUNT  SUM   LAST"), "{text}");
    assert!(text.contains("1  3      -0.5  4"), "{text}");

    // JSON: the layout and the values, parsed back and compared with the Rust side.
    let j = json(&ok(&["inspect", &name, "--json"]));
    assert_eq!(j["name"], *name);
    assert_eq!(j["rust_type"], "Shared<Everything>");
    assert_eq!(j["creator_pid"], std::process::id());
    let layout = &j["layout"];
    assert_eq!(layout["kind"], "struct");
    assert_eq!(layout["type"], "Everything");
    assert_eq!(
        layout["size"],
        std::mem::size_of::<AtomicEverything>() as u64
    );
    let fields = layout["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "i8_", "u8_", "i16_", "u16_", "i32_", "u32_", "i64_", "u64_", "f32_", "f64_", "flag",
            "letter", "grid", "inner", "slots"
        ]
    );
    let codes: Vec<&str> = fields[..12]
        .iter()
        .map(|f| f["layout"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["b", "B", "h", "H", "i", "I", "q", "Q", "f", "d", "?", "u"]
    );
    assert_eq!(
        fields[13]["offset"],
        std::mem::offset_of!(AtomicEverything, inner) as u64
    );
    let grid = &fields[12]["layout"];
    assert_eq!(
        (
            &grid["kind"],
            &grid["len"],
            &grid["elem"]["len"],
            &grid["elem"]["elem"]["code"]
        ),
        (
            &Json::from("array"),
            &Json::from(2),
            &Json::from(3),
            &Json::from("I")
        )
    );
    let inner_fields = &fields[13]["layout"]["fields"];
    assert_eq!(inner_fields[1]["name"], "y");
    assert_eq!(
        inner_fields[1]["offset"],
        std::mem::offset_of!(AtomicInner, y) as u64
    );

    let v = &j["value"];
    let s = seg.snapshot();
    assert_eq!(v["i8_"], s.i8_);
    assert_eq!(v["u8_"], s.u8_);
    assert_eq!(v["i16_"], s.i16_);
    assert_eq!(v["u16_"], s.u16_);
    assert_eq!(v["i32_"], s.i32_);
    assert_eq!(v["u32_"], s.u32_);
    assert_eq!(v["i64_"], s.i64_);
    assert_eq!(v["u64_"].as_u64(), Some(u64::MAX));
    assert_eq!(v["f32_"].as_f64(), Some(0.25));
    assert_eq!(v["f64_"].as_f64(), Some(0.7));
    assert_eq!(v["flag"], true);
    assert_eq!(v["letter"], "é");
    assert_eq!(v["grid"], serde_json::json!([[1, 2, 3], [4, 5, 6]]));
    assert_eq!(v["inner"], serde_json::json!({"x": 7, "y": [-1, 0, 1]}));
    assert_eq!(
        v["slots"],
        serde_json::json!([
            {"count": 1, "sum": 1.5, "last": 2},
            {"count": 3, "sum": -0.5, "last": 4}
        ])
    );
}

#[test]
fn inspect_an_array_segment_shows_the_element_layout_and_a_table() {
    let name = TestName::new("inspect-arr");
    let slots: Vec<Slot> = (0..5)
        .map(|i| Slot {
            count: i,
            sum: i as f64 / 2.0,
            last: 10 * i as u32,
        })
        .collect();
    let _a = Array::<Slot>::create(&name, &slots).unwrap();
    let text = ok(&["inspect", &name]);
    assert!(
        text.contains("type     Array<Slot>: 5 elements of Slot, 64 bytes each"),
        "{text}"
    );
    assert!(
        text.contains("element layout (64 bytes, align 64)"),
        "{text}"
    );
    assert!(text.contains("  8       sum    f64   d"), "{text}");
    assert!(text.contains("  #  COUNT  SUM  LAST"), "{text}");
    assert!(text.contains("  4  4      2.0  40"), "{text}");

    // --limit: the first elements, and how many more there are.
    let text = ok(&["inspect", &name, "--limit", "2"]);
    assert!(text.contains("  1  1      0.5  10"), "{text}");
    assert!(!text.contains("  2  2"), "{text}");
    assert!(text.contains("... 3 more"), "{text}");

    let j = json(&ok(&["inspect", &name, "--json", "--limit", "3"]));
    assert_eq!(j["count"], 5);
    assert_eq!(j["elements_shown"], 3);
    assert_eq!(
        j["value"][2],
        serde_json::json!({"count": 2, "sum": 1.0, "last": 20})
    );
    let j = json(&ok(&["inspect", &name, "--json"]));
    assert_eq!(j["value"].as_array().unwrap().len(), 5);

    // A Value and an Array of primitives.
    let v = TestName::new("inspect-v");
    let _v = Value::<f32>::create(&v, -2.5).unwrap();
    let text = ok(&["inspect", &v]);
    assert!(text.contains("0       .      f32   f     -2.5"), "{text}");
    assert_eq!(json(&ok(&["inspect", &v, "--json"]))["value"], -2.5);
    let m = TestName::new("inspect-m");
    let _m = Array::<[i8; 2]>::create(&m, &[[1, -1], [2, -2]]).unwrap();
    let j = json(&ok(&["inspect", &m, "--json"]));
    assert_eq!(j["value"], serde_json::json!([[1, -1], [2, -2]]));
    assert!(ok(&["inspect", &m]).contains("1  [2, -2]"));
}

// ---------------------------------------------------------------------------------------------
// set

#[test]
fn set_writes_every_type_code_and_paths_into_arrays_and_nested_structs() {
    let name = TestName::new("set");
    let seg = Shared::<Everything>::create(&name, Everything::default()).unwrap();
    for (field, value) in [
        ("i8_", "-128"),
        ("u8_", "255"),
        ("i16_", "-0x8000"),
        ("u16_", "65535"),
        ("i32_", "-2147483648"),
        ("u32_", "0b101"),
        ("i64_", "-9223372036854775808"),
        ("u64_", "18446744073709551615"),
        ("f32_", "1.5"),
        ("f64_", "-1e-9"),
        ("flag", "true"),
        ("letter", "ß"),
        ("grid[1][2]", "42"),
        ("inner.x", "9"),
        ("inner.y[2]", "-5"),
        ("slots[1].count", "77"),
        ("slots[0].sum", "inf"),
    ] {
        let out = ok(&["set", &name, field, value]);
        assert!(out.starts_with(&format!("{}: {field} = ", &*name)), "{out}");
    }
    let s = seg.snapshot();
    assert_eq!(
        (s.i8_, s.u8_, s.i16_, s.u16_),
        (i8::MIN, u8::MAX, i16::MIN, u16::MAX)
    );
    assert_eq!(
        (s.i32_, s.u32_, s.i64_, s.u64_),
        (i32::MIN, 5, i64::MIN, u64::MAX)
    );
    assert_eq!((s.f32_, s.f64_, s.flag, s.letter), (1.5, -1e-9, true, 'ß'));
    assert_eq!(s.grid, [[0, 0, 0], [0, 0, 42]]);
    assert_eq!(
        s.inner,
        Inner {
            x: 9,
            y: [0, 0, -5]
        }
    );
    assert_eq!(s.slots[1].count, 77);
    assert_eq!(s.slots[0].sum, f64::INFINITY);
    // It reports what was there before.
    assert_eq!(
        ok(&["set", &name, "inner.x", "10"]),
        format!("{}: inner.x = 10 (was 9)\n", &*name)
    );

    // Paths into an array segment start with the element's index; `.` is a single value.
    let arr = TestName::new("set-arr");
    let a = Array::<Slot>::create_zeroed(&arr, 3).unwrap();
    ok(&["set", &arr, "[2].last", "4000000000"]);
    assert_eq!(a[2].last.load(Relaxed), 4_000_000_000);
    let v = TestName::new("set-v");
    let val = Value::<i64>::create(&v, 0).unwrap();
    ok(&["set", &v, ".", "-3"]);
    assert_eq!(val.load(Relaxed), -3);

    // A write is an update: snapshot() never sees it half-done, and it takes the lock (it waits
    // while a guard is held).
    let guard = val.lock().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(["set", &v, ".", "11"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(guard.load(Relaxed), -3, "set wrote while the lock was held");
    drop(guard);
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(val.load(Relaxed), 11);
}

#[test]
fn inspect_reports_a_poisoned_lock_and_set_leaves_it_poisoned() {
    let name = TestName::new("poisoned");
    let v = Value::<u64>::create(&name, 1).unwrap();
    assert!(ok(&["inspect", &name]).contains("\nlock     not poisoned\n"));
    assert_eq!(json(&ok(&["inspect", &name, "--json"]))["poisoned"], false);

    let mut holder = Child::spawn(&["lock-and-hang", &name]);
    holder.wait_for("locked");
    holder.kill9();
    // Reported before anyone has locked, as the program itself sees it.
    assert!(v.is_poisoned());
    let poisoned = "\nlock     POISONED: a holder of the lock died or panicked and what it may have half-changed was not repaired; the program's lock() fails until it calls clear_poison()\n";
    assert!(ok(&["inspect", &name]).contains(poisoned));
    assert_eq!(json(&ok(&["inspect", &name, "--json"]))["poisoned"], true);

    // `shm set` writes, says that the lock is poisoned, and leaves it so.
    let r = shm(&["set", &name, ".", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}: . = 5 (was 1)\n", &*name));
    assert_eq!(
        r.stderr,
        format!("shm: note: the lock of `{}` is poisoned (a holder of it died or panicked and what it may have half-changed was not repaired); the value was written, and the lock stays poisoned until the program that owns the data calls clear_poison()\n", &*name)
    );
    assert_eq!(v.load(Relaxed), 5);
    assert!(v.is_poisoned());
    assert!(v.lock().is_err());
    assert!(ok(&["inspect", &name]).contains(poisoned));

    // Cleared by the program: everyone sees it clean, and `set` says nothing more.
    v.clear_poison();
    assert!(ok(&["inspect", &name]).contains("\nlock     not poisoned\n"));
    assert_eq!(json(&ok(&["inspect", &name, "--json"]))["poisoned"], false);
    let r = shm(&["set", &name, ".", "6"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn set_refuses_bad_values_fields_and_paths_and_changes_nothing() {
    let name = TestName::new("refuse");
    let seg = Shared::<Everything>::create(&name, sample()).unwrap();
    let before = seg.snapshot();
    for (field, value, why) in [
        // Out of range, for the field's type code.
        ("u8_", "256", "out of range for u8 (0 to 255)"),
        ("i8_", "-129", "out of range for i8 (-128 to 127)"),
        ("u64_", "-1", "out of range for u64"),
        ("i64_", "9223372036854775808", "out of range for i64"),
        ("f32_", "1e39", "out of range for f32"),
        ("f64_", "1e999", "out of range for f64"),
        // Malformed.
        ("i32_", "1.5", "not an integer"),
        ("u16_", "twelve", "not an integer"),
        ("f64_", "fast", "not a number"),
        ("flag", "maybe", "`true` or `false`"),
        ("letter", "ab", "exactly one"),
        // Unknown fields, indices out of range.
        (
            "lod",
            "1",
            "`Everything` has no field `lod`; its fields are i8_, u8_",
        ),
        ("inner.z", "1", "`Inner` has no field `z`"),
        (
            "grid[2][0]",
            "1",
            "index 2 is out of range: `grid` is [[u32; 3]; 2], of 2 elements",
        ),
        ("inner.y[3]", "1", "index 3 is out of range"),
        ("f64_.x", "1", "`f64_` is f64, which has no fields"),
        ("flag[0]", "1", "`flag` is bool, not an array"),
        // Not one primitive (the hints are spelled out in the next test).
        (
            "grid",
            "1",
            "not a single value: write one of the primitives",
        ),
        ("inner", "1", "not a single value"),
        ("slots[1]", "1", "not a single value"),
        (".", "1", "not a single value"),
        ("", "1", "the field path is empty"),
        // Not a path.
        ("grid[", "1", "not a field path"),
        ("a..b", "1", "not a field path"),
        ("grid[x]", "1", "not a field path"),
    ] {
        let line = refused(&["set", &name, field, value]);
        assert!(line.contains(why), "{field} = {value}: {line}");
        assert!(line.contains(&*name), "does not name the segment: {line}");
        assert_eq!(
            seg.snapshot(),
            before,
            "{field} = {value} changed something"
        );
    }
    // An array segment's elements are reached by index first.
    let arr = TestName::new("refuse-arr");
    let a = Array::<Slot>::create_zeroed(&arr, 2).unwrap();
    let line = refused(&["set", &arr, "count", "1"]);
    assert!(
        line.contains("start with an element's index, e.g. `[0].count`"),
        "{line}"
    );
    let line = refused(&["set", &arr, "[2].count", "1"]);
    assert!(
        line.contains("index 2 is out of range: the segment is an array of 2"),
        "{line}"
    );
    assert_eq!(a.snapshot(), vec![Slot::default(); 2]);
    // No such segment, or not a segment at all.
    let missing = TestName::new("refuse-missing");
    assert!(refused(&["set", &missing, "x", "1"]).contains("does not exist"));
    let garbage = TestName::new("refuse-garbage");
    garbage.plant(&[0xAB; 4096], 0o600);
    assert!(refused(&["set", &garbage, "x", "1"]).contains("is not a valid segment"));
    assert_eq!(fs::read(garbage.path()).unwrap(), vec![0xAB; 4096]);
}

#[test]
fn set_suggests_real_paths_of_the_segments_type() {
    let s = TestName::new("hint-s");
    let _s = Shared::<Everything>::create(&s, sample()).unwrap();
    let a = TestName::new("hint-a");
    let _a = Array::<Slot>::create_zeroed(&a, 2).unwrap();
    let v = TestName::new("hint-v");
    let val = Value::<u64>::create(&v, 3).unwrap();
    let (s, a, v) = (&*s, &*a, &*v);
    for (name, path, line) in [
        // An empty path (an unset variable) or a whole struct or array: said so, with the
        // primitives in it, a few then `…`.
        (
            s,
            "",
            format!("shm: segment `{s}`: the field path is empty: the segment's value is a `Everything` struct: write one of the primitives in it: `i8_`, `u8_`, `i16_`, `u16_`, …"),
        ),
        (
            s,
            ".",
            format!("shm: segment `{s}`: `.` is the segment's whole value, a `Everything` struct, not a single value: write one of the primitives in it: `i8_`, `u8_`, `i16_`, `u16_`, …"),
        ),
        (
            s,
            "inner",
            format!("shm: segment `{s}`: `inner` is a `Inner` struct, not a single value: write one of the primitives in it: `inner.x`, `inner.y[0]`, `inner.y[1]`, `inner.y[2]`"),
        ),
        (
            s,
            "grid",
            format!("shm: segment `{s}`: `grid` is a `[[u32; 3]; 2]` array, not a single value: write one of the primitives in it: `grid[0][0]`, `grid[0][1]`, `grid[0][2]`, `grid[1][0]`, …"),
        ),
        (
            s,
            "slots[1]",
            format!("shm: segment `{s}`: `slots[1]` is a `Slot` struct, not a single value: write one of the primitives in it: `slots[1].count`, `slots[1].sum`, `slots[1].last`"),
        ),
        // An index written as a field name; a field or an index of what has none.
        (
            s,
            "inner.y.2",
            format!("shm: segment `{s}` has no field `inner.y.2`: `inner.y` is a `[i32; 3]` array, which has no fields: an index goes in brackets: `inner.y[2]`"),
        ),
        (
            s,
            "inner.y.x",
            format!("shm: segment `{s}` has no field `inner.y.x`: `inner.y` is a `[i32; 3]` array, which has no fields: write one of the primitives in it: `inner.y[0]`, `inner.y[1]`, `inner.y[2]`"),
        ),
        (
            s,
            "inner[0]",
            format!("shm: segment `{s}` has no field `inner[0]`: `inner` is a `Inner` struct, not an array: write one of the primitives in it: `inner.x`, `inner.y[0]`, `inner.y[1]`, `inner.y[2]`"),
        ),
        (
            s,
            "[0]",
            format!("shm: segment `{s}` has no field `[0]`: the segment's value is a `Everything` struct, not an array: write one of the primitives in it: `i8_`, `u8_`, `i16_`, `u16_`, …"),
        ),
        (
            s,
            "flag.x",
            format!("shm: segment `{s}` has no field `flag.x`: `flag` is bool, which has no fields: write `flag` for it"),
        ),
        // An array of structs: element paths with the element type's real field names.
        (
            a,
            "0.count",
            format!("shm: segment `{a}` has no field `0.count`: the segment is an array of 2 `Slot`: an index goes in brackets: `[0].count`"),
        ),
        (
            a,
            "0.pid",
            format!("shm: segment `{a}` has no field `0.pid`: the segment is an array of 2 `Slot`: start with an element's index, e.g. `[0].count`, `[0].sum`, `[0].last`, `[1].count`, …"),
        ),
        (
            a,
            "sum",
            format!("shm: segment `{a}` has no field `sum`: the segment is an array of 2 `Slot`: start with an element's index, e.g. `[0].sum`"),
        ),
        (
            a,
            "",
            format!("shm: segment `{a}`: the field path is empty: the segment is an array of 2 `Slot`: write one of the primitives in it: `[0].count`, `[0].sum`, `[0].last`, `[1].count`, …"),
        ),
        (
            a,
            ".",
            format!("shm: segment `{a}`: `.` is the whole segment, an array of 2 `Slot`, not a single value: write one of the primitives in it: `[0].count`, `[0].sum`, `[0].last`, `[1].count`, …"),
        ),
        (
            a,
            "[1]",
            format!("shm: segment `{a}`: `[1]` is a `Slot` struct, not a single value: write one of the primitives in it: `[1].count`, `[1].sum`, `[1].last`"),
        ),
        // A single value: `.`.
        (
            v,
            "",
            format!("shm: segment `{v}`: the field path is empty: write `.` for the segment's value, a u64"),
        ),
        (
            v,
            "x",
            format!("shm: segment `{v}` has no field `x`: the segment's value is u64, which has no fields: write `.` for it"),
        ),
        (
            v,
            "[0]",
            format!("shm: segment `{v}` has no field `[0]`: the segment's value is u64, not an array: write `.` for it"),
        ),
    ] {
        assert_eq!(refused(&["set", name, path, "1"]), line, "path {path:?}");
    }
    assert_eq!(val.load(Relaxed), 3, "an empty path wrote the value");
    // What the hints suggest is written.
    ok(&["set", a, "[0].count", "1"]);
    ok(&["set", s, "inner.y[2]", "1"]);
    ok(&["set", v, ".", "1"]);
    assert_eq!(val.load(Relaxed), 1);
}

/// Runs `shm ARGS`; fails the test if it has not ended within a minute (a `set` that waits for
/// ever must fail the test, not hang it).
fn shm_ends(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shm");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shm {args:?} still waiting after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The wait in seconds that a `set` that gave up reports: `... after waiting 2.0s; ...` or
/// `... after waiting 300ms; ...`.
fn waited_secs(line: &str) -> f64 {
    let text = line
        .split("after waiting ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no wait in {line:?}"));
    match text.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().unwrap() / 1000.0,
        None => text.strip_suffix('s').unwrap().parse().unwrap(),
    }
}

#[test]
fn set_gives_up_on_a_lock_a_live_process_holds_and_says_who_holds_it() {
    let name = TestName::new("set-held");
    let child = Child::spawn(&["hold-lock-on-a-thread", &name]);
    let tid = child.wait_for_value("locked");
    let holder = format!("held by pid {}, thread {tid} (alive)", child.pid());
    let gave_up = |line: &str| {
        assert!(
            line.starts_with(&format!(
                "shm: segment `{}`: `.` not written: its lock was still {holder} after waiting ",
                &*name
            )) && line.ends_with("; --timeout sets how long to wait"),
            "{line}"
        );
    };

    // Without --timeout: five seconds, a notice after the first, then an error.
    let r = shm_ends(&["set", &name, ".", "5"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert_eq!(
        lines[0],
        format!(
            "shm: segment `{}`: waiting for its lock, {holder}; giving up after 5s (--timeout)",
            &*name
        )
    );
    gave_up(lines[1]);
    assert!(waited_secs(lines[1]) >= 5.0, "{}", lines[1]);

    // Under a second: no notice, only the error.
    let line = refused(&["set", &name, ".", "5", "--timeout", "300ms"]);
    gave_up(&line);
    assert!(waited_secs(&line) >= 0.3, "{line}");

    // Longer: the notice after a second, then the error.
    let r = shm_ends(&["set", &name, ".", "5", "--timeout", "2s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(
        lines[0].ends_with(&format!("{holder}; giving up after 2s (--timeout)")),
        "{}",
        lines[0]
    );
    gave_up(lines[1]);
    assert!(waited_secs(lines[1]) >= 2.0, "{}", lines[1]);
    assert_eq!(r.stdout, "");

    // Nothing was written; the holder still holds the lock.
    let v = Value::<u64>::open(&name).unwrap();
    assert_eq!(v.load(Relaxed), 7);
    assert!(matches!(
        v.try_lock(),
        Err(std::sync::TryLockError::WouldBlock)
    ));
}

#[test]
fn set_goes_on_when_the_holder_dies_while_it_waits() {
    let name = TestName::new("set-holder-dies");
    let mut child = Child::spawn(&["hold-lock-on-a-thread", &name]);
    child.wait_for_value("locked");
    let mut set = Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(["set", &name, ".", "5", "--timeout", "1m"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The notice says it is waiting for a live holder; then the holder is killed.
    let mut stderr = BufReader::new(set.stderr.take().unwrap());
    let mut notice = String::new();
    stderr.read_line(&mut notice).unwrap();
    assert!(
        notice.contains(&format!(
            "waiting for its lock, held by pid {}, thread ",
            child.pid()
        )) && notice.contains("(alive)"),
        "{notice}"
    );
    child.kill9();
    // The lock passes to `set`, poisoned: it writes, and says so.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = set.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{rest}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: . = 5 (was 7)\n", &*name)
    );
    assert!(
        rest.starts_with(&format!("shm: note: the lock of `{}` is poisoned", &*name)),
        "{rest}"
    );
    assert_eq!(Value::<u64>::open(&name).unwrap().load(Relaxed), 5);
}

// ---------------------------------------------------------------------------------------------
// watch

#[test]
fn watch_prints_a_block_per_refresh_with_rates_and_stops_after_count() {
    let name = TestName::new("watch");
    let seg = Shared::<Everything>::create(&name, sample()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Relaxed) {
                seg.u32_.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let start = Instant::now();
        let out = ok(&["watch", &name, "--interval", "100ms", "--count", "3"]);
        stop.store(true, Relaxed);
        assert!(start.elapsed() >= Duration::from_millis(200));
        // Not a terminal: one block per refresh, each with a heading.
        let blocks: Vec<&str> = out.split("\n\n").filter(|b| !b.trim().is_empty()).collect();
        assert_eq!(blocks.len(), 3, "{out}");
        for (i, block) in blocks.iter().enumerate() {
            assert!(
                block.starts_with(&format!("{}  Shared<Everything>", &*name)),
                "{block}"
            );
            assert!(block.contains(&format!("refresh {}/3", i + 1)), "{block}");
            assert!(block.contains("FIELD"), "{block}");
            assert!(block.contains("inner.y[2]"), "{block}");
            assert!(block.contains("slots[1].sum"), "{block}");
        }
        // The first block has nothing to compare with; later ones show the integer rates.
        let rate_of = |block: &str, field: &str| {
            block
                .lines()
                .find(|l| l.split_whitespace().next() == Some(field))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(str::to_owned)
        };
        assert_eq!(rate_of(blocks[0], "u32_"), None);
        let moving = rate_of(blocks[2], "u32_").expect("a rate for u32_");
        assert!(
            moving.starts_with('+') && moving.ends_with("/s"),
            "{moving}"
        );
        assert_eq!(rate_of(blocks[2], "i32_").as_deref(), Some("0/s"));
        // Floats have no rate.
        assert_eq!(rate_of(blocks[2], "f64_"), None);
    });
}

#[test]
fn watch_an_array_of_structs_is_a_table_and_ends_when_the_segment_is_removed() {
    let name = TestName::new("watch-arr");
    let a = Array::<Slot>::create_zeroed(&name, 2).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(["watch", &name, "--interval", "50ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..10 {
        a[1].count.fetch_add(5, Relaxed);
        std::thread::sleep(Duration::from_millis(30));
    }
    // The creator's drop removes the segment: the watch says so and stops.
    drop(a);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!("shm: segment `{}` was removed", &*name)
    );
    assert!(stdout.contains("#  COUNT"), "{stdout}");
    assert!(
        stdout.contains("/s)"),
        "a rate for the moving count: {stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// rm

#[test]
fn rm_removes_our_segments_and_refuses_what_is_not_ours() {
    let (a, b) = (TestName::new("rm-a"), TestName::new("rm-b"));
    // `a`'s creator, this process, is alive: only --force removes it (next test).
    let _a = Value::<u8>::create(&a, 1).unwrap();
    drop(Value::<u8>::create_with(&b, 1, &Options::new().keep(true)).unwrap());
    assert_eq!(
        ok(&["rm", "--force", &a, &b]),
        format!("removed {}\nremoved {}\n", &*a, &*b)
    );
    assert!(!a.exists() && !b.exists());

    // A corrupt segment (our magic, garbage after it) is ours to remove.
    let corrupt = TestName::new("rm-corrupt");
    let mut bytes = b"SHMCORE\0".to_vec();
    bytes.resize(4096, 0xEE);
    corrupt.plant(&bytes, 0o600);
    assert_eq!(ok(&["rm", &corrupt]), format!("removed {}\n", &*corrupt));

    // Another program's object is not.
    let foreign = TestName::new("rm-foreign");
    foreign.plant(b"some other program's shared memory", 0o600);
    let line = refused(&["rm", &foreign]);
    assert!(
        line.contains("it is not an shm-core segment") && line.contains("rm /dev/shm/"),
        "{line}"
    );
    assert!(foreign.exists());

    // Missing; invalid; and several names, one bad: the others are still removed, one line per
    // failure, status 1. (`c`'s creator is this process: alive, hence --force, which removes no
    // foreign object.)
    let missing = TestName::new("rm-missing");
    assert!(refused(&["rm", &missing]).contains("does not exist"));
    assert!(refused(&["rm", "a/b"]).contains("invalid segment name"));
    let c = TestName::new("rm-c");
    drop(Value::<u8>::create_with(&c, 1, &Options::new().keep(true)).unwrap());
    let r = shm(&["rm", "--force", &missing, &c, &foreign]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, format!("removed {}\n", &*c));
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
    assert!(!c.exists() && foreign.exists());

    // Another user's segment.
    if !can_chown() {
        return;
    }
    let theirs = TestName::new("rm-theirs");
    drop(Value::<u8>::create_with(&theirs, 1, &Options::new().keep(true)).unwrap());
    chown(theirs.path(), Some(54321), Some(54321)).unwrap();
    let line = refused(&["rm", &theirs]);
    assert!(
        line.contains("not this user's") && line.contains("54321"),
        "{line}"
    );
    assert!(theirs.exists());
}

#[test]
fn rm_refuses_a_segment_whose_creator_is_alive_unless_forced() {
    let (live, dead) = (TestName::new("rm-live"), TestName::new("rm-dead"));
    let creator = Child::spawn(&["create-then-hang", &live]);
    creator.wait_for("created");
    Child::run(&["create-kept", &dead, "exit"]);
    // One line for the live one, naming its creator; the other is removed.
    let r = shm(&["rm", &live, &dead]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, format!("removed {}\n", &*dead));
    assert_eq!(
        r.stderr,
        format!(
            "shm: not removing `{0}`: its creator, pid {1}, is alive and may still be using it; `shm rm --force {0}` removes it anyway\n",
            &*live,
            creator.pid()
        )
    );
    assert!(live.exists() && !dead.exists());
    assert_eq!(
        ok(&["rm", "--force", &live]),
        format!("removed {}\n", &*live)
    );
    assert!(!live.exists());

    // One still being created by a live process: the same.
    let young = TestName::new("rm-young");
    let creating = Child::spawn(&["hang-in-init", &young]);
    creating.wait_for("initializing");
    assert_eq!(
        refused(&["rm", &young]),
        format!(
            "shm: not removing `{0}`: it is still being created; `shm rm --force {0}` removes it anyway",
            &*young
        )
    );
    assert!(young.exists());
    assert_eq!(
        ok(&["rm", &young, "--force"]),
        format!("removed {}\n", &*young)
    );
    assert!(!young.exists());
}

// ---------------------------------------------------------------------------------------------
// Stale segments and gc

#[test]
fn gc_removes_segments_of_dead_creators_and_nothing_else() {
    let p = TestName::prefix("gc");
    let killed = TestName::under(&p);
    let died_in_init = TestName::under(&p);
    let kept = TestName::under(&p);
    let live = TestName::under(&p);

    // A creator killed with SIGKILL: its segment stays, its header names a dead process.
    let mut c = Child::spawn(&["create-then-hang", &killed]);
    c.wait_for("created");
    c.kill9();
    // A creator killed while creating: the segment was never made ready.
    let mut c = Child::spawn(&["hang-in-init", &died_in_init]);
    c.wait_for("initializing");
    c.kill9();
    // A creator that asked to keep its segment, and exited.
    Child::run(&["create-kept", &kept, "exit"]);
    // And a live creator: this process.
    let _live = Value::<u64>::create(&live, 1).unwrap();
    for n in [&killed, &died_in_init, &kept, &live] {
        assert!(n.exists(), "{}", &**n);
    }

    // ls says which is which.
    let e = ls_entry(&killed).unwrap();
    assert_eq!(
        (&e["status"], &e["creator_alive"], &e["kept"], &e["stale"]),
        (
            &Json::from("segment"),
            &Json::from(false),
            &Json::from(false),
            &Json::from(true)
        )
    );
    let e = ls_entry(&died_in_init).unwrap();
    assert_eq!(
        (&e["status"], &e["stale"]),
        (&Json::from("broken"), &Json::from(true))
    );
    assert!(e["reason"]
        .as_str()
        .unwrap()
        .contains("died before it was ready"));
    let e = ls_entry(&kept).unwrap();
    assert_eq!(
        (&e["creator_alive"], &e["kept"], &e["stale"]),
        (&Json::from(false), &Json::from(true), &Json::from(false))
    );
    assert_eq!(ls_entry(&live).unwrap()["stale"], false);
    let text = ok(&["ls"]);
    let line = text.lines().find(|l| l.starts_with(&*killed)).unwrap();
    assert!(
        line.contains("dead") && line.contains("stale: `shm gc` removes it"),
        "{line}"
    );
    // inspect says it too.
    assert!(ok(&["inspect", &killed]).contains("stale: its creator died without removing it"));

    // A dry run names the two stale ones and removes nothing.
    let out = ok(&["gc", "--dry-run", "--prefix", &p]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("would remove {} (creator ", &*killed))
                && l.ends_with("is dead and did not keep it)")
        ),
        "{out}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("would remove {} (creator ", &*died_in_init))
                && l.ends_with("died before it was ready)")
        ),
        "{out}"
    );
    for n in [&killed, &died_in_init, &kept, &live] {
        assert!(n.exists());
    }
    // Without --prefix the dry run lists them too (among whatever else is stale here).
    let all = ok(&["gc", "--dry-run"]);
    assert!(
        all.contains(&*killed) && all.contains(&*died_in_init),
        "{all}"
    );
    assert!(!all.contains(&*kept) && !all.contains(&*live), "{all}");

    // gc removes exactly those.
    let out = ok(&["gc", "--prefix", &p]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("removed ")).count(),
        2,
        "{out}"
    );
    assert!(!killed.exists() && !died_in_init.exists());
    assert!(kept.exists() && live.exists());
    assert_eq!(ok(&["gc", "--prefix", &p]), "no stale segments\n");
    // The kept one goes when asked by name.
    ok(&["rm", &kept]);
    assert!(!kept.exists());
}

#[test]
fn gc_refuses_an_empty_prefix() {
    let stale = TestName::new("gc-empty");
    let mut c = Child::spawn(&["create-then-hang", &stale]);
    c.wait_for("created");
    c.kill9();
    assert_eq!(ls_entry(&stale).unwrap()["stale"], true);
    // What `--prefix "$UNSET"` gives: a usage error, never every stale segment.
    for args in [
        &["gc", "--dry-run", "--prefix", ""][..],
        &["gc", "--prefix", ""],
        &["gc", "--prefix="],
    ] {
        let r = shm(args);
        assert_eq!(r.code, 2, "shm {args:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "");
        assert!(
            r.stderr.starts_with(
                "error: invalid value '' for '--prefix <PREFIX>': the prefix is empty, which would select every segment; leave out --prefix to consider them all"
            ),
            "{}",
            r.stderr
        );
        assert!(stale.exists());
    }
}

#[test]
fn the_library_finds_and_removes_stale_segments_and_spares_a_recycled_name() {
    use shm_core::inspect;
    let name = TestName::new("stale-lib");
    let mut c = Child::spawn(&["create-then-hang", &name]);
    c.wait_for("created");
    c.kill9();
    let stale = inspect::stale()
        .unwrap()
        .into_iter()
        .find(|s| s.name == *name)
        .expect("listed as stale");
    assert!(stale.ready);
    assert_eq!(stale.creator_pid, c.pid());
    // The name is removed and made again by a live process before the stale entry is acted on:
    // the new segment is not touched.
    shm_core::remove(&name).unwrap();
    let _new = Value::<u64>::create(&name, 5).unwrap();
    assert!(!stale.remove().unwrap(), "removed a live segment");
    assert!(name.exists());
}

// ---------------------------------------------------------------------------------------------
// Garbage, other users' objects, hostile layouts

#[test]
fn garbage_and_other_users_objects_never_break_ls_or_inspect() {
    let garbage = TestName::new("junk");
    garbage.plant(&[0x5A; 1000], 0o600);
    let zeros = TestName::new("zeros");
    zeros.plant(&[0; 4096], 0o600);
    let empty = TestName::new("empty");
    empty.plant(&[], 0o600);
    let tiny = TestName::new("tiny");
    tiny.plant(b"SHM", 0o600);
    let corrupt = TestName::new("corrupt");
    let mut bytes = b"SHMCORE\0".to_vec();
    bytes.resize(300, 0xFF);
    corrupt.plant(&bytes, 0o600);
    let link = TestName::new("link");
    symlink("/etc/passwd", link.path()).unwrap();
    let good = TestName::new("good");
    let _good = Value::<u16>::create(&good, 1).unwrap();

    // Without --all: only our segments, the corrupt one flagged.
    let text = ok(&["ls"]);
    let listed = |n: &str| text.lines().any(|l| l.starts_with(n));
    assert!(listed(&good) && listed(&corrupt), "{text}");
    for n in [&garbage, &zeros, &empty, &tiny, &link] {
        assert!(!listed(n), "{} listed:\n{text}", &**n);
    }
    let line = text.lines().find(|l| l.starts_with(&*corrupt)).unwrap();
    assert!(line.contains("corrupt:"), "{line}");

    // With --all, each is listed for what it is.
    for (n, status, why) in [
        (
            &garbage,
            "foreign",
            "does not start with the shm-core magic bytes",
        ),
        (&zeros, "foreign", "first bytes are zero"),
        (&empty, "foreign", "empty"),
        (&tiny, "foreign", "does not start with the shm-core magic"),
        (&link, "foreign", "a symbolic link"),
        (&corrupt, "broken", "corrupt"),
    ] {
        let e = ls_entry(n).unwrap_or_else(|| panic!("{} not in ls --all", &**n));
        assert_eq!(e["status"], status, "{e}");
        assert!(e["reason"].as_str().unwrap().contains(why), "{e}");
    }
    assert!(ok(&["ls", "--all"]).contains("not an shm-core segment"));
    // Their size, what they take in /dev/shm, is shown too; a symbolic link has none.
    assert_eq!(ls_entry(&garbage).unwrap()["object_len"], 1000);
    assert_eq!(ls_entry(&corrupt).unwrap()["object_len"], 300);
    assert_eq!(ls_entry(&link).unwrap()["object_len"], Json::Null);
    let all = ok(&["ls", "--all"]);
    let row = all.lines().find(|l| l.starts_with(&*garbage)).unwrap();
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        [&*garbage, "-", "1000", "B"],
        "{row}"
    );

    // inspect refuses each with one line; nothing is changed.
    assert!(refused(&["inspect", &garbage]).contains("is not a valid segment"));
    assert!(refused(&["inspect", &corrupt]).contains("is not a valid segment"));
    assert!(refused(&["inspect", &link]).contains("symbolic link"));
    assert!(refused(&["watch", &garbage, "--count", "1"]).contains("is not a valid segment"));
    assert_eq!(fs::read(garbage.path()).unwrap(), vec![0x5A; 1000]);

    // Another user's segment: not listed without --all, denied, never removed.
    if !can_chown() {
        return;
    }
    let theirs = TestName::new("theirs");
    drop(Value::<u8>::create_with(&theirs, 1, &Options::new().keep(true)).unwrap());
    chown(theirs.path(), Some(54321), Some(54321)).unwrap();
    assert!(!ok(&["ls"]).lines().any(|l| l.starts_with(&*theirs)));
    let e = ls_entry(&theirs).unwrap();
    assert_eq!(e["status"], "denied");
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(
        e["reason"],
        format!("not this user's: it belongs to uid 54321 (group 54321, mode 0o600), not to this user (uid {me}): this user is not in its group 54321; its mode 0o600 does not give its group read access"),
    );
    assert!(refused(&["inspect", &theirs]).contains("permission denied"));
    assert!(refused(&["set", &theirs, ".", "2"]).contains("permission denied"));
    assert!(!ok(&["gc", "--dry-run"]).contains(&*theirs));
}

/// The read commands attach read-only: a member of a segment's group that may only read it (mode
/// 0o640) lists, inspects and watches it; `set` is refused, saying a read-only attach is possible.
#[test]
fn the_read_commands_work_for_a_user_who_may_only_read() {
    use std::os::unix::process::CommandExt;
    if !can_chown() {
        return;
    }
    const GROUP: u32 = 4244;
    let name = TestName::new("readonly");
    let _v = Value::<u32>::create_with(&name, 77, &Options::new().mode(0o640)).unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    let as_reader = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_shm"))
            .args(args)
            .uid(NOBODY)
            .gid(GROUP)
            .stdin(Stdio::null())
            .output()
            .expect("run shm as another user");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = as_reader(&["inspect", &name]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("77"), "{out}");
    let (code, out, err) = as_reader(&["ls", "--all"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.starts_with(&*name)), "{out}");
    let (code, out, err) = as_reader(&["watch", &name, "--count", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("77"), "{out}");
    let (code, _, err) = as_reader(&["set", &name, ".", "5"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("attach read-only"), "{err}");
    assert_eq!(_v.get(), 77);
}

#[test]
fn a_layout_of_huge_arrays_of_nothing_is_refused_at_once() {
    // 2^18 arrays of zero bytes beside one byte of payload: more values than a reader should
    // ever build from nothing (a hostile descriptor could say 2^60).
    #[derive(shm_core::SharedLayout)]
    #[repr(C)]
    struct Nothing {
        flag: u8,
        void: [[[u8; 0]; 1 << 10]; 1 << 8],
    }
    let name = TestName::new("huge");
    let value = Nothing {
        flag: 1,
        void: [[[]; 1 << 10]; 1 << 8],
    };
    let _v = Shared::<Nothing>::create(&name, value).unwrap();
    let start = Instant::now();
    let line = refused(&["inspect", &name]);
    assert!(
        line.contains("more values than its payload can hold"),
        "{line}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------------
// Usage and errors

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &[][..],
        &["bogus"],
        &["ls", "--bogus"],
        &["inspect"],
        &["set", "x"],
        &["set", "x", "y"],
        &["rm"],
        &["watch", "x", "--interval", "fast"],
        &["watch", "x", "--interval", "0ms"],
        &["watch", "x", "--count", "-1"],
        &["inspect", "x", "--limit", "many"],
    ] {
        let r = shm(args);
        assert_eq!(r.code, 2, "shm {args:?}: {}{}", r.stdout, r.stderr);
        // A wrong argument is named; no command at all gets the help, on stderr.
        assert!(
            r.stderr.starts_with("error:") || r.stderr.contains("Usage: shm <COMMAND>"),
            "{}",
            r.stderr
        );
    }
    let help = ok(&["--help"]);
    for cmd in ["ls", "inspect", "watch", "set", "rm", "gc"] {
        assert!(help.contains(cmd), "{help}");
    }
    assert!(ok(&["--version"]).starts_with("shm "));
    // A value that starts with `-` is a value, not an option.
    let v = TestName::new("neg");
    let val = Value::<i32>::create(&v, 0).unwrap();
    ok(&["set", &v, ".", "-7"]);
    assert_eq!(val.load(Relaxed), -7);
}

#[test]
fn errors_exit_1_with_one_line_naming_the_segment() {
    let missing = TestName::new("nope");
    for args in [
        vec!["inspect", &missing],
        vec!["inspect", &missing, "--json"],
        vec!["watch", &missing, "--count", "1"],
        vec!["set", &missing, "x", "1"],
        vec!["rm", &missing],
    ] {
        let line = refused(&args);
        assert_eq!(
            line,
            format!("shm: segment `{}` does not exist", &*missing),
            "{args:?}"
        );
    }
    let line = refused(&["inspect", "a/b"]);
    assert!(line.contains("invalid segment name \"a/b\""), "{line}");
    // Another layout is no error for a tool: it reads whatever the descriptor says.
    let name = TestName::new("any");
    let _v = Value::<char>::create(&name, 'x').unwrap();
    assert!(ok(&["inspect", &name]).contains("'x'"));
}

// ---------------------------------------------------------------------------------------------
// Enums and texts.

#[test]
fn inspect_watch_and_json_show_variant_names_and_text() {
    let name = TestName::new("enum-text");
    let seg = Shared::<Worker>::create(
        &name,
        Worker {
            state: State::Busy,
            client: Text::try_from("10.0.0.7").unwrap(),
            requests: 3,
        },
    )
    .unwrap();

    let text = ok(&["inspect", &name]);
    let row = |text: &str, field: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(field))
            .unwrap_or_else(|| panic!("no row {field} in\n{text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row(&text, "state"), ["0", "state", "State", "B", "Busy"]);
    assert_eq!(
        row(&text, "client"),
        ["4", "client", "Text<16>", "\"10.0.0.7\""]
    );

    let j = json(&ok(&["inspect", &name, "--json"]));
    assert_eq!(j["value"]["state"], "Busy");
    assert_eq!(j["value"]["client"], "10.0.0.7");
    let fields = j["layout"]["fields"].as_array().unwrap();
    let state = &fields[0]["layout"];
    assert_eq!(
        (&state["kind"], &state["code"], &state["default"]),
        (&Json::from("enum"), &Json::from("B"), &Json::from("Idle"))
    );
    assert_eq!(
        state["variants"],
        serde_json::json!([
            {"name": "Idle", "value": 0},
            {"name": "Busy", "value": 1},
            {"name": "Stopping", "value": 9}
        ])
    );
    let client = &fields[1]["layout"];
    assert_eq!(
        (&client["kind"], &client["capacity"]),
        (&Json::from("text"), &Json::from(16))
    );

    let out = ok(&["watch", &name, "--interval", "10ms", "--count", "1"]);
    assert_eq!(
        row(&out, "Busy").first().map(String::as_str),
        Some("state"),
        "{out}"
    );
    assert!(out.contains("client    \"10.0.0.7\""), "{out}");

    // Another process plants a number that is no variant and bytes that are not UTF-8: the
    // typed program reads the default variant and the valid prefix, and so does the tool,
    // which also says what the number is.
    name.plant_in_payload(0, &[7]);
    name.plant_in_payload(4, &[9, 0, 0, 0, b'1', b'0', b'.', 0xff, b'7']);
    let now = seg.snapshot();
    assert_eq!((now.state, now.client.as_str()), (State::Idle, "10."));
    assert_eq!(seg.state.try_load(Relaxed), Err(7));
    let text = ok(&["inspect", &name]);
    assert!(text.contains("7 (no variant; reads as Idle)"), "{text}");
    assert_eq!(row(&text, "client")[3], "\"10.\"");
    let j = json(&ok(&["inspect", &name, "--json"]));
    assert_eq!(
        (&j["value"]["state"], &j["value"]["client"]),
        (&Json::from(7), &Json::from("10."))
    );
}

#[test]
fn set_writes_variants_by_name_and_text_and_refuses_what_does_not_fit() {
    let name = TestName::new("set-enum-text");
    let seg = Shared::<Worker>::create(&name, Worker::default()).unwrap();
    assert_eq!(
        ok(&["set", &name, "state", "Stopping"]),
        format!("{}: state = Stopping (was Idle)\n", &*name)
    );
    assert_eq!(
        ok(&["set", &name, "client", "10.0.0.7"]),
        format!("{}: client = \"10.0.0.7\" (was \"\")\n", &*name)
    );
    // Exactly the capacity, multi-byte characters counted in bytes; then shorter again, which
    // leaves no byte of the longer text behind.
    ok(&["set", &name, "client", "ünïcødé 1234"]);
    assert_eq!(seg.client.load(Relaxed), "ünïcødé 1234");
    ok(&["set", &name, "client", " x"]);
    let s = seg.snapshot();
    assert_eq!(
        (s.state, s.client.as_str(), s.requests),
        (State::Stopping, " x", 0)
    );
    assert_eq!(seg.client.load(Relaxed).as_str(), " x");

    let before = seg.snapshot();
    for (field, value, why) in [
        (
            "state",
            "stopping",
            "cannot write \"stopping\" to `state`: `State` has no such variant; its variants are Idle, Busy, Stopping",
        ),
        ("state", "9", "`State` has no such variant"),
        (
            "client",
            "10.0.0.7 and then some",
            "cannot write a text of 22 bytes to `client`, which holds at most 16 bytes of UTF-8",
        ),
        ("client.x", "1", "`client` is a text of at most 16 bytes, which has no fields"),
        ("state[0]", "1", "`state` is a `State` enum, not an array"),
    ] {
        let line = refused(&["set", &name, field, value]);
        assert!(line.contains(why), "{field} = {value}: {line}");
        assert!(line.contains(&*name), "does not name the segment: {line}");
        assert_eq!(seg.snapshot(), before, "{field} = {value} changed something");
    }

    // A single enum and a single text, and an array of enums.
    let v = TestName::new("set-enum-v");
    let state = Shared::<State>::create(&v, State::Busy).unwrap();
    ok(&["set", &v, ".", "Idle"]);
    assert_eq!(state.load(Relaxed), State::Idle);
    let t = TestName::new("set-text-v");
    let line = Shared::<Text<4>>::create(&t, Text::default()).unwrap();
    ok(&["set", &t, ".", "GET"]);
    assert_eq!(line.load(Relaxed), "GET");
    assert!(refused(&["set", &t, ".", "POST /"]).contains("holds at most 4 bytes"));
    let a = TestName::new("set-enum-a");
    let states = Array::<State>::create_zeroed(&a, 3).unwrap();
    ok(&["set", &a, "[2]", "Stopping"]);
    assert_eq!(
        states.snapshot(),
        [State::Idle, State::Idle, State::Stopping]
    );
    assert!(ok(&["inspect", &a]).contains("2  Stopping"));
}
