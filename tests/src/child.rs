//! Child processes of a test: the test binary itself, started again to play one of the
//! [`roles`](crate::roles).
//!
//! A test binary that starts children says so once, at the top level of its file:
//!
//! ```ignore
//! tests::child_roles!();
//! ```
//!
//! The macro adds a function the loader runs before `main`. In a process that [`Child::spawn`]
//! (or [`command`]) started, it plays the role named in the environment and exits, so the test
//! harness never starts; in every other run of the binary it returns at once and the tests run.
//! A role is never a `#[test]`: a run of the tests runs tests only.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The environment variable that names a child's role and its arguments.
const ROLE_VAR: &str = "SHM_TEST_ROLE";

/// Separates the role's arguments in [`ROLE_VAR`] (no segment name contains it).
const SEP: char = '\u{1f}';

/// What the test harness is asked to run in a child whose binary does not declare
/// [`child_roles!`]: no test (a test's name has no spaces), rather than every test again.
const NO_TEST: &str = "no test: this test binary does not declare tests::child_roles!()";

/// How long a child may take to say what a test waits for: far beyond what any role needs, so
/// that reaching it means the child will never say it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Makes this test binary able to play the [`roles`](crate::roles) for its own child
/// processes. Write it once, at the top level of a test file that starts children.
#[macro_export]
macro_rules! child_roles {
    () => {
        // An entry of the ELF `.init_array`, which the loader runs before `main` in the process's
        // only thread. It reads nothing but the environment: std's own start-up (the command
        // line, the main thread's name) may not have run yet, and nothing it does needs them.
        #[used]
        #[link_section = ".init_array"]
        static __SHM_TEST_CHILD_ROLE: extern "C" fn() = {
            extern "C" fn play_role_if_asked() {
                $crate::play_role_if_asked();
            }
            play_role_if_asked
        };
    };
}

/// In a child, plays its role and exits: 0 if the role ended, 101 if it panicked (the role
/// itself exits 1 on an error it reports). Anywhere else, returns.
#[doc(hidden)]
pub fn play_role_if_asked() {
    let Some(role) = std::env::var_os(ROLE_VAR) else {
        return;
    };
    let role = role.to_string_lossy().into_owned();
    let args: Vec<&str> = role.split(SEP).collect();
    let played = std::panic::catch_unwind(|| crate::roles::play(&args));
    std::process::exit(if played.is_ok() { 0 } else { 101 });
}

/// A command that runs `role ARGS...` in a new process (this test binary again), for a test that
/// needs to start it in its own way (as another user, in another namespace). Its standard input
/// is closed.
pub fn command(role: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut c = Command::new(exe);
    c.args(["--exact", NO_TEST])
        .env(ROLE_VAR, role.join(&SEP.to_string()))
        .stdin(Stdio::null());
    c
}

/// The user `nobody`: the other user of the tests that need one.
pub const NOBODY: u32 = 65534;

/// Runs `role ARGS...` to the end as the user `uid` with the primary group `gid` (and no other
/// group), which needs root: what it printed, trimmed. Panics if it failed.
pub fn run_as(uid: u32, gid: u32, role: &[&str]) -> String {
    use std::os::unix::process::CommandExt;
    let out = command(role)
        .uid(uid)
        .gid(gid)
        .output()
        .expect("start the child as another user (is the build directory readable by others?)");
    assert!(
        out.status.success(),
        "child {role:?} as uid {uid} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A child process playing a role, its output read line by line; killed (if still running) and
/// reaped when dropped, so a failing test leaves no process behind.
pub struct Child {
    child: std::process::Child,
    lines: Receiver<String>,
    role: String,
}

impl Child {
    /// Starts `role ARGS...` (see [`roles`](crate::roles)); its stderr goes to the test's.
    pub fn spawn(role: &[&str]) -> Child {
        let mut child = command(role)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start child {role:?}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            lines,
            role: role.join(" "),
        }
    }

    /// Runs `role ARGS...` to the end: what it printed. Panics if it failed.
    pub fn run(role: &[&str]) -> String {
        Child::spawn(role).finish()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child prints; panics if it ends first or says nothing for a minute.
    pub fn next_line(&self, waiting_for: &str) -> String {
        self.lines.recv_timeout(PATIENCE).unwrap_or_else(|e| {
            panic!(
                "child `{}` never said {waiting_for:?} ({e}; a test binary that starts children declares tests::child_roles!())",
                self.role
            )
        })
    }

    /// Waits for the child to print the line `line`, skipping others.
    pub fn wait_for(&self, line: &str) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.next_line(line) == line {
                return;
            }
        }
        panic!("child `{}` never said {line:?}", self.role);
    }

    /// Waits for the child to print a line `word VALUE`, skipping others; returns `VALUE`.
    pub fn wait_for_value(&self, word: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(value) = self.next_line(word).strip_prefix(&format!("{word} ")) {
                return value.to_owned();
            }
        }
        panic!("child `{}` never said {word:?}", self.role);
    }

    /// Kills the child with SIGKILL and reaps it: it is gone without running any destructor.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        self.child.wait().expect("reap the child");
    }

    /// Waits for the child to exit by itself; its status.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for the child")
    }

    /// Waits for the child to exit by itself, which it must do successfully; the lines it
    /// printed that no `wait_for` took, each ended by a newline.
    pub fn finish(mut self) -> String {
        let status = self.wait();
        // Until the reader reaches the end of the output, which the child's exit closed.
        let out: String = self.lines.iter().map(|l| l + "\n").collect();
        assert!(
            status.success(),
            "child `{}` failed: {status}\nstdout: {out}",
            self.role
        );
        out
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
