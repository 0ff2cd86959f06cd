//! Unit tests of authentication and authorization over parsed configs.

use super::*;
use crate::config::{Config, ConfigError};

/// SHA-256 of "pw-alice".
fn alice_hash() -> String {
    hex::encode(sha256(b"pw-alice"))
}

fn cfg(extra: &str) -> Config {
    let text = format!(
        "{extra}\n[[masters]]\naddress = \"127.0.0.1:7000\"\n\
         [[users]]\nname = \"alice\"\npassword_sha256 = \"{}\"\n\
         commands = [\"lock\", \"read\"]\nkeys = [\"jobs:*\", \"batch:[ab]\"]\n\
         [[users]]\nname = \"bob\"\npassword_sha256 = \"{}\"\ncommands = [\"admin\"]\n\
         keys = [\"*\"]\nenabled = false\n",
        alice_hash(),
        alice_hash()
    );
    Config::from_toml_str(&text)
        .and_then(Config::validate)
        .expect("valid config")
}

fn args(s: &[&str]) -> Vec<Bytes> {
    crate::command::test_args(s)
}

#[test]
fn a_named_user_authenticates_only_with_its_password() {
    let c = cfg("");
    assert_eq!(
        authenticate(&c, Some(b"alice"), b"pw-alice").as_deref(),
        Ok("alice")
    );
    assert_eq!(
        authenticate(&c, Some(b"alice"), b"pw-alicE"),
        Err(AuthError::WrongPassword)
    );
    assert_eq!(
        authenticate(&c, Some(b"carol"), b"pw-alice"),
        Err(AuthError::UnknownUser)
    );
    assert_eq!(
        authenticate(&c, Some(b"bob"), b"pw-alice"),
        Err(AuthError::Disabled)
    );
}

#[test]
fn without_requirepass_named_users_turn_the_default_user_off() {
    let c = cfg("");
    assert!(required(&c));
    assert_eq!(
        authenticate(&c, None, b"anything"),
        Err(AuthError::Disabled)
    );
    assert!(matches!(
        authorize(&c, None, &args(&["GET", "k"]), &[]),
        Err(Denied::Gone(_))
    ));
}

#[test]
fn requirepass_is_the_default_users_password() {
    let c = cfg("requirepass = \"s3cret\"");
    assert_eq!(authenticate(&c, None, b"s3cret").as_deref(), Ok("default"));
    assert_eq!(
        authenticate(&c, Some(b"default"), b"s3cret").as_deref(),
        Ok("default")
    );
    assert_eq!(
        authenticate(&c, None, b"s3cre"),
        Err(AuthError::WrongPassword)
    );
    let everything = args(&["CLIENT", "LIST"]);
    assert_eq!(authorize(&c, Some("default"), &everything, &[]), Ok(()));
}

#[test]
fn with_no_authentication_a_bare_auth_is_refused_as_redis_does() {
    let c = Config::from_toml_str("[[masters]]\naddress = \"127.0.0.1:7000\"\n")
        .and_then(Config::validate)
        .expect("valid");
    assert!(!required(&c));
    assert_eq!(
        authenticate(&c, None, b"x"),
        Err(AuthError::NoPasswordConfigured)
    );
    assert_eq!(
        authenticate(&c, Some(b"default"), b"x").as_deref(),
        Ok("default")
    );
    assert_eq!(authorize(&c, None, &args(&["INFO"]), &[]), Ok(()));
}

