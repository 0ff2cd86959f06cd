//! The catalogue of client-library lock scripts (`catalogue.toml`).
//!
//! A script is recognised by the SHA1 of its exact bytes (what EVALSHA
//! carries) or, for EVAL, by its text with all whitespace runs collapsed.
//! Unknown scripts are never run: a gateway cannot give arbitrary Lua quorum
//! semantics.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::scripts::sha1_hex;

/// What a recognised script does, in quorum terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Semantics {
    /// KEYS[1] lock, ARGV[1] owner: delete if owned. 1 | 0.
    CompareAndDelete,
    /// ARGV[1] owner, ARGV[2] ttl_ms: reset the ttl if owned. 1 | 0.
    CompareAndPexpire,
    /// As above; ARGV[3] "0" adds ttl_ms to the remaining time, "1"
    /// replaces it (redis-py's extend). 1 | 0.
    CompareAndPexpireAddOrReplace,
}

/// One catalogue entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub library: String,
    pub versions: String,
    pub op: String,
    pub sha1: String,
    pub semantics: Semantics,
    pub keys: Vec<String>,
    pub args: Vec<String>,
    pub replies: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    script: Vec<Entry>,
}

/// The loaded catalogue with its two indexes.
#[derive(Debug)]
pub struct Catalogue {
    entries: Vec<Entry>,
    by_sha: HashMap<String, usize>,
    by_text: HashMap<String, usize>,
}

/// Collapses every whitespace run to one space and trims the ends.
pub fn normalise(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Catalogue {
    /// Parses a catalogue document.
    ///
    /// # Errors
    /// A malformed document, or an entry whose `sha1` is not the SHA1 of its
    /// body (the catalogue must describe exact bytes).
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_sha = HashMap::new();
        let mut by_text = HashMap::new();
        for (i, e) in f.script.iter().enumerate() {
            let actual = sha1_hex(e.body.as_bytes());
            if actual != e.sha1 {
                return Err(format!(
                    "{} {}: sha1 {} does not match its body ({actual})",
                    e.library, e.op, e.sha1
                ));
            }
            by_sha.insert(e.sha1.clone(), i);
            by_text.insert(normalise(e.body.as_bytes()), i);
        }
        Ok(Catalogue {
            entries: f.script,
            by_sha,
            by_text,
        })
    }

    /// The catalogue compiled into the binary.
    pub fn builtin() -> &'static Catalogue {
        static CAT: OnceLock<Catalogue> = OnceLock::new();
        CAT.get_or_init(|| {
            // The built-in document is checked by a unit test; an error here
            // can only come from editing it without running the tests, and
            // then no script is recognised rather than the gateway failing.
            Catalogue::parse(include_str!("catalogue.toml")).unwrap_or(Catalogue {
                entries: Vec::new(),
                by_sha: HashMap::new(),
                by_text: HashMap::new(),
            })
        })
    }

    /// Looks a script up by its SHA1 (lowercase or uppercase hex).
    pub fn by_sha(&self, sha: &[u8]) -> Option<&Entry> {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.by_sha.get(&sha).map(|&i| &self.entries[i])
    }

    /// Looks a script up by its text: exact bytes first, then normalised.
    pub fn by_text(&self, body: &[u8]) -> Option<&Entry> {
        self.by_sha(sha1_hex(body).as_bytes()).or_else(|| {
            self.by_text
                .get(&normalise(body))
                .map(|&i| &self.entries[i])
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_every_sha1_matches_its_body() {
        let c = Catalogue::parse(include_str!("catalogue.toml"));
        let c = c.expect("valid catalogue");
        assert!(c.entries().len() >= 3);
    }

    #[test]
    fn redis_py_release_is_known_by_sha_and_by_reindented_text() {
        let c = Catalogue::builtin();
        let e = c
            .by_sha(b"c3f8721cbb97f72bc19e972846bd7aaf91901658")
            .expect("redis-py release");
        assert_eq!(e.semantics, Semantics::CompareAndDelete);
        let reindented = e.body.replace("        ", "\t");
        assert_eq!(
            c.by_text(reindented.as_bytes()).map(|e| e.semantics),
            Some(Semantics::CompareAndDelete)
        );
    }

    #[test]
    fn a_wrong_sha1_in_the_catalogue_is_refused() {
        let doc = "[[script]]\nlibrary = \"x\"\nversions = \"1\"\nop = \"release\"\n\
                   sha1 = \"0000000000000000000000000000000000000000\"\n\
                   semantics = \"compare_and_delete\"\nkeys = []\nargs = []\nreplies = \"\"\n\
                   body = \"return 1\"\n";
        assert!(Catalogue::parse(doc).is_err());
    }

    #[test]
    fn unknown_scripts_are_not_recognised() {
        assert!(Catalogue::builtin()
            .by_text(b"return redis.call('flushall')")
            .is_none());
    }
}
