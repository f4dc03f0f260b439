//! The lock word against what other processes can do to it: a peer that scribbles over every
//! header and lock byte while others lock, add and update (they wait or fail, never crash), and
//! holders in other pid namespaces (never taken for dead; within one namespace, detected).
//!
//! The children are this test binary, started again with `SHM_LOCK_ROLE` set: a function that
//! runs before the test harness plays the role and exits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shm_core::inspect::RawSegment;
use shm_core::{Shared, SharedLayout, Value};
use tests::TestName;

#[derive(SharedLayout, Default, Clone, Copy, Debug)]
#[repr(C)]
struct Ledger {
    a: i64,
    b: i64,
    hits: u64,
}

// ---- the children ---------------------------------------------------------------------------

#[used]
#[link_section = ".init_array"]
static PLAY_ROLE: extern "C" fn() = play_role_if_asked;

/// Plays the role `SHM_LOCK_ROLE` names, with the arguments in `SHM_LOCK_ARGS`, then exits; does
/// nothing in the test process itself.
extern "C" fn play_role_if_asked() {
    let Ok(role) = std::env::var("SHM_LOCK_ROLE") else {
        return;
    };
    let args = std::env::var("SHM_LOCK_ARGS").unwrap_or_default();
    let args: Vec<&str> = args.split(' ').collect();
    match (role.as_str(), args.as_slice()) {
        ("scribble", [name]) => scribble(name),
        ("work", [name, op, seconds]) => work(name, op, seconds.parse().expect("seconds")),
        ("hold", [name]) => hold(name),
        ("ns-selftest", [name]) => ns_selftest(name),
        _ => fail(&format!("unknown role {role} {args:?}")),
    }
    std::process::exit(0);
}

fn fail(msg: &str) -> ! {
    eprintln!("child: {msg}");
    std::process::exit(1)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A small xorshift generator: no dependency, and a seed per process.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(u64::from(std::process::id()) << 32 | 0x9e37_79b9)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes any values over the header and lock area (bytes 0..256) of `name`, through the file,
/// until killed.
fn scribble(name: &str) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap_or_else(|e| fail(&format!("open {name}: {e}")));
    let mut rng = Rng::new();
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() } as u64;
    say("scribbling");
    loop {
        let r = rng.next();
        let interesting = [0, 1, u64::MAX, r, tid, r & 0xffff_ffff, 1 << 31, r | 1];
        let (at, bytes): (u64, Vec<u8>) = match r % 4 {
            // Any byte anywhere in the header.
            0 => (rng.next() % 256, vec![rng.next() as u8]),
            // An interesting value in an 8-byte word: seq, the journal record, offsets.
            1 => (
                rng.next() % 32 * 8,
                interesting[(rng.next() % 8) as usize]
                    .to_ne_bytes()
                    .to_vec(),
            ),
            // The lock word, and the words after it.
            2 => (
                192 + rng.next() % 4 * 8,
                interesting[(rng.next() % 8) as usize]
                    .to_ne_bytes()
                    .to_vec(),
            ),
            // The whole lock area at once.
            _ => (192, (0..64).map(|_| rng.next() as u8).collect()),
        };
        let _ = f.write_at(&bytes, at);
    }
}

/// Does `op` on `name` again and again for `seconds`, then checks its own memory and says how
/// many it did. Each operation may wait, or fail; none may crash the process.
fn work(name: &str, op: &str, seconds: u64) {
    let v = Shared::<Ledger>::open(name).unwrap_or_else(|e| fail(&e.to_string()));
    // Memory of this process's own, checked at the end: nothing the peer wrote reaches it.
    let canary: Vec<u64> = (0..1u64 << 16).map(|i| i.wrapping_mul(0x9e37)).collect();
    say("ready");
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut done, mut refused) = (0u64, 0u64);
    while Instant::now() < end {
        match op {
            "try_lock_for" => match v.try_lock_for(Duration::from_millis(5)) {
                Ok(g) => {
                    g.a.fetch_add(1, Relaxed);
                    done += 1;
                }
                Err(TryLockError::Poisoned(p)) => {
                    drop(p);
                    v.clear_poison();
                    done += 1;
                }
                Err(TryLockError::WouldBlock) => refused += 1,
            },
            "fetch_add" => {
                v.hits.fetch_add(1, Relaxed);
                let _ = v.is_poisoned();
                done += 1;
            }
            "update" => {
                v.update(|l| {
                    l.a += 1;
                    l.b -= 1;
                });
                done += 1;
            }
            "snapshot" => {
                let _ = v.snapshot();
                done += 1;
            }
            _ => fail(&format!("unknown op {op}")),
        }
    }
    if canary
        .iter()
        .enumerate()
        .any(|(i, &x)| x != (i as u64).wrapping_mul(0x9e37))
    {
        fail("this process's own memory changed");
    }
    say(&format!("done {done} refused {refused}"));
}

