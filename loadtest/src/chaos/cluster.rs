//! One scenario's world: real `redis-server` masters (plain or AOF), a
//! fault relay between every gateway and every master, and gateway child
//! processes (`chaos-gateway`) that reach the masters only through their
//! relays. Dropping an [`Env`] kills everything it started. Each gateway's
//! `/metrics` can be scraped ([`Env::scrape`]) to read its own counters.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lockgate::dev::{free_port, LocalRedis};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::relay::Relay;

/// Knobs shared by every gateway of a run.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub timeout_ms: u64,
    pub max_ttl_ms: u64,
    pub max_acquire_ms: u64,
}

/// How one gateway differs from a production one (test-only switches).
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewaySpec {
    pub clock_offset_ms: i64,
    pub guard_off: bool,
    /// The eviction guard off: masters whose policy can evict vote.
    pub eviction_guard_off: bool,
}

/// A gateway child process.
pub struct GatewayProc {
    pub addr: String,
    /// Its admin listener (`/metrics`).
    pub admin: String,
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: Option<ChildStdin>,
}

/// Masters, relays and gateways of one scenario.
pub struct Env {
    pub masters: Vec<LocalRedis>,
    /// `relays[g][m]`: gateway `g`'s only path to master `m`.
    pub relays: Vec<Vec<Relay>>,
    pub gateways: Vec<Option<GatewayProc>>,
    tuning: Tuning,
}

// === impl GatewayProc ===

impl GatewayProc {
    async fn spawn(masters: &[SocketAddr], spec: GatewaySpec, t: &Tuning) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("own executable")?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(exe);
        cmd.arg("chaos-gateway")
            .arg("--listen")
            .arg(&listen)
            .arg("--timeout-ms")
            .arg(t.timeout_ms.to_string())
            .arg("--max-ttl-ms")
            .arg(t.max_ttl_ms.to_string())
            .arg("--max-acquire-ms")
            .arg(t.max_acquire_ms.to_string())
            .arg(format!("--test-clock-offset-ms={}", spec.clock_offset_ms));
        for m in masters {
            cmd.arg("--master").arg(m.to_string());
        }
        if spec.guard_off {
            cmd.arg("--unsafe-test-disable-amnesia-guard");
        }
        if spec.eviction_guard_off {
            cmd.arg("--unsafe-test-disable-eviction-guard");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("spawning chaos-gateway")?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("gateway not ready in 20 s")??
            .unwrap_or_default();
        let Some((addr, admin)) = line
            .strip_prefix("READY ")
            .and_then(|rest| rest.split_once(' '))
        else {
            bail!("gateway did not start: {line:?}");
        };
        let stdin = child.stdin.take();
        Ok(GatewayProc {
            addr: addr.to_string(),
            admin: admin.trim().to_string(),
            child,
            _stdin: stdin,
        })
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg(sig)
                .arg(pid.to_string())
                .status();
        }
    }

    /// SIGKILL, and reap it.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub fn stop(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        // A stopped child cannot die of SIGKILL until it is continued on
        // some kernels' accounting; continue it first.
        self.resume();
        let _ = self.child.start_kill();
    }
}

// === impl Env ===

