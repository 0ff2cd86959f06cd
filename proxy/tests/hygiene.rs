//! Repository hygiene: code and docs point only at things a reader of the
//! repo can find. The design lives in `docs/design.md` and is cited by
//! section name; there is no `DESIGN.md`, and issue numbers ("issue 9",
//! "(issue 7, part 5)", "issues 3 and 4") mean nothing to a reader without
//! the tracker, so neither may appear in code comments or docs.

use std::path::{Path, PathBuf};

/// Directories never scanned: build output, VCS data, installed
/// dependencies and fuzz inputs (bytes, not prose).
const SKIP_DIRS: &[&str] = &["target", ".git", "node_modules", "corpus", "artifacts"];

/// Files scanned, by extension: code, scripts and docs.
const EXTENSIONS: &[&str] = &[
    "rs", "md", "lua", "toml", "sh", "yml", "yaml", "py", "js", "mjs", "go",
];

/// Files allowed to name the patterns: this test spells them out.
const EXEMPT: &[&str] = &["proxy/tests/hygiene.rs"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn scanned_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            // Hidden directories are tool state (venvs, caches), except CI.
            let hidden = name.starts_with('.') && name != ".ci";
            if !hidden && !SKIP_DIRS.contains(&name.as_str()) {
                scanned_files(&path, out);
            }
        } else if kind.is_file() {
            let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
            // `.ci/run` has no extension but is a script.
            if EXTENSIONS.contains(&ext) || path.ends_with(".ci/run") {
                out.push(path);
            }
        }
    }
}

/// Whether `line` names an issue by number: `issue 9`, `issues 3`,
/// `issue #12` (any case), with no letter or digit just before `issue`.
fn cites_issue(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("issue") {
        let start = from + pos;
        from = start + 5;
        if start > 0 && b[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut i = start + 5;
        if b.get(i) == Some(&b's') {
            i += 1;
        }
        let spaces = i;
        while b.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
            i += 1;
        }
        if i == spaces {
            continue;
        }
        if b.get(i) == Some(&b'#') {
            i += 1;
        }
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            return true;
        }
    }
    false
}

/// Every `path:line: text` that cites `DESIGN.md` or an issue number.
fn hits() -> Vec<String> {
    let root = repo_root();
    let mut files = Vec::new();
    scanned_files(&root, &mut files);
    let mut out = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if EXEMPT.contains(&rel.as_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not UTF-8: not prose
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains("DESIGN.md") || cites_issue(line) {
                out.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn the_pattern_finds_issue_numbers_and_nothing_else() {
    for yes in [
        "//! Read-write locks (issue 9, part 3)",
        "(issue 7)",
        "see issues 3 and 4",
        "Issue #12 says",
        "issue\t5",
    ] {
        assert!(cites_issue(yes), "{yes}");
    }
    for no in [
        "no issue here",
        "reissue 5 tokens",
        "issues remain",
        "the issue: 5 masters",
        "tissue 3",
    ] {
        assert!(!cites_issue(no), "{no}");
    }
}

#[test]
fn no_design_md_or_issue_numbers_in_code_or_docs() {
    let hits = hits();
    assert!(
        hits.is_empty(),
        "{} line(s) cite DESIGN.md (point at a docs/design.md section by name instead) \
         or an issue number (say what the code does instead):\n{}",
        hits.len(),
        hits.join("\n")
    );
}
