//! `shm wait NAME FIELD OP VALUE`, run as a script runs it, against segments this test process
//! changes: woken by an update, by `notify`, by a plain store (within the bounded re-check);
//! exit status 0 when the comparison holds, 1 on timeout, 2 on any error.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shm_core::{Options, Shared, SharedLayout, Text, Value};

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Jobs {
    done: u64,
    ready: bool,
    load: f64,
    hist: [i32; 3],
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

#[derive(SharedLayout, Debug, Default, Clone, Copy, PartialEq)]
#[repr(C)]
struct Worker {
    state: State,
    client: Text<16>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A segment name of this test process, removed when dropped whatever happened.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Name {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Name(format!("shmcli-wait-{tag}-{}-{n}", std::process::id()))
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.0)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.path());
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn shm(args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shm")
        .into()
}

/// `shm ARGS` started in the background (its output piped).
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shm")
}

/// Waits for `child` to end; kills it and fails the test if that takes over a minute (a wait
/// that was never woken must fail the test, not hang it).
fn finish(mut child: Child) -> Run {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "shm wait still waiting after a minute: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap().into()
}

/// Whether a waiter is registered on the segment: a registration slot (header bytes 140..148,
/// docs/FORMAT.md "Waiting") counts one. A waiter registers around each of its sleeps.
fn someone_sleeps(name: &Name) -> bool {
    let f = fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, 140).unwrap();
    let slot = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
    (slot(0) | slot(4)) & 0xffff != 0
}

/// Returns once a waiter on `name` is asleep, so that what the test does next is seen by a
/// waiter that was woken (or re-checked), not by its first look.
fn until_asleep(name: &Name, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !someone_sleeps(name) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = BufReader::new(child.stderr.take().unwrap()).read_line(&mut err);
            panic!("shm wait ended before it slept: {status}: {err}");
        }
        assert!(Instant::now() < deadline, "shm wait never slept");
        std::thread::yield_now();
    }
}

#[test]
fn a_comparison_that_holds_already_exits_0_and_prints_the_value() {
    let name = Name::new("holds");
    let jobs = Shared::<Jobs>::create(&name, Jobs::default()).unwrap();
    jobs.update(|j| {
        j.done = 7;
        j.hist[1] = -3;
    });
    for (field, op, value, shown) in [
        ("done", ">=", "7", "7"),
        ("done", "==", "7", "7"),
        ("done", "!=", "8", "7"),
        ("done", "<", "0x8", "7"),
        ("hist[1]", "<=", "-3", "-3"),
        ("hist[2]", ">", "-1", "0"),
        ("ready", "==", "false", "false"),
        ("load", "<", "0.5", "0.0"),
    ] {
        let r = shm(&["wait", &name, field, op, value]);
        assert_eq!(r.code, 0, "{field} {op} {value}: {}", r.stderr);
        assert_eq!(r.stdout, format!("{}: {field} = {shown}\n", &*name));
        assert_eq!(r.stderr, "");
    }
}

#[test]
fn an_update_in_another_process_wakes_it() {
    let name = Name::new("update");
    let jobs = Shared::<Jobs>::create(&name, Jobs::default()).unwrap();
    let mut waiter = spawn(&["wait", &name, "done", ">=", "100", "--timeout", "1m"]);
    until_asleep(&name, &mut waiter);
    for _ in 0..100 {
        jobs.update(|j| j.done += 1);
    }
    let r = finish(waiter);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}: done = 100\n", &*name));
}

#[test]
fn notify_after_a_field_atomic_wakes_it() {
    let name = Name::new("notify");
    let jobs = Shared::<Jobs>::create(&name, Jobs::default()).unwrap();
    let mut waiter = spawn(&["wait", &name, "ready", "==", "true"]);
    until_asleep(&name, &mut waiter);
    jobs.ready.store(true, Relaxed);
    jobs.notify();
    let r = finish(waiter);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}: ready = true\n", &*name));
}

/// No update, no notify: the waiter's bounded re-check finds the change all the same.
#[test]
fn a_plain_store_without_notify_is_seen_all_the_same() {
    let name = Name::new("plain");
    let jobs = Shared::<Jobs>::create(&name, Jobs::default()).unwrap();
    let mut waiter = spawn(&["wait", &name, "load", ">", "0.5", "--timeout", "1m"]);
    until_asleep(&name, &mut waiter);
    let changes_before = fs::read(name.path()).unwrap()[136..140].to_vec();
    jobs.load.store(0.75, Relaxed);
    let r = finish(waiter);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}: load = 0.75\n", &*name));
    // Nobody announced the change: the waiter found it by looking again.
    assert_eq!(fs::read(name.path()).unwrap()[136..140], changes_before);
}

