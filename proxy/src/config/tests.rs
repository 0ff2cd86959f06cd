//! Tests of loading, the environment overlay, validation, and of the example file and the README against the schema.

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

// === the schema against everything derived from it or documenting it ===

use std::collections::BTreeSet;

/// Every key of the schema as (section, key), "" being the top level; the
/// arrays by the keys of one entry.
fn schema_keys() -> BTreeSet<(String, String)> {
    let mut keys: BTreeSet<(String, String)> = tree::keys()
        .into_iter()
        .filter(|(_, default)| !default.is_array())
        .map(|(path, _)| match path.split_once('.') {
            Some((s, k)) => (s.to_string(), k.to_string()),
            None => (String::new(), path),
        })
        .collect();
    for (array, entry) in tree::entry_keys() {
        keys.extend(entry.into_iter().map(|k| (array.to_string(), k)));
    }
    keys
}

/// The keys the example file sets or shows commented out, by section.
fn example_keys() -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in FULL.lines() {
        let line = line.strip_prefix("#~ ").unwrap_or(line);
        if let Some(name) = line.strip_prefix('[') {
            section = name.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let body = line.strip_prefix("# ").unwrap_or(line);
        if let Ok(t) = toml::from_str::<toml::Table>(body) {
            if let (1, Some(k)) = (t.len(), t.keys().next()) {
                keys.insert((section.clone(), k.clone()));
            }
        }
    }
    keys
}

/// The keys of the README's configuration table, by section: the
/// backquoted names of each row's second cell, outside parentheses.
fn readme_keys() -> BTreeSet<(String, String)> {
    const README: &str = include_str!("../../../README.md");
    let section = README
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Configuration section");
    let mut keys = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (name, list) = (cells[1], cells[2]);
        if name == "section" {
            continue;
        }
        let name = match name {
            "top level" => String::new(),
            n => n.trim_matches(|c| "`[]".contains(c)).to_string(),
        };
        let (mut depth, mut outside) = (0, String::new());
        for c in list.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                c if depth == 0 => outside.push(c),
                _ => {}
            }
        }
        for (i, k) in outside.split('`').enumerate() {
            if i % 2 == 1 {
                keys.insert((name.clone(), k.to_string()));
            }
        }
    }
    keys
}

#[test]
fn the_example_file_shows_every_key_of_the_schema_and_no_other() {
    let (schema, example) = (schema_keys(), example_keys());
    let missing: Vec<_> = schema.difference(&example).collect();
    let unknown: Vec<_> = example.difference(&schema).collect();
    assert!(missing.is_empty(), "not in the example file: {missing:?}");
    assert!(unknown.is_empty(), "unknown to the schema: {unknown:?}");
}

#[test]
fn the_readme_table_lists_every_key_of_the_schema_and_no_other() {
    let (schema, readme) = (schema_keys(), readme_keys());
    let missing: Vec<_> = schema.difference(&readme).collect();
    let unknown: Vec<_> = readme.difference(&schema).collect();
    assert!(missing.is_empty(), "not in the README table: {missing:?}");
    assert!(unknown.is_empty(), "unknown to the schema: {unknown:?}");
}

#[test]
fn the_example_file_sets_every_key_at_its_default() {
    // "every key, with its default": all but the master list.
    let mut c = Config::from_toml_str(FULL).expect("parses");
    assert_eq!(c.masters.len(), 3);
    c.masters.clear();
    assert_eq!(c, Config::default());
}

#[test]
fn every_key_has_exactly_one_reload_policy() {
    let keys: BTreeSet<String> = tree::keys().into_iter().map(|(p, _)| p).collect();
    let mut seen = BTreeSet::new();
    for (path, _) in Config::reload_policies() {
        assert!(seen.insert(path.to_string()), "{path} has two policies");
    }
    assert_eq!(seen, keys, "policy tables against the schema's keys");
}

