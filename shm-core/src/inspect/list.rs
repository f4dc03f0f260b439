//! What is in `/dev/shm`: segments of this library (valid or not), other users' objects, and
//! foreign ones; and which segments were left behind by dead creators.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::descriptor::{Descriptor, DescriptorKind};
use crate::header::{FLAG_KEEP, MAGIC};
use crate::journal::side;
use crate::process::ProcessId;
use crate::segment::{validate_name, Access, Segment};
use crate::{Error, Options, Result};

/// Where POSIX shared-memory objects live on Linux: `shm_open("/name")` is `/dev/shm/name`.
pub const SHM_DIR: &str = "/dev/shm";

/// The options a tool opens segments with: any read/write mode (a tool trusts no byte of a
/// segment anyway), and the caller's wait for one that is still being created (listing does not
/// wait; [`RawSegment::open`](super::RawSegment::open) waits up to a second).
pub(crate) fn tool_options(wait: Duration) -> Options {
    Options::new().mode(0o666).wait(wait)
}

/// Identity of a file: a name removed and created again is another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(crate) fn of_stat(st: &libc::stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    fn of_metadata(m: &fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// What the header and the object say about a valid segment, read when it was opened.
///
/// Obtained from [`examine`], [`list`] or [`RawSegment::info`](super::RawSegment::info).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The segment's name (without the leading `/`).
    pub name: String,
    /// The layout of one element, as written in the segment.
    pub descriptor: Descriptor,
    /// Whether the segment holds an array (an `Array<T>`) rather than one value.
    pub is_array: bool,
    /// Number of elements: 1 for a single value.
    pub count: u64,
    /// Payload size in bytes: `count` times the element's size.
    pub payload_len: u64,
    /// Size of the segment's object in bytes: header, descriptor, payload and the segment's own
    /// journal area.
    pub object_len: u64,
    /// Size of the segment's own journal area in bytes: room for the record of an update of the
    /// whole payload, up to 64 KiB.
    pub journal_area_len: u64,
    /// Size in bytes of the segment's side journal, the object `<name>.journal-<id>` that holds
    /// the record of a write too large for the journal area; 0 if it has none. It keeps the size
    /// of the largest such write.
    pub side_journal_len: u64,
    /// What the segment takes in `/dev/shm`: the bytes allocated to its object and to its side
    /// journal (`st_blocks` × 512 of each).
    pub footprint: u64,
    /// The layout fingerprint in the header.
    pub fingerprint: u64,
    /// Process id of the creator.
    pub creator_pid: u32,
    /// Whether the creator still runs (same pid and start time, not a zombie).
    pub creator_alive: bool,
    /// Whether the creator asked to keep the segment after its handle is dropped.
    pub kept: bool,
    /// When the segment was created, as its header says; `None` if that is not a valid time.
    pub created_at: Option<SystemTime>,
    /// Owner of the object.
    pub uid: u32,
    /// Group of the object.
    pub gid: u32,
    /// Permission bits of the object (e.g. `0o600`).
    pub mode: u32,
    pub(crate) id: FileId,
}

impl SegmentInfo {
    /// Reads what a freshly opened segment's header and `fstat` say.
    pub(crate) fn read(seg: &Segment, descriptor: &Descriptor) -> Result<SegmentInfo> {
        let st = seg.stat()?;
        let side = fs::symlink_metadata(path_of(&side::name_of(seg.name(), seg.journal_id())))
            .ok()
            .filter(fs::Metadata::is_file);
        let h = seg.header();
        let flags = h.flags.load(Relaxed);
        let count = seg.count() as u64;
        let creator = ProcessId {
            pid: h.creator_pid.load(Relaxed),
            start: h.creator_start.load(Relaxed),
        };
        Ok(SegmentInfo {
            name: seg.name().to_owned(),
            descriptor: descriptor.clone(),
            is_array: seg.shape().is_array(),
            count,
            payload_len: count.saturating_mul(descriptor.size),
            object_len: seg.object_len() as u64,
            journal_area_len: seg.journal_cap() as u64,
            side_journal_len: side.as_ref().map_or(0, fs::Metadata::len),
            footprint: allocated(st.st_blocks as u64)
                .saturating_add(side.as_ref().map_or(0, |m| allocated(m.blocks()))),
            fingerprint: h.fingerprint.load(Relaxed),
            creator_pid: creator.pid,
            creator_alive: creator.is_alive(),
            kept: flags & FLAG_KEEP != 0,
            created_at: UNIX_EPOCH.checked_add(Duration::from_secs(h.created_at.load(Relaxed))),
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            id: FileId::of_stat(&st),
        })
    }

