//! Every key name the gateway uses on a master, decided here and nowhere
//! else: the per-lock fence register, the master metadata record, the hold
//! count of a reentrant lock and the structures of the holder kinds
//! (read-write locks, semaphores). docs/design.md, *Keys on the masters*,
//! describes the layout; the kinds only arrange these names into the KEYS
//! order of their scripts.
//!
//! A fence register shares its lock key's Redis Cluster hash slot, so the
//! acquire script touches one slot per lock: when the lock key has a hash tag
//! (`{...}` with content), the register reuses it; otherwise the whole lock
//! key becomes the register's tag. The one case this cannot cover is a key
//! without a tag that contains `}` (its wrapped form would end the tag early);
//! such registers still work on standalone masters, which is what lockgate
//! runs on.

use bytes::{BufMut, Bytes, BytesMut};

/// The hash tag Redis Cluster would use for `key`, if it has one.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

/// The fence register of lock key `key`, under `prefix`.
pub fn fence_key(prefix: &str, key: &[u8]) -> Bytes {
    beside(prefix, b"fence:", key)
}

/// The hold count of reentrant lock key `key`, under `prefix`; in the same
/// hash slot as the key and its fence register.
pub fn holds_key(prefix: &str, key: &[u8]) -> Bytes {
    beside(prefix, b"holds:", key)
}

/// The name of one of a holder kind's structures on the masters:
/// `{prefix}{kind}:{tag}:{part}`. The tag is the user key's hash tag, or the
/// whole key, exactly as for its fence register ([`fence_key`]), so every key
/// a script touches shares one Redis Cluster slot. The `kind` namespace keeps
/// these apart from plain lock keys of the same name.
pub fn kind_key(prefix: &str, kind: &str, key: &[u8], part: &str) -> Bytes {
    let mut ns = BytesMut::with_capacity(kind.len() + 1);
    ns.put_slice(kind.as_bytes());
    ns.put_u8(b':');
    let mut out = BytesMut::from(&beside(prefix, &ns, key)[..]);
    out.put_u8(b':');
    out.put_slice(part.as_bytes());
    out.freeze()
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
    /// The user key's fence register, shared with every kind.
    pub fence: Bytes,
}

/// The names of the read-write lock `key`, under `prefix`.
pub fn rw(prefix: &str, key: &[u8]) -> RwNames {
    RwNames {
        readers: kind_key(prefix, "rw", key, "r"),
        writer: kind_key(prefix, "rw", key, "w"),
        tokens: kind_key(prefix, "rw", key, "t"),
        intent: kind_key(prefix, "rw", key, "i"),
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
    /// The user key's fence register, shared with every kind.
    pub fence: Bytes,
}

/// The names of the semaphore `key`, under `prefix`.
pub fn sem(prefix: &str, key: &[u8]) -> SemNames {
    SemNames {
        holders: kind_key(prefix, "sem", key, "h"),
        tokens: kind_key(prefix, "sem", key, "t"),
        slots: kind_key(prefix, "sem", key, "s"),
        permits: kind_key(prefix, "sem", key, "n"),
        fence: fence_key(prefix, key),
    }
}

/// `prefix` + `kind` + the key wrapped so it shares the key's hash slot.
fn beside(prefix: &str, kind: &[u8], key: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + key.len() + kind.len() + 4);
    out.put_slice(prefix.as_bytes());
    out.put_slice(kind);
    match hash_tag(key) {
        Some(tag) => {
            out.put_u8(b'{');
            out.put_slice(tag);
            out.put_slice(b"}:");
            out.put_slice(key);
        }
        None => {
            out.put_u8(b'{');
            out.put_slice(key);
            out.put_u8(b'}');
        }
    }
    out.freeze()
}

/// The metadata record (incarnation, floor, high-water mark) of a master.
pub fn meta_key(prefix: &str) -> Bytes {
    Bytes::from(format!("{prefix}meta"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_without_tag_becomes_the_tag_of_its_register() {
        assert_eq!(&fence_key("lg:", b"orders")[..], b"lg:fence:{orders}");
        assert_eq!(hash_tag(&fence_key("lg:", b"orders")), Some(&b"orders"[..]));
    }

    #[test]
    fn key_with_tag_shares_its_tag_with_the_register() {
        let f = fence_key("lg:", b"job:{42}:lock");
        assert_eq!(&f[..], b"lg:fence:{42}:job:{42}:lock");
        assert_eq!(hash_tag(&f), hash_tag(b"job:{42}:lock"));
    }

    #[test]
    fn empty_braces_are_not_a_tag() {
        assert_eq!(hash_tag(b"a{}b"), None);
        assert_eq!(hash_tag(&fence_key("lg:", b"a{}b")), Some(&b"a{"[..]));
    }

    #[test]
    fn hold_counts_share_the_slot_of_their_key() {
        assert_eq!(&holds_key("lg:", b"orders")[..], b"lg:holds:{orders}");
        assert_eq!(
            hash_tag(&holds_key("lg:", b"job:{42}:lock")),
            hash_tag(b"job:{42}:lock")
        );
        assert_ne!(holds_key("lg:", b"k"), fence_key("lg:", b"k"));
    }

    #[test]
    fn kind_keys_share_the_fence_registers_slot() {
        let k = kind_key("lg:", "rw", b"orders", "r");
        assert_eq!(&k[..], b"lg:rw:{orders}:r");
        assert_eq!(hash_tag(&k), hash_tag(&fence_key("lg:", b"orders")));
        let t = kind_key("lg:", "sem", b"job:{42}", "h");
        assert_eq!(&t[..], b"lg:sem:{42}:job:{42}:h");
    }

    #[test]
    fn kind_keys_never_collide_with_plain_lock_keys() {
        // A plain lock key is the user key itself; a kind key always starts
        // with the prefix and the kind's namespace.
        let k = kind_key("", "rw", b"x", "w");
        assert_ne!(&k[..], b"x");
        assert_ne!(
            kind_key("p:", "rw", b"x", "w"),
            kind_key("p:", "sem", b"x", "w")
        );
        assert_ne!(rw("p:", b"x").tokens, sem("p:", b"x").tokens);
    }

    #[test]
    fn registers_of_different_keys_differ() {
        assert_ne!(fence_key("p:", b"a"), fence_key("p:", b"b"));
        assert_ne!(fence_key("p:", b"{t}a"), fence_key("p:", b"{t}b"));
    }
}
