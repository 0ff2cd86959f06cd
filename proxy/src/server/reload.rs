//! Live reload: a new configuration (SIGHUP, `POST /reload`, or a test
//! calling [`super::Gateway::reload`]) is validated, compared with the one
//! in force, and swapped in whole, or refused whole with the key and the
//! reason. Nothing is half applied.
//!
//! What may change live, what is refused and why, is declared per key in
//! the configuration schema (the `RELOAD` tables of `config::schema`, read
//! found by [`crate::config::tree::changes`]); this module only applies it. The
//! master list is the one key with two refusals: a different set of
//! addresses changes the quorum (see the README's "Changing the master
//! set"), while the same set with other credentials only needs a rolling
//! restart.

use crate::config::policy::{Reload, MASTER_CREDENTIALS, MASTER_SET};
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

/// The keys that differ between `old` and `new`, when every one of them
/// may change live; each key's policy is declared in the configuration
/// schema, beside the key.
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
    let changes = crate::config::tree::changes(old, new);
    for &(key, reload) in &changes {
        match reload {
            Reload::MasterList => {
                let same_set = old
                    .masters
                    .iter()
                    .map(|m| &m.address)
                    .eq(new.masters.iter().map(|m| &m.address));
                return if same_set {
                    refuse("masters (credentials)", MASTER_CREDENTIALS)
                } else {
                    refuse(key, MASTER_SET)
                };
            }
            Reload::Refused(reason) => return refuse(key, reason),
            Reload::RefusedAs(group, reason) => return refuse(group, reason),
            Reload::Live | Reload::LiveAs(_) | Reload::Kept => {}
        }
    }
    if tracing_subscriber::EnvFilter::try_new(&new.log_level).is_err() {
        return Err(ReloadError::Invalid(ConfigError::Invalid {
            key: "log_level".into(),
            reason: format!("{:?} is not a log filter", new.log_level),
        }));
    }
    let mut changed = Vec::new();
    for (key, reload) in changes {
        let name = match reload {
            Reload::Live => key,
            Reload::LiveAs(name) => name,
            _ => continue,
        };
        if !changed.contains(&name) {
            changed.push(name);
        }
    }
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