    /// The element type as Rust source spells it: `Stats`, `f64`, `[u32; 4]`.
    pub fn type_name(&self) -> String {
        self.descriptor.to_string()
    }

    /// The handle a Rust program opens this segment with: `Shared<Stats>`, `Value<i32>`,
    /// `Array<Slot>`.
    pub fn rust_type(&self) -> String {
        let t = &self.descriptor;
        match (&t.kind, self.is_array) {
            (_, true) => format!("Array<{t}>"),
            (DescriptorKind::Primitive(_), false) => format!("Value<{t}>"),
            _ => format!("Shared<{t}>"),
        }
    }

    /// Whether the segment was left behind: its creator is dead and did not ask to keep it, so
    /// it would have been removed had its creator exited normally. [`stale`] lists these.
    pub fn is_stale(&self) -> bool {
        !self.creator_alive && !self.kept
    }

    /// Time since creation, if the header's time is valid and not in the future.
    pub fn age(&self) -> Option<Duration> {
        SystemTime::now().duration_since(self.created_at?).ok()
    }
}

/// Bytes allocated to a file of `blocks` 512-byte blocks (`st_blocks`).
fn allocated(blocks: u64) -> u64 {
    blocks.saturating_mul(512)
}

/// A side journal: the object `<name>.journal-<id>` next to a segment that holds the record of a
/// write too large for the segment's own journal area (see [`SegmentInfo::side_journal_len`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JournalInfo {
    /// The name of the segment it belongs to, as its header says.
    pub segment: String,
    /// Whether that segment is gone: no segment of that name with this journal's id exists. An
    /// orphan is left when a segment was removed by other means than this library (`rm`), or
    /// written to in the instant it was removed; [`stale`] lists it and `shm gc` removes it.
    pub orphan: bool,
    /// Its size in bytes.
    pub len: u64,
    /// The bytes allocated to it.
    pub footprint: u64,
}

/// One object in `/dev/shm`, as [`list`] and [`examine`] find it.
#[derive(Debug)]
#[non_exhaustive]
pub struct ListEntry {
    /// The object's name (the file name in `/dev/shm`; non-UTF-8 bytes replaced).
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// The object's size in bytes, what it takes in `/dev/shm` (for a valid segment,
    /// [`SegmentInfo::object_len`]); `None` for what is not a regular file, or if unknown.
    pub object_len: Option<u64>,
    id: Option<FileId>,
}

/// What an object in `/dev/shm` is.
#[derive(Debug)]
#[non_exhaustive]
pub enum EntryKind {
    /// A valid segment of this library.
    Segment(SegmentInfo),
    /// It starts like a segment of this library but cannot be used: corrupt
    /// ([`Error::Corrupt`]), never made ready because its creator died ([`Error::CreatorDied`]),
    /// or still being created ([`Error::Timeout`]).
    Broken(Error),
    /// This user may not use it ([`Error::PermissionDenied`]): it belongs to another user, or is
    /// open to more users than any segment of this library is.
    Denied(Error),
    /// A segment's side journal; it belongs with its segment, whose [`SegmentInfo::footprint`]
    /// counts it, and goes away with it.
    Journal(JournalInfo),
    /// Not made by this library (another program's shared memory, a Python `SharedMemory`, a
    /// directory ...); the text says why it is not taken for one.
    Foreign(String),
}

impl ListEntry {
    /// The segment's details, if this is a valid segment.
    pub fn info(&self) -> Option<&SegmentInfo> {
        match &self.kind {
            EntryKind::Segment(info) => Some(info),
            _ => None,
        }
    }

    /// Whether the object is a segment made by this library, valid or not, or an orphaned side
    /// journal (what `shm ls` shows without `--all`; `shm rm` agrees to remove the segments).
    pub fn is_ours(&self) -> bool {
        match &self.kind {
            EntryKind::Segment(_) | EntryKind::Broken(_) => true,
            EntryKind::Journal(j) => j.orphan,
            _ => false,
        }
    }

