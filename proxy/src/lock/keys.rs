//! Names of the keys the gateway keeps on each master besides the lock keys:
//! the per-lock fence register and the master metadata record.
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
    fn registers_of_different_keys_differ() {
        assert_ne!(fence_key("p:", b"a"), fence_key("p:", b"b"));
        assert_ne!(fence_key("p:", b"{t}a"), fence_key("p:", b"{t}b"));
    }
}
