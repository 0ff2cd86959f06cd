//! Configuration: a TOML file, overridden by `LOCKGATE_*` environment
//! variables, then validated. Each setting is declared once, as a field of
//! the serde schema in [`schema`] with its default and its reload policy
//! beside it; everything else is derived from that schema:
//!
//! - `error`: the error that names the key;
//! - `fields`: how single values are spelled (durations as `*_ms`
//!   integers, the few words and hex strings) and the errors that name a key;
//! - [`tree`]: the configuration as a tree of key paths;
//! - [`mod@env`]: the environment overlay, one variable per key path;
//! - [`policy`]: what a live reload does with a change to each key;
//! - `validate`: impossible values, section by section, and the TLS files.
//!
//! Every duration is held as a [`std::time::Duration`]; milliseconds appear
//! only in the file's key names.

pub mod env;
mod error;
mod fields;
pub mod policy;
pub mod schema;
pub mod tree;
mod validate;

pub use error::ConfigError;
pub use policy::Reload;
pub use schema::{
    Bootstrap, Config, Limits, LockConfig, MasterConfig, MasterTls, MasterTuning, TlsListen,
    UserConfig, EVICTION_POLICIES, USER_FAMILIES,
};
pub use validate::is_loopback_listen;

/// A file that does not fit the schema: an invalid value names its key; a
/// syntax error, an unknown key or a wrong type keeps the TOML parser's
/// message with its line (prefixed by the file's path when there is one).
fn file_error(e: &toml::de::Error, path: Option<&str>) -> ConfigError {
    if let Some((key, reason)) = fields::unkeyed(e.message()) {
        return ConfigError::Invalid { key, reason };
    }
    ConfigError::Parse(match path {
        Some(p) => format!("{p}: {e}"),
        None => e.to_string(),
    })
}

impl Config {
    /// Majority quorum over the configured masters.
    pub fn quorum(&self) -> usize {
        self.masters.len() / 2 + 1
    }

    /// Whether clients must authenticate before running commands: a
    /// `requirepass` or any `[[users]]`.
    pub fn auth_required(&self) -> bool {
        self.requirepass.is_some() || !self.users.is_empty()
    }

    /// Parses a TOML document (no environment, no validation).
    ///
    /// # Errors
    /// Unknown keys and wrongly typed values, naming the key.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| file_error(&e, None))
    }

    /// Loads `path` (or only defaults when `None`), applies `LOCKGATE_*`
    /// overrides read through `env`, and validates.
    ///
    /// # Errors
    /// Unreadable file, unknown keys, impossible values; the message names
    /// the key.
    pub fn load(
        path: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::load_unvalidated(path, env)?.validate()
    }

    /// [`Config::load`] without the final validation, so command-line flags
    /// can still be applied before it.
    ///
    /// # Errors
    /// Unreadable file, unknown keys, unparsable values.
    pub fn load_unvalidated(
        path: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let Some(p) = path else {
            return env::apply(serde_json::Value::Object(Default::default()), env);
        };
        let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.to_string(),
            source,
        })?;
        // Parsed into the schema first for the parser's own errors, with
        // their line. An invalid value of a key checked while parsing waits
        // for the overlay, since the environment may override it.
        // (`[[users]]` come from the file only: theirs are final.)
        if let Err(e) = toml::from_str::<Config>(&text) {
            match fields::unkeyed(e.message()) {
                Some((key, _)) if !key.starts_with("users[") => {}
                _ => return Err(file_error(&e, Some(p))),
            }
        }
        // Then as a plain tree, which keeps what the schema folds away
        // (the `[tls]` keys of a listener only the environment turns on).
        let table: toml::Table = toml::from_str(&text).map_err(|e| file_error(&e, Some(p)))?;
        let file = serde_json::to_value(table).map_err(|e| ConfigError::Parse(e.to_string()))?;
        env::apply(file, env).map_err(|e| match e {
            ConfigError::Parse(m) => ConfigError::Parse(format!("{p}: {m}")),
            e => e,
        })
    }

    /// Legal but questionable settings, for the operator's log.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.masters.len().is_multiple_of(2) {
            w.push(format!(
                "masters: {} masters (even); a quorum needs {}, so one more master adds no \
                 fault tolerance",
                self.masters.len(),
                self.quorum()
            ));
        }
        if self.master_tls.ca_file.is_some() && !self.masters.iter().any(|m| m.tls) {
            w.push(
                "master_tls is configured but no master has tls = true; every master is \
                 reached in plain text"
                    .into(),
            );
        }
        if self.lock.bootstrap == Bootstrap::Immediate {
            w.push(
                "lock.bootstrap = \"immediate\": masters without a metadata record are \
                 initialised at once; use only for brand-new masters"
                    .into(),
            );
        }
        w
    }
}

#[cfg(test)]
mod tests;
