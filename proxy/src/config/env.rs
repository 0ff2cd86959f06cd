//! `LOCKGATE_*` environment overrides. Each key's variable is derived from
//! its path: `LOCKGATE_` and the path in upper case with `.` as `_`
//! (`[lock] max_ttl_ms` is `LOCKGATE_LOCK_MAX_TTL_MS`, top-level `listen` is
//! `LOCKGATE_LISTEN`). Every variable the gateway has ever read follows
//! that rule, so there are no aliases.
//!
//! The one exception is the master list, an array no path names:
//! `LOCKGATE_MASTERS` (comma-separated addresses, replacing the file's
//! list), and `LOCKGATE_MASTERS_USERNAME`, `LOCKGATE_MASTERS_PASSWORD`,
//! `LOCKGATE_MASTERS_TLS` and `LOCKGATE_MASTERS_EVICTION_POLICY`, which set
//! the same value on every master.
//! `[[users]]` come from the file only.
//!
//! A variable is parsed as its key's type (numbers and booleans with
//! surrounding spaces ignored, strings verbatim); one that does not parse
//! is an error naming the variable.

use serde::Deserialize;
use serde_json::{Number, Value};

use super::error::{invalid, ConfigError};
use super::schema::{Config, MasterConfig};
use super::{fields, tree};

/// The variables of the master list, which no key path derives.
pub const MASTER_LIST: [&str; 5] = [
    "LOCKGATE_MASTERS",
    "LOCKGATE_MASTERS_USERNAME",
    "LOCKGATE_MASTERS_PASSWORD",
    "LOCKGATE_MASTERS_TLS",
    "LOCKGATE_MASTERS_EVICTION_POLICY",
];

/// The variable that overrides the key at `path`.
pub fn var(path: &str) -> String {
    format!("LOCKGATE_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// Every key an environment variable may set, with its variable: the
/// schema's keys except the arrays.
pub fn vars() -> Vec<(String, String)> {
    tree::keys()
        .into_iter()
        .filter(|(_, default)| !default.is_array())
        .map(|(path, _)| {
            let v = var(&path);
            (path, v)
        })
        .collect()
}

/// Builds the configuration from the file's tree (`file`, an empty object
/// without a file) and the environment.
///
/// # Errors
/// A variable that does not parse as its key's type, naming the variable;
/// an invalid value of a key that is checked while parsing (after the
/// environment had its say, so a variable may override a bad file value),
/// naming the key.
pub(super) fn apply(
    file: Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut overrides = Vec::new();
    for (path, default) in tree::keys() {
        if default.is_array() {
            continue;
        }
        let name = var(&path);
        let Some(raw) = env(&name) else { continue };
        let value = typed(&default, &raw).ok_or_else(|| cannot_parse(&name, &raw))?;
        // Of the right kind but out of its field's range (a u32 past 2^32):
        // parsed alone, over the defaults, it fails to parse. An invalid
        // value (`lock.bootstrap`) is judged on the merged tree below.
        let mut alone = Value::Object(Default::default());
        set(&mut alone, &path, value.clone());
        if let Err(ConfigError::Parse(_)) = from_tree(&alone) {
            return Err(cannot_parse(&name, &raw));
        }
        overrides.push((path, value));
    }
    let masters = MasterList::read(env)?;
    let mut merged = file;
    for (path, value) in overrides {
        set(&mut merged, &path, value);
    }
    let mut config = from_tree(&merged)?;
    masters.apply(&mut config);
    Ok(config)
}

fn cannot_parse(var: &str, raw: &str) -> ConfigError {
    invalid(var, format!("cannot parse {raw:?}"))
}

/// `raw` as a value of the default's type; strings (and the unset
/// optional strings, `null`) verbatim.
fn typed(default: &Value, raw: &str) -> Option<Value> {
    let s = raw.trim();
    Some(match default {
        Value::Bool(_) => Value::Bool(s.parse().ok()?),
        Value::Number(n) if n.is_f64() => Value::Number(Number::from_f64(s.parse().ok()?)?),
        Value::Number(_) => Value::Number(s.parse::<u64>().ok()?.into()),
        _ => Value::String(raw.to_string()),
    })
}

/// Sets the value at `path`, creating the section if the file has none.
fn set(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let mut parts = path.split('.').peekable();
    while let Some(k) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        let Value::Object(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(k.to_string(), value);
            return;
        }
        node = map
            .entry(k)
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

fn from_tree(tree: &Value) -> Result<Config, ConfigError> {
    Config::deserialize(tree).map_err(|e| {
        let msg = e.to_string();
        match fields::unkeyed(&msg) {
            Some((key, reason)) => ConfigError::Invalid { key, reason },
            None => ConfigError::Parse(msg),
        }
    })
}

/// The master-list variables, read (and parsed) before the overlay and
/// applied over the list the file gave.
struct MasterList {
    addresses: Option<String>,
    username: Option<String>,
    password: Option<String>,
    tls: Option<bool>,
    eviction_policy: Option<String>,
}

impl MasterList {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> Result<MasterList, ConfigError> {
        let [addresses, username, password, tls, eviction_policy] = MASTER_LIST;
        let tls = match env(tls) {
            None => None,
            Some(raw) => Some(raw.trim().parse().map_err(|_| cannot_parse(tls, &raw))?),
        };
        Ok(MasterList {
            addresses: env(addresses),
            username: env(username),
            password: env(password),
            tls,
            eviction_policy: env(eviction_policy),
        })
    }

    fn apply(self, c: &mut Config) {
        if let Some(list) = self.addresses {
            c.masters = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(MasterConfig::plain)
                .collect();
        }
        // One ACL user on every master is the common case, and lets a
        // Kubernetes Secret or a systemd credential supply the password
        // without writing it into the configuration file.
        for m in &mut c.masters {
            if let Some(u) = &self.username {
                m.username = Some(u.clone());
            }
            if let Some(p) = &self.password {
                m.password = Some(p.clone());
            }
            if let Some(t) = self.tls {
                m.tls = t;
            }
            // A managed service that refuses CONFIG usually does so for
            // every master of the deployment, with one policy for all.
            if let Some(p) = &self.eviction_policy {
                m.eviction_policy = Some(p.trim().to_string());
            }
        }
    }
}