/// Takes the lock of `name` and keeps it until killed.
fn hold(name: &str) {
    let v = Value::<u64>::open(name).unwrap_or_else(|e| fail(&e.to_string()));
    let g = v.lock().unwrap_or_else(|p| p.into_inner());
    say("locked");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let _ = &g;
    }
}

/// Inside one pid namespace (whatever it is): a holder killed there is found dead by a locker
/// there.
fn ns_selftest(name: &str) {
    let v = Value::<u64>::create(name, 0).unwrap_or_else(|e| fail(&e.to_string()));
    let mut holder = Kid(role("hold", &[name]).spawn().expect("start the holder"));
    wait_for(&mut holder, "locked");
    if !matches!(v.try_lock(), Err(TryLockError::WouldBlock)) {
        fail("the live holder's lock was taken");
    }
    kill9(&mut holder);
    if !v.is_poisoned() {
        fail("the dead holder was not seen");
    }
    let found = match v.try_lock_for(Duration::from_secs(10)) {
        Err(TryLockError::Poisoned(_)) => "dead holder found",
        Ok(_) => fail("taken, but not poisoned"),
        Err(TryLockError::WouldBlock) => fail("the dead holder's lock stayed held"),
    };
    say(found);
}

// ---- the tests' side ------------------------------------------------------------------------

/// This test binary as a child playing `role` with `args`.
fn role(role: &str, args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("the test binary"));
    c.env("SHM_LOCK_ROLE", role)
        .env("SHM_LOCK_ARGS", args.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    c
}

/// Reads the child's lines until one starts with `prefix`; returns it.
fn wait_for(child: &mut Child, prefix: &str) -> String {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .expect("read the child's output");
        assert!(n > 0, "the child ended before saying {prefix:?}");
        if line.starts_with(prefix) {
            return line.trim_end().to_owned();
        }
    }
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A child killed (with the children it started, for `unshare`) and reaped when dropped, so a
/// failing test leaves no process behind.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            for pid in children_of(self.0.id()) {
                // SAFETY: kill takes no pointers; `pid` is a child of our child, not yet reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        kill9(&mut self.0);
    }
}

