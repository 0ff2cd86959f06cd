//! `lockgate-loadtest chaos`: runs the fenced lock workload against real
//! gateway processes and real masters while injecting one fault per
//! scenario, then checks the history with the safety checker and writes one
//! row per scenario (the `FAULTS.md` table).
//!
//! A row passes when its scenario's claims hold: no duplicate or backwards
//! token (every scenario but the negative control, which must show at least
//! one, proving the checker can fail), no lost update, no lock key outliving
//! its TTL once the fault is gone, and the scenario's own recovery checks.
//! Validity overlaps are allowed only in the scenarios labelled `timing`.
//! Scenarios that run the lock kinds (read-write locks, semaphores) also need 0 violations from
//! the kinds checkers (semaphore permits, writer exclusion, reentrant
//! counts); their lines are part of the checker output.
//!
//! Both profiles run [`scenarios::all`]; the long profile adds
//! [`scenarios::long_only`], which `--only` can also name in a short run.
//!
//! # Layout
//! - [`load`]: the workers and the recorder.
//! - [`cluster`]: masters, relays and gateway processes of one scenario.
//! - [`gateway`]: the hidden `chaos-gateway` subcommand (test-only switches).
//! - [`scenarios`]: the faults.

pub mod cluster;
pub mod gateway;
pub mod load;
pub mod scenarios;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::checker;
use load::Timeline;

/// How long each phase of a scenario lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// CI: about a minute and a half for every scenario.
    Short,
    /// By hand: several times longer phases and more workers.
    Long,
}

/// Flags of `lockgate-loadtest chaos`.
#[derive(Args, Debug)]
pub struct ChaosArgs {
    #[arg(long, value_enum, default_value = "short")]
    pub profile: Profile,
    /// Run only these scenarios (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write the Markdown table here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Whether overlapping validity windows are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Fencing and mutual exclusion must both hold.
    Safety,
    /// A timing fault: mutual exclusion may break, fencing must hold.
    Timing,
    /// A guard is off (amnesia or eviction): the checker must report
    /// violations.
    Negative,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Safety => "safety",
            Class::Timing => "timing (overlaps allowed)",
            Class::Negative => "NEGATIVE CONTROL",
        }
    }
}

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub class: Class,
    /// What the checker and the timeline show for the run.
    pub measured: Measured,
    /// Client-side error kinds of the failed requests, e.g. `NOQUORUM 3`.
    pub failure_kinds: String,
    pub recover: Option<Duration>,
    /// Scenario-specific claims and whether they held.
    pub checks: Vec<(String, bool)>,
    pub notes: String,
    /// One line per gateway from its own `/metrics` at the end of the run.
    pub gateway_side: Vec<String>,
    pub seconds: f64,
}

impl Row {
    /// Whether the scenario's claims held.
    pub fn passed(&self) -> bool {
        let tokens_ok = match self.class {
            Class::Negative => self.measured.token_violations > 0,
            _ => self.measured.token_violations == 0,
        };
        let overlaps_ok = self.class != Class::Safety || self.measured.overlaps == 0;
        let kinds_ok = self.class == Class::Negative || self.measured.kind_violations == 0;
        tokens_ok
            && overlaps_ok
            && kinds_ok
            && (self.class == Class::Negative || self.measured.lost_updates == 0)
            && self.checks.iter().all(|(_, ok)| *ok)
    }
}

/// The measured part of a row, from the finished timeline.
#[derive(Debug, Clone)]
pub struct Measured {
    pub grants: u64,
    pub token_violations: u64,
    pub overlaps: u64,
    pub stale_rejected: u64,
    pub lost_updates: u64,
    pub failed: u64,
    pub longest_gap: Duration,
    /// Broken rules of the kinds checkers (0 when no kind ran).
    pub kind_violations: u64,
    pub checker_output: String,
}

