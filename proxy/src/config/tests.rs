//! Tests of loading, the environment overlay and validation.

use std::time::Duration;

use super::*;

const FULL: &str = include_str!("../../../config/lockgate.example.toml");

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn the_example_file_parses_and_validates() {
    let c = Config::from_toml_str(FULL).and_then(Config::validate);
    assert!(c.is_ok(), "{c:?}");
}

#[test]
fn the_examples_commented_users_block_parses_when_uncommented() {
    let text = FULL.replace("\n#~ ", "\n");
    let c = Config::from_toml_str(&text)
        .and_then(Config::validate)
        .expect("valid");
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.users[0].name, "alice");
    assert_eq!(c.users[0].keys, vec!["jobs:*".to_string()]);
    assert!(c.protected_mode);
    let plain = Config::from_toml_str(FULL).expect("valid");
    assert!(plain.users.is_empty(), "the example must not ship a user");
}

#[test]
fn the_example_file_spells_out_every_limit_at_its_default() {
    let c = Config::from_toml_str(FULL).expect("parses");
    assert_eq!(c.limits, Limits::default());
    for key in [
        "idle_timeout_ms",
        "partial_frame_timeout_ms",
        "max_output_buffer_bytes",
        "write_timeout_ms",
    ] {
        assert!(
            FULL.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "{key} is not in the example file"
        );
    }
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let e = Config::from_toml_str("listen = \"127.0.0.1:1\"\nlisten_port = 5\n");
    assert!(matches!(e, Err(ConfigError::Parse(m)) if m.contains("listen_port")));
    let e = Config::from_toml_str("[lock]\nmax_tll_ms = 5\n");
    assert!(matches!(e, Err(ConfigError::Parse(m)) if m.contains("max_tll_ms")));
}

fn with(extra: &str) -> Result<Config, ConfigError> {
    let text = format!("[[masters]]\naddress = \"127.0.0.1:7000\"\n{extra}");
    Config::from_toml_str(&text).and_then(Config::validate)
}

/// Top-level keys must come before the first `[[masters]]` table.
fn top(extra: &str) -> Result<Config, ConfigError> {
    let text = format!("{extra}\n[[masters]]\naddress = \"127.0.0.1:7000\"\n");
    Config::from_toml_str(&text).and_then(Config::validate)
}

fn bad_key(extra: &str) -> String {
    match with(extra) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn invalid_values_name_their_key() {
    assert_eq!(bad_key("[lock]\ndrift_factor = 0.7\n"), "lock.drift_factor");
    assert_eq!(
        bad_key("[lock]\nmin_ttl_ms = 100\nmax_ttl_ms = 10\n"),
        "lock.max_ttl_ms"
    );
    assert_eq!(bad_key("[master]\ntimeout_ms = 0\n"), "master.timeout_ms");
    assert_eq!(bad_key("[limits]\nmax_args = 0\n"), "limits.max_args");
    assert_eq!(bad_key("[lock]\nkey_prefix = \"\"\n"), "lock.key_prefix");
    assert_eq!(
        bad_key("[[masters]]\naddress = \"127.0.0.1:7000\"\n"),
        "masters[1].address"
    );
    assert_eq!(
        bad_key("[[masters]]\naddress = \"nohost\"\n"),
        "masters[1].address"
    );
}

#[test]
fn limit_timeouts_of_zero_mean_off() {
    let c =
        with("[limits]\nidle_timeout_ms = 0\npartial_frame_timeout_ms = 0\nwrite_timeout_ms = 0\n")
            .expect("valid");
    assert_eq!(c.limits.idle_timeout, None);
    assert_eq!(c.limits.partial_frame_timeout, None);
    assert_eq!(c.limits.write_timeout, None);
    let c = with("[limits]\nidle_timeout_ms = 300000\nmax_output_buffer_bytes = 4096\n")
        .expect("valid");
    assert_eq!(c.limits.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.limits.max_output_buffer_bytes, 4096);
    assert_eq!(
        bad_key("[limits]\nmax_output_buffer_bytes = 0\n"),
        "limits.max_output_buffer_bytes"
    );
}

#[test]
fn no_masters_is_an_error() {
    let e = Config::from_toml_str("").and_then(Config::validate);
    assert!(matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "masters"));
}