impl Env {
    /// Starts `n` masters, one relay per gateway and master, and one
    /// gateway per spec.
    pub async fn start(
        n: usize,
        aof: bool,
        specs: &[GatewaySpec],
        tuning: Tuning,
    ) -> anyhow::Result<Env> {
        let masters = tokio::task::spawn_blocking(move || {
            (0..n)
                .map(|_| {
                    if aof {
                        LocalRedis::start_aof()
                    } else {
                        LocalRedis::start()
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await??;
        let mut relays = Vec::new();
        for _ in specs {
            let mut row = Vec::new();
            for m in &masters {
                row.push(Relay::start(m.address().parse()?).await?);
            }
            relays.push(row);
        }
        let mut env = Env {
            masters,
            relays,
            gateways: Vec::new(),
            tuning,
        };
        for (g, spec) in specs.iter().enumerate() {
            let gw = env.spawn_gateway(g, *spec).await?;
            env.gateways.push(Some(gw));
        }
        Ok(env)
    }

    async fn spawn_gateway(&self, g: usize, spec: GatewaySpec) -> anyhow::Result<GatewayProc> {
        let addrs: Vec<SocketAddr> = self.relays[g].iter().map(Relay::addr).collect();
        GatewayProc::spawn(&addrs, spec, &self.tuning).await
    }

    pub fn addr(&self, g: usize) -> String {
        self.gateways
            .get(g)
            .and_then(|x| x.as_ref())
            .map(|x| x.addr.clone())
            .unwrap_or_default()
    }

    /// Gateway `g`'s metrics now (Prometheus text format from its admin
    /// listener), with each `master` label turned into the master's index.
    ///
    /// # Errors
    /// When the gateway is gone or does not answer within a second.
    pub async fn scrape(&self, g: usize) -> anyhow::Result<Metrics> {
        let admin = self
            .gateways
            .get(g)
            .and_then(|x| x.as_ref())
            .map(|x| x.admin.clone())
            .context("no such gateway")?;
        let body = tokio::time::timeout(Duration::from_secs(1), http_get(&admin, "/metrics"))
            .await
            .context("metrics scrape timed out")??;
        // The gateway labels masters by the address it dials: its relays.
        let relays: Vec<String> = self.relays[g]
            .iter()
            .map(|r| r.addr().to_string())
            .collect();
        Ok(Metrics::parse(&body, &relays))
    }

    /// Every relay in front of master `m`.
    pub fn relays_to(&self, m: usize) -> impl Iterator<Item = &Relay> {
        self.relays.iter().filter_map(move |row| row.get(m))
    }

    /// SIGKILLs master `m` and starts it again at once on the same port
    /// (empty without AOF).
    pub async fn restart_master(&mut self, m: usize) -> anyhow::Result<()> {
        let master = self.masters.get_mut(m).context("no such master")?;
        tokio::task::block_in_place(|| master.restart())?;
        Ok(())
    }

    /// Each master's state as gateway `g` reports it (INFO lockgate).
    pub async fn states(&self, g: usize) -> anyhow::Result<Vec<String>> {
        let addr = self.addr(g);
        let mut c = tokio::time::timeout(Duration::from_secs(1), async {
            redis::Client::open(format!("redis://{addr}/"))?
                .get_multiplexed_async_connection()
                .await
        })
        .await??;
        let info: String = tokio::time::timeout(
            Duration::from_secs(1),
            redis::cmd("INFO").arg("lockgate").query_async(&mut c),
        )
        .await??;
        Ok(info
            .lines()
            .filter(|l| l.starts_with("master") && l.contains(",state="))
            .filter_map(|l| l.rsplit("state=").next())
            .map(|s| s.trim().to_string())
            .collect())
    }

    /// Polls until every live gateway reports every master up; the time it
    /// took, or `None` after `within`.
    pub async fn wait_all_up(&self, within: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < within {
            let mut all = true;
            for g in 0..self.gateways.len() {
                if self.gateways[g].is_none() {
                    continue;
                }
                match self.states(g).await {
                    Ok(s) if s.len() == self.masters.len() && s.iter().all(|x| x == "up") => {}
                    _ => all = false,
                }
            }
            if all {
                return Some(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Whether gateway `g` reports master `m` in `state` now.
    pub async fn master_is(&self, g: usize, m: usize, state: &str) -> bool {
        self.states(g)
            .await
            .is_ok_and(|s| s.get(m).is_some_and(|x| x == state))
    }

    /// "No lock stuck": on every master, every lock key of run `run` has a
    /// TTL no longer than `max_ttl`, and all of them are gone within
    /// `max_ttl` plus slack. Returns the problems found (empty when fine).
    pub async fn stuck_locks(&self, run: u64, max_ttl: Duration) -> Vec<String> {
        let pattern = format!("chaos:{run}:*");
        // Lock keys (`{prefix}c:{chaos:..}`) and the kinds' structures
        // (`{prefix}i:rw:<part>:{chaos:..}`, `i:sem:`, the reentrant
        // `i:holds:` count) wrap the key in a hash tag; fence registers do
        // too but never expire by design.
        let wrapped = format!("*{{chaos:{run}:*");
        let give_up = Instant::now() + max_ttl + Duration::from_millis(1_500);
        let mut problems = Vec::new();
        for (i, m) in self.masters.iter().enumerate() {
            let Ok(client) = redis::Client::open(format!("redis://{}/", m.address())) else {
                continue;
            };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else {
                problems.push(format!("master {i} unreachable"));
                continue;
            };
            loop {
                let mut keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                let kinds: Vec<String> = redis::cmd("KEYS")
                    .arg(&wrapped)
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                keys.extend(kinds.into_iter().filter(|k| !k.contains("fence:{")));
                if keys.is_empty() {
                    break;
                }
                for k in &keys {
                    let pttl: i64 = redis::cmd("PTTL")
                        .arg(k)
                        .query_async(&mut c)
                        .await
                        .unwrap_or(-2);
                    let max = i64::try_from(max_ttl.as_millis()).unwrap_or(i64::MAX);
                    if pttl == -1 || pttl > max {
                        problems.push(format!("master {i}: {k} has PTTL {pttl}"));
                    }
                }
                if Instant::now() > give_up {
                    problems.push(format!(
                        "master {i}: {} lock keys outlived their TTL",
                        keys.len()
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        problems
    }
}

/// Labels of one sample, as (key, value) pairs.
pub type Labels = Vec<(String, String)>;

/// One scrape of a gateway's `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// (name, labels, value); a `master` label holds the master's index.
    pub samples: Vec<(String, Labels, f64)>,
}

impl Metrics {
    /// Parses the text format leniently: a line it cannot read is skipped
    /// (the scrape explains a row; it is not a check of the exposition).
    fn parse(body: &str, masters: &[String]) -> Metrics {
        let mut samples = Vec::new();
        for line in body.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((head, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match head.split_once('{') {
                None => (head.to_string(), Vec::new()),
                Some((name, rest)) => {
                    let rest = rest.trim_end_matches('}');
                    let labels = rest
                        .split(',')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| {
                            let v = v.trim_matches('"').to_string();
                            let v = if k == "master" {
                                masters
                                    .iter()
                                    .position(|m| *m == v)
                                    .map_or(v, |i| i.to_string())
                            } else {
                                v
                            };
                            (k.to_string(), v)
                        })
                        .collect();
                    (name.to_string(), labels)
                }
            };
            samples.push((name, labels, value));
        }
        Metrics { samples }
    }

    /// The sum of `name` over the samples whose labels include all `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && with
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    /// The value of counter `name` as an integer (0 when absent).
    pub fn count(&self, name: &str, with: &[(&str, &str)]) -> u64 {
        // Counters are integers the gateway exposes as floats.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = self.sum(name, with).max(0.0) as u64;
        n
    }

    /// Non-zero samples of `name`, as `label=value ... count` strings, for
    /// the report.
    pub fn nonzero(&self, name: &str) -> Vec<String> {
        self.samples
            .iter()
            .filter(|(n, _, v)| n == name && *v > 0.0)
            .map(|(_, labels, v)| {
                let l = labels
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                format!("{l}: {v}")
            })
            .collect()
    }
}

/// A plain HTTP/1.1 GET (one request, `Connection: close`), body as text.
/// The loadtest has no HTTP client dependency and needs none for this.
async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP header end in the metrics reply");
    };
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "metrics scrape: {}",
        head.lines().next().unwrap_or_default()
    );
    // The admin listener sends a full body with a length; a chunked one
    // would need decoding this helper does not do.
    anyhow::ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked metrics reply"
    );
    Ok(body.to_string())
}
