//! What the vectors describe, done with shm-core: make a base segment, patch its bytes, open it,
//! recover it. The checks and the generator both go through here, so the generator records
//! exactly what the checks later compare.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use shm_core::inspect::RawSegment;
use shm_core::{Array, Error, Options, Shared, SharedLayout};
use tests::TestName;

use crate::types::{self, Visit};

/// `docs/vectors` in this repository.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is inside the workspace")
        .join("docs/vectors")
}

/// A vector file, parsed.
pub fn load(file: &str) -> Value {
    let path = vectors_dir().join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A string field of a vector.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

/// An integer field of a vector: a JSON number, or a string `0x...` for 64-bit values.
pub fn int_of(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap_or_else(|| panic!("{n} is not a u64")),
        Value::String(s) if s.starts_with("0x") => {
            u64::from_str_radix(&s[2..], 16).unwrap_or_else(|e| panic!("{s}: {e}"))
        }
        other => panic!("{other} is not an integer"),
    }
}

/// Bytes from hex.
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// Hex from bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header's fields as `segments.json` lists them: name, offset and width.
pub struct HeaderFields(Vec<(String, usize, usize)>);

impl HeaderFields {
    pub fn from_json(table: &Value) -> HeaderFields {
        let obj = table.as_object().expect("header_fields is an object");
        HeaderFields(
            obj.iter()
                .map(|(name, at)| {
                    let at = at.as_array().expect("[offset, width]");
                    (
                        name.clone(),
                        int_of(&at[0]) as usize,
                        int_of(&at[1]) as usize,
                    )
                })
                .collect(),
        )
    }

    fn find(&self, name: &str) -> (usize, usize) {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|&(_, at, width)| (at, width))
            .unwrap_or_else(|| panic!("no header field `{name}`"))
    }

    /// The value of field `name` in the object's bytes.
    pub fn get(&self, bytes: &[u8], name: &str) -> u64 {
        let (at, width) = self.find(name);
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(&bytes[at..at + width]);
        u64::from_le_bytes(b)
    }

    fn set(&self, bytes: &mut [u8], name: &str, v: u64) {
        let (at, width) = self.find(name);
        assert!(
            width == 8 || v >> (8 * width) == 0,
            "{v} does not fit in `{name}`"
        );
        bytes[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
    }
}

/// Where a base segment's parts are, from its vector's `header`.
pub struct Regions {
    pub payload: usize,
    pub payload_len: usize,
    pub journal: usize,
}

/// The name of the side journal of segment `name` whose journal id is `id` (docs/FORMAT.md, "The
/// side journal"; the names here are short, so never cut).
pub fn side_name(name: &str, id: u64) -> String {
    assert!(name.len() <= 230, "a test segment name is short");
    format!("{name}.journal-{id:016x}")
}

/// A side journal's bytes for segment `name` with journal id `id`: its 512-byte header, then
/// `record` at the start of its record area.
pub fn side_bytes(name: &str, id: u64, record: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[..8].copy_from_slice(b"SHMJRNL\0");
    b[8..12].copy_from_slice(&shm_core::FORMAT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&(name.len() as u32).to_le_bytes());
    b[16..24].copy_from_slice(&id.to_le_bytes());
    b[32..32 + name.len()].copy_from_slice(name.as_bytes());
    b.extend_from_slice(record);
    b
}

impl Regions {
    pub fn of_base(base: &Value) -> Regions {
        let h = &base["header"];
        Regions {
            payload: int_of(&h["payload_offset"]) as usize,
            payload_len: int_of(&h["payload_len"]) as usize,
            journal: int_of(&h["journal_offset"]) as usize,
        }
    }

    fn start(&self, region: &str) -> usize {
        match region {
            "object" => 0,
            "descriptor" => 256,
            "payload" => self.payload,
            "journal" => self.journal,
            other => panic!("unknown region `{other}`"),
        }
    }
}

/// The base segment `base` describes, made by shm-core under `name` (kept after its handle).
pub fn create_base(name: &str, base: &Value) -> Result<(), Error> {
    struct Create<'a> {
        name: &'a str,
        array: bool,
        count: usize,
    }
    impl Visit for Create<'_> {
        type Out = Result<(), Error>;
        fn visit<T: SharedLayout + Default>(self) -> Self::Out {
            let opts = Options::new().keep(true);
            if self.array {
                Array::<T>::create_zeroed_with(self.name, self.count, &opts).map(drop)
            } else {
                Shared::<T>::create_with(self.name, T::default(), &opts).map(drop)
            }
        }
    }
    let layout = str_of(base, "layout");
    let create = Create {
        name,
        array: base["array"].as_bool().expect("`array` is a bool"),
        count: int_of(&base["count"]) as usize,
    };
    types::visit(layout, create).unwrap_or_else(|| panic!("no Rust type for layout `{layout}`"))
}

