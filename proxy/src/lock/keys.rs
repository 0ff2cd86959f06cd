//! Every key name the gateway uses on a master, decided here and nowhere
//! else: the key a client's lock lives in, the per-lock fence register, the
//! master metadata record, the hold count of a reentrant lock and the
//! structures of the holder kinds (read-write locks, semaphores).
//! docs/design.md, *Keys on the masters*, describes the layout; the kinds
//! only arrange these names into the KEYS order of their scripts, and every
//! key they send is built here from the client's key.
//!
//! # Layout ([`LAYOUT_VERSION`] 2)
//! With `P` the configured `lock.key_prefix` and `k` the key a client names:
//!
//! | what                          | name on a master            |
//! |-------------------------------|-----------------------------|
//! | the lock (plain, reentrant)   | `P` `c:` body(k)            |
//! | its fence register            | `P` `i:fence:` body(k)      |
//! | reentrant hold count          | `P` `i:holds:` body(k)      |
//! | read-write structures         | `P` `i:rw:<part>:` body(k)  |
//! | semaphore structures          | `P` `i:sem:<part>:` body(k) |
//! | the metadata record           | `P` `i:meta`                |
//!
//! body(k) is `k` itself behind one marker byte that says how the hash slot
//! is carried:
//! - `{` k `}` when `k` has no hash tag, is not empty and holds no `}`: the
//!   whole key becomes the tag, so every name of `k` has the slot `k` alone
//!   would have (this is the common case: `orders` -> `P c:{orders}`);
//! - `=` k when `k` has a hash tag: `P`, the head and `=` hold no braces, so
//!   the first tag Redis Cluster finds is `k`'s own;
//! - `#{#}` k otherwise (an empty key, or one with a `}` but no tag): every
//!   such key shares the constant tag `#`.
//!
//! So a lock key and all its companions share one Redis Cluster slot, and
//! for keys of the first two forms it is the slot of the client's own key.
//! That holds when `P` has no `{`; the non-collision argument below does not
//! depend on it.
//!
//! # Why no client key can reach an internal key
//! The gateway sends a master only names built by the functions of this
//! module, and its scripts touch only the KEYS they are given. Write every
//! name as `P` + rest. The rest of a client name starts with `c:`; the rest
//! of every internal name starts with `i:`. So for *any* byte string `k` a
//! client sends (empty, binary, with braces, starting with `P`, or spelling
//! out `P i:fence:...`), the lock key of `k` differs from every internal
//! key at the byte right after `P`: a client lock whose name looks internal
//! is just a client lock of that name. Within each namespace names are
//! unique too:
//! - the heads (`c:`, `i:fence:`, `i:holds:`, `i:rw:r:`, ...) and the fixed
//!   names (`i:meta`) form a prefix code: none is a prefix of another, so a
//!   name determines its head;
//! - body(k) is a fixed affix around `k` chosen by its first byte (`{`, `=`
//!   or `#`, which differ), so a body determines its form and then `k`.
//!
//! Hence the mapping (what, k) -> name is injective: two different keys or
//! two different structures never share a name, and the tests below check
//! it over arbitrary byte strings, with a negative control on the previous
//! layout (client keys sent as-is beside `P fence:{k}`), which collides.
//!
//! # Sizes
//! A name is the client key plus at most `len(P)` + 12 bytes
//! ([`overhead`]); `limits.max_key_bytes` bounds the client's key, not the
//! name on the masters.

use bytes::{BufMut, Bytes, BytesMut};

/// The version of this layout, for the metadata record: a gateway of
/// another layout uses other names for the same lock, so the two must never
/// serve one master set. Version 1 sent client keys as they were, beside
/// `P fence:{k}` and `P meta`.
pub const LAYOUT_VERSION: u32 = 2;

/// The head of every client lock key, after the prefix.
const CLIENT: &[u8] = b"c:";
/// The heads of the internal names derived from a client key.
const FENCE: &[u8] = b"i:fence:";
const HOLDS: &[u8] = b"i:holds:";
const RW_READERS: &[u8] = b"i:rw:r:";
const RW_WRITER: &[u8] = b"i:rw:w:";
const RW_TOKENS: &[u8] = b"i:rw:t:";
const RW_INTENT: &[u8] = b"i:rw:i:";
const SEM_HOLDERS: &[u8] = b"i:sem:h:";
const SEM_TOKENS: &[u8] = b"i:sem:t:";
const SEM_SLOTS: &[u8] = b"i:sem:s:";
const SEM_PERMITS: &[u8] = b"i:sem:n:";
/// The fixed internal names (no client key in them).
const META: &[u8] = b"i:meta";

