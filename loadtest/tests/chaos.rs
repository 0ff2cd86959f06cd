//! CI run of the chaos suite's short profile: the real `lockgate-loadtest`
//! binary injects every fault against real masters and gateway processes.
//! The runner enforces each scenario's claims itself; this test re-reads
//! its report so the two rules that matter most are checked twice: no
//! scenario but the negative control shows a token violation, and the
//! negative control shows at least one (the checker can fail).

use std::process::Command;

#[test]
fn chaos_short_profile_never_breaks_fencing_and_the_negative_control_does() {
    let dir = std::env::temp_dir().join(format!("lockgate-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let report = dir.join("FAULTS.md");
    let out = Command::new(env!("CARGO_BIN_EXE_lockgate-loadtest"))
        .args(["chaos", "--profile", "short", "--report"])
        .arg(&report)
        .output()
        .expect("run lockgate-loadtest chaos");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "chaos run failed (see above)");
    let table = std::fs::read_to_string(&report).expect("report written");
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|c| c.trim().to_string()).collect() };
    // Columns by header name, so adding a column cannot shift a check.
    let header = cells(
        table
            .lines()
            .find(|l| l.starts_with("| scenario"))
            .expect("table header"),
    );
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
    };
    let (c_class, c_grants, c_viol, c_over, c_lost, c_verdict) = (
        col("class"),
        col("grants"),
        col("token violations"),
        col("validity overlaps"),
        col("lost updates"),
        col("verdict"),
    );
    let rows: Vec<Vec<String>> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(cells)
        .collect();
    assert!(
        rows.len() >= 15,
        "too few scenarios in the report:\n{table}"
    );
    let mut negative_seen = false;
    for r in &rows {
        let (name, class) = (&r[1], &r[c_class]);
        let grants: u64 = r[c_grants].parse().expect("grants");
        let violations: u64 = r[c_viol].parse().expect("token violations");
        let overlaps: u64 = r[c_over].parse().expect("overlaps");
        let lost: u64 = r[c_lost].parse().expect("lost updates");
        assert!(grants > 0, "{name}: no grants at all");
        if class == "NEGATIVE CONTROL" {
            negative_seen = true;
            assert!(violations >= 1, "{name}: the checker found nothing");
        } else {
            assert_eq!(violations, 0, "{name}: token violations");
            assert_eq!(lost, 0, "{name}: lost updates");
            if class == "safety" {
                assert_eq!(overlaps, 0, "{name}: overlaps outside a timing fault");
            }
        }
        assert_eq!(r[c_verdict], "pass", "{name}: {r:?}");
    }
    assert!(negative_seen, "no negative control in the report");
    let _ = std::fs::remove_dir_all(&dir);
}
