//! The chaos harness as a test binary (also `cargo run --example chaos`).
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    tests::chaos::main(&args)
}
