//! Live reload: a new configuration (SIGHUP, `POST /reload`, or a test
//! calling [`super::Gateway::reload`]) is validated, compared with the one
//! in force, and swapped in whole, or refused whole with the key and the
//! reason. Nothing is half applied.
//!
//! What takes effect without a restart: `requirepass`, `[[users]]`,
//! `protected_mode`, `admin_token` (on the next command of every
//! connection), `log_level`, `shutdown_grace_ms`, `master.timeout_ms`,
//! `lock.min_ttl_ms`, `lock.max_wait_ms`, `lock.set_without_ttl`, and the
//! `[limits]` except `max_nesting` (protocol limits for new connections;
//! key length and `max_clients` at once).
//!
//! What is refused:
//! - `masters`, `listen`, `admin_listen`, `lock.key_prefix`: they change
//!   the quorum, the sockets or where the fence registers live. See the
//!   README's "Changing the master set".
//! - keys read once at start by the amnesia guard or the master links
//!   (`lock.max_ttl_ms` and `lock.max_acquire_time_ms` set the quarantine,
//!   drift, bootstrap, master reconnect tuning, `limits.max_nesting`):
//!   restart the gateway, one at a time.

use crate::config::{Config, ConfigError};

/// Why a reload was not applied; the operator is at fault in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] ConfigError),
    #[error("reload refused: {key} changed; {reason}")]
    Refused { key: &'static str, reason: String },
    #[error("reload is not available: the gateway was started without a configuration source")]
    NoSource,
}

const MASTER_SET: &str = "changing the master set changes the quorum: a gateway on the old \
     set and one on the new set can each reach a majority of their own list without a common \
     master, so both could grant the same lock and fencing tokens could repeat. It is never \
     applied live; follow \"Changing the master set\" in the README (stop every gateway on the \
     old set before starting any on the new one, new masters empty)";

const RESTART: &str = "it is read once at start; restart the gateways one at a time to change it";