/// Every head an internal name derived from a client key starts with.
#[cfg(test)]
const INTERNAL_HEADS: &[&[u8]] = &[
    FENCE,
    HOLDS,
    RW_READERS,
    RW_WRITER,
    RW_TOKENS,
    RW_INTENT,
    SEM_HOLDERS,
    SEM_TOKENS,
    SEM_SLOTS,
    SEM_PERMITS,
];

/// The longest head plus the longest body affix: what a name adds to the
/// client key besides the prefix.
const MAX_HEAD: usize = 8;
const MAX_AFFIX: usize = 4;

/// Bytes a name on the masters adds to a client key under `prefix`, at
/// most.
pub fn overhead(prefix: &str) -> usize {
    prefix.len() + MAX_HEAD + MAX_AFFIX
}

/// The hash tag Redis Cluster would use for `key`, if it has one.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

/// `prefix` + `head` + body(`key`) (see the module notes).
fn name(prefix: &str, head: &[u8], key: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + head.len() + key.len() + MAX_AFFIX);
    out.put_slice(prefix.as_bytes());
    out.put_slice(head);
    if hash_tag(key).is_some() {
        out.put_u8(b'=');
        out.put_slice(key);
    } else if !key.is_empty() && !key.contains(&b'}') {
        out.put_u8(b'{');
        out.put_slice(key);
        out.put_u8(b'}');
    } else {
        out.put_slice(b"#{#}");
        out.put_slice(key);
    }
    out.freeze()
}

/// The key the lock a client names `key` lives in (plain and reentrant
/// locks, and every drop-in command and library script).
pub fn lock_key(prefix: &str, key: &[u8]) -> Bytes {
    name(prefix, CLIENT, key)
}

/// The lock keys of `keys`, in order.
pub fn lock_keys(prefix: &str, keys: &[Bytes]) -> Vec<Bytes> {
    keys.iter().map(|k| lock_key(prefix, k)).collect()
}

/// A `KEYS` / `SCAN MATCH` pattern for the lock keys of the client keys that
/// start with `start` and have neither a hash tag nor a `}` (the common
/// form), for tools and tests that look at the masters; glob characters in
/// `prefix` and `start` are escaped. `None` when `start` holds a brace.
pub fn lock_key_glob(prefix: &str, start: &[u8]) -> Option<Vec<u8>> {
    if start.iter().any(|&b| b == b'{' || b == b'}') {
        return None;
    }
    let mut out = Vec::with_capacity(prefix.len() + start.len() + 8);
    push_escaped(prefix.as_bytes(), &mut out);
    push_escaped(CLIENT, &mut out);
    out.push(b'{');
    push_escaped(start, &mut out);
    out.extend_from_slice(b"*}");
    Some(out)
}

/// `bytes` with the glob characters of `KEYS` patterns escaped.
fn push_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// The fence register of the client key `key`, under `prefix`; every kind
/// on `key` shares it.
pub fn fence_key(prefix: &str, key: &[u8]) -> Bytes {
    name(prefix, FENCE, key)
}

/// The hold count of reentrant lock `key`, under `prefix`; in the same hash
/// slot as the lock key and its fence register.
pub fn holds_key(prefix: &str, key: &[u8]) -> Bytes {
    name(prefix, HOLDS, key)
}

/// The structures of the read-write lock `key` (`rw_acquire.lua`).
#[derive(Debug, Clone)]
pub struct RwNames {
    /// Sorted set owner -> expiry of the readers.
    pub readers: Bytes,
    /// Sorted set with at most one member: the writer.
    pub writer: Bytes,
    /// Hash owner -> fencing token.
    pub tokens: Bytes,
    /// A waiting writer's intent marker.
    pub intent: Bytes,
    /// The client key's fence register, shared with every kind.
    pub fence: Bytes,
}

/// The names of the read-write lock `key`, under `prefix`.
pub fn rw(prefix: &str, key: &[u8]) -> RwNames {
    RwNames {
        readers: name(prefix, RW_READERS, key),
        writer: name(prefix, RW_WRITER, key),
        tokens: name(prefix, RW_TOKENS, key),
        intent: name(prefix, RW_INTENT, key),
        fence: fence_key(prefix, key),
    }
}

/// The structures of the semaphore `key` (`sem_acquire.lua`).
#[derive(Debug, Clone)]
pub struct SemNames {
    /// Sorted set owner -> expiry of the holders.
    pub holders: Bytes,
    /// Hash owner -> fencing token.
    pub tokens: Bytes,
    /// Hash owner -> permit slot.
    pub slots: Bytes,
    /// The permit count stored while the semaphore is in use.
    pub permits: Bytes,
    /// The client key's fence register, shared with every kind.
    pub fence: Bytes,
}

