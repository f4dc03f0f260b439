//! Runs the Python package's test suite (`python/tests`, unittest) against this workspace's Rust:
//! the tests drive the `py-peer` binary to create, read and change segments from Rust.
//!
//! The package is Rust (the `shm-core-python` crate, `shm_core._native`) plus Python files: this
//! test builds the extension with cargo, as the workspace member it is, and lays the package out
//! in the target directory (the Python files linked, the extension copied in as
//! `_native.abi3.so`), so nothing needs installing first.
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

/// Builds the extension with the cargo running this test, in this test's profile, and lays out
/// the package `shm_core` under the target directory. Returns the directory to put on the path.
fn build_package(root: &Path, python: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "-p",
        "shm-core-python",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(root)
    // The interpreter the suite runs with is the one PyO3 builds for.
    .env("PYO3_PYTHON", python)
    .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cargo} build -p shm-core-python`: {e}"));
    assert!(
        out.status.success(),
        "`cargo build -p shm-core-python` failed; its messages are above"
    );
    // The cdylib's path, from cargo's artifact messages.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let library = stdout
        .lines()
        .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"_native\""))
        .flat_map(|l| l.split('"'))
        .find(|s| s.ends_with("lib_native.so"))
        .map(PathBuf::from)
        .expect("cargo reported no lib_native.so for shm-core-python");
    let package = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-package");
    let dir = package.join("shm_core");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the package directory");
    for entry in std::fs::read_dir(root.join("python/shm_core")).expect("python/shm_core") {
        let path = entry.expect("a directory entry").path();
        let keep = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("py" | "pyi" | "typed")
        );
        if keep {
            let file = path.file_name().expect("a file name");
            std::os::unix::fs::symlink(&path, dir.join(file)).expect("link a package file");
        }
    }
    std::fs::copy(&library, dir.join("_native.abi3.so")).expect("copy the extension");
    package
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
    let package = build_package(&root, &python);
    let prefix = format!("pyt{}", std::process::id());
    let mut child = Command::new(&python)
        .args(["-m", "unittest", "discover", "-v", "-s", "python/tests"])
        .current_dir(&root)
        .env("SHM_PY_PEER", env!("CARGO_BIN_EXE_py-peer"))
        .env("SHM_PY_PREFIX", &prefix)
        .env("SHM_PY_PATH", &package)
        .env("PYTHONPATH", &package)
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