/// The keys that differ between `old` and `new`, when every one of them
/// may change live.
///
/// # Errors
/// [`ReloadError::Refused`] naming the first key that may not.
pub fn plan(old: &Config, new: &Config) -> Result<Vec<&'static str>, ReloadError> {
    let refuse = |key: &'static str, reason: &str| {
        Err(ReloadError::Refused {
            key,
            reason: reason.to_string(),
        })
    };
    let addrs = |c: &Config| {
        c.masters
            .iter()
            .map(|m| m.address.clone())
            .collect::<Vec<_>>()
    };
    if addrs(old) != addrs(new) {
        return refuse("masters", MASTER_SET);
    }
    if old.masters != new.masters {
        return refuse(
            "masters (credentials)",
            "master links keep the credentials they started with; restart the gateways one at \
             a time (the master set itself is unchanged, so this is safe to roll)",
        );
    }
    if old.listen != new.listen {
        return refuse("listen", RESTART);
    }
    if old.admin_listen != new.admin_listen {
        return refuse("admin_listen", RESTART);
    }
    let (ol, nl) = (&old.lock, &new.lock);
    if ol.key_prefix != nl.key_prefix {
        return refuse(
            "lock.key_prefix",
            "the fence registers and master records live under it: a new prefix starts every \
             register from nothing, so tokens could go backwards. Treat it like a master-set \
             change (README, \"Changing the master set\")",
        );
    }
    if ol.max_ttl != nl.max_ttl || ol.max_acquire_time != nl.max_acquire_time {
        return refuse(
            "lock.max_ttl_ms / lock.max_acquire_time_ms",
            "they set the quarantine of a master that restarted empty, which must cover every \
             lease granted before; restart the gateways one at a time",
        );
    }
    if ol.drift_factor != nl.drift_factor || ol.drift_constant != nl.drift_constant {
        return refuse("lock.drift_factor / lock.drift_constant_ms", RESTART);
    }
    if ol.bootstrap != nl.bootstrap {
        return refuse("lock.bootstrap", RESTART);
    }
    let (om, nm) = (&old.master, &new.master);
    if om.connect_timeout != nm.connect_timeout
        || om.down_after_timeouts != nm.down_after_timeouts
        || om.reconnect_min != nm.reconnect_min
        || om.reconnect_max != nm.reconnect_max
        || om.max_inflight != nm.max_inflight
    {
        return refuse(
            "[master] (other than timeout_ms)",
            "master links keep the tuning they started with; restart the gateways one at a time",
        );
    }
    if old.limits.max_nesting != new.limits.max_nesting {
        return refuse("limits.max_nesting", RESTART);
    }
    if tracing_subscriber::EnvFilter::try_new(&new.log_level).is_err() {
        return Err(ReloadError::Invalid(ConfigError::Invalid {
            key: "log_level".into(),
            reason: format!("{:?} is not a log filter", new.log_level),
        }));
    }
    let mut changed = Vec::new();
    let mut note = |key: &'static str, differs: bool| {
        if differs {
            changed.push(key);
        }
    };
    note("requirepass", old.requirepass != new.requirepass);
    note("users", old.users != new.users);
    note("protected_mode", old.protected_mode != new.protected_mode);
    note("admin_token", old.admin_token != new.admin_token);
    note("log_level", old.log_level != new.log_level);
    note(
        "shutdown_grace_ms",
        old.shutdown_grace != new.shutdown_grace,
    );
    note("master.timeout_ms", om.timeout != nm.timeout);
    note("lock.min_ttl_ms", ol.min_ttl != nl.min_ttl);
    note("lock.max_wait_ms", ol.max_wait != nl.max_wait);
    note(
        "lock.set_without_ttl",
        ol.set_without_ttl_uses_max != nl.set_without_ttl_uses_max,
    );
    note("limits", old.limits != new.limits);
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn base() -> Config {
        Config::from_toml_str(
            "[[masters]]\naddress = \"127.0.0.1:7000\"\n[[masters]]\naddress = \"127.0.0.1:7001\"\n\
             [[masters]]\naddress = \"127.0.0.1:7002\"\n",
        )
        .and_then(Config::validate)
        .expect("valid")
    }

    fn refused_key(new: &Config) -> &'static str {
        match plan(&base(), new) {
            Err(ReloadError::Refused { key, .. }) => key,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_identical_config_changes_nothing() {
        assert_eq!(plan(&base(), &base()).expect("ok"), Vec::<&str>::new());
    }

    #[test]
    fn users_limits_log_level_and_timeouts_change_live() {
        let mut n = base();
        n.requirepass = Some("x".into());
        n.limits.max_key_bytes = 100;
        n.log_level = "debug".into();
        n.master.timeout = Duration::from_millis(77);
        n.lock.max_wait = Duration::from_secs(1);
        let changed = plan(&base(), &n).expect("applied");
        for k in [
            "requirepass",
            "limits",
            "log_level",
            "master.timeout_ms",
            "lock.max_wait_ms",
        ] {
            assert!(changed.contains(&k), "{k} missing from {changed:?}");
        }
    }

    #[test]
    fn a_master_set_change_is_refused_with_the_procedure() {
        let mut n = base();
        n.masters.pop();
        let e = plan(&base(), &n).expect_err("refused");
        let msg = e.to_string();
        assert!(msg.contains("masters changed"), "{msg}");
        assert!(msg.contains("Changing the master set"), "{msg}");
        assert!(msg.contains("quorum"), "{msg}");
    }

    #[test]
    fn keys_read_once_at_start_are_refused_by_name() {
        let mut n = base();
        n.listen = "127.0.0.1:1".into();
        assert_eq!(refused_key(&n), "listen");
        let mut n = base();
        n.lock.key_prefix = "other:".into();
        assert_eq!(refused_key(&n), "lock.key_prefix");
        let mut n = base();
        n.lock.max_ttl = Duration::from_secs(5);
        assert_eq!(
            refused_key(&n),
            "lock.max_ttl_ms / lock.max_acquire_time_ms"
        );
        let mut n = base();
        n.masters[0].password = Some("p".into());
        assert_eq!(refused_key(&n), "masters (credentials)");
        let mut n = base();
        n.limits.max_nesting = 3;
        assert_eq!(refused_key(&n), "limits.max_nesting");
    }

    #[test]
    fn a_bad_log_filter_is_refused() {
        let mut n = base();
        n.log_level = "lockgate=[".into();
        assert!(matches!(plan(&base(), &n), Err(ReloadError::Invalid(_))));
    }
}