    /// This entry as a stale segment, if it is one: a valid segment whose creator is dead and
    /// did not keep it ([`SegmentInfo::is_stale`]), or one whose creator died before making it
    /// ready ([`Error::CreatorDied`]).
    /// An orphaned side journal ([`JournalInfo::orphan`]) is stale too.
    pub fn stale(&self) -> Option<Stale> {
        let (creator_pid, ready, journal_of) = match &self.kind {
            EntryKind::Segment(info) if info.is_stale() => (info.creator_pid, true, None),
            EntryKind::Broken(Error::CreatorDied { pid, .. }) => (*pid, false, None),
            EntryKind::Journal(j) if j.orphan => (0, true, Some(j.segment.clone())),
            _ => return None,
        };
        Some(Stale {
            name: self.name.clone(),
            creator_pid,
            ready,
            journal_of,
            id: self.id?,
        })
    }
}

/// A segment left behind by a dead creator; see [`stale`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stale {
    /// The segment's name.
    pub name: String,
    /// Process id of the dead creator.
    pub creator_pid: u32,
    /// `true` if the segment was made ready (its creator died later, without removing it);
    /// `false` if its creator died while creating it.
    pub ready: bool,
    /// For an orphaned side journal, the segment it belonged to (then `creator_pid` is 0).
    pub journal_of: Option<String>,
    id: FileId,
}

impl Stale {
    /// Removes the segment, if the object under its name is still this stale segment: `Ok(true)`
    /// if removed, `Ok(false)` if the name now holds something else or the creator turned out
    /// to be alive (then nothing is removed), `Err(NotFound)` if it is gone.
    ///
    /// Processes that still have it mapped keep their mapping; new opens fail.
    pub fn remove(&self) -> Result<bool> {
        let now = examine(&self.name)?;
        if now.stale().as_ref() != Some(self) {
            return Ok(false);
        }
        // The check above and the unlink are two steps: a process that removes this stale
        // segment and creates a new one of the same name in between would lose its new segment.
        // A name is re-created after a removal by its own program, which checks for staleness
        // itself at startup (see the restart pattern in the crate documentation).
        crate::remove(&self.name)?;
        Ok(true)
    }
}

fn path_of(name: &str) -> PathBuf {
    PathBuf::from(SHM_DIR).join(name)
}

/// How an object that could not be opened as a segment begins.
enum Start {
    Magic,
    /// Empty, or all zeros where the magic goes: what a creator leaves between sizing the
    /// object and writing the header, or another program's zeroed memory.
    Zero,
    Other,
    Unreadable,
}

fn start_of(name: &str) -> Start {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path_of(name));
    let Ok(mut file) = file else {
        return Start::Unreadable;
    };
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Start::Unreadable,
        }
    }
    if head[..got] == MAGIC[..got] && got == MAGIC.len() {
        Start::Magic
    } else if head[..got].iter().all(|&b| b == 0) {
        Start::Zero
    } else {
        Start::Other
    }
}

fn file_type_name(m: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a device or other special file"
    }
}

/// The object `name`, if it is a side journal: named like one, a regular file, with a side
/// journal's header whose id is the one in its name. Whether it is an orphan is read from its
/// segment's header.
fn side_journal(name: &str, meta: &fs::Metadata) -> Option<EntryKind> {
    let id = side::id_in_name(name)?;
    if !meta.file_type().is_file() {
        return None;
    }
    let mut header = vec![0u8; side::HEADER_LEN];
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path_of(name))
        .ok()?;
    file.read_exact(&mut header).ok()?;
    let owner = side::Owner::parse(&header).filter(|o| o.id == id)?;
    let alive = validate_name(&owner.segment)
        .ok()
        .and_then(|path| side::id_of(&path))
        == Some(id);
    Some(EntryKind::Journal(JournalInfo {
        segment: owner.segment,
        orphan: !alive,
        len: meta.len(),
        footprint: allocated(meta.blocks()),
    }))
}

