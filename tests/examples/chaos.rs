//! Chaos: worker processes update, add, lock and take snapshots of one struct and one array
//! while a supervisor kills them with SIGKILL at random and starts new ones.
//!
//! ```text
//! cargo run --release --example chaos -- --seconds 60 --procs 8
//! ```
//!
//! It ends with a summary line (operations, kills, recoveries, hangs, violations) and exits
//! non-zero if any operation hung, any completed update was lost or counted twice, or any
//! snapshot broke the struct's invariants. The harness lives in the `tests` package, whose suite
//! runs it for a few seconds; this example lives in that package.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    tests::chaos::main(&args)
}
