//! A short chaos run: workers killed at random while they update, add, lock and take
//! snapshots; no hang, nothing lost or counted twice, no torn snapshot.

use std::process::Command;

/// How long the run lasts; the test's name says it too.
const SECONDS: &str = "8";

#[test]
fn eight_seconds_of_random_sigkills_break_nothing() {
    let prefix = format!("shmt-chaos-{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_shm-chaos"))
        .args(["--seconds", SECONDS, "--procs", "6", "--name", &prefix])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Whatever happened, remove what the supervisor created.
    for part in ["ledger", "pairs", "reports"] {
        let _ = shm_core::remove(&format!("{prefix}-{part}"));
    }
    assert!(
        out.status.success(),
        "chaos failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("chaos: "))
        .expect("a summary line");
    assert!(
        summary.contains("hangs=0") && summary.contains("violations=0"),
        "{summary}"
    );
    let kills: u64 = summary
        .split("kills=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 20, "too few kills to mean anything: {summary}");
    eprintln!("{summary}");
}
