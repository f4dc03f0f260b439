//! Header words a peer could have written that the journal follows (the journal area's place,
//! the record's length and place, the side journal's name) and objects planted where a reader
//! opens: each gives a clear error, a rollback refused with the lock poisoned, or a value as it
//! is — never a panic or a hang.

use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

use shm_core::{Array, Error, Shared};
use tests::TestName;

/// Header words (docs/FORMAT.md, "Header").
const JOURNAL_WHERE: u64 = 68;
const JOURNAL_OFFSET: u64 = 96;
const JOURNAL_CAP: u64 = 104;
const JOURNAL_LEN: u64 = 112;
const JOURNAL_ID: u64 = 120;
const SEQ: u64 = 128;

fn read_word(name: &TestName, at: u64) -> u64 {
    let f = fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at).unwrap();
    u64::from_ne_bytes(b)
}

fn write_bytes(name: &TestName, at: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn write_word(name: &TestName, at: u64, v: u64) {
    write_bytes(name, at, &v.to_ne_bytes());
}

/// Plants the header of a writer that died inside its write window (the lock free, `seq` odd)
/// whose record is `len` bytes at `place`.
fn plant_dead_write(name: &TestName, place: u32, len: u64) {
    write_bytes(name, JOURNAL_WHERE, &place.to_ne_bytes());
    write_word(name, JOURNAL_LEN, len);
    write_word(name, SEQ, read_word(name, SEQ) | 1);
}

/// Runs `f` on another thread; its result, or `None` if it has not returned within a minute
/// (a hang: the thread is left behind, blocked).
fn within_a_minute<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

/// Makes a FIFO at `/dev/shm/<name>`.
fn plant_fifo(name: &TestName) {
    let path = std::ffi::CString::new(name.path().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Lets a reader blocked opening the FIFO `name` go (a read-write open of a FIFO never blocks,
/// and counts as its writer).
fn release_fifo(name: &TestName) {
    let _ = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.path());
}

/// A journal area moved off the alignment the format gives it (a multiple of 128; here one
/// byte on, the payload's elements being bytes) is refused when the segment is opened: the
/// record's words are 8-byte atomics, which no unaligned area can hold.
#[test]
fn a_journal_area_off_its_alignment_is_refused_at_open() {
    let name = TestName::new("jalign");
    let _a = Array::<u8>::create(&name, &[0; 100]).unwrap();
    let (offset, cap) = (
        read_word(&name, JOURNAL_OFFSET),
        read_word(&name, JOURNAL_CAP),
    );
    write_word(&name, JOURNAL_OFFSET, offset + 1);
    write_word(&name, JOURNAL_CAP, cap - 1);
    match Array::<u8>::open(&name) {
        Err(Error::Corrupt { name: n, reason }) => {
            assert_eq!(n, *name);
            assert!(reason.contains("journal"), "{reason}");
        }
        Ok(b) => {
            let update = std::panic::catch_unwind(|| b.update(|v| v[0] = 1));
            panic!(
                "opened; an update then {}",
                if update.is_err() { "panicked" } else { "ran" }
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// A record said to be in the side journal with a length near `u64::MAX`: the reader that rolls
/// the dead writer back (read-only, or read-write with the lock) finds it unusable — the value is
/// left as it is and, for the read-write one, the lock poisoned — without a panic.
#[test]
fn a_side_record_of_any_length_is_refused_without_a_panic() {
    for len in [u64::MAX, u64::MAX - 511, 1 << 62] {
        let name = TestName::new("sidelen");
        let a = Array::<u64>::create(&name, &[1, 2, 3]).unwrap();
        plant_dead_write(&name, 1, len);
        let ro = Array::<u64>::open_readonly(&name).unwrap();
        assert_eq!(ro.snapshot(), vec![1, 2, 3], "read only, {len:#x}");
        assert_eq!(a.snapshot(), vec![1, 2, 3], "read-write, {len:#x}");
        assert!(a.is_poisoned(), "{len:#x}");
        assert_eq!(read_word(&name, SEQ) % 2, 0, "{len:#x}");
    }
}

/// A FIFO planted under the side journal's name: a read-only reader rolling a dead writer back
/// opens it without blocking, refuses it, and returns.
#[test]
fn a_fifo_under_the_side_journals_name_does_not_hang_a_reader() {
    let name = TestName::new("sidefifo");
    let a = Array::<u64>::create(&name, &[4, 5, 6]).unwrap();
    let id = read_word(&name, JOURNAL_ID);
    let side = TestName::adopt(format!("{}.journal-{id:016x}", &*name));
    plant_fifo(&side);
    plant_dead_write(&name, 1, 64);
    let ro = Array::<u64>::open_readonly(&name).unwrap();
    let got = within_a_minute(move || ro.snapshot());
    release_fifo(&side);
    assert_eq!(got, Some(vec![4, 5, 6]), "the read-only reader hung");
    // A read-write reader refuses it too (and poisons: the record cannot be read).
    assert_eq!(a.snapshot(), vec![4, 5, 6]);
    assert!(a.is_poisoned());
    assert!(side.exists(), "the planted FIFO is not ours to remove");
}

/// A FIFO planted under a segment's name: opening it read only says it is not a segment, at
/// once.
#[test]
fn a_fifo_under_a_segments_name_does_not_hang_a_read_only_open() {
    let name = TestName::new("segfifo");
    plant_fifo(&name);
    let n = name.to_string();
    let got = within_a_minute(move || Shared::<u64>::open_readonly(&n).map(|_| ()));
    release_fifo(&name);
    match got {
        Some(Err(Error::PermissionDenied { name: n, .. })) => assert_eq!(n, *name),
        Some(other) => panic!("{other:?}"),
        None => panic!("open_readonly hung on a FIFO"),
    }
}

/// A segment removed while another handle still uses it: that handle's large writes make no
/// side journal (which nobody would remove: the segment's name is gone), but still store.
#[test]
fn a_removed_segment_gets_no_side_journal_left_behind() {
    const LEN: usize = 1 << 16; // 512 KiB: a write of it does not fit in the 64 KiB area
    let name = TestName::new("removedside");
    let a = Array::<u64>::create_zeroed(&name, LEN).unwrap();
    let b = Array::<u64>::open(&name).unwrap();
    b.write_from(0, &vec![1; LEN]);
    assert_eq!(
        name.side_journals().len(),
        1,
        "the large write's side journal"
    );
    drop(a); // the creator removes the segment and its side journal
    assert!(!name.exists() && name.side_journals().is_empty());
    b.write_from(0, &vec![2; LEN]);
    assert!(
        name.side_journals().is_empty(),
        "left behind: {:?}",
        name.side_journals()
    );
    assert!(b.snapshot().iter().all(|&x| x == 2));
    assert!(!b.is_poisoned());
    match b.try_write_from(0, &vec![3; LEN]) {
        Err(Error::NotFound { name: n }) => assert_eq!(n, *name),
        other => panic!("{other:?}"),
    }
    assert!(name.side_journals().is_empty());
    assert!(b.snapshot().iter().all(|&x| x == 2));
}

/// Objects under a segment's side-journal name that are not its side journal — another
/// segment's (its header names another), or anything else — are left alone when the segment is
/// removed, by its creator's handle or by `remove`; a blank one (a side journal not stamped yet)
/// goes with it.
#[test]
fn removing_a_segment_leaves_alone_what_is_not_its_side_journal() {
    let other_header = {
        // A side journal of another segment: magic, this format's version, its name and id.
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(b"SHMJRNL\0");
        h[8..12].copy_from_slice(&shm_core::FORMAT_VERSION.to_ne_bytes());
        h[12..16].copy_from_slice(&5u32.to_ne_bytes());
        h[16..24].copy_from_slice(&7u64.to_ne_bytes());
        h[32..37].copy_from_slice(b"other");
        h.resize(4096, 0);
        h
    };
    for (tag, bytes, kept) in [
        ("garbage", vec![0xAB; 4096], true),
        ("other", other_header, true),
        ("blank", vec![0; 4096], false),
    ] {
        for by_remove in [false, true] {
            let name = TestName::new(&format!("sidekeep-{tag}"));
            let a = Array::<u64>::create(&name, &[1, 2, 3]).unwrap();
            let id = read_word(&name, JOURNAL_ID);
            let side = TestName::adopt(format!("{}.journal-{id:016x}", &*name));
            side.plant(&bytes, 0o600);
            if by_remove {
                std::mem::forget(a);
                shm_core::remove(&name).unwrap();
            } else {
                drop(a);
            }
            assert!(!name.exists(), "{tag}: the segment is gone");
            assert_eq!(side.exists(), kept, "{tag}, by remove: {by_remove}");
            if kept {
                assert_eq!(fs::read(side.path()).unwrap(), bytes, "{tag}");
            }
        }
    }
}
