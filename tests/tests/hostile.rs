//! Every byte of a segment that a peer could have written is untrusted: random and mutated
//! headers, descriptors and sizes, through the real `open` path, give a valid open or a clear
//! error — never a panic, a hang, or a crash.

use std::fs;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shm_core::inspect::RawSegment;
use shm_core::{Array, Descriptor, Error, Options, Shared, Text};
use tests::types::{Everything, Slot, State, Worker};
use tests::TestName;

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The header's integer fields: (offset, width).
const FIELDS: &[(usize, usize)] = &[
    (0, 8),
    (8, 4),
    (12, 4),
    (16, 8),
    (24, 4),
    (28, 4),
    (32, 8),
    (40, 8),
    (48, 8),
    (56, 8),
    (64, 4),
    (72, 8),
    (88, 4),
    (92, 4),
    (96, 8),
    (104, 8),
    (112, 8),
    (128, 8),
    (192, 4),
    (200, 4),
    (208, 4),
];

fn put(bytes: &mut [u8], at: usize, width: usize, v: u64) {
    if at + width <= bytes.len() {
        bytes[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
    }
}

fn get(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..width].copy_from_slice(&bytes[at..at + width]);
    u64::from_le_bytes(b)
}

/// One mutation of a valid segment's bytes.
fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut b = valid.to_vec();
    let desc_len = get(valid, 24, 4) as usize;
    let header_end = (256 + desc_len + 64).min(b.len());
    match rng.below(6) {
        // Flip a few bits in the header and descriptor.
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(header_end);
                b[i] ^= 1 << rng.below(8);
            }
        }
        // An interesting value in a header field.
        1 => {
            let (at, width) = FIELDS[rng.below(FIELDS.len())];
            let len = valid.len() as u64;
            let interesting = [
                0,
                1,
                2,
                3,
                u64::MAX,
                u32::MAX as u64,
                len,
                len + 1,
                len - 1,
                1 << 40,
                rng.next(),
            ];
            put(&mut b, at, width, interesting[rng.below(interesting.len())]);
        }
        // Another size: cut short or grown with garbage.
        2 => {
            let n = rng.below(valid.len() * 2);
            b.resize(n, 0);
            for x in b.iter_mut().skip(valid.len()) {
                *x = rng.next() as u8;
            }
        }
        // A mutated descriptor whose fingerprint is made to match, so that the parser's deeper
        // checks and the layout comparison run.
        3 => {
            for _ in 0..1 + rng.below(4) {
                let i = 256 + rng.below(desc_len);
                b[i] = rng.next() as u8;
            }
            let fp = Descriptor::fingerprint_of(&b[256..256 + desc_len]);
            put(&mut b, 16, 8, fp);
        }
        // Garbage after a valid-looking prefix.
        4 => {
            for x in b.iter_mut().skip(16 + rng.below(64)) {
                *x = rng.next() as u8;
            }
        }
        // Garbage everywhere, of any length.
        _ => {
            b = (0..rng.below(8192)).map(|_| rng.next() as u8).collect();
        }
    }
    b
}

#[derive(Default, Debug)]
struct Outcomes {
    ok: usize,
    corrupt: usize,
    mismatch: usize,
    not_ready: usize,
}

impl Outcomes {
    /// Every round ended in a known way, and each main way was reached (the mutations are not
    /// all caught by the first check).
    fn check(&self, what: &str) {
        eprintln!("{what}: {self:?}");
        assert!(
            self.ok > 0 && self.corrupt > 0 && self.mismatch > 0,
            "{self:?}"
        );
        assert_eq!(
            self.ok + self.corrupt + self.mismatch + self.not_ready,
            ROUNDS
        );
    }

    fn count<T>(&mut self, r: &shm_core::Result<T>, input: &[u8]) {
        match r {
            Ok(_) => self.ok += 1,
            Err(Error::Corrupt { .. }) => self.corrupt += 1,
            Err(Error::LayoutMismatch { .. }) => self.mismatch += 1,
            Err(Error::Timeout { .. } | Error::CreatorDied { .. }) => self.not_ready += 1,
            Err(e) => panic!("unexpected error {e:?} for input {input:02x?}"),
        }
    }
}

