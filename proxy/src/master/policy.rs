//! The eviction guard: whether a master can drop the gateway's keys on its
//! own, judged from what it reports for `CONFIG GET maxmemory*` (at every
//! connect and every `master.policy_check_ms`) or, when it refuses
//! `CONFIG`, from the policy the operator declared for it.
//!
//! The safety arguments (docs/design.md, *Keys on the masters*) assume a
//! master loses the gateway's keys only by losing everything, which the
//! amnesia guard detects. An evicting policy breaks that one key at a time
//! and silently: `allkeys-*` can drop a fence register (the next token for
//! that key may go backwards), `volatile-*` can drop a lock key before its
//! expiry (a second owner is admitted). So only `noeviction` votes.
//!
//! # Why `maxmemory 0` does not make an evicting policy safe
//! With no memory limit nothing is evicted *today*, but one `CONFIG SET
//! maxmemory` turns eviction on at once, and the gateway would only notice
//! at its next read: up to `policy_check_ms` of silently lost keys, which
//! the token rule cannot take back. The policy is the operator's statement
//! of what the server may do with its keys; a lock service takes it at its
//! word and refuses the vote whatever the limit is now. The fix costs
//! nothing (`CONFIG SET maxmemory-policy noeviction`).
//!
//! Anything the gateway cannot read is judged the safe way: a policy name it
//! does not know counts as evicting, and a refused `CONFIG` with nothing
//! declared counts as unknown. Neither votes.
//!
//! Every byte here comes from a master: nothing is trusted to be UTF-8 or
//! well formed, and nothing panics on it.

use super::Value;

/// What a master's policy allows, as far as the gateway's keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// `noeviction`: keys are lost only with everything, which the amnesia
    /// guard catches. Votes.
    Safe = 0,
    /// An evicting policy (or one the gateway does not know). No vote.
    Evicting = 1,
    /// Neither read nor declared (and before the first read). No vote.
    Unknown = 2,
}

impl Eviction {
    pub(crate) fn from_u8(v: u8) -> Eviction {
        match v {
            0 => Eviction::Safe,
            1 => Eviction::Evicting,
            _ => Eviction::Unknown,
        }
    }
}

/// A judgement with the words the log, `/readyz` and the start-up error
/// show the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub eviction: Eviction,
    /// `allkeys-lru`, or `unknown` when neither read nor declared.
    pub policy: String,
    /// Where the policy came from and what to do about it.
    pub detail: String,
}

/// The fix every warning names.
pub const FIX: &str = "CONFIG SET maxmemory-policy noeviction (and set it in redis.conf)";

/// The command the gateway sends; one glob covers both settings on every
/// Redis version (several names in one `CONFIG GET` need Redis 7).
pub(crate) const CONFIG_GET: [&[u8]; 3] = [b"CONFIG", b"GET", b"maxmemory*"];

/// Judges a master from its answer to [`CONFIG_GET`] (`Ok`) or the error it
/// answered instead (`Err`, e.g. `ERR unknown command` where `CONFIG` is
/// renamed away, `NOPERM` for an ACL user without it), falling back on the
/// operator's `declared` policy only when the master did not say.
pub fn judge(read: Result<&Value, &str>, declared: Option<&str>) -> Verdict {
    let refused = match read {
        Ok(reply) => match settings(reply) {
            Some((policy, maxmemory)) => {
                let eviction = classify(&policy);
                let maxmemory = maxmemory.unwrap_or_else(|| "unknown".into());
                let detail = match eviction {
                    Eviction::Safe => format!("maxmemory-policy noeviction, maxmemory {maxmemory}"),
                    _ => format!(
                        "maxmemory-policy {policy} (maxmemory {maxmemory}) can evict the \
                         gateway's keys; fix: {FIX}"
                    ),
                };
                return Verdict {
                    eviction,
                    policy,
                    detail,
                };
            }
            None => "CONFIG GET maxmemory* did not report maxmemory-policy".to_string(),
        },
        Err(e) => format!("CONFIG GET refused: {}", printable(e.as_bytes())),
    };
    match declared {
        Some(policy) => {
            let eviction = classify(policy);
            let detail = match eviction {
                Eviction::Safe => format!("declared eviction_policy noeviction ({refused})"),
                _ => format!(
                    "declared eviction_policy {policy} can evict the gateway's keys \
                     ({refused}); fix: {FIX}, then declare noeviction"
                ),
            };
            Verdict {
                eviction,
                policy: policy.to_string(),
                detail,
            }
        }
        None => Verdict {
            eviction: Eviction::Unknown,
            policy: "unknown".into(),
            detail: format!(
                "{refused}, and no eviction_policy is declared for this master; make sure it \
                 runs with maxmemory-policy noeviction, then declare eviction_policy = \
                 \"noeviction\" on its [[masters]] entry"
            ),
        },
    }
}

