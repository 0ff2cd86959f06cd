//! The catalogue of client-library lock scripts (`catalogue.toml`).
//!
//! A script is recognised by the SHA1 of its exact bytes (what EVALSHA
//! carries) or, for EVAL, by its text with all whitespace runs collapsed.
//! Each entry says which lock operation the script stands for and how the
//! library reads the answer, so one quorum engine serves every library in
//! its own reply codes. Unknown scripts are never run: a gateway cannot give
//! arbitrary Lua quorum semantics.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::scripts::sha1_hex;

/// The lock operation a recognised script stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Quorum acquire of the lock keys, all or nothing.
    Acquire,
    /// Compare-and-delete.
    Release,
    /// Compare-and-pexpire (replace, or add with `add_flag`).
    Extend,
    /// Extend; when the key is free, acquire it again (redsync's
    /// `WithSetNXOnExtend`).
    ExtendOrAcquire,
    /// Quorum read: the remaining time when held by the given owner.
    Check,
    /// Known, but refused with the entry's `reason`.
    Unsupported,
}

/// Which KEYS are lock keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKeys {
    /// `KEYS[1]`; later keys (python-redis-lock's signal list) are ignored.
    #[default]
    First,
    /// Every key is a lock key (node-redlock's multi-resource locks).
    All,
}

/// The unit of a script's TTL argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtlUnit {
    #[default]
    Ms,
    S,
}

/// A reply value in a library's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Code {
    Int(i64),
    Word(Word),
}

/// A reply computed from the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Word {
    /// The number of lock keys.
    Count,
    /// The remaining time in milliseconds.
    Pttl,
    /// A null reply.
    Nil,
}

/// How the library reads each outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replies {
    pub ok: Code,
    /// Held by another owner (or, without `missing`, by nobody).
    #[serde(default = "zero")]
    pub not_held: Code,
    /// Held by nobody, when the library tells that apart (redsync's -1).
    pub missing: Option<Code>,
    /// An acquire found a key held by another owner.
    #[serde(default = "zero")]
    pub busy: Code,
}

fn zero() -> Code {
    Code::Int(0)
}

/// An argument that chooses between adding to and replacing the TTL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddFlag {
    /// 1-based ARGV position.
    pub arg: usize,
    /// The value that means "add".
    pub adds_when: String,
}

/// One catalogue entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub library: String,
    pub versions: String,
    pub op: String,
    pub sha1: String,
    pub action: Action,
    #[serde(default)]
    pub lock_keys: LockKeys,
    /// 1-based ARGV position of the owner value.
    pub owner_arg: Option<usize>,
    /// 1-based ARGV position of the TTL.
    pub ttl_arg: Option<usize>,
    #[serde(default)]
    pub ttl_unit: TtlUnit,
    pub add_flag: Option<AddFlag>,
    pub reply: Option<Replies>,
    /// Why an unsupported script is refused.
    pub reason: Option<String>,
    /// A successful release wakes BLPOP waiters on the signal key.
    #[serde(default)]
    pub wakes: bool,
    #[serde(default)]
    pub replies: String,
    /// The exact script; only unsupported entries may leave it out.
    pub body: Option<String>,
}

impl Entry {
    /// How this script is named in error replies.
    pub fn name(&self) -> String {
        format!("{} {} script", self.library, self.op)
    }
}

/// A library's convention linking a wait list to its lock key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub library: String,
    pub signal_prefix: String,
    pub lock_prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    signal: Vec<Signal>,
    script: Vec<Entry>,
}

/// The loaded catalogue with its two indexes.
#[derive(Debug, Default)]
pub struct Catalogue {
    entries: Vec<Entry>,
    signals: Vec<Signal>,
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

/// Checks that an entry carries what its action needs.
fn check(e: &Entry) -> Result<(), String> {
    let need = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("{}: action {:?} needs {what}", e.name(), e.action))
        }
    };
    match e.action {
        Action::Unsupported => need("reason", e.reason.is_some()),
        Action::Release | Action::Check => {
            need("owner_arg", e.owner_arg.is_some())?;
            need("reply", e.reply.is_some())
        }
        Action::Acquire | Action::Extend | Action::ExtendOrAcquire => {
            need("owner_arg", e.owner_arg.is_some())?;
            need("ttl_arg", e.ttl_arg.is_some())?;
            need("reply", e.reply.is_some())
        }
    }?;
    if e.action != Action::Unsupported {
        need("body", e.body.is_some())?;
    }
    if [e.owner_arg, e.ttl_arg, e.add_flag.as_ref().map(|f| f.arg)].contains(&Some(0)) {
        return Err(format!("{}: ARGV positions start at 1", e.name()));
    }
    Ok(())
}