/// Applies a vector's `patch` to the object at `path`: `chmod`, then `set` (header fields), then
/// `write` (bytes at an offset in a region), then `truncate`; then `side`: a side journal made
/// for the segment, its header naming the segment and its journal id (or the `id` given), and
/// `hex` at the start of its record area.
pub fn apply(path: &Path, patch: &Value, fields: &HeaderFields, regions: &Regions) {
    let Some(patch) = patch.as_object() else {
        assert!(patch.is_null(), "a patch is an object: {patch}");
        return;
    };
    for key in patch.keys() {
        assert!(
            ["chmod", "set", "write", "truncate", "side"].contains(&key.as_str()),
            "unknown patch step `{key}`"
        );
    }
    if let Some(mode) = patch.get("chmod") {
        fs::set_permissions(path, fs::Permissions::from_mode(int_of(mode) as u32)).expect("chmod");
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the object");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read the object");
    if let Some(set) = patch.get("set").and_then(Value::as_object) {
        for (name, v) in set {
            fields.set(&mut bytes, name, int_of(v));
        }
    }
    for w in patch
        .get("write")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let at = regions.start(str_of(w, "region")) + int_of(&w["at"]) as usize;
        let data = unhex(str_of(w, "hex"));
        bytes[at..at + data.len()].copy_from_slice(&data);
    }
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.write_all(&bytes).expect("write the object");
    if let Some(n) = patch.get("truncate") {
        file.set_len(int_of(n)).expect("truncate");
    }
    if let Some(side) = patch.get("side") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a segment name");
        let id = fields.get(&bytes, "journal_id");
        let stamped = side.get("id").map_or(id, int_of);
        let side_path = path.with_file_name(side_name(name, id));
        let data = side_bytes(name, stamped, &unhex(str_of(side, "hex")));
        fs::write(&side_path, data).expect("write the side journal");
        fs::set_permissions(&side_path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// What `remove` does to the object under the side journal's name of the segment `name` (made
/// by a `side` patch): `removed`, or `kept` (its header names another segment).
pub fn side_after_remove(name: &TestName) -> &'static str {
    shm_core::remove(name).unwrap_or_else(|e| panic!("remove the segment: {e}"));
    if name.side_journals().is_empty() {
        "removed"
    } else {
        "kept"
    }
}

/// What an opener got: whether the segment is an array and its element count, or the error.
pub type Opened = Result<(bool, usize), Error>;

/// Opens `name` as a vector's `open` says: `as` is `any` (no type: `RawSegment`), `single`
/// (`Shared<T>`) or `array` (`Array<T>`), `T` the layout `expect`; `wait_ms` bounds the wait for
/// a segment that is not ready (default 100).
pub fn open(name: &str, how: &Value) -> Opened {
    struct Open<'a> {
        name: &'a str,
        array: bool,
        opts: Options,
    }
    impl Visit for Open<'_> {
        type Out = Opened;
        fn visit<T: SharedLayout + Default>(self) -> Self::Out {
            if self.array {
                Array::<T>::open_with(self.name, &self.opts).map(|a| (true, a.len()))
            } else {
                Shared::<T>::open_with(self.name, &self.opts).map(|_| (false, 1))
            }
        }
    }
    let wait = how.get("wait_ms").map_or(100, int_of);
    let opts = Options::new().wait(Duration::from_millis(wait));
    let expect = how.get("expect").and_then(Value::as_str);
    match (str_of(how, "as"), expect) {
        ("any", None) => RawSegment::open_with(name, &opts).map(|r| (r.is_array(), r.len())),
        (shape @ ("single" | "array"), Some(layout)) => {
            let open = Open {
                name,
                array: shape == "array",
                opts,
            };
            types::visit(layout, open)
                .unwrap_or_else(|| panic!("no Rust type for layout `{layout}`"))
        }
        _ => panic!("`open` is `any` without `expect`, or `single`/`array` with one: {how}"),
    }
}

/// A fresh opener's snapshot of `name`, which recovers what a dead writer left; `Err` if it
/// cannot open or read it.
pub fn recover(name: &str) -> Result<(), Error> {
    let raw = RawSegment::open_with(name, &Options::new())?;
    raw.snapshot().map(drop)
}