const ROUNDS: usize = 3000;

fn run(valid: &[u8], seed: u64, open: impl Fn(&str) -> Option<shm_core::Result<()>>) -> Outcomes {
    let name = TestName::new("hostile");
    let mut rng = Rng(seed);
    let mut outcomes = Outcomes::default();
    for _ in 0..ROUNDS {
        let bytes = mutate(&mut rng, valid);
        let _ = fs::remove_file(name.path());
        name.plant(&bytes, 0o600);
        let start = Instant::now();
        if let Some(r) = open(&name) {
            outcomes.count(&r, &bytes);
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "open took {:?}",
            start.elapsed()
        );
    }
    outcomes
}

fn no_wait() -> Options {
    Options::new().wait(Duration::ZERO)
}

#[test]
fn mutated_struct_segments_open_or_fail_cleanly() {
    let base = TestName::new("base");
    let s =
        Shared::<Everything>::create_with(&base, Everything::default(), &Options::new()).unwrap();
    s.update(|v| v.letter = 'z');
    let valid = fs::read(base.path()).unwrap();
    let o = run(&valid, 0x5EED_0001, |name| {
        let r = Shared::<Everything>::open_with(name, &no_wait());
        let seq_even = fs::read(format!("/dev/shm/{name}"))
            .map(|b| b.len() >= 136 && get(&b, 128, 8).is_multiple_of(2))
            .unwrap_or(false);
        // After a valid open the value is usable in bounded time: the lock with a timeout, and
        // a snapshot when the bytes record no write in progress (a live peer that keeps a write
        // open forever is not something a reader can tell from a slow one).
        if let Ok(s) = &r {
            let _ = s.try_lock_for(Duration::from_millis(20)).is_ok();
            if seq_even {
                let _ = s.snapshot();
            }
        }
        Some(r.map(|_| ()))
    });
    o.check("struct");
}

