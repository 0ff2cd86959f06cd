//! The Lua/Rust contract of every kind's scripts: the reply codes each
//! script returns are exactly the ones its typed decoder knows, the codes
//! the quorum core shares (`lock::round::code`) mean the same in every
//! script, and a master without its metadata record answers amnesia first
//! (docs/design.md, *Amnesia guard*). It sits with the kinds because it
//! reads every kind's Lua and decoders; the core knows none of them.
//!
//! What is read: every literal code a script returns (the integer right
//! after `return {`, or after `out = {` for a reply built up in a table),
//! and the code returned right after an anchor in the script's text.

use std::collections::BTreeSet;

use crate::kinds::holders;
use crate::kinds::plain::masters as plain;
use crate::kinds::reentrant::masters as reentrant;
use crate::lock::round::code::*;
use crate::lock::round::AcquireReply;
use crate::scripts::ScriptSet;

fn literal(rest: &str) -> Result<i64, String> {
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().map_err(|_| {
        format!(
            "non-literal reply code at '{}'",
            &rest[..rest.len().min(20)]
        )
    })
}

fn returned(lua: &str) -> Result<BTreeSet<i64>, String> {
    let mut out = BTreeSet::new();
    for opener in ["return {", "out = {"] {
        for (at, _) in lua.match_indices(opener) {
            out.insert(literal(&lua[at + opener.len()..])?);
        }
    }
    Ok(out)
}

fn after(lua: &str, anchor: &str) -> Result<i64, String> {
    let at = lua
        .find(anchor)
        .ok_or_else(|| format!("anchor {anchor:?} not found"))?;
    let rest = &lua[at + anchor.len()..];
    if anchor.ends_with('{') {
        return literal(rest);
    }
    let open = rest
        .find("return {")
        .map(|i| i + "return {".len())
        .or_else(|| rest.find("out = {").map(|i| i + "out = {".len()))
        .ok_or_else(|| format!("no reply after {anchor:?}"))?;
    literal(&rest[open..])
}

/// Checks one script: its codes are exactly `codes`, each one its
/// decoder knows (`decoder`), a missing metadata record answers
/// [`AMNESIA`], and each anchor is followed by its code.
fn check(
    name: &str,
    lua: &str,
    codes: &[i64],
    decoder: &[i64],
    anchors: &[(&str, i64)],
) -> Result<(), String> {
    let got = returned(lua)?;
    let want: BTreeSet<i64> = codes.iter().copied().collect();
    if got != want {
        return Err(format!(
            "{name}: returns codes {got:?}, Rust expects {want:?}"
        ));
    }
    if let Some(c) = codes.iter().find(|c| !decoder.contains(c)) {
        return Err(format!("{name}: code {c} has no decoder case"));
    }
    let amnesia = after(lua, "redis.call('EXISTS', KEYS[1]) == 0")?;
    if amnesia != AMNESIA {
        return Err(format!(
            "{name}: a missing record answers {amnesia}, not {AMNESIA}"
        ));
    }
    for (anchor, code) in anchors {
        let c = after(lua, anchor)?;
        if c != *code {
            return Err(format!(
                "{name}: after {anchor:?} returns {c}, Rust expects {code}"
            ));
        }
    }
    Ok(())
}

const GRANT_TAIL: &str = "'hwm', ARGV[3]) end\nreturn {";
const STALE_ANCHOR: &str = "if t <= highest then return {";
const ACQUIRE: &[i64] = &[GRANTED, BUSY, STALE, AMNESIA];
const ADMIT: &[i64] = &[GRANTED, BUSY, STALE, AMNESIA, MISMATCH];

