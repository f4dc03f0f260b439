//! A full /dev/shm: a private mount namespace whose /dev/shm is a 1 MiB tmpfs.

use std::process::Command;

use tests::{command, is_root};

tests::child_roles!();

#[test]
fn a_full_dev_shm_is_no_space_at_create_never_sigbus_later() {
    if !is_root() || Command::new("unshare").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("SHM_SKIP_NAMESPACE_TESTS").is_some(),
            "this test needs root and unshare(1) to mount a small tmpfs on /dev/shm in a private mount namespace; set SHM_SKIP_NAMESPACE_TESTS=1 to skip it on purpose"
        );
        eprintln!("skipped: no root or no unshare, and SHM_SKIP_NAMESPACE_TESTS is set");
        return;
    }
    // The child, started by the shell once the small /dev/shm is mounted.
    let child = command(&["full-dev-shm", "shmt-full"]);
    let exec: Vec<String> = std::iter::once(child.get_program())
        .chain(child.get_args())
        .map(|a| format!("'{}'", a.to_str().expect("UTF-8")))
        .collect();
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs -o size=1m shmtest /dev/shm && exec {}",
        exec.join(" ")
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .envs(child.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "in the 1 MiB /dev/shm: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("too-large ") && lines[0].contains("shmt-full"),
        "{stdout}"
    );
    assert!(lines[0].contains("no space"), "{stdout}");
    // 40960 elements holding i + 1: the whole segment was written without SIGBUS.
    let n: u64 = 40 << 10;
    assert_eq!(lines[1], format!("written {}", n * (n + 1) / 2));
    assert_eq!(lines[2], "second NoSpace");
}