#[test]
fn mutated_array_segments_open_or_fail_cleanly() {
    let base = TestName::new("basearr");
    let a = Array::<Slot>::create_zeroed(&base, 3).unwrap();
    a.update(|v| v[1].count = 5);
    let valid = fs::read(base.path()).unwrap();
    let o = run(&valid, 0x5EED_0002, |name| {
        let r = Array::<Slot>::open_with(name, &no_wait());
        if let Ok(a) = &r {
            let _ = a.try_lock_for(Duration::from_millis(20)).is_ok();
            // Every element the handle admits to is readable.
            for slot in a.iter() {
                let _ = slot.count.load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        Some(r.map(|_| ()))
    });
    o.check("array");
}

#[test]
fn mutated_segments_of_enums_and_texts_open_or_fail_cleanly() {
    let base = TestName::new("baseworker");
    let a = Array::<Worker>::create_zeroed(&base, 2).unwrap();
    a.update(|v| {
        v[0].state = State::Busy;
        v[1].client = Text::try_from("10.0.0.7").unwrap();
    });
    let valid = fs::read(base.path()).unwrap();
    let o = run(&valid, 0x5EED_0003, |name| {
        let seq_even = fs::read(format!("/dev/shm/{name}"))
            .map(|b| b.len() >= 136 && get(&b, 128, 8).is_multiple_of(2))
            .unwrap_or(false);
        // Without the type, as the `shm` command reads it: the enum and text nodes come from the
        // mutated descriptor, the numbers and bytes from the mutated payload.
        if let Ok(raw) = RawSegment::open_with(name, &no_wait()) {
            if seq_even {
                let _ = raw.snapshot().map(|d| d.to_string());
            }
        }
        let r = Array::<Worker>::open_with(name, &no_wait());
        if let Ok(a) = &r {
            for w in a.iter() {
                let _ = (w.state.load(Relaxed), w.client.load(Relaxed).as_str().len());
            }
        }
        Some(r.map(|_| ()))
    });
    o.check("enums and texts");
}

/// Writes `word` as the segment's lock word (at byte 192), as a peer could.
fn plant_lock_word(name: &TestName, word: u64) {
    use std::io::{Seek, SeekFrom};
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap();
    f.seek(SeekFrom::Start(192)).unwrap();
    f.write_all(&word.to_ne_bytes()).unwrap();
}

/// The calling thread's name as a lock word holds it: its id, and the low 32 bits of its start
/// time (`/proc/<tid>/stat` field 22) above them.
fn this_threads_name() -> u64 {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() } as u32;
    let stat = fs::read_to_string(format!("/proc/{tid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let start: u64 = rest.split_whitespace().nth(19).unwrap().parse().unwrap();
    u64::from(start as u32) << 32 | u64::from(tid)
}

#[test]
fn a_dead_thread_id_planted_in_the_lock_word_is_recovered() {
    let name = TestName::new("deadtid");
    let s = Shared::<Slot>::create(&name, Slot::default()).unwrap();
    // A thread id that does not exist (pid_max is at most 2^22), as a peer could write it.
    plant_lock_word(&name, 0x3F00_0000);
    // Seen as a holder that died with no write in progress, before anyone locks.
    assert!(s.is_poisoned());
    let start = Instant::now();
    let r = s.lock();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(r.is_err(), "the planted owner is reported as a dead holder");
    drop(r);
    // Poisoned until cleared, like any dead holder.
    assert!(s.lock().is_err());
    s.clear_poison();
    assert!(s.lock().is_ok());
    assert!(!s.is_poisoned());
}

#[test]
fn this_threads_id_planted_in_the_lock_word_does_not_panic_or_hang() {
    let name = TestName::new("mytid");
    let s = Shared::<Slot>::create(&name, Slot::default()).unwrap();
    // This thread's full name (its id and start time), as a peer that read it could write it.
    plant_lock_word(&name, this_threads_name());
    let start = Instant::now();
    let r = s.lock();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(r.is_err());
    drop(r);
    s.update(|v| v.count = 1);
    assert_eq!(s.snapshot().count, 1);
}

/// An object planted under a segment's side journal name (garbage, or open to everyone) is not
/// used: a write that needs it goes ahead without a journal (whole for every reader, and nothing
/// poisoned while its writer lives), `try_write_from` says why and stores nothing, and the
/// object is left alone.
#[test]
fn a_planted_side_journal_is_refused_and_writes_go_on() {
    const LEN: usize = 1 << 16; // 512 KiB: its journal does not fit in the 64 KiB area
    for (tag, mode, kind) in [
        ("garbage", 0o600, "Corrupt"),
        ("open", 0o666, "PermissionDenied"),
    ] {
        let name = TestName::new(&format!("plantside-{tag}"));
        let a = Array::<u64>::create_zeroed(&name, LEN).unwrap();
        let id = {
            let f = fs::File::open(name.path()).unwrap();
            let mut b = [0u8; 8];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, 120).unwrap();
            u64::from_ne_bytes(b)
        };
        let planted = TestName::adopt(format!("{}.journal-{id:016x}", &*name));
        planted.plant(&[0xAB; 4096], mode);
        let e = a.try_write_from(0, &vec![1; LEN]).unwrap_err();
        assert_eq!(tests::error_kind(&e), kind, "{tag}: {e}");
        assert!(e.to_string().contains(&*name), "{tag}: {e}");
        assert!(
            a.snapshot().iter().all(|x| *x == 0),
            "{tag}: a refused write stored"
        );
        a.write_from(0, &vec![2; LEN]);
        a.update(|v| v[0] = 3);
        let v = a.snapshot();
        assert!(v[0] == 3 && v[1..].iter().all(|x| *x == 2), "{tag}");
        assert!(!a.is_poisoned(), "{tag}");
        assert_eq!(fs::read(planted.path()).unwrap(), vec![0xAB; 4096], "{tag}");
    }
}