/// What the object `name` in `/dev/shm` is. Never fails on what the object contains: a garbage
/// object is [`EntryKind::Foreign`] or [`EntryKind::Broken`].
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`], or [`Error::Io`] if `/dev/shm` itself cannot
/// be read.
pub fn examine(name: &str) -> Result<ListEntry> {
    validate_name(name)?;
    let meta = fs::symlink_metadata(path_of(name)).map_err(|e| Error::from_os(name, "lstat", e))?;
    let file_len = meta.file_type().is_file().then_some(meta.len());
    let entry = |kind, id| ListEntry {
        name: name.to_owned(),
        object_len: match &kind {
            EntryKind::Segment(info) => Some(info.object_len),
            _ => file_len,
        },
        kind,
        id,
    };
    let lstat_id = Some(FileId::of_metadata(&meta));
    if let Some(kind) = side_journal(name, &meta) {
        return Ok(entry(kind, lstat_id));
    }
    if !meta.file_type().is_file() {
        let what = file_type_name(&meta);
        return Ok(entry(
            EntryKind::Foreign(format!("it is {what}, not a shared-memory object")),
            lstat_id,
        ));
    }
    // Read only: listing writes nothing, and a segment this user may only read is listed too.
    match Segment::open_any(name, &tool_options(Duration::ZERO), Access::ReadOnly) {
        Ok((seg, descriptor)) => Ok(match SegmentInfo::read(&seg, &descriptor) {
            Ok(info) => {
                let id = Some(info.id);
                entry(EntryKind::Segment(info), id)
            }
            Err(e) => entry(EntryKind::Broken(e), lstat_id),
        }),
        Err(e @ (Error::NotFound { .. } | Error::InvalidName { .. })) => Err(e),
        Err(e @ Error::PermissionDenied { .. }) => Ok(entry(EntryKind::Denied(e), lstat_id)),
        Err(e) => Ok(match start_of(name) {
            Start::Magic | Start::Unreadable => entry(EntryKind::Broken(e), lstat_id),
            Start::Zero if meta.len() == 0 => entry(
                EntryKind::Foreign("it is empty: no shm-core header".to_owned()),
                lstat_id,
            ),
            Start::Zero => entry(
                EntryKind::Foreign(
                    "its first bytes are zero: no shm-core header (another program's memory, or a creation that died before writing one)"
                        .to_owned(),
                ),
                lstat_id,
            ),
            Start::Other => entry(
                EntryKind::Foreign("it does not start with the shm-core magic bytes".to_owned()),
                lstat_id,
            ),
        }),
    }
}

/// Every object in `/dev/shm`, sorted by name, each examined as [`examine`] does. Objects that
/// vanish while being looked at are left out; nothing an object contains makes this fail.
///
/// ```
/// use shm_core::inspect::{self, EntryKind};
/// use shm_core::Value;
///
/// # let name = format!("doc-list-{}", std::process::id());
/// let v = Value::<u32>::create(&name, 7)?;
/// let entries = inspect::list()?;
/// let mine = entries.iter().find(|e| e.name == name).unwrap();
/// let EntryKind::Segment(info) = &mine.kind else { panic!("{mine:?}") };
/// assert_eq!(info.rust_type(), "Value<u32>");
/// assert_eq!(info.creator_pid, std::process::id());
/// assert!(info.creator_alive && !info.is_stale());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Only if `/dev/shm` itself cannot be read.
pub fn list() -> io::Result<Vec<ListEntry>> {
    let mut out = Vec::new();
    for dirent in fs::read_dir(SHM_DIR)? {
        let dirent = dirent?;
        let raw = dirent.file_name();
        let Some(name) = raw.to_str() else {
            out.push(ListEntry {
                name: raw.to_string_lossy().into_owned(),
                kind: EntryKind::Foreign("its name is not UTF-8".to_owned()),
                object_len: None,
                id: None,
            });
            continue;
        };
        match examine(name) {
            Ok(entry) => out.push(entry),
            // Removed since read_dir saw it.
            Err(Error::NotFound { .. }) => {}
            Err(e) => out.push(ListEntry {
                name: name.to_owned(),
                kind: EntryKind::Broken(e),
                object_len: None,
                id: None,
            }),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The stale segments in `/dev/shm`: made by this library, whose creator is dead (by pid *and*
/// start time, so a recycled pid does not count as alive), and which were either not kept or
/// never made ready. Only this user's segments are considered.
///
/// A creator killed with SIGKILL never runs its handle's drop, so its segment stays until a
/// reboot or until something removes it: [`Stale::remove`], or `shm gc`.
///
/// ```no_run
/// use shm_core::inspect;
///
/// for s in inspect::stale()? {
///     if s.remove()? {
///         println!("removed {} (creator pid {} is dead)", s.name, s.creator_pid);
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A creator that runs in another pid namespace (another container sharing `/dev/shm`) looks
/// dead from here.
///
/// # Errors
/// Only if `/dev/shm` itself cannot be read.
pub fn stale() -> io::Result<Vec<Stale>> {
    Ok(list()?.iter().filter_map(ListEntry::stale).collect())
}
