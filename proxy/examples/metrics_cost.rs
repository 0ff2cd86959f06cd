//! Measures what metrics cost one acquire on a 5-master gateway: the exact
//! calls the acquire path makes (command count, per-master request latency
//! and vote counters, op outcome and latency, validity histogram), timed
//! over many iterations.
//!
//! `cargo run --release -p lockgate --example metrics_cost`

use std::time::Instant;

use lockgate::metrics::{Metrics, Op, Outcome};

fn main() {
    let m = Metrics::new();
    let masters: Vec<_> = (0..5)
        .map(|i| m.master(&format!("127.0.0.1:{}", 7000 + i)))
        .collect();
    let cmd = m.command("lock.acquire");
    let n = 2_000_000u32;
    let start = Instant::now();
    for i in 0..n {
        cmd.inc();
        for mm in &masters {
            mm.request_duration.observe(0.0003);
        }
        for mm in &masters[..3] {
            mm.votes_given.inc();
        }
        m.lock_op(
            Op::Acquire,
            Outcome::Granted,
            0.0008 + f64::from(i % 7) * 1e-5,
        );
        m.grant_validity.observe(9.9);
    }
    let per_op = start.elapsed().as_nanos() as f64 / f64::from(n);
    println!("metrics cost per acquire (5 masters): {per_op:.0} ns");
}
