//! The configuration as a tree of keys (its serde form as a JSON value):
//! the one view the environment overlay, the reload diff and the check of
//! the documentation are derived from, so none of them lists the settings.
//!
//! Every key has a value in the tree, set or not: an unset optional value
//! is `null`, an absent TLS listener is its section's defaults. A key's
//! path is its section and name joined by a dot (`lock.max_ttl_ms`); the
//! master list and the users are arrays, each one key as a whole.

use serde_json::Value;

use super::policy::Reload;
use super::schema::{Config, MasterConfig, UserConfig};

/// `config` as a tree.
pub(super) fn of(config: &Config) -> Value {
    // Every field serializes to a JSON value: strings, integers, finite
    // floats (validated ones; a NaN becomes null), booleans, and arrays.
    serde_json::to_value(config).unwrap_or(Value::Null)
}

/// The value at `path` (`None` for a path the tree does not have).
pub(super) fn get<'v>(tree: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(tree, |v, k| v.get(k))
}

/// Every key of the schema, by path, with its default value, in a stable
/// (sorted) order. Arrays are one key each.
pub fn keys() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    collect(&of(&Config::default()), "", &mut out);
    out
}

fn collect(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect(v, &path, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// The keys of one entry of each array: `masters` and `users`.
pub fn entry_keys() -> Vec<(&'static str, Vec<String>)> {
    let names = |v: Value| match v {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let user = UserConfig {
        name: String::new(),
        password_sha256: [0; 32],
        commands: Vec::new(),
        keys: Vec::new(),
        enabled: true,
    };
    vec![
        (
            "masters",
            names(serde_json::to_value(MasterConfig::plain("")).unwrap_or_default()),
        ),
        (
            "users",
            names(serde_json::to_value(user).unwrap_or_default()),
        ),
    ]
}

/// The keys whose value differs between `old` and `new`, with their reload
/// policy, in the order of [`Config::reload_policies`].
pub fn changes(old: &Config, new: &Config) -> Vec<(&'static str, Reload)> {
    let (old, new) = (of(old), of(new));
    Config::reload_policies()
        .filter(|(path, _)| get(&old, path) != get(&new, path))
        .collect()
}
