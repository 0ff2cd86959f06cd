//! The Lua that runs on the masters, compiled into the binary with
//! `include_str!`. Each [`Script`] carries its SHA1 so the master connection
//! can call it with EVALSHA and fall back to EVAL on NOSCRIPT.
//!
//! The scripts are the only code that touches lock keys, fence registers and
//! the metadata record on a master; the safety arguments of docs/design.md
//! rest on each one running atomically.

use sha1::{Digest, Sha1};

/// A script with its lowercase hex SHA1, as Redis computes it.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: &'static str,
    pub body: &'static str,
    pub sha1: String,
}

impl Script {
    pub fn new(name: &'static str, body: &'static str) -> Self {
        Script {
            name,
            body,
            sha1: sha1_hex(body.as_bytes()),
        }
    }
}

/// Lowercase hex SHA1 of `bytes`, exactly what `SCRIPT LOAD` answers.
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

/// Every script the gateway runs on masters.
#[derive(Debug, Clone)]
pub struct ScriptSet {
    pub acquire: Script,
    pub release: Script,
    pub extend: Script,
    pub status: Script,
    pub meta_init: Script,
    /// Read-write locks and semaphores: see `kinds::rwlock` and
    /// `kinds::semaphore`.
    pub rw_acquire: Script,
    pub sem_acquire: Script,
    pub holders_release: Script,
    pub holders_extend: Script,
    pub holders_status: Script,
    /// Reentrant locks (`RLOCK.*`, see `kinds::reentrant`).
    pub racquire: Script,
    pub rrelease: Script,
    pub rextend: Script,
    pub rstatus: Script,
}

impl ScriptSet {
    pub fn new() -> Self {
        ScriptSet {
            acquire: Script::new("acquire", include_str!("../kinds/plain/acquire.lua")),
            release: Script::new("release", include_str!("../kinds/plain/release.lua")),
            extend: Script::new("extend", include_str!("../kinds/plain/extend.lua")),
            status: Script::new("status", include_str!("../kinds/plain/status.lua")),
            meta_init: Script::new("meta_init", include_str!("meta_init.lua")),
            rw_acquire: Script::new("rw_acquire", include_str!("../kinds/rwlock/rw_acquire.lua")),
            sem_acquire: Script::new(
                "sem_acquire",
                include_str!("../kinds/semaphore/sem_acquire.lua"),
            ),
            holders_release: Script::new(
                "holders_release",
                include_str!("../kinds/holders/holders_release.lua"),
            ),
            holders_extend: Script::new(
                "holders_extend",
                include_str!("../kinds/holders/holders_extend.lua"),
            ),
            holders_status: Script::new(
                "holders_status",
                include_str!("../kinds/holders/holders_status.lua"),
            ),
            racquire: Script::new("racquire", include_str!("../kinds/reentrant/racquire.lua")),
            rrelease: Script::new("rrelease", include_str!("../kinds/reentrant/rrelease.lua")),
            rextend: Script::new("rextend", include_str!("../kinds/reentrant/rextend.lua")),
            rstatus: Script::new("rstatus", include_str!("../kinds/reentrant/rstatus.lua")),
        }
    }

    /// All scripts, for loading at connect.
    pub fn all(&self) -> Vec<&Script> {
        vec![
            &self.acquire,
            &self.release,
            &self.extend,
            &self.status,
            &self.meta_init,
            &self.rw_acquire,
            &self.sem_acquire,
            &self.holders_release,
            &self.holders_extend,
            &self.holders_status,
            &self.racquire,
            &self.rrelease,
            &self.rextend,
            &self.rstatus,
        ]
    }
}

impl Default for ScriptSet {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis_for_a_known_script() {
        // redis-cli SCRIPT LOAD "return 1" answers this digest.
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