/// Analyses `t` over the window `[from, to]`.
/// `resource_total` is the resource's final sum: every admitted write
/// must be in it, or an update was lost.
pub fn measure(t: &Timeline, resource_total: u64, from: Instant, to: Instant) -> Measured {
    // Tokens over every kind; overlaps over the exclusive kinds only.
    let reentrant_grants = checker::token_records(&t.holds);
    let exclusive: Vec<_> = t.history.iter().chain(&reentrant_grants).cloned().collect();
    let all: Vec<_> = exclusive.iter().chain(&t.shared).cloned().collect();
    let mut report = checker::analyse(&all, t.stale_rejected);
    report.overlapping_validity = checker::analyse(&exclusive, 0).overlapping_validity;
    let mut grants: Vec<Instant> = t
        .grants
        .iter()
        .map(|g| g.at)
        .filter(|g| *g >= from && *g <= to)
        .collect();
    grants.sort();
    let mut gap = Duration::ZERO;
    let mut prev = from;
    for g in grants.iter().chain(std::iter::once(&to)) {
        gap = gap.max(g.saturating_duration_since(prev));
        prev = *g;
    }
    let mut out = format!(
        "safety: {} grants checked, {} duplicate tokens, {} backwards tokens, {} overlapping \
         validity windows, {} stale accesses rejected\n",
        report.grants,
        report.duplicate_tokens,
        report.backwards_tokens,
        report.overlapping_validity,
        report.stale_rejected
    );
    for e in &report.examples {
        let _ = writeln!(out, "  violation: {e}");
    }
    let mut kind_violations = 0;
    let mut by_kind = std::collections::BTreeMap::<&str, u64>::new();
    for g in &t.grants {
        *by_kind.entry(g.kind).or_default() += 1;
    }
    if by_kind.keys().any(|k| *k != "plain") {
        let _ = writeln!(
            out,
            "grants by kind: {}",
            by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !t.kinds.is_empty() {
        let k = checker::analyse_kinds(&t.kinds);
        kind_violations += k.sem_over_permits + k.writer_overlaps;
        let _ = writeln!(
            out,
            "kinds: {} reads, {} writes, {} semaphore grants; {} times more live semaphore \
             holders than permits, {} writer overlaps",
            k.reads, k.writes, k.sem_grants, k.sem_over_permits, k.writer_overlaps
        );
        for e in &k.examples {
            let _ = writeln!(out, "  violation: {e}");
        }
    }
    if !t.holds.is_empty() {
        let r = checker::analyse_reentrant(&t.holds);
        kind_violations += r.violations();
        out.push_str(&crate::workload::reentrant_line(&r));
    }
    if t.grants.iter().any(|g| g.kind == "keepalive") {
        let _ = writeln!(
            out,
            "keepalive: RESP3, {} lost-lock pushes received",
            t.lost_pushes
        );
    }
    Measured {
        grants: report.grants,
        token_violations: report.duplicate_tokens + report.backwards_tokens,
        overlaps: report.overlapping_validity,
        stale_rejected: report.stale_rejected,
        lost_updates: t.admitted.saturating_sub(resource_total),
        failed: t.failures.len() as u64,
        longest_gap: gap,
        kind_violations,
        checker_output: out,
    }
}

fn ms(d: Duration) -> String {
    format!("{}", d.as_millis())
}

/// The Markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | class | grants | token violations | validity overlaps | stale accesses \
         rejected | lost updates | requests failed | failed by kind | longest unavailability \
         (ms) | recovery after heal (ms) | verdict |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.class.label(),
            r.measured.grants,
            r.measured.token_violations,
            r.measured.overlaps,
            r.measured.stale_rejected,
            r.measured.lost_updates,
            r.measured.failed,
            if r.failure_kinds.is_empty() {
                "-"
            } else {
                &r.failure_kinds
            },
            ms(r.measured.longest_gap),
            r.recover.map_or("n/a".into(), ms),
            if r.passed() { "pass" } else { "**FAIL**" }
        );
    }
    s
}

/// Per-scenario details: the checks and notes under the table.
pub fn details(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        let _ = writeln!(s, "### `{}` ({:.1} s)\n", r.name, r.seconds);
        if !r.notes.is_empty() {
            let _ = writeln!(s, "{}\n", r.notes);
        }
        for (c, ok) in &r.checks {
            let _ = writeln!(s, "- [{}] {c}", if *ok { "x" } else { " " });
        }
        if !r.gateway_side.is_empty() {
            let _ = writeln!(s, "\nGateway side (`/metrics` at the end):\n");
            for l in &r.gateway_side {
                let _ = writeln!(s, "- {l}");
            }
        }
        let _ = writeln!(s, "\n```\n{}```\n", r.measured.checker_output);
    }
    s
}

/// Runs the selected scenarios; fails when any row does not pass.
///
/// # Errors
/// When a scenario cannot set up its world, or a row fails.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut all = scenarios::all();
    if args.profile == Profile::Long || !args.only.is_empty() {
        all.extend(scenarios::long_only());
    }
    let chosen: Vec<_> = all
        .iter()
        .filter(|(name, _)| args.only.is_empty() || args.only.iter().any(|o| o == name))
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "no scenario matches {:?}; known: {}",
        args.only,
        all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    );
    let mut rows = Vec::new();
    for (name, f) in chosen {
        eprintln!("chaos: {name} ...");
        let t = Instant::now();
        let mut row = f(args.profile).await?;
        row.seconds = t.elapsed().as_secs_f64();
        eprintln!(
            "chaos: {name}: {} in {:.1} s\n{}",
            if row.passed() { "pass" } else { "FAIL" },
            row.seconds,
            row.measured.checker_output.trim_end()
        );
        for (c, ok) in &row.checks {
            eprintln!("  [{}] {c}", if *ok { "ok" } else { "FAILED" });
        }
        rows.push(row);
    }
    let total = started.elapsed();
    let table = table(&rows);
    println!("{table}");
    println!("profile {:?}: {:.0} s", args.profile, total.as_secs_f64());
    if let Some(path) = &args.report {
        let profile = match args.profile {
            Profile::Short => "short",
            Profile::Long => "long",
        };
        let body = format!(
            "{table}\nProfile `{profile}`, {} scenarios, {:.0} s.\n\n{}",
            rows.len(),
            total.as_secs_f64(),
            details(&rows)
        );
        std::fs::write(path, body)?;
    }
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name)
        .collect();
    anyhow::ensure!(failed.is_empty(), "scenarios failed: {}", failed.join(", "));
    Ok(())
}