#[test]
fn environment_variable_names_are_derived_distinct_and_keep_every_old_name() {
    let vars: Vec<String> = env::vars().into_iter().map(|(_, v)| v).collect();
    let distinct: BTreeSet<&String> = vars.iter().collect();
    assert_eq!(distinct.len(), vars.len(), "two keys share a variable");
    for v in &vars {
        assert!(
            !env::MASTER_LIST.contains(&v.as_str()),
            "{v} is a master-list variable"
        );
    }
    // Every variable a deployment may already set, before the names were
    // derived: each must still be read.
    for old in [
        "LOCKGATE_LISTEN",
        "LOCKGATE_ADMIN_LISTEN",
        "LOCKGATE_LOG_LEVEL",
        "LOCKGATE_SHUTDOWN_GRACE_MS",
        "LOCKGATE_REQUIREPASS",
        "LOCKGATE_PROTECTED_MODE",
        "LOCKGATE_ADMIN_TOKEN",
        "LOCKGATE_TLS_LISTEN",
        "LOCKGATE_TLS_CERT_FILE",
        "LOCKGATE_TLS_KEY_FILE",
        "LOCKGATE_TLS_CLIENT_CA_FILE",
        "LOCKGATE_TLS_HANDSHAKE_TIMEOUT_MS",
        "LOCKGATE_MASTER_TLS_CA_FILE",
        "LOCKGATE_MASTER_TLS_CERT_FILE",
        "LOCKGATE_MASTER_TLS_KEY_FILE",
        "LOCKGATE_MASTER_TLS_SERVER_NAME",
        "LOCKGATE_MASTER_TIMEOUT_MS",
        "LOCKGATE_MASTER_CONNECT_TIMEOUT_MS",
        "LOCKGATE_MASTER_DOWN_AFTER_TIMEOUTS",
        "LOCKGATE_MASTER_RECONNECT_MIN_MS",
        "LOCKGATE_MASTER_RECONNECT_MAX_MS",
        "LOCKGATE_MASTER_MAX_INFLIGHT",
        "LOCKGATE_LOCK_DRIFT_FACTOR",
        "LOCKGATE_LOCK_DRIFT_CONSTANT_MS",
        "LOCKGATE_LOCK_MIN_TTL_MS",
        "LOCKGATE_LOCK_MAX_TTL_MS",
        "LOCKGATE_LOCK_MAX_WAIT_MS",
        "LOCKGATE_LOCK_KEY_PREFIX",
        "LOCKGATE_LOCK_MAX_ACQUIRE_TIME_MS",
        "LOCKGATE_LOCK_BOOTSTRAP",
        "LOCKGATE_LOCK_SET_WITHOUT_TTL",
        "LOCKGATE_LIMITS_MAX_FRAME_BYTES",
        "LOCKGATE_LIMITS_MAX_BULK_BYTES",
        "LOCKGATE_LIMITS_MAX_ARGS",
        "LOCKGATE_LIMITS_MAX_NESTING",
        "LOCKGATE_LIMITS_MAX_INLINE_BYTES",
        "LOCKGATE_LIMITS_MAX_CLIENTS",
        "LOCKGATE_LIMITS_MAX_PIPELINE",
        "LOCKGATE_LIMITS_MAX_KEY_BYTES",
        "LOCKGATE_LIMITS_IDLE_TIMEOUT_MS",
        "LOCKGATE_LIMITS_PARTIAL_FRAME_TIMEOUT_MS",
        "LOCKGATE_LIMITS_MAX_OUTPUT_BUFFER_BYTES",
        "LOCKGATE_LIMITS_WRITE_TIMEOUT_MS",
    ] {
        assert!(vars.iter().any(|v| v == old), "{old} is no longer read");
    }
}

#[test]
fn every_environment_variable_sets_its_key() {
    // The TLS listener's other keys count only while it is on.
    let base = [(
        "LOCKGATE_TLS_LISTEN".to_string(),
        "127.0.0.1:6390".to_string(),
    )];
    for (path, var) in env::vars() {
        let default = tree::keys()
            .into_iter()
            .find(|(p, _)| *p == path)
            .map(|(_, d)| d)
            .expect("a key");
        let candidates: Vec<String> = match &default {
            serde_json::Value::Bool(b) => vec![(!b).to_string()],
            serde_json::Value::Number(n) if n.is_f64() => vec!["0.25".into()],
            serde_json::Value::Number(n) => vec![(n.as_u64().expect("u64") + 1).to_string()],
            _ => ["immediate", "error", "127.0.0.1:1", "x"]
                .map(String::from)
                .to_vec(),
        };
        let set = candidates.iter().find_map(|value| {
            let env = |k: &str| {
                base.iter()
                    .chain([(var.clone(), value.clone())].iter())
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            let c = Config::load_unvalidated(None, &env).ok()?;
            let got = tree::get(&tree::of(&c), &path).cloned()?;
            (got != default).then_some(got)
        });
        assert!(set.is_some(), "{var} does not set {path}");
    }
}

#[test]
fn the_families_a_user_may_be_granted_are_the_acl_families() {
    use crate::acl::Family;
    for name in USER_FAMILIES {
        let f = Family::from_config(name).expect("a family");
        assert_eq!(f.as_str(), name);
    }
    for f in [Family::Lock, Family::Read, Family::Admin] {
        assert!(USER_FAMILIES.contains(&f.as_str()), "{f:?}");
    }
}

#[test]
fn a_declared_eviction_policy_must_be_one_redis_knows() {
    let ok = with("eviction_policy = \"noeviction\"\n").expect("valid");
    assert_eq!(ok.masters[0].eviction_policy.as_deref(), Some("noeviction"));
    assert_eq!(
        bad_key("eviction_policy = \"no-eviction\"\n"),
        "masters[0].eviction_policy"
    );
    assert_eq!(
        bad_key("[master]\npolicy_check_ms = 0\n"),
        "master.policy_check_ms"
    );
    let env = |k: &str| match k {
        "LOCKGATE_MASTERS" => Some("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3".to_string()),
        "LOCKGATE_MASTERS_EVICTION_POLICY" => Some("noeviction".to_string()),
        _ => None,
    };
    let c = Config::load(None, &env).expect("valid");
    assert!(c
        .masters
        .iter()
        .all(|m| m.eviction_policy.as_deref() == Some("noeviction")));
}
