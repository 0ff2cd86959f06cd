//! Validation: the values the schema's types allow but the gateway cannot
//! run with, rejected with the key's name, one function per section. The
//! TLS files are read here too (a certificate that does not load is a
//! configuration error), and protected mode refuses an exposed listener
//! without authentication.

use std::collections::HashSet;
use std::sync::Arc;

use super::error::{invalid, ConfigError};
use super::schema::{Config, EVICTION_POLICIES};

impl Config {
    /// Rejects impossible values, naming the key. An even number of masters
    /// is allowed (and logged as a warning by the caller via
    /// [`Config::warnings`]).
    ///
    /// # Errors
    /// The first invalid key found.
    pub fn validate(self) -> Result<Config, ConfigError> {
        self.validate_masters()?;
        self.master_tls_config()?;
        self.tls_server_config()?;
        self.validate_listeners()?;
        self.validate_users()?;
        self.validate_secrets()?;
        self.check_protected_mode()?;
        self.validate_lock()?;
        self.validate_tls_handshake()?;
        self.validate_master_tuning()?;
        self.validate_limits()?;
        Ok(self)
    }

    /// `[[masters]]`: at least one, each a distinct `host:port`, a
    /// certificate name for each TLS master, and a declared eviction policy
    /// that Redis knows. (Two addresses of one server are found only once
    /// the gateway asks the servers who they are.)
    fn validate_masters(&self) -> Result<(), ConfigError> {
        if self.masters.is_empty() {
            return Err(invalid("masters", "at least one master is required"));
        }
        let mut seen = HashSet::new();
        for (i, m) in self.masters.iter().enumerate() {
            let key = format!("masters[{i}].address");
            let Some((host, port)) = m.address.rsplit_once(':') else {
                return Err(invalid(&key, format!("{:?} is not host:port", m.address)));
            };
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(invalid(&key, format!("{:?} is not host:port", m.address)));
            }
            if !seen.insert(m.address.clone()) {
                return Err(invalid(&key, format!("{:?} is listed twice", m.address)));
            }
            if let Some(p) = &m.eviction_policy {
                if !EVICTION_POLICIES.contains(&p.as_str()) {
                    return Err(invalid(
                        &format!("masters[{i}].eviction_policy"),
                        format!(
                            "{p:?} is not a maxmemory-policy; use one of {}",
                            EVICTION_POLICIES.join(", ")
                        ),
                    ));
                }
            }
            if m.tls {
                crate::tls::server_name(self.master_tls.server_name.as_deref(), &m.address)
                    .map_err(|e| match e.key() {
                        "masters.address" => invalid(&key, e.reason()),
                        _ => from_tls(e),
                    })?;
            }
        }
        Ok(())
    }

    /// `listen`, `admin_listen`, `tls.listen`: `host:port` or empty (off),
    /// and at least one client listener.
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() && self.tls.is_none() {
            return Err(invalid(
                "listen",
                "may be empty (plain port off) only when tls.listen is set",
            ));
        }
        let tls_listen = self.tls.as_ref().map_or("", |t| t.listen.as_str());
        for (key, addr) in [
            ("listen", self.listen.as_str()),
            ("admin_listen", self.admin_listen.as_str()),
            ("tls.listen", tls_listen),
        ] {
            if addr.is_empty() {
                continue; // empty disables that listener
            }
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(invalid(key, format!("{addr:?} is not host:port")));
            }
        }
        Ok(())
    }

    /// `[[users]]`: distinct printable names, and no `default` user next to
    /// `requirepass`.
    fn validate_users(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let key = format!("users[{i}].name");
            if u.name.is_empty() || !u.name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(&key, "must be non-empty, without spaces"));
            }
            if !names.insert(u.name.as_str()) {
                return Err(invalid(&key, format!("user {:?} is listed twice", u.name)));
            }
            if u.name == "default" && self.requirepass.is_some() {
                return Err(invalid(
                    &key,
                    "requirepass already sets the default user's password; use one or the other",
                ));
            }
        }
        Ok(())
    }

    /// `requirepass` and `admin_token`: set means non-empty.
    fn validate_secrets(&self) -> Result<(), ConfigError> {
        if self.requirepass.as_deref() == Some("") {
            return Err(invalid("requirepass", "must not be empty"));
        }
        if self.admin_token.as_deref() == Some("") {
            return Err(invalid("admin_token", "must not be empty"));
        }
        Ok(())
    }

    /// `[lock]`.
    fn validate_lock(&self) -> Result<(), ConfigError> {
        let l = &self.lock;
        if !(0.0..0.5).contains(&l.drift_factor) {
            return Err(invalid("lock.drift_factor", "must be in [0, 0.5)"));
        }
        if l.min_ttl.is_zero() {
            return Err(invalid("lock.min_ttl_ms", "must be at least 1"));
        }
        if l.min_ttl > l.max_ttl {
            return Err(invalid(
                "lock.max_ttl_ms",
                format!("must be >= lock.min_ttl_ms ({})", l.min_ttl.as_millis()),
            ));
        }
        if l.key_prefix.is_empty() {
            return Err(invalid("lock.key_prefix", "must not be empty"));
        }
        if l.max_acquire_time.is_zero() {
            return Err(invalid("lock.max_acquire_time_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// `tls.handshake_timeout_ms`, when the TLS listener is on.
    fn validate_tls_handshake(&self) -> Result<(), ConfigError> {
        match &self.tls {
            Some(t) if t.handshake_timeout.is_zero() => {
                Err(invalid("tls.handshake_timeout_ms", "must be at least 1"))
            }
            _ => Ok(()),
        }
    }

    /// `[master]`.
    fn validate_master_tuning(&self) -> Result<(), ConfigError> {
        let t = &self.master;
        for (key, d) in [
            ("master.timeout_ms", t.timeout),
            ("master.connect_timeout_ms", t.connect_timeout),
            ("master.reconnect_min_ms", t.reconnect_min),
            ("master.policy_check_ms", t.policy_check),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if t.reconnect_max < t.reconnect_min {
            return Err(invalid(
                "master.reconnect_max_ms",
                "must be >= master.reconnect_min_ms",
            ));
        }
        if t.down_after_timeouts == 0 {
            return Err(invalid("master.down_after_timeouts", "must be at least 1"));
        }
        if t.max_inflight == 0 {
            return Err(invalid("master.max_inflight", "must be at least 1"));
        }
        Ok(())
    }

    /// `[limits]`: every size at least 1 (the timeouts may be 0, off), and
    /// a bulk string fits in a frame.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let lim = &self.limits;
        for (key, v) in [
            ("limits.max_frame_bytes", lim.max_frame_bytes),
            ("limits.max_bulk_bytes", lim.max_bulk_bytes),
            ("limits.max_args", lim.max_args),
            ("limits.max_nesting", lim.max_nesting),
            ("limits.max_inline_bytes", lim.max_inline_bytes),
            ("limits.max_clients", lim.max_clients),
            ("limits.max_pipeline", lim.max_pipeline),
            ("limits.max_key_bytes", lim.max_key_bytes),
            ("limits.max_owner_bytes", lim.max_owner_bytes),
            (
                "limits.max_holds_per_connection",
                lim.max_holds_per_connection,
            ),
            ("limits.max_holds_per_user", lim.max_holds_per_user),
            (
                "limits.max_output_buffer_bytes",
                lim.max_output_buffer_bytes,
            ),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if lim.max_bulk_bytes > lim.max_frame_bytes {
            return Err(invalid(
                "limits.max_bulk_bytes",
                "must be <= limits.max_frame_bytes",
            ));
        }
        Ok(())
    }

    /// Protected mode, as in Redis: a gateway reachable from the network
    /// with no authentication hands every lock to anyone who connects.
    ///
    /// # Errors
    /// A non-loopback `listen` with no `requirepass`, no `[[users]]` and
    /// `protected_mode` on; the message names both ways out.
    pub fn check_protected_mode(&self) -> Result<(), ConfigError> {
        if !self.protected_mode || self.auth_required() {
            return Ok(());
        }
        // The plain port is open to anyone who reaches it; the TLS port
        // only when it does not verify client certificates (mTLS
        // authenticates every client by its certificate).
        let exposed = if !self.listen.is_empty() && !is_loopback_listen(&self.listen) {
            Some(("listen", self.listen.as_str()))
        } else {
            self.tls
                .as_ref()
                .filter(|t| t.client_ca_file.is_none() && !is_loopback_listen(&t.listen))
                .map(|t| ("tls.listen", t.listen.as_str()))
        };
        let Some((key, addr)) = exposed else {
            return Ok(());
        };
        Err(invalid(
            "protected_mode",
            format!(
                "refusing to listen on {addr:?} ({key}), a non-loopback address, with no \
                 authentication configured. Either set requirepass (or LOCKGATE_REQUIREPASS) or \
                 add [[users]] (or, for tls.listen, require client certificates with \
                 tls.client_ca_file), or, if the network itself is trusted, set \
                 protected_mode = false (LOCKGATE_PROTECTED_MODE=false) to opt out explicitly; \
                 or listen on 127.0.0.1"
            ),
        ))
    }

    /// Builds the TLS listener's rustls configuration, reading its files.
    ///
    /// # Errors
    /// A file that is missing or does not parse, naming its key.
    pub fn tls_server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        use crate::tls::{server_config, Pem};
        let Some(t) = &self.tls else {
            return Ok(None);
        };
        for (key, v) in [
            ("tls.cert_file", &t.cert_file),
            ("tls.key_file", &t.key_file),
        ] {
            if v.is_empty() {
                return Err(invalid(key, "required when tls.listen is set"));
            }
        }
        server_config(
            Pem {
                key: "tls.cert_file",
                path: &t.cert_file,
            },
            Pem {
                key: "tls.key_file",
                path: &t.key_file,
            },
            t.client_ca_file.as_deref().map(|path| Pem {
                key: "tls.client_ca_file",
                path,
            }),
        )
        .map(Some)
        .map_err(from_tls)
    }

    /// Builds the rustls configuration of links towards masters, reading
    /// its files; `None` when no master uses TLS and no CA is configured.
    ///
    /// # Errors
    /// A missing or unparsable file, or a half-configured client identity,
    /// naming the key.
    pub fn master_tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ConfigError> {
        use crate::tls::{client_config, Pem};
        let t = &self.master_tls;
        let any_tls = self.masters.iter().any(|m| m.tls);
        let Some(ca) = &t.ca_file else {
            if any_tls {
                return Err(invalid(
                    "master_tls.ca_file",
                    "required when a master has tls = true",
                ));
            }
            return Ok(None);
        };
        let identity = match (&t.cert_file, &t.key_file) {
            (Some(cert), Some(key)) => Some((
                Pem {
                    key: "master_tls.cert_file",
                    path: cert,
                },
                Pem {
                    key: "master_tls.key_file",
                    path: key,
                },
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "master_tls.key_file",
                    "required with master_tls.cert_file",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "master_tls.cert_file",
                    "required with master_tls.key_file",
                ))
            }
        };
        client_config(
            Pem {
                key: "master_tls.ca_file",
                path: ca,
            },
            identity,
        )
        .map(Some)
        .map_err(from_tls)
    }
}

fn from_tls(e: crate::tls::TlsError) -> ConfigError {
    invalid(e.key(), e.reason())
}

/// Whether a `host:port` listen address is on loopback only. Hostnames
/// other than `localhost` count as non-loopback: they may resolve to
/// anything.
pub fn is_loopback_listen(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}