/// An enum waited for by its variant's name, a text by its string.
#[test]
fn enums_and_texts_are_waited_for_by_name_and_string() {
    let name = Name::new("enum");
    let w = Shared::<Worker>::create(&name, Worker::default()).unwrap();
    let mut busy = spawn(&["wait", &name, "state", "==", "Busy", "--timeout", "1m"]);
    until_asleep(&name, &mut busy);
    w.update(|w| {
        w.state = State::Busy;
        w.client = Text::try_from("10.0.0.7").unwrap();
    });
    let r = finish(busy);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}: state = Busy\n", &*name));
    let r = shm(&["wait", &name, "client", "==", "10.0.0.7"]);
    assert_eq!(
        (r.code, r.stdout),
        (0, format!("{}: client = \"10.0.0.7\"\n", &*name))
    );
    // Ordered by the number stored: Stopping (9) > Busy (1).
    let r = shm(&["wait", &name, "state", "<", "Stopping"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = shm(&["wait", &name, "state", "==", "Lunch"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Lunch"), "{}", r.stderr);
}

#[test]
fn a_timeout_exits_1_and_says_what_the_field_is() {
    let name = Name::new("timeout");
    let jobs = Shared::<Jobs>::create(&name, Jobs::default()).unwrap();
    jobs.done.store(42, Relaxed);
    let start = Instant::now();
    let r = shm(&["wait", &name, "done", ">=", "100", "--timeout", "200ms"]);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        format!(
            "shm: segment `{}`: `done >= 100` did not hold within 200ms (--timeout); `done` is 42\n",
            &*name
        )
    );
}

#[test]
fn errors_exit_2_with_one_line() {
    let name = Name::new("errors");
    let _jobs = Shared::<Jobs>::create(&name, Jobs::default()).unwrap();
    let missing = Name::new("missing");
    for (args, says) in [
        (
            vec!["wait", &missing, "done", "==", "1"],
            format!("shm: segment `{}` does not exist", &*missing),
        ),
        (
            vec!["wait", &name, "nope", "==", "1"],
            format!("shm: segment `{}` has no field `nope`", &*name),
        ),
        (
            vec!["wait", &name, "done", "==", "lots"],
            format!("shm: segment `{}`: cannot write \"lots\" to `done`", &*name),
        ),
        (
            vec!["wait", &name, "done", ">=", "-1"],
            "out of range for u64".to_owned(),
        ),
        (
            vec!["wait", &name, "hist", "==", "1"],
            format!("shm: segment `{}`: `hist` is a `[i32; 3]` array", &*name),
        ),
        (
            vec!["wait", &name, "", "==", "1"],
            "the field path is empty".to_owned(),
        ),
    ] {
        let r = shm(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("shm: ") && r.stderr.trim_end().lines().count() == 1,
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(&says), "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "");
    }
    // Usage errors: clap's own, also 2.
    for args in [
        vec!["wait", &name, "done", "=>", "1"],
        vec!["wait", &name, "done", "=="],
        vec!["wait", &name, "done", "==", "1", "--timeout", "soon"],
    ] {
        let r = shm(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error:"), "{args:?}: {}", r.stderr);
    }
    let r = shm(&["wait", &name, "done", "=>", "1"]);
    assert!(
        r.stderr.contains("write one of == != < <= > >="),
        "{}",
        r.stderr
    );
}

#[test]
fn a_segment_removed_while_waited_on_ends_it_with_2() {
    let name = Name::new("removed");
    let v = Value::<u32>::create(&name, 0).unwrap();
    let mut waiter = spawn(&["wait", &name, ".", "==", "1"]);
    until_asleep(&name, &mut waiter);
    drop(v); // the creator's handle removes the name
    let r = finish(waiter);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "shm: segment `{}` was removed while waiting for `. == 1`\n",
            &*name
        )
    );
}

/// A member of the segment's group who may only read it (mode 0o640) waits read-only: it cannot
/// register, so nobody's update wakes it, and it sees the change at its re-check.
#[test]
fn a_user_who_may_only_read_waits_too() {
    use std::os::unix::fs::chown;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid cannot fail and takes no arguments.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("SHM_SKIP_ROOT_TESTS").is_some(),
            "this test runs `shm wait` as another user and needs root; set SHM_SKIP_ROOT_TESTS=1 to skip it on purpose"
        );
        return;
    }
    const NOBODY: u32 = 65534;
    const GROUP: u32 = 4245;
    let name = Name::new("reader");
    let v = Value::<u32>::create_with(&name, 0, &Options::new().mode(0o640)).unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    let waiter = Command::new(env!("CARGO_BIN_EXE_shm"))
        .args(["wait", &name, ".", "==", "5", "--timeout", "1m"])
        .uid(NOBODY)
        .gid(GROUP)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shm as another user");
    v.update(|x| *x = 5);
    let r = finish(waiter);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}: . = 5\n", &*name));
    assert!(!someone_sleeps(&name), "a read-only waiter registered");
}