#[test]
fn environment_overrides_the_file() {
    let env = |k: &str| match k {
        "LOCKGATE_LOCK_MAX_TTL_MS" => Some("5000".to_string()),
        "LOCKGATE_MASTERS" => Some("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3".to_string()),
        "LOCKGATE_LOCK_BOOTSTRAP" => Some("immediate".to_string()),
        _ => None,
    };
    let dir = tempfile::tempdir().ok();
    let path = dir.as_ref().map(|d| d.path().join("c.toml"));
    if let Some(p) = &path {
        let _ = std::fs::write(p, "[lock]\nmax_ttl_ms = 9000\n");
    }
    let c = Config::load(path.as_ref().and_then(|p| p.to_str()), &env);
    let c = c.expect("valid");
    assert_eq!(c.lock.max_ttl, Duration::from_secs(5));
    assert_eq!(c.masters.len(), 3);
    assert_eq!(c.lock.bootstrap, Bootstrap::Immediate);
    assert!(Config::load(None, &no_env).is_err());
}

#[test]
fn a_master_password_from_the_environment_applies_to_every_master() {
    let env = |k: &str| match k {
        "LOCKGATE_MASTERS" => Some("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3".to_string()),
        "LOCKGATE_MASTERS_PASSWORD" => Some("s3cret".to_string()),
        _ => None,
    };
    let c = Config::load(None, &env).expect("valid");
    assert!(c
        .masters
        .iter()
        .all(|m| m.password.as_deref() == Some("s3cret") && m.username.is_none()));
}

#[test]
fn protected_mode_refuses_a_public_listen_without_authentication() {
    let e = top("listen = \"0.0.0.0:6380\"\n");
    let Err(ConfigError::Invalid { key, reason }) = e else {
        panic!("expected protected mode to refuse, got {e:?}");
    };
    assert_eq!(key, "protected_mode");
    assert!(reason.contains("requirepass"), "{reason}");
    assert!(reason.contains("[[users]]"), "{reason}");
    assert!(reason.contains("protected_mode = false"), "{reason}");
}

#[test]
fn protected_mode_covers_the_tls_port_unless_it_requires_client_certificates() {
    let check = |extra: &str| {
        let text = format!(
            "listen = \"\"\n[[masters]]\naddress = \"127.0.0.1:1\"\n\
             [tls]\nlisten = \"0.0.0.0:6390\"\ncert_file = \"c\"\nkey_file = \"k\"\n{extra}"
        );
        Config::from_toml_str(&text)
            .expect("parses")
            .check_protected_mode()
    };
    let Err(ConfigError::Invalid { key, reason }) = check("") else {
        panic!("a public TLS port without authentication must be refused");
    };
    assert_eq!(key, "protected_mode");
    assert!(reason.contains("tls.listen"), "{reason}");
    assert!(reason.contains("client_ca_file"), "{reason}");
    assert!(check("client_ca_file = \"ca\"\n").is_ok());
    // The plain port is still judged on its own.
    let text = "listen = \"0.0.0.0:6380\"\n[[masters]]\naddress = \"127.0.0.1:1\"\n\
                [tls]\nlisten = \"127.0.0.1:6390\"\ncert_file = \"c\"\nkey_file = \"k\"\n\
                client_ca_file = \"ca\"\n";
    assert!(Config::from_toml_str(text)
        .expect("parses")
        .check_protected_mode()
        .is_err());
}

#[test]
fn protected_mode_allows_loopback_authentication_or_an_explicit_opt_out() {
    for ok in [
        "listen = \"127.0.0.1:6380\"\n",
        "listen = \"[::1]:6380\"\n",
        "listen = \"localhost:6380\"\n",
        "listen = \"0.0.0.0:6380\"\nrequirepass = \"x\"\n",
        "listen = \"0.0.0.0:6380\"\nprotected_mode = false\n",
        "listen = \"10.0.0.5:6380\"\n[[users]]\nname = \"a\"\npassword_sha256 = \"30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4\"\n",
    ] {
        assert!(top(ok).is_ok(), "{ok}: {:?}", top(ok));
    }
    assert!(top("listen = \"[::]:6380\"\n").is_err());
    assert!(top("listen = \"gateway.example:6380\"\n").is_err());
    let env = |k: &str| match k {
        "LOCKGATE_MASTERS" => Some("127.0.0.1:1".to_string()),
        "LOCKGATE_LISTEN" => Some("0.0.0.0:6380".to_string()),
        "LOCKGATE_PROTECTED_MODE" => Some("false".to_string()),
        _ => None,
    };
    assert!(Config::load(None, &env).is_ok());
}

#[test]
fn loopback_detection_reads_the_host_part() {
    assert!(is_loopback_listen("127.0.0.1:0"));
    assert!(is_loopback_listen("127.1.2.3:6380"));
    assert!(is_loopback_listen("[::1]:6380"));
    assert!(!is_loopback_listen("0.0.0.0:6380"));
    assert!(!is_loopback_listen("192.168.1.4:6380"));
    assert!(!is_loopback_listen(":6380"));
}

