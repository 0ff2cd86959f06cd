//! Reload policies: what a live reload may do with a change to a key, and
//! the reasons it gives when it refuses. Each key's policy is declared
//! beside its section's struct in [`super::schema`] (the `RELOAD` tables);
//! [`super::tree::changes`] finds the changed keys with their policy and
//! `server::reload` applies or refuses them.

/// What a reload does when a key's value changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Applied; reported under the key's path.
    Live,
    /// Applied; reported under a name shared with related keys (`limits`).
    LiveAs(&'static str),
    /// Refused, naming the key, for the reason given.
    Refused(&'static str),
    /// Refused, naming a group of keys that share the reason.
    RefusedAs(&'static str, &'static str),
    /// The master list: refused, with the procedure for changing it, and
    /// told apart from a change of credentials only (`server::reload`).
    MasterList,
    /// Read once at start; a reload neither applies nor refuses a change,
    /// and the value in force stays until a restart (the TLS files).
    Kept,
}

pub const MASTER_SET: &str = "changing the master set changes the quorum: a gateway on the old \
     set and one on the new set can each reach a majority of their own list without a common \
     master, so both could grant the same lock and fencing tokens could repeat. It is never \
     applied live; follow \"Changing the master set\" in the README (stop every gateway on the \
     old set before starting any on the new one, new masters empty)";

pub const MASTER_CREDENTIALS: &str = "master links keep the credentials (and the declared \
     eviction_policy) they started with; restart the gateways one at a time (the master set \
     itself is unchanged, so this is safe to roll)";

pub const RESTART: &str =
    "it is read once at start; restart the gateways one at a time to change it";

pub const KEY_PREFIX: &str = "the fence registers and master records live under it: a new \
     prefix starts every register from nothing, so tokens could go backwards. Treat it like a \
     master-set change (README, \"Changing the master set\")";

pub const QUARANTINE: &str = "they set the quarantine of a master that restarted empty, which \
     must cover every lease granted before; restart the gateways one at a time";

pub const MASTER_LINKS: &str =
    "master links keep the tuning they started with; restart the gateways one at a time";
