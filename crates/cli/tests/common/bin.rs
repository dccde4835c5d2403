//! Running the `proxysched` binary from a test: the command, scenario paths, a scratch
//! directory per test crate, and the output as text.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test. A panic in it must not print a backtrace even when the
/// environment asks for one, so every run asks for one.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proxysched"));
    c.env("RUST_BACKTRACE", "1");
    c
}

/// The path of `scenarios/NAME` as a string for the command line.
pub fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
        .display()
        .to_string()
}

/// A file in this test crate's scratch directory (one per test binary and process).
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "proxysched-{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Run the binary with `args` and wait for it.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

/// Its stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The failures of an `explore --format json` summary as (seed, invariant), in its order.
pub fn failures(summary: &serde_json::Value) -> Vec<(u64, String)> {
    summary["failures"]
        .as_array()
        .expect("a summary's failures")
        .iter()
        .map(|f| {
            (
                f["seed"].as_u64().expect("a seed"),
                f["invariant"].as_str().expect("an invariant").to_string(),
            )
        })
        .collect()
}
