//! The etcd mode against a real single-node etcd: the `lockgate-loadtest`
//! binary drives etcd's v3 lock API on one hot key and on a fenced
//! read-modify-write workload, and the checker must find every grant's
//! token (the lock reply's revision) unique and rising. Skipped with a note
//! when `etcd` is not installed, except under `CI`, where it fails.

#![cfg(feature = "etcd")]

mod support;

#[allow(dead_code)] // the bench uses more of it than this test does
#[path = "../src/etcd_server.rs"]
mod etcd_server;

/// [`support::drive`] in etcd mode.
fn drive(addr: &str, args: &[&str]) -> String {
    let mut all = vec!["--mode", "etcd"];
    all.extend_from_slice(args);
    support::drive(addr, &all)
}

/// The number of grants on the safety line, after checking that it reports
/// no duplicate and no backwards token.
fn checked_grants(text: &str) -> u64 {
    let safety = text
        .lines()
        .find(|l| l.starts_with("safety: "))
        .expect("a safety line");
    assert!(
        safety.contains(" 0 duplicate tokens, 0 backwards tokens"),
        "{safety}"
    );
    safety
        .trim_start_matches("safety: ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no grant count in: {safety}"))
}

#[test]
fn etcd_lock_api_grants_rising_revisions_on_a_hot_key_and_loses_no_fenced_update() {
    if !etcd_server::installed() {
        assert!(
            std::env::var("CI").is_err(),
            "etcd is missing on CI: {}",
            etcd_server::INSTALL_HINT
        );
        eprintln!(
            "skipping: etcd not installed ({})",
            etcd_server::INSTALL_HINT
        );
        return;
    }
    let etcd = etcd_server::LocalEtcd::start().expect("etcd starts");
    let addr = etcd.address();

    // Eight workers queue on one lock name: every grant follows the
    // previous holder's release, so each revision must exceed the last.
    let hot = drive(
        &addr,
        &[
            "--scenario",
            "hot",
            "--workers",
            "8",
            "--duration-ms",
            "1500",
        ],
    );
    let grants = checked_grants(&hot);
    assert!(grants > 20, "too few grants checked: {grants}\n{hot}");
    assert!(!hot.contains("errors "), "etcd errors: {hot}");

    // Fenced read-modify-write over a few keys: the resource admits a write
    // only with the highest token so far, so lost updates would show.
    let rmw = drive(
        &addr,
        &[
            "--scenario",
            "rmw",
            "--workers",
            "8",
            "--keys",
            "5",
            "--duration-ms",
            "1500",
        ],
    );
    assert!(checked_grants(&rmw) > 20, "{rmw}");
    assert!(rmw.contains(", 0 lost updates"), "{rmw}");
    assert!(!rmw.contains("errors "), "etcd errors: {rmw}");
}
