//! How single values are spelled in the file, for any field that uses the
//! spelling: durations as `*_ms` integers, `0` for "off", empty strings for
//! "unset", the `lock.set_without_ttl` words, password hashes in hex, and
//! the `[[users]]` list, whose errors name the entry's index.
//!
//! A value that is well formed TOML but not a valid setting is reported as
//! [`ConfigError::Invalid`](super::ConfigError::Invalid) naming its key,
//! not as a parse error: serde only carries strings out of a deserializer,
//! so such an error travels as a [`keyed`] message and [`unkeyed`] reads it
//! back at the top.

use std::fmt::Display;
use std::time::Duration;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Separates the key and the reason of a [`keyed`] message: a control
/// character none of the gateway's messages contains (a file that spells a
/// key name with it can at worst turn one refusal into another).
const MARK: char = '\u{1e}';

/// A deserialization error that is really "`key`: `reason`".
pub(super) fn keyed<E: de::Error>(key: &str, reason: impl Display) -> E {
    E::custom(format_args!("{MARK}{key}{MARK}{reason}{MARK}"))
}

/// The key and reason of a [`keyed`] error, wherever in `message` the
/// deserializer put it.
pub(super) fn unkeyed(message: &str) -> Option<(String, String)> {
    let mut parts = message.split(MARK);
    let (_, key, reason) = (parts.next()?, parts.next()?, parts.next()?);
    Some((key.to_string(), reason.to_string()))
}

pub(super) fn yes() -> bool {
    true
}

/// A [`Duration`] as whole milliseconds.
pub(super) mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A timeout in milliseconds where 0 turns it off.
pub(super) mod millis_or_off {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        millis::serialize(&d.unwrap_or_default(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v = u64::deserialize(d)?;
        Ok((v > 0).then(|| Duration::from_millis(v)))
    }
}

/// An optional string where "" (say, an environment variable set empty)
/// counts as unset.
pub(super) mod non_empty {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
    }
}

/// `lock.set_without_ttl`: `"max_ttl"` (true) or `"error"` (false).
pub(super) mod set_without_ttl {
    use super::*;

    pub fn serialize<S: Serializer>(uses_max: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *uses_max { "max_ttl" } else { "error" })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match String::deserialize(d)?.as_str() {
            "max_ttl" => Ok(true),
            "error" => Ok(false),
            other => Err(keyed(
                "lock.set_without_ttl",
                format_args!("must be \"max_ttl\" or \"error\", not {other:?}"),
            )),
        }
    }
}

/// A SHA-256 digest as 64 hex digits (surrounding spaces ignored).
pub(super) mod sha256_hex {
    use super::*;

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.trim())
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| {
                keyed(
                    "password_sha256",
                    "must be 64 hex digits, the SHA-256 of the password \
                     (printf %s 'password' | sha256sum)",
                )
            })
    }
}

/// `[[users]]` (any entry type): an entry's errors on its own keys are
/// named `users[<index>].<key>`.
pub(super) fn users<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Users<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Users<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of [[users]] tables")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut users = Vec::new();
            loop {
                match seq.next_element::<T>() {
                    Ok(Some(u)) => users.push(u),
                    Ok(None) => return Ok(users),
                    Err(e) => {
                        let i = users.len();
                        return Err(match unkeyed(&e.to_string()) {
                            Some((key, reason)) => keyed(&format!("users[{i}].{key}"), reason),
                            None => e,
                        });
                    }
                }
            }
        }
    }

    d.deserialize_seq(Users(std::marker::PhantomData))
}