/// The names of the semaphore `key`, under `prefix`.
pub fn sem(prefix: &str, key: &[u8]) -> SemNames {
    SemNames {
        holders: name(prefix, SEM_HOLDERS, key),
        tokens: name(prefix, SEM_TOKENS, key),
        slots: name(prefix, SEM_SLOTS, key),
        permits: name(prefix, SEM_PERMITS, key),
        fence: fence_key(prefix, key),
    }
}

/// The metadata record (incarnation, floor, high-water mark) of a master.
pub fn meta_key(prefix: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + META.len());
    out.put_slice(prefix.as_bytes());
    out.put_slice(META);
    out.freeze()
}

/// The metadata record's name in layout 1 (`P meta`), so that a gateway of
/// this layout can tell a master set that an older gateway initialised.
pub fn v1_meta_key(prefix: &str) -> Bytes {
    Bytes::from(format!("{prefix}meta"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every internal name `key` gives rise to, under `prefix`.
    fn internal_names(prefix: &str, key: &[u8]) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = INTERNAL_HEADS
            .iter()
            .map(|h| name(prefix, h, key))
            .collect();
        let r = rw(prefix, key);
        let s = sem(prefix, key);
        out.extend([r.readers, r.writer, r.tokens, r.intent, r.fence]);
        out.extend([s.holders, s.tokens, s.slots, s.permits, s.fence]);
        out.push(holds_key(prefix, key));
        out
    }

    /// A layout, as the non-collision check sees it: the name of a client
    /// key's lock, and the internal names of a client key.
    struct Layout {
        client: fn(&str, &[u8]) -> Bytes,
        internal: fn(&str, &[u8]) -> Vec<Bytes>,
        meta: fn(&str) -> Bytes,
    }

    const CURRENT: Layout = Layout {
        client: lock_key,
        internal: internal_names,
        meta: meta_key,
    };

    /// Layout 1, kept only as the negative control: client keys as-is,
    /// registers at `P fence:{k}`, the record at `P meta`.
    const V1: Layout = Layout {
        client: |_, k| Bytes::copy_from_slice(k),
        internal: |p, k| {
            let mut out = BytesMut::from(p.as_bytes());
            out.put_slice(b"fence:");
            match hash_tag(k) {
                Some(t) => {
                    out.put_u8(b'{');
                    out.put_slice(t);
                    out.put_slice(b"}:");
                    out.put_slice(k);
                }
                None => {
                    out.put_u8(b'{');
                    out.put_slice(k);
                    out.put_u8(b'}');
                }
            }
            vec![out.freeze()]
        },
        meta: v1_meta_key,
    };

    /// The first collision among the names of `keys` under `layout`: a
    /// client name equal to any internal name, or two different (what, key)
    /// pairs sharing a name.
    fn collision(layout: &Layout, prefix: &str, keys: &[Vec<u8>]) -> Option<String> {
        let mut seen: std::collections::HashMap<Bytes, String> = std::collections::HashMap::new();
        let mut add = |n: Bytes, what: String| -> Option<String> {
            match seen.get(&n) {
                Some(other) if *other != what => Some(format!("{other} and {what} share {n:?}")),
                _ => {
                    seen.insert(n, what);
                    None
                }
            }
        };
        if let Some(c) = add((layout.meta)(prefix), "meta".into()) {
            return Some(c);
        }
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        for k in &keys {
            if let Some(c) = add((layout.client)(prefix, k), format!("client {k:?}")) {
                return Some(c);
            }
            for (i, n) in (layout.internal)(prefix, k).into_iter().enumerate() {
                // The same structure listed twice (rw.fence and fence) is
                // not a collision: only a different role is.
                let role = format!("internal {k:?} #{}", role_of(&n, prefix, i));
                if let Some(c) = add(n, role) {
                    return Some(c);
                }
            }
        }
        None
    }

    /// The head of an internal name, as its role (position-independent).
    fn role_of(n: &[u8], prefix: &str, i: usize) -> String {
        let rest = &n[prefix.len().min(n.len())..];
        INTERNAL_HEADS
            .iter()
            .find(|h| rest.starts_with(h))
            .map_or_else(
                || i.to_string(),
                |h| String::from_utf8_lossy(h).into_owned(),
            )
    }

    /// Keys that aim at the gateway's own names under `prefix`.
    fn hostile(prefix: &str, victim: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![victim.to_vec(), Vec::new(), prefix.as_bytes().to_vec()];
        for layout in [&CURRENT, &V1] {
            out.push((layout.meta)(prefix).to_vec());
            out.push((layout.client)(prefix, victim).to_vec());
            for n in (layout.internal)(prefix, victim) {
                out.push(n.to_vec());
                // The body alone, and the name without the prefix.
                out.push(n[prefix.len()..].to_vec());
            }
        }
        out
    }

    fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = prop::sample::select(vec![
            b'{', b'}', b'=', b'#', b':', b'c', b'i', b'l', b'g', b'a', 0u8, 0xff,
        ]);
        prop_oneof![
            prop::collection::vec(alphabet, 0..12),
            prop::collection::vec(any::<u8>(), 0..12),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn no_client_key_maps_onto_an_internal_name(
            keys in prop::collection::vec(key_bytes(), 1..8),
            victim in key_bytes(),
            prefix in prop::sample::select(vec!["lockgate:", "lg:", "{p}", "c:", "i:", "x"]),
        ) {
            let mut all = keys.clone();
            all.extend(hostile(prefix, &victim));
            // Names derived from names: a client that locks a name it
            // read off the masters.
            let derived: Vec<Vec<u8>> = all.iter().map(|k| lock_key(prefix, k).to_vec()).collect();
            all.extend(derived);
            prop_assert_eq!(collision(&CURRENT, prefix, &all), None);
        }

        #[test]
        fn every_name_of_a_key_shares_its_lock_keys_slot(
            key in key_bytes(),
            prefix in prop::sample::select(vec!["lockgate:", "lg:", "x"]),
        ) {
            let lock = lock_key(prefix, &key);
            let tag = hash_tag(&lock);
            prop_assert!(tag.is_some());
            for n in internal_names(prefix, &key) {
                prop_assert_eq!(hash_tag(&n), tag);
            }
            prop_assert!(lock.len() <= key.len() + overhead(prefix));
        }
    }

    #[test]
    fn the_check_catches_the_previous_layout() {
        // Negative control: the same check, run on layout 1, finds the
        // attack of a client locking `P fence:{x}`.
        let keys = hostile("lockgate:", b"x");
        let found = collision(&V1, "lockgate:", &keys);
        assert!(found.is_some(), "layout 1 must collide");
        assert!(collision(
            &V1,
            "lockgate:",
            &[b"x".to_vec(), b"lockgate:fence:{x}".to_vec()]
        )
        .is_some());
        assert_eq!(collision(&CURRENT, "lockgate:", &keys), None);
    }

    #[test]
    fn heads_and_fixed_names_form_a_prefix_code() {
        let mut all: Vec<&[u8]> = INTERNAL_HEADS.to_vec();
        all.push(CLIENT);
        all.push(META);
        for (i, a) in all.iter().enumerate() {
            assert!(a.len() <= MAX_HEAD);
            for (j, b) in all.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{a:?} is a prefix of {b:?}");
                }
            }
            let internal = i < INTERNAL_HEADS.len() || *a == META;
            assert_eq!(a.starts_with(b"i:"), internal);
        }
    }

    #[test]
    fn the_three_body_forms() {
        assert_eq!(&lock_key("lg:", b"orders")[..], b"lg:c:{orders}");
        assert_eq!(&fence_key("lg:", b"orders")[..], b"lg:i:fence:{orders}");
        assert_eq!(
            &lock_key("lg:", b"job:{42}:lock")[..],
            b"lg:c:=job:{42}:lock"
        );
        assert_eq!(
            hash_tag(&lock_key("lg:", b"job:{42}:lock")),
            Some(&b"42"[..])
        );
        assert_eq!(&lock_key("lg:", b"a{}b}")[..], b"lg:c:#{#}a{}b}");
        assert_eq!(&lock_key("lg:", b"")[..], b"lg:c:#{#}");
        assert_eq!(&meta_key("lg:")[..], b"lg:i:meta");
        assert_eq!(&v1_meta_key("lg:")[..], b"lg:meta");
    }

    #[test]
    fn the_lock_key_glob_matches_lock_keys_only() {
        let g = lock_key_glob("lg:", b"chaos:7:").unwrap_or_default();
        assert_eq!(&g[..], b"lg:c:{chaos:7:*}");
        assert_eq!(lock_key_glob("lg:", b"a{"), None);
        assert_eq!(
            lock_key_glob("l*g:", b"a?").unwrap_or_default(),
            b"l\\*g:c:{a\\?*}".to_vec()
        );
    }

    #[test]
    fn a_key_that_looks_internal_is_a_client_key() {
        let fence_of_x = fence_key("lockgate:", b"x");
        let k = lock_key("lockgate:", &fence_of_x);
        assert!(k.starts_with(b"lockgate:c:"));
        assert_ne!(k, fence_of_x);
        assert_ne!(
            lock_key("lockgate:", b"lockgate:i:meta"),
            meta_key("lockgate:")
        );
    }

    #[test]
    fn structures_of_different_kinds_differ() {
        assert_ne!(rw("p:", b"x").tokens, sem("p:", b"x").tokens);
        assert_ne!(holds_key("p:", b"k"), fence_key("p:", b"k"));
        assert_eq!(rw("p:", b"x").fence, sem("p:", b"x").fence);
    }
}