/// `noeviction` votes; every other name, known or not, does not.
fn classify(policy: &str) -> Eviction {
    if policy.eq_ignore_ascii_case("noeviction") {
        Eviction::Safe
    } else {
        Eviction::Evicting
    }
}

/// `(maxmemory-policy, maxmemory)` from the flat name/value array `CONFIG
/// GET` answers with; `None` without a policy.
fn settings(reply: &Value) -> Option<(String, Option<String>)> {
    let Value::Array(items) = reply else {
        return None;
    };
    let text = |v: &Value| match v {
        Value::Bulk(b) | Value::Status(b) => Some(printable(b)),
        _ => None,
    };
    let (mut policy, mut maxmemory) = (None, None);
    for pair in items.chunks_exact(2) {
        let (Some(name), value) = (text(&pair[0]), text(&pair[1])) else {
            continue;
        };
        match name.as_str() {
            "maxmemory-policy" => policy = value,
            "maxmemory" => maxmemory = value,
            _ => {}
        }
    }
    policy.map(|p| (p, maxmemory))
}

/// At most 200 printable ASCII bytes of what a master sent, for logs.
pub(crate) fn printable(b: &[u8]) -> String {
    b.iter()
        .take(200)
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn config_reply(pairs: &[(&str, &str)]) -> Value {
        Value::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [*k, *v])
                .map(|s| Value::Bulk(Bytes::copy_from_slice(s.as_bytes())))
                .collect(),
        )
    }

    #[test]
    fn only_noeviction_votes_whatever_maxmemory_is() {
        for (policy, maxmemory, want) in [
            ("noeviction", "0", Eviction::Safe),
            ("noeviction", "1048576", Eviction::Safe),
            ("allkeys-lru", "1048576", Eviction::Evicting),
            ("allkeys-lfu", "0", Eviction::Evicting),
            ("allkeys-random", "0", Eviction::Evicting),
            ("volatile-lru", "0", Eviction::Evicting),
            ("volatile-lfu", "100", Eviction::Evicting),
            ("volatile-random", "0", Eviction::Evicting),
            ("volatile-ttl", "0", Eviction::Evicting),
            ("some-future-policy", "0", Eviction::Evicting),
        ] {
            let reply = config_reply(&[
                ("maxmemory-eviction-tenacity", "10"),
                ("maxmemory-policy", policy),
                ("maxmemory", maxmemory),
                ("maxmemory-samples", "5"),
            ]);
            let v = judge(Ok(&reply), None);
            assert_eq!(v.eviction, want, "{policy} {maxmemory}");
            assert_eq!(v.policy, policy);
            assert!(v.detail.contains(maxmemory), "{}", v.detail);
            if want != Eviction::Safe {
                assert!(v.detail.contains(FIX), "{}", v.detail);
            }
        }
    }

    #[test]
    fn what_the_master_reports_wins_over_the_declaration() {
        let reply = config_reply(&[("maxmemory-policy", "allkeys-lru"), ("maxmemory", "0")]);
        let v = judge(Ok(&reply), Some("noeviction"));
        assert_eq!(v.eviction, Eviction::Evicting);
    }

    #[test]
    fn a_refused_config_needs_a_declaration() {
        let e = "ERR unknown command 'CONFIG', with args beginning with: 'GET' 'maxmemory*' ";
        let v = judge(Err(e), None);
        assert_eq!(v.eviction, Eviction::Unknown);
        assert!(v.detail.contains("unknown command"), "{}", v.detail);
        assert!(v.detail.contains("eviction_policy"), "{}", v.detail);
        assert_eq!(judge(Err(e), Some("noeviction")).eviction, Eviction::Safe);
        assert_eq!(
            judge(Err(e), Some("volatile-ttl")).eviction,
            Eviction::Evicting
        );
    }

    #[test]
    fn malformed_replies_never_vote_and_never_panic() {
        for reply in [
            Value::Nil,
            Value::Int(3),
            Value::Array(vec![]),
            Value::Array(vec![Value::Bulk(Bytes::from_static(b"maxmemory-policy"))]),
            Value::Array(vec![
                Value::Bulk(Bytes::from_static(b"maxmemory-policy")),
                Value::Int(0),
            ]),
            Value::Array(vec![
                Value::Bulk(Bytes::from_static(b"maxmemory-policy")),
                Value::Bulk(Bytes::from_static(b"\xffnoeviction")),
            ]),
        ] {
            let v = judge(Ok(&reply), None);
            assert_ne!(v.eviction, Eviction::Safe, "{reply:?}");
        }
    }
}