impl Catalogue {
    /// Parses a catalogue document.
    ///
    /// # Errors
    /// A malformed document; an entry whose `sha1` is not the SHA1 of its
    /// body (the catalogue must describe exact bytes); an entry missing what
    /// its action needs; two entries with one normalised text but different
    /// actions.
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_sha = HashMap::new();
        let mut by_text: HashMap<String, usize> = HashMap::new();
        for (i, e) in f.script.iter().enumerate() {
            check(e)?;
            if let Some(body) = &e.body {
                let actual = sha1_hex(body.as_bytes());
                if actual != e.sha1 {
                    return Err(format!(
                        "{}: sha1 {} does not match its body ({actual})",
                        e.name(),
                        e.sha1
                    ));
                }
                let norm = normalise(body.as_bytes());
                if let Some(&j) = by_text.get(&norm) {
                    let o: &Entry = &f.script[j];
                    if (o.action, o.reply, o.lock_keys) != (e.action, e.reply, e.lock_keys) {
                        return Err(format!(
                            "{} and {} have the same text but different meanings",
                            o.name(),
                            e.name()
                        ));
                    }
                }
                by_text.insert(norm, i);
            }
            if by_sha.insert(e.sha1.clone(), i).is_some() {
                return Err(format!("{}: sha1 {} listed twice", e.name(), e.sha1));
            }
        }
        Ok(Catalogue {
            entries: f.script,
            signals: f.signal,
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
            Catalogue::parse(include_str!("catalogue.toml")).unwrap_or_default()
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

    /// The lock key a library's signal (wait list) key stands for.
    pub fn lock_for_signal(&self, signal: &[u8]) -> Option<Vec<u8>> {
        self.signals.iter().find_map(|s| {
            let rest = signal.strip_prefix(s.signal_prefix.as_bytes())?;
            let mut key = s.lock_prefix.as_bytes().to_vec();
            key.extend_from_slice(rest);
            Some(key)
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn signals(&self) -> &[Signal] {
        &self.signals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_HEAD: &str = "[[script]]\nlibrary = \"x\"\nversions = \"1\"\nop = \"release\"\n";

    #[test]
    fn builtin_catalogue_parses_and_every_sha1_matches_its_body() {
        let c = Catalogue::parse(include_str!("catalogue.toml")).expect("valid catalogue");
        assert!(c.entries().len() >= 20);
        // Every library the compatibility matrix names has an entry.
        for lib in [
            "redis-py",
            "pottery",
            "python-redis-lock",
            "node-redlock",
            "redsync",
            "rslock",
            "redlock",
            "Redisson",
        ] {
            assert!(
                c.entries().iter().any(|e| e.library == lib),
                "{lib} missing"
            );
        }
    }

    #[test]
    fn reference_sha1s_are_recognised_with_their_meaning() {
        let c = Catalogue::builtin();
        let cases = [
            ("c3f8721cbb97f72bc19e972846bd7aaf91901658", Action::Release),
            ("a4e8783852e6b949f9ef3a97212805108459a890", Action::Extend),
            ("96da70f7716f27d278a5218544df37fd8b0a5e4c", Action::Acquire),
            ("e4612211c9f8f51c257e26e056b0a654b3187242", Action::Release),
            ("e5a322e2634ef59a516e8ea150cb085afafee684", Action::Acquire),
            ("e950836ed1e694540c503ef9972b8de518044d3b", Action::Release),
            (
                "b6b55c439e02c6f52ffb8be7ec8c0d0ac816ea79",
                Action::ExtendOrAcquire,
            ),
            ("90da91872223f85eb1376a17e3c4df21ace8c54b", Action::Release),
            ("f5f7bd3a3aa4a63c507c1155c5ea1219b350d992", Action::Check),
            ("daf86bbf8740dd3ca86733367a016364b2110627", Action::Release),
            ("17a49af0c4b1a9034503fa84f3570f5ca76c4cbf", Action::Extend),
            ("544c68b7ffd46e5d7ccc58a27204557efba43310", Action::Release),
            (
                "149c5a8bf18676fd99e9e6e24923bd64d9b62f94",
                Action::Unsupported,
            ),
        ];
        for (sha, action) in cases {
            let e = c.by_sha(sha.as_bytes()).unwrap_or_else(|| panic!("{sha}"));
            assert_eq!(e.action, action, "{sha}");
        }
        let prl = c
            .by_sha(b"90da91872223f85eb1376a17e3c4df21ace8c54b")
            .and_then(|e| e.reply);
        assert_eq!(
            prl.map(|r| r.ok),
            Some(Code::Int(0)),
            "python-redis-lock: 0 is success"
        );
    }

    #[test]
    fn redis_py_release_is_known_by_sha_and_by_reindented_text() {
        let c = Catalogue::builtin();
        let e = c
            .by_sha(b"c3f8721cbb97f72bc19e972846bd7aaf91901658")
            .expect("redis-py release");
        let body = e.body.clone().unwrap_or_default();
        let reindented = body.replace("        ", "\t");
        assert_eq!(
            c.by_text(reindented.as_bytes()).map(|e| e.action),
            Some(Action::Release)
        );
    }

    #[test]
    fn node_redlock_v4_and_v5_share_a_normalised_text() {
        let c = Catalogue::builtin();
        let v4 = c.by_sha(b"e5a322e2634ef59a516e8ea150cb085afafee684");
        let v5 = c.by_sha(b"96da70f7716f27d278a5218544df37fd8b0a5e4c");
        let (Some(v4), Some(v5)) = (v4, v5) else {
            panic!("both node-redlock acquire scripts are catalogued");
        };
        assert_eq!(
            normalise(v4.body.as_deref().unwrap_or("").as_bytes()),
            normalise(v5.body.as_deref().unwrap_or("").as_bytes())
        );
    }

    #[test]
    fn a_wrong_sha1_in_the_catalogue_is_refused() {
        let doc = format!(
            "{DOC_HEAD}sha1 = \"0000000000000000000000000000000000000000\"\n\
             action = \"release\"\nowner_arg = 1\nreply = {{ ok = 1 }}\nbody = \"return 1\"\n"
        );
        let e = Catalogue::parse(&doc).expect_err("wrong sha1");
        assert!(e.contains("does not match its body"), "{e}");
    }

    #[test]
    fn an_entry_missing_what_its_action_needs_is_refused() {
        let sha = sha1_hex(b"return 1");
        let doc = format!(
            "{DOC_HEAD}sha1 = \"{sha}\"\naction = \"extend\"\nowner_arg = 1\n\
             reply = {{ ok = 1 }}\nbody = \"return 1\"\n"
        );
        let e = Catalogue::parse(&doc).expect_err("no ttl_arg");
        assert!(e.contains("needs ttl_arg"), "{e}");
        let doc = format!("{DOC_HEAD}sha1 = \"{sha}\"\naction = \"unsupported\"\n");
        let e = Catalogue::parse(&doc).expect_err("no reason");
        assert!(e.contains("needs reason"), "{e}");
    }

    #[test]
    fn one_text_with_two_meanings_is_refused() {
        let a = "return 1";
        let b = "return  1";
        let doc = format!(
            "{DOC_HEAD}sha1 = \"{}\"\naction = \"release\"\nowner_arg = 1\n\
             reply = {{ ok = 1 }}\nbody = \"{a}\"\n\n\
             {DOC_HEAD}sha1 = \"{}\"\naction = \"release\"\nowner_arg = 1\n\
             reply = {{ ok = 0, not_held = 1 }}\nbody = \"{b}\"\n",
            sha1_hex(a.as_bytes()),
            sha1_hex(b.as_bytes())
        );
        let e = Catalogue::parse(&doc).expect_err("ambiguous");
        assert!(e.contains("same text"), "{e}");
    }

    #[test]
    fn signal_keys_map_to_their_lock_keys() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.lock_for_signal(b"lock-signal:jobs"),
            Some(b"lock:jobs".to_vec())
        );
        assert_eq!(c.lock_for_signal(b"queue:jobs"), None);
    }

    #[test]
    fn unknown_scripts_are_not_recognised() {
        assert!(Catalogue::builtin()
            .by_text(b"return redis.call('flushall')")
            .is_none());
    }
}
