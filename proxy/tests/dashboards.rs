//! The dashboards/ data folder, tested from Rust: every metric the rules use
//! is one the gateway exports, and the rules pass promtool's checks and unit
//! tests.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{dashboard_exprs, dashboards_dir as dashboards, rule_exprs};

/// Metric names (`lockgate_...`) mentioned in `text`, with histogram
/// suffixes stripped.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("lockgate_") {
        let start = i + pos;
        // A recording rule (`lockgate:...`) or part of a longer word is not
        // an exported metric name.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b':') {
            i = start + 9;
            continue;
        }
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .map_or(text.len(), |e| start + e);
        let mut name = text[start..end].to_string();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(s) = name.strip_suffix(suffix) {
                name = s.to_string();
            }
        }
        out.push(name);
        i = end;
    }
    out
}

#[test]
fn dashboard_structure_is_importable() {
    let text = std::fs::read_to_string(dashboards().join("lockgate-overview.json")).expect("json");
    let d: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(d["title"], "lockgate overview");
    let vars = d["templating"]["list"].as_array().expect("variables");
    assert!(vars
        .iter()
        .any(|v| v["name"] == "datasource" && v["type"] == "datasource"));
    assert!(vars
        .iter()
        .any(|v| v["name"] == "instance" && v["includeAll"] == true));
    let mut ids = std::collections::HashSet::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(p["id"].as_i64().expect("id")),
            "duplicate panel id {}",
            p["id"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {}",
            p["title"]
        );
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "panel {}",
                p["title"]
            );
            let e = t["expr"].as_str().expect("expr");
            assert!(
                e.contains("$instance"),
                "panel {} ignores the instance variable",
                p["title"]
            );
        }
    }
    assert!(ids.len() >= 18);
}

#[test]
fn rules_file_reader_finds_every_rule() {
    let rules = rule_exprs();
    assert_eq!(rules.iter().filter(|r| r.1).count(), 6, "{rules:?}");
    assert_eq!(rules.iter().filter(|r| !r.1).count(), 4, "{rules:?}");
}

#[test]
fn every_metric_in_the_rules_is_exported() {
    let m = lockgate::metrics::Metrics::new();
    // Labelled families appear only once a child exists, as in a running
    // gateway (which resolves every master's children at start).
    let mm = m.master("127.0.0.1:7001");
    mm.request_duration.observe(0.001);
    mm.set_state(0);
    mm.votes_given.inc();
    mm.error("timeout");
    mm.reconnects.inc();
    m.command("ping").inc();
    m.lock_op(
        lockgate::metrics::Op::Acquire,
        lockgate::metrics::Outcome::Granted,
        0.001,
    );
    let exported = prometheus::TextEncoder::new()
        .encode_to_string(&m.registry.gather())
        .expect("encode");
    let mut text = std::fs::read_to_string(dashboards().join("alerts.yml")).expect("alerts.yml");
    for (_, e) in dashboard_exprs() {
        text.push_str(&e);
        text.push('\n');
    }
    let names = metric_names(&text);
    assert!(names.len() >= 5, "too few metric names found: {names:?}");
    for n in names {
        assert!(
            exported.contains(&format!("# TYPE {n} ")),
            "the rules or the dashboard use {n}, which the gateway does not export"
        );
    }
}

fn promtool() -> Option<PathBuf> {
    let found = Command::new("promtool").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "promtool is missing: apt-get install prometheus"
        );
        eprintln!("skipping: promtool not installed (apt-get install prometheus)");
        return None;
    }
    Some(PathBuf::from("promtool"))
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let Some(p) = promtool() else { return };
    let check = Command::new(&p)
        .arg("check")
        .arg("rules")
        .arg(dashboards().join("alerts.yml"))
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let test = Command::new(&p)
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(dashboards().join("tests"))
        .output()
        .expect("run promtool");
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

#[test]
fn a_scrape_passes_promtool_check_metrics() {
    let m = lockgate::metrics::Metrics::new();
    m.lock_op(
        lockgate::metrics::Op::Acquire,
        lockgate::metrics::Outcome::Granted,
        0.001,
    );
    m.master("127.0.0.1:7001").votes_given.inc();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&m.registry.gather())
        .expect("encode");
    let Some(out) = support::promtool_check_metrics(&text) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
