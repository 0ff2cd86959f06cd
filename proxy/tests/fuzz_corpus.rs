//! Replays the committed fuzz corpus (proxy/fuzz/corpus/<target>/) through
//! the same entry points the fuzz targets call, so CI exercises every input
//! the fuzzer found interesting without running a fuzzer.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read corpus file");
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus(target);
    // The hand-written seeds alone are more than this; an empty or lost
    // corpus must fail rather than pass vacuously.
    assert!(files.len() >= 8, "{target}: only {} files", files.len());
    for (name, bytes) in files {
        let r = std::panic::catch_unwind(|| run(&bytes));
        assert!(r.is_ok(), "{target}: {name} panicked");
    }
}

#[test]
fn the_request_corpus_replays_without_panics() {
    replay("request", lockgate::fuzz::request);
}

#[test]
fn the_master_reply_corpus_replays_without_panics() {
    replay("master_reply", lockgate::fuzz::master_reply);
}