/// One script's contract: name, body, the codes it returns, the
/// codes its decoder knows, and (anchor, code) pairs.
type Contract = (
    &'static str,
    String,
    Vec<i64>,
    Vec<i64>,
    Vec<(&'static str, i64)>,
);

fn all() -> Vec<Contract> {
    let s = ScriptSet::new();
    let acq = AcquireReply::CODES.to_vec();
    vec![
        (
            "acquire.lua",
            s.acquire.body.to_string(),
            ACQUIRE.to_vec(),
            acq.clone(),
            vec![
                ("if busy then return {", BUSY),
                (STALE_ANCHOR, STALE),
                (GRANT_TAIL, GRANTED),
            ],
        ),
        (
            "rw_acquire.lua",
            s.rw_acquire.body.to_string(),
            ACQUIRE.to_vec(),
            acq.clone(),
            vec![
                ("'PX', ARGV[7])\n  end\n  return {", BUSY),
                (STALE_ANCHOR, STALE),
                (GRANT_TAIL, GRANTED),
            ],
        ),
        (
            "sem_acquire.lua",
            s.sem_acquire.body.to_string(),
            ADMIT.to_vec(),
            acq.clone(),
            vec![
                ("if stored ~= permits then return {", MISMATCH),
                ("slot >= permits then\n  return {", BUSY),
                (STALE_ANCHOR, STALE),
                (GRANT_TAIL, GRANTED),
            ],
        ),
        (
            "racquire.lua",
            s.racquire.body.to_string(),
            ADMIT.to_vec(),
            acq,
            vec![
                (STALE_ANCHOR, STALE),
                ("'hwm', ARGV[3]) end\n  return {", GRANTED),
                ("if cur ~= ARGV[1] then return {", BUSY),
                ("if n > want then return {", MISMATCH),
                ("PEXPIRE', KEYS[2], ARGV[2])\nreturn {", GRANTED),
            ],
        ),
        (
            "status.lua",
            s.status.body.to_string(),
            plain::StatusReply::CODES.to_vec(),
            plain::StatusReply::CODES.to_vec(),
            vec![
                ("if not cur then return {", FREE),
                ("or '0'\nreturn {", HELD),
            ],
        ),
        (
            "rstatus.lua",
            s.rstatus.body.to_string(),
            reentrant::StatusReply::CODES.to_vec(),
            reentrant::StatusReply::CODES.to_vec(),
            vec![
                ("if not cur then return {", FREE),
                ("KEYS[4]) or '0')\nreturn {", HELD),
            ],
        ),
        (
            "holders_status.lua",
            s.holders_status.body.to_string(),
            holders::HoldersReply::CODES.to_vec(),
            holders::HoldersReply::CODES.to_vec(),
            vec![("local now", HELD)],
        ),
        (
            "rrelease.lua",
            s.rrelease.body.to_string(),
            reentrant::ReleaseReply::CODES.to_vec(),
            reentrant::ReleaseReply::CODES.to_vec(),
            vec![
                ("~= ARGV[1] then return {", NOT_HELD),
                ("if n > want then return {", MISMATCH),
                ("redis.call('DEL', KEYS[2], KEYS[3])\n  return {", DROPPED),
                ("'KEEPTTL')\nreturn {", DROPPED),
            ],
        ),
    ]
}

#[test]
fn every_script_returns_the_codes_its_decoder_expects() {
    for (name, lua, codes, decoder, anchors) in all() {
        if let Err(e) = check(name, &lua, &codes, &decoder, &anchors) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_check_fails_on_a_mismatched_code() {
    let (name, lua, codes, decoder, anchors) = all().remove(0);
    // A stale refusal renumbered in the Lua.
    let renumbered = lua.replace(
        "if t <= highest then return {2",
        "if t <= highest then return {5",
    );
    assert_ne!(renumbered, lua);
    assert!(check(name, &renumbered, &codes, &decoder, &anchors).is_err());
    // Two codes swapped: the set is unchanged, the anchors catch it.
    let swapped = lua
        .replace("if busy then return {1", "if busy then return {X")
        .replace(
            "if t <= highest then return {2",
            "if t <= highest then return {1",
        )
        .replace("if busy then return {X", "if busy then return {2");
    assert!(check(name, &swapped, &codes, &decoder, &anchors).is_err());
    // Amnesia answered with another code.
    let amnesia = lua.replace("return {3, 0}", "return {2, 0}");
    assert!(check(name, &amnesia, &codes, &decoder, &anchors).is_err());
    // A Rust constant that disagrees with the Lua.
    let wrong: Vec<i64> = codes
        .iter()
        .map(|&c| if c == BUSY { 7 } else { c })
        .collect();
    assert!(check(name, &lua, &wrong, &decoder, &anchors).is_err());
    // The unmodified script passes, so the failures are the edits'.
    assert!(check(name, &lua, &codes, &decoder, &anchors).is_ok());
}
