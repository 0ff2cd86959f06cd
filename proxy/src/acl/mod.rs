//! Authentication and access control for clients: who a connection is
//! (`AUTH`, `HELLO ... AUTH`) and what it may run (command families) on
//! which keys (glob patterns).
//!
//! Two kinds of identity, as in Redis 6+:
//! - the `default` user: its password is `requirepass`, and it may run
//!   everything; with no `requirepass` and no `[[users]]` it needs no
//!   password at all (authentication off);
//! - named users from `[[users]]`: a SHA-256 password hash, allowed
//!   [`Family`]s and key patterns, and an `enabled` flag.
//!
//! Everything here reads the configuration it is given, so a live reload
//! takes effect on the next command of every connection. Passwords are
//! never compared directly: the offered one is hashed and the two digests
//! are compared in constant time, so neither the position of the first
//! differing byte nor the stored password's length shows in the timing.
//!
//! - [`glob`]: key pattern matching.
//! - [`family`]: a command's family, from the command registry.

pub mod family;
pub mod glob;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, UserConfig};
pub use family::{classify, Family};
pub use glob::glob_match;

/// Redis's own words, so clients recognise the condition.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Why an authentication attempt failed. The client is at fault in every
/// case; the variants exist for the failure metric's bounded `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{WRONGPASS}")]
    UnknownUser,
    #[error("{WRONGPASS}")]
    WrongPassword,
    #[error("{WRONGPASS}")]
    Disabled,
    #[error(
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?"
    )]
    NoPasswordConfigured,
}

impl AuthError {
    /// The `reason` label of `lockgate_auth_failures_total`.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::UnknownUser => "unknown_user",
            AuthError::WrongPassword => "wrong_password",
            AuthError::Disabled => "user_disabled",
            AuthError::NoPasswordConfigured => "no_password_configured",
        }
    }
}

/// Why a command was refused to an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("NOPERM User {user} has no permissions to run the '{command}' command")]
    Command { user: String, command: String },
    #[error("NOPERM No permissions to access a key")]
    Key,
    /// The connection's user was removed or disabled by a reload; like
    /// Redis after `ACL DELUSER`, the connection is closed.
    #[error("NOAUTH user {0} was removed or disabled by a configuration reload")]
    Gone(String),
}

impl Denied {
    /// The `reason` label of `lockgate_acl_denied_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Command { .. } => "command",
            Denied::Key => "key",
            Denied::Gone(_) => "user_gone",
        }
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares two digests in constant time.
pub fn digest_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// Whether clients must authenticate before running commands.
pub fn required(cfg: &Config) -> bool {
    cfg.auth_required()
}

fn named<'a>(cfg: &'a Config, name: &[u8]) -> Option<&'a UserConfig> {
    cfg.users.iter().find(|u| u.name.as_bytes() == name)
}

/// Checks credentials; on success returns the user name the connection now
/// runs as.
///
/// # Errors
/// [`AuthError`], worded as Redis words it.
pub fn authenticate(cfg: &Config, user: Option<&[u8]>, pass: &[u8]) -> Result<String, AuthError> {
    let offered = sha256(pass);
    let name = user.unwrap_or(b"default");
    if let Some(u) = named(cfg, name) {
        let ok = digest_eq(&offered, &u.password_sha256);
        return match (u.enabled, ok) {
            (false, _) => Err(AuthError::Disabled),
            (true, false) => Err(AuthError::WrongPassword),
            (true, true) => Ok(u.name.clone()),
        };
    }
    if name != b"default" {
        return Err(AuthError::UnknownUser);
    }
    match &cfg.requirepass {
        Some(pw) => {
            if digest_eq(&offered, &sha256(pw.as_bytes())) {
                Ok("default".into())
            } else {
                Err(AuthError::WrongPassword)
            }
        }
        // Redis's nopass default user accepts any password when named, and
        // refuses a bare AUTH; with named users configured it is off.
        None if !required(cfg) && user.is_some() => Ok("default".into()),
        None if !required(cfg) => Err(AuthError::NoPasswordConfigured),
        None => Err(AuthError::Disabled),
    }
}

/// Checks that `user` (None: the unauthenticated default user of a gateway
/// without authentication) may run `args`, touching `keys`.
///
/// # Errors
/// [`Denied`], worded as Redis 7 words it.
pub fn authorize(
    cfg: &Config,
    user: Option<&str>,
    args: &[Bytes],
    keys: &[Bytes],
) -> Result<(), Denied> {
    let name = user.unwrap_or("default");
    let Some(u) = named(cfg, name.as_bytes()) else {
        // The built-in default user may run everything; it exists while
        // requirepass is set or authentication is off.
        if name == "default" && (cfg.requirepass.is_some() || !required(cfg)) {
            return Ok(());
        }
        return Err(Denied::Gone(name.to_string()));
    };
    if !u.enabled {
        return Err(Denied::Gone(name.to_string()));
    }
    let family = classify(args);
    if family != Family::Connection && !grants(u, family) {
        return Err(Denied::Command {
            user: u.name.clone(),
            command: command_label(args),
        });
    }
    let allowed = |k: &Bytes| u.keys.iter().any(|p| glob_match(p.as_bytes(), k));
    if keys.iter().all(allowed) {
        Ok(())
    } else {
        Err(Denied::Key)
    }
}

/// Whether `u` was granted `family`. The configuration holds the family
/// names as written (checked against [`crate::config::USER_FAMILIES`]).
fn grants(u: &UserConfig, family: Family) -> bool {
    u.commands
        .iter()
        .any(|c| Family::from_config(c) == Some(family))
}

/// `lock.acquire` or `client|list`, as Redis names a command in NOPERM.
fn command_label(args: &[Bytes]) -> String {
    let short = |b: &Bytes| String::from_utf8_lossy(&b[..b.len().min(64)]).to_ascii_lowercase();
    let Some(name) = args.first() else {
        return String::new();
    };
    let base = short(name);
    let has_sub = family::has_subcommands(name);
    match args.get(1) {
        Some(sub) if has_sub => format!("{base}|{}", short(sub)),
        _ => base,
    }
}

#[cfg(test)]
mod tests;
