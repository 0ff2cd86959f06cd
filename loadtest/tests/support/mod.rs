//! Shared by the loadtest integration tests: running the real
//! `lockgate-loadtest` binary and collecting what it printed.

use std::process::Command;

/// Runs `lockgate-loadtest run --target addr` (no progress bar, 200 ms
/// warm-up) with `args` appended, echoes its output, and fails the test if it
/// exits non-zero (a duplicate or backwards token exits 2).
pub fn drive(addr: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lockgate-loadtest"))
        .args([
            "run",
            "--target",
            addr,
            "--no-progress",
            "--warmup-ms",
            "200",
        ])
        .args(args)
        .output()
        .expect("run lockgate-loadtest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "loadtest failed: {text}");
    text
}