#[test]
fn families_limit_what_a_user_may_run() {
    let c = cfg("");
    let a = Some("alice");
    let k = [Bytes::from_static(b"jobs:1")];
    assert_eq!(
        authorize(&c, a, &args(&["LOCK.ACQUIRE", "jobs:1", "100"]), &k),
        Ok(())
    );
    assert_eq!(authorize(&c, a, &args(&["GET", "jobs:1"]), &k), Ok(()));
    assert_eq!(authorize(&c, a, &args(&["PING"]), &[]), Ok(()));
    assert_eq!(
        authorize(&c, a, &args(&["CLIENT", "SETNAME", "x"]), &[]),
        Ok(())
    );
    let e = authorize(&c, a, &args(&["INFO"]), &[]).expect_err("admin denied");
    assert_eq!(
        e.to_string(),
        "NOPERM User alice has no permissions to run the 'info' command"
    );
    let e = authorize(&c, a, &args(&["client", "LIST"]), &[]).expect_err("denied");
    assert_eq!(
        e.to_string(),
        "NOPERM User alice has no permissions to run the 'client|list' command"
    );
}

#[test]
fn every_key_a_command_touches_must_match_a_pattern() {
    let c = cfg("");
    let a = Some("alice");
    let cmd = args(&["EXISTS", "jobs:1", "other"]);
    let keys = [Bytes::from_static(b"jobs:1"), Bytes::from_static(b"other")];
    let e = authorize(&c, a, &cmd, &keys).expect_err("key denied");
    assert_eq!(e.to_string(), "NOPERM No permissions to access a key");
    let keys = [
        Bytes::from_static(b"jobs:1"),
        Bytes::from_static(b"batch:b"),
    ];
    assert_eq!(authorize(&c, a, &cmd, &keys), Ok(()));
    let keys = [Bytes::from_static(b"batch:c")];
    assert_eq!(authorize(&c, a, &cmd, &keys), Err(Denied::Key));
}

#[test]
fn a_disabled_or_removed_user_loses_its_connection() {
    let c = cfg("");
    assert_eq!(
        authorize(&c, Some("bob"), &args(&["PING"]), &[]),
        Err(Denied::Gone("bob".into()))
    );
    assert_eq!(
        authorize(&c, Some("carol"), &args(&["PING"]), &[]),
        Err(Denied::Gone("carol".into()))
    );
}

fn invalid_key(text: &str) -> String {
    let t = format!("{text}\n[[masters]]\naddress = \"127.0.0.1:7000\"\n");
    match Config::from_toml_str(&t).and_then(Config::validate) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn bad_user_entries_name_their_key() {
    let h = alice_hash();
    assert_eq!(
        invalid_key("[[users]]\nname = \"a\"\npassword_sha256 = \"abc\"\n"),
        "users[0].password_sha256"
    );
    assert_eq!(
        invalid_key(&format!(
            "[[users]]\nname = \"a\"\npassword_sha256 = \"{h}\"\ncommands = [\"write\"]\n"
        )),
        "users[0].commands"
    );
    assert_eq!(
        invalid_key(&format!(
            "[[users]]\nname = \"a\"\npassword_sha256 = \"{h}\"\n\
             [[users]]\nname = \"a\"\npassword_sha256 = \"{h}\"\n"
        )),
        "users[1].name"
    );
    assert_eq!(
        invalid_key(&format!(
            "requirepass = \"x\"\n[[users]]\nname = \"default\"\npassword_sha256 = \"{h}\"\n"
        )),
        "users[0].name"
    );
    assert_eq!(
        invalid_key(&format!(
            "[[users]]\nname = \"a b\"\npassword_sha256 = \"{h}\"\n"
        )),
        "users[0].name"
    );
    let unknown = Config::from_toml_str(&format!(
        "[[users]]\nname = \"a\"\npassword_sha256 = \"{h}\"\npasword = \"x\"\n"
    ));
    assert!(matches!(unknown, Err(ConfigError::Parse(m)) if m.contains("pasword")));
}

#[test]
fn a_user_hash_is_never_shown_in_debug_output() {
    let c = cfg("");
    let shown = format!("{c:?}");
    assert!(!shown.contains(&alice_hash()));
    assert!(shown.contains("<redacted>"));
}

#[test]
fn the_documented_hash_command_matches_our_digest() {
    // `printf %s 'pw' | sha256sum`
    assert_eq!(
        hex::encode(sha256(b"pw")),
        "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
    );
}