/// Runs a vector's `steps` on `name`, each with a fresh `RawSegment`: `"snapshot"` (a consistent
/// read, which rolls back a dead writer), `"notify"`, `{"set": [PATH, VALUE]}` (a write under
/// the lock), `{"check": [PATH, OP, VALUE]}` (one test of a wait, without waiting).
pub fn steps(name: &str, steps: &Value) -> Result<(), String> {
    for step in steps.as_array().expect("`steps` is a list") {
        let raw = RawSegment::open_with(name, &Options::new()).map_err(|e| e.to_string())?;
        match step {
            Value::String(s) if s == "snapshot" => {
                raw.snapshot().map(drop).map_err(|e| e.to_string())?
            }
            Value::String(s) if s == "notify" => raw.notify(),
            Value::Object(o) if o.contains_key("set") => {
                let args = &o["set"];
                raw.set(str_of_index(args, 0), str_of_index(args, 1))
                    .map(drop)
                    .map_err(|e| e.to_string())?
            }
            Value::Object(o) if o.contains_key("check") => {
                let args = &o["check"];
                let op = str_of_index(args, 1).parse().map_err(|e: String| e)?;
                raw.wait_for(
                    str_of_index(args, 0),
                    op,
                    str_of_index(args, 2),
                    Duration::ZERO,
                )
                .map(drop)
                .map_err(|e| e.to_string())?
            }
            other => panic!("unknown step {other}"),
        }
    }
    Ok(())
}

/// Element `i` of a list of strings.
fn str_of_index(v: &Value, i: usize) -> &str {
    v[i].as_str()
        .unwrap_or_else(|| panic!("element {i} of {v} is not a string"))
}

/// A thread as a lock word names it: its thread id and tag (the low 32 bits of its start time,
/// `/proc/<tid>/stat` field 22).
#[derive(Clone, Copy)]
struct ThreadName {
    tid: u32,
    tag: u32,
}

impl ThreadName {
    /// The calling thread's name.
    fn this_thread() -> ThreadName {
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::gettid() } as u32;
        let stat = fs::read_to_string(format!("/proc/{tid}/stat")).expect("read /proc/<tid>/stat");
        // Fields after the command name (which is in parentheses): state is field 3, the start
        // time field 22.
        let rest = &stat[stat.rfind(')').expect("a command name") + 1..];
        let start: u64 = rest
            .split_ascii_whitespace()
            .nth(19)
            .and_then(|f| f.parse().ok())
            .expect("a start time");
        ThreadName {
            tid,
            tag: start as u32,
        }
    }

    fn word(self) -> u64 {
        u64::from(self.tag) << 32 | u64::from(self.tid)
    }
}

/// The threads a `locks.json` word names: `live`, a thread that runs as long as this value
/// lives; `dead`, one that has exited; `self`, the calling thread (which then opens and locks).
pub struct Owners {
    live: ThreadName,
    dead: ThreadName,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Owners {
    pub fn start() -> Owners {
        let dead = std::thread::spawn(ThreadName::this_thread)
            .join()
            .expect("a thread that names itself");
        let (named_tx, named_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            named_tx
                .send(ThreadName::this_thread())
                .expect("the owner waits for the name");
            let _ = stopped.recv();
        });
        let live = named_rx.recv().expect("the live thread's name");
        Owners {
            live,
            dead,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The lock word a case's `word` describes: a `0x...` value as it is, or `owner` (`live`,
    /// `dead`, `self`) with `tag` (`right`: the thread's own; `wrong`: one more, as a thread that
    /// got a recycled id has) and `flags` OR'ed in.
    pub fn word(&self, spec: &Value) -> u64 {
        if spec.is_string() {
            return int_of(spec);
        }
        let mut name = match str_of(spec, "owner") {
            "live" => self.live,
            "dead" => self.dead,
            "self" => ThreadName::this_thread(),
            other => panic!("unknown owner `{other}`"),
        };
        match str_of(spec, "tag") {
            "right" => {}
            "wrong" => name.tag = name.tag.wrapping_add(1),
            other => panic!("unknown tag `{other}`"),
        }
        name.word() | spec.get("flags").map_or(0, int_of)
    }
}

impl Drop for Owners {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a process that opens `name` makes of its lock, in this order: whether the segment is
/// poisoned, who holds the lock (`none`, `alive`, `dead`, or `unchecked`: a holder whose life
/// cannot be told), and what a `try_lock` gives (`acquired`, `poisoned` or `busy`; the guard is
/// dropped at once).
pub fn lock_outcome(name: &str) -> Result<(bool, &'static str, &'static str), Error> {
    use std::sync::TryLockError;
    let v = Shared::<u64>::open_with(name, &Options::new())?;
    let poisoned = v.is_poisoned();
    let holder = match RawSegment::open_with(name, &Options::new())?.lock_holder() {
        None => "none",
        Some(h) if !h.checked => "unchecked",
        Some(h) if h.alive => "alive",
        Some(_) => "dead",
    };
    let try_lock = match v.try_lock() {
        Ok(_) => "acquired",
        Err(TryLockError::Poisoned(_)) => "poisoned",
        Err(TryLockError::WouldBlock) => "busy",
    };
    Ok((poisoned, holder, try_lock))
}