impl std::ops::Deref for Kid {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Waits at most `limit` for `child` to end; kills it and fails if it does not.
fn wait_at_most(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if Instant::now() >= end {
            kill9(child);
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Puts the header bytes a scribbler may have changed back as they were, so that workers it
/// left waiting can finish.
fn restore_header(name: &TestName, header: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .expect("open the segment");
    f.write_at(header, 0).expect("write the header back");
}

#[test]
fn a_peer_scribbling_over_the_header_and_lock_makes_others_wait_or_fail_never_crash() {
    let name = TestName::new("scribble");
    let v = Shared::<Ledger>::create(&name, Ledger::default()).unwrap();
    let header = std::fs::read(name.path()).unwrap()[..256].to_vec();
    const SECONDS: u64 = 3;
    let ops = [
        "try_lock_for",
        "fetch_add",
        "update",
        "snapshot",
        "try_lock_for",
        "update",
    ];
    let mut workers: Vec<(Kid, &str)> = ops
        .iter()
        .map(|op| {
            let c = role("work", &[&name, op, &SECONDS.to_string()])
                .spawn()
                .expect("start a worker");
            (Kid(c), *op)
        })
        .collect();
    for (w, _) in &mut workers {
        wait_for(w, "ready");
    }
    let mut scribbler = Kid(role("scribble", &[&name])
        .spawn()
        .expect("start the scribbler"));
    wait_for(&mut scribbler, "scribbling");
    std::thread::sleep(Duration::from_secs(SECONDS));
    // The workers' time is up; stop the scribbler and put the header right, so that a worker
    // left waiting for a lock it made look held (by a live owner, or one nobody may judge) ends.
    kill9(&mut scribbler);
    restore_header(&name, &header);
    for (w, op) in &mut workers {
        let line = wait_for(w, "done");
        let status = wait_at_most(w, Duration::from_secs(60), op);
        assert!(
            status.success(),
            "the {op} worker failed: {status} ({line})"
        );
        let done: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a count");
        assert!(done > 0, "the {op} worker never got through: {line}");
    }
    // The segment is still usable by its creator.
    drop(v.lock());
    v.clear_poison();
    v.update(|l| l.hits += 1);
    assert!(v.lock().is_ok());
}

/// Whether this test may use pid namespaces: root and `unshare(1)`. Otherwise it fails and says
/// why, unless `SHM_SKIP_NAMESPACE_TESTS` is set to skip it on purpose.
fn namespaces_available() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let unshare = Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if root && unshare {
        return true;
    }
    assert!(
        std::env::var_os("SHM_SKIP_NAMESPACE_TESTS").is_some(),
        "this test needs root and unshare(1) for pid namespaces; set SHM_SKIP_NAMESPACE_TESTS=1 to skip it on purpose"
    );
    eprintln!("skipped: no root or no unshare, and SHM_SKIP_NAMESPACE_TESTS is set");
    false
}

/// `role` run by `unshare` in a new pid namespace (with its own `/proc` if `own_proc`).
fn in_new_pid_namespace(own_proc: bool, role_name: &str, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("the test binary");
    let mut c = Command::new("unshare");
    c.arg("--pid").arg("--fork");
    if own_proc {
        c.arg("--mount").arg("--mount-proc");
    }
    c.arg(exe)
        .env("SHM_LOCK_ROLE", role_name)
        .env("SHM_LOCK_ARGS", args.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    c
}

/// The children of process `pid` (for unshare: its forked child), as pids of this namespace.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn lock_foreign(name: &TestName) -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open(name.path())
        .unwrap()
        .read_exact_at(&mut b, 208)
        .unwrap();
    u32::from_ne_bytes(b)
}

#[test]
fn a_holder_in_another_pid_namespace_is_never_taken_for_dead() {
    if !namespaces_available() {
        return;
    }
    // With its own /proc, the holder's namespace differs from the creator's; without, it cannot
    // read /proc as its namespace sees it. Either way it marks the lock foreign before locking.
    for own_proc in [true, false] {
        let name = TestName::new("pidns");
        let v = Value::<u64>::create(&name, 0).unwrap();
        let mut unshare = Kid(in_new_pid_namespace(own_proc, "hold", &[&name])
            .spawn()
            .expect("start unshare"));
        wait_for(&mut unshare, "locked");
        assert_eq!(lock_foreign(&name), 1, "own /proc: {own_proc}");
        // Alive, in a namespace where its thread id means another thread (or none): waited for,
        // never taken, whatever the owner checks in a timed lock find.
        let raw = RawSegment::open(&name).unwrap();
        let check = |when: &str| {
            assert!(
                matches!(
                    v.try_lock_for(Duration::from_millis(100)),
                    Err(TryLockError::WouldBlock)
                ),
                "{when}, own /proc: {own_proc}: the lock was taken"
            );
            assert!(matches!(v.try_lock(), Err(TryLockError::WouldBlock)));
            assert!(!v.is_poisoned(), "{when}: poisoned");
            let holder = raw.lock_holder().expect("held");
            assert!(!holder.checked && holder.alive, "{when}: {holder:?}");
            assert!(holder
                .to_string()
                .ends_with("(cannot tell whether it lives)"));
        };
        check("while it lives");
        // Killed: nobody here can tell, so its lock stays held (the documented behaviour).
        let inner = children_of(unshare.id())[0];
        // SAFETY: kill takes no pointers; `inner` is the child unshare started, not yet reaped.
        assert_eq!(
            unsafe { libc::kill(inner as libc::pid_t, libc::SIGKILL) },
            0
        );
        let _ = unshare.wait();
        check("after it died");
    }
}

#[test]
fn within_one_pid_namespace_a_killed_holder_is_found_dead() {
    if !namespaces_available() {
        return;
    }
    let name = TestName::new("nsself");
    let mut c = Kid(in_new_pid_namespace(true, "ns-selftest", &[&name])
        .spawn()
        .expect("start unshare"));
    let said = wait_for(&mut c, "dead holder found");
    let status = wait_at_most(&mut c, Duration::from_secs(60), "the namespace's test");
    assert!(status.success(), "{status}: {said}");
}

/// A timed lock whose timeout is shorter than the wait before a locker first checks the owner
/// still checks it once before giving up: a caller that polls with short timeouts finds a killed
/// holder, as `try_lock` does.
#[test]
fn short_timed_locks_find_a_killed_holder() {
    let name = TestName::new("shorttimed");
    let v = Value::<u64>::create(&name, 0).unwrap();
    let mut holder = Kid(role("hold", &[&name]).spawn().expect("start the holder"));
    wait_for(&mut holder, "locked");
    assert!(matches!(
        v.try_lock_for(Duration::ZERO),
        Err(TryLockError::WouldBlock)
    ));
    kill9(&mut holder);
    for timeout in [Duration::ZERO, Duration::from_micros(500)] {
        let mut outcome = None;
        for _ in 0..200 {
            match v.try_lock_for(timeout) {
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Poisoned(_)) => outcome = Some("poisoned"),
                Ok(_) => outcome = Some("taken, not poisoned"),
            }
            break;
        }
        assert_eq!(
            outcome,
            Some("poisoned"),
            "try_lock_for({timeout:?}) never found the dead holder"
        );
        v.clear_poison();
        // Hand the lock to a dead owner again for the next timeout.
        drop(v.lock());
        let mut again = Kid(role("hold", &[&name]).spawn().expect("start the holder"));
        wait_for(&mut again, "locked");
        kill9(&mut again);
    }
}
