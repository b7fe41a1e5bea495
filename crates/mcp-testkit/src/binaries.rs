//! The binaries of other workspace packages, for tests that run one
//! service in front of another (the hub in front of the calculator).
//!
//! Cargo gives a test the path of its own package's binaries only
//! (`CARGO_BIN_EXE_<name>`); the others are built beside them by
//! `cargo test --workspace --all-targets` (the suite's command), in the
//! directory above the test executable's `deps/`.

use std::path::PathBuf;

/// The path of workspace binary `name` built with the running test.
///
/// # Panics
/// When it was not built, with the command that builds it.
pub fn workspace_binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test executable's path");
    let profile_dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in <target>/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build -p {name}` (the suite's `cargo test --workspace --all-targets` does)",
        binary.display()
    );
    binary
}
