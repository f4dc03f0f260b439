//! Runs the Python module's test suite (`python/tests`, unittest) against this workspace's Rust:
//! the tests drive the `py-peer` binary to create, read and change segments from Rust.
//!
//! Needs `python3` (3.9 or later; `SHM_PYTHON` names another interpreter). Without one the test
//! fails, unless `SHM_SKIP_PYTHON=1` says to skip the Python suite, which it then reports.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole suite takes well under a minute; this only stops a hung run.
const LIMIT: Duration = Duration::from_secs(15 * 60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is inside the workspace")
        .to_path_buf()
}

/// Segments in /dev/shm whose names start with `prefix`.
fn leftovers(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn python_module_suite() {
    if std::env::var("SHM_SKIP_PYTHON").as_deref() == Ok("1") {
        eprintln!(
            "python_module_suite: skipped (SHM_SKIP_PYTHON=1): the Python module was not tested"
        );
        return;
    }
    let python = std::env::var("SHM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let version = Command::new(&python)
        .args([
            "-c",
            "import sys; print(sys.version.split()[0]); sys.exit(sys.version_info < (3, 9))",
        ])
        .output();
    match version {
        Err(e) => panic!(
            "cannot run `{python}` ({e}): the Python module's tests need Python 3.9 or later; \
             install it, name it with SHM_PYTHON, or set SHM_SKIP_PYTHON=1 to skip them"
        ),
        Ok(out) if !out.status.success() => panic!(
            "`{python}` is Python {}: the Python module needs 3.9 or later",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        Ok(_) => {}
    }

    let root = repo_root();
    let prefix = format!("pyt{}", std::process::id());
    let mut child = Command::new(&python)
        .args(["-m", "unittest", "discover", "-v", "-s", "python/tests"])
        .current_dir(&root)
        .env("SHM_PY_PEER", env!("CARGO_BIN_EXE_py-peer"))
        .env("SHM_PY_PREFIX", &prefix)
        .env("PYTHONPATH", root.join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{python}`: {e}"));

    // Drain both pipes on threads, so a chatty suite never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python") {
            break Some(status);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    // Shown by the test harness when the test fails (or with --nocapture).
    println!("{out}");
    println!("{err}");

    let left = leftovers(&prefix);
    for name in &left {
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(name));
    }
    let Some(status) = status else {
        panic!("the Python suite did not finish within {LIMIT:?}");
    };
    assert!(
        status.success(),
        "the Python suite failed ({status}); its output is above"
    );
    let tail = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        tail.starts_with("OK"),
        "the Python suite did not end with OK: {tail:?}"
    );
    assert!(
        !err.contains("Ran 0 tests"),
        "the Python suite ran no test: {tail:?}"
    );
    assert!(
        left.is_empty(),
        "the Python suite left {left:?} in /dev/shm"
    );
}