#[test]
fn tls_keys_come_from_the_file_and_the_environment() {
    let text = "[[masters]]\naddress = \"127.0.0.1:7000\"\ntls = true\n\
                [tls]\nlisten = \"127.0.0.1:6390\"\ncert_file = \"/f/cert.pem\"\n\
                key_file = \"/f/key.pem\"\nhandshake_timeout_ms = 750\n\
                [master_tls]\nca_file = \"/f/ca.pem\"\nserver_name = \"redis.internal\"\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write");
    let env = |k: &str| match k {
        "LOCKGATE_TLS_CLIENT_CA_FILE" => Some("/env/clients.pem".to_string()),
        "LOCKGATE_MASTER_TLS_CA_FILE" => Some("/env/ca.pem".to_string()),
        "LOCKGATE_LISTEN" => Some(String::new()),
        _ => None,
    };
    let c = Config::load_unvalidated(path.to_str(), &env).expect("parses");
    let t = c.tls.as_ref().expect("TLS listener configured");
    assert_eq!(t.listen, "127.0.0.1:6390");
    assert_eq!(t.cert_file, "/f/cert.pem");
    assert_eq!(t.client_ca_file.as_deref(), Some("/env/clients.pem"));
    assert_eq!(t.handshake_timeout, Duration::from_millis(750));
    assert_eq!(c.master_tls.ca_file.as_deref(), Some("/env/ca.pem"));
    assert_eq!(c.master_tls.server_name.as_deref(), Some("redis.internal"));
    assert!(c.masters[0].tls);
    assert!(c.listen.is_empty());
    // Validation reads the files, so the missing ones are named.
    match c.validate() {
        Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "master_tls.ca_file"),
        other => panic!("expected master_tls.ca_file, got {other:?}"),
    }
}

#[test]
fn tls_settings_that_cannot_work_name_their_key() {
    assert_eq!(
        bad_key("[tls]\nlisten = \"127.0.0.1:6390\"\n"),
        "tls.cert_file"
    );
    assert_eq!(
        bad_key("[tls]\nlisten = \"127.0.0.1:6390\"\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n"),
        "tls.cert_file"
    );
    let e = Config::from_toml_str("listen = \"\"\n[[masters]]\naddress = \"127.0.0.1:7000\"\n")
        .and_then(Config::validate);
    assert!(matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "listen"));
    let tls_master = "[[masters]]\naddress = \"127.0.0.1:7001\"\ntls = true\n";
    assert_eq!(bad_key(tls_master), "master_tls.ca_file");
    let half = format!("{tls_master}[master_tls]\ncert_file = \"/c.pem\"\n");
    assert_eq!(bad_key(&half), "master_tls.ca_file");
    let env = |k: &str| match k {
        "LOCKGATE_MASTERS" => Some("127.0.0.1:1".to_string()),
        "LOCKGATE_MASTERS_TLS" => Some("true".to_string()),
        "LOCKGATE_MASTER_TLS_CA_FILE" => Some("/nonexistent/ca.pem".to_string()),
        _ => None,
    };
    let e = Config::load(None, &env);
    assert!(
        matches!(&e, Err(ConfigError::Invalid { key, reason }) if key == "master_tls.ca_file" && reason.contains("/nonexistent/ca.pem")),
        "{e:?}"
    );
}

#[test]
fn the_example_files_commented_tls_keys_are_real_keys() {
    // The TLS keys stay commented in the example (their files do not
    // exist here); uncommented, they must still be known keys.
    let mut in_tls = false;
    let mut out = String::new();
    for line in FULL.lines() {
        if line.starts_with('[') {
            in_tls = line == "[tls]" || line == "[master_tls]";
        }
        match line.strip_prefix("# ") {
            Some(rest)
                if in_tls && toml::from_str::<toml::Table>(rest).is_ok_and(|t| t.len() == 1) =>
            {
                out.push_str(rest)
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    let c = Config::from_toml_str(&out).expect("uncommented TLS keys parse");
    let t = c.tls.expect("[tls] listen is set once uncommented");
    assert!(t.client_ca_file.is_some() && !t.cert_file.is_empty());
    assert!(c.master_tls.ca_file.is_some() && c.master_tls.server_name.is_some());
    assert!(c.master_tls.cert_file.is_some() && c.master_tls.key_file.is_some());
}

#[test]
fn bad_environment_values_name_the_variable() {
    let env = |k: &str| (k == "LOCKGATE_MASTER_TIMEOUT_MS").then(|| "fast".to_string());
    let e = Config::load(None, &env);
    assert!(
        matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "LOCKGATE_MASTER_TIMEOUT_MS")
    );
}

