//! `#[derive(SharedLayout)]` refuses what cannot be shared, with the messages checked in beside
//! each input (`ui/*.stderr`), and accepts every form the `ui/pass_*.rs` files use.
//!
//! After changing a message on purpose: `TRYBUILD=overwrite cargo test -p tests --test compile_fail`,
//! then read every changed `.stderr`: the message is part of the product.

use std::path::Path;

#[test]
fn derive_ui() {
    let cases = trybuild::TestCases::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/ui exists")
        .map(|entry| entry.expect("tests/ui is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    assert!(
        files.len() > 20,
        "the ui cases were not found in {}",
        dir.display()
    );
    for path in files {
        let passes = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("pass_"));
        if passes {
            cases.pass(&path);
        } else {
            cases.compile_fail(&path);
        }
    }
}
