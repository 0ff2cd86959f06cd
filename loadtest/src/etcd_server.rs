//! A local single-node `etcd` for the etcd baseline of `bench` and for the
//! etcd test: on free loopback ports (client and peer), with its own
//! temporary data directory and log file. It is started with etcd's
//! defaults otherwise, so its WAL is fsynced as in any real deployment.
//! Dropping a [`LocalEtcd`] kills it and removes the directory.
//!
//! Readiness is etcd's own `/health` endpoint on the client port, so this
//! module needs neither the gRPC client nor an async runtime (the test
//! includes it by path).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

/// How to get etcd when it is missing, for skip lines and errors.
pub const INSTALL_HINT: &str =
    "apt-get install etcd-server protobuf-compiler libprotobuf-dev, and build with \
     `cargo build --release -p lockgate-loadtest --features etcd`";

/// One `etcd` child process.
pub struct LocalEtcd {
    client_port: u16,
    child: Child,
    /// Held for its `Drop`: the data directory goes with the process.
    _dir: TempDir,
}

/// Whether an `etcd` binary is on PATH.
pub fn installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `etcd 3.4.23`, from the first line of `etcd --version`
/// (`etcd Version: 3.4.23`).
pub fn version() -> String {
    Command::new("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.replace("Version: ", ""))
        })
        .unwrap_or_else(|| "etcd (version unknown)".to_string())
}

/// True when `GET /health` on the client port answers `"health":"true"`.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let req = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut body = Vec::new();
    // HTTP/1.0: the server closes after the body; a timeout keeps what came.
    let _ = s.take(64 * 1024).read_to_end(&mut body);
    let body = String::from_utf8_lossy(&body);
    body.starts_with("HTTP/1.") && body.contains("\"health\":\"true\"")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// === impl LocalEtcd ===

impl LocalEtcd {
    /// Starts etcd and waits until it reports itself healthy. A port taken
    /// between choosing and binding it is retried with new ports.
    ///
    /// # Errors
    /// When `etcd` is not on PATH, or does not become healthy in 20 s
    /// (the error carries the end of its log).
    pub fn start() -> anyhow::Result<LocalEtcd> {
        if !installed() {
            bail!("etcd is not on PATH: {INSTALL_HINT}");
        }
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start() {
                Ok(e) => return Ok(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    fn try_start() -> anyhow::Result<LocalEtcd> {
        let dir = tempfile::Builder::new()
            .prefix("lockgate-etcd-")
            .tempdir()
            .context("creating etcd's data directory")?;
        let client_port = lockgate::dev::free_port()?;
        let peer_port = lockgate::dev::free_port()?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).context("creating etcd's log file")?;
        let data: PathBuf = dir.path().join("data");
        let mut child = Command::new("etcd")
            .arg("--name")
            .arg("lt")
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("lt={peer}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting etcd")?;
        let give_up = Instant::now() + Duration::from_secs(20);
        while Instant::now() < give_up {
            if healthy(client_port) {
                return Ok(LocalEtcd {
                    client_port,
                    child,
                    _dir: dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "etcd exited ({status}) before it was healthy; its log ends:\n{}",
                    tail(&log_path, 15)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "etcd on port {client_port} was not healthy within 20 s; its log ends:\n{}",
            tail(&log_path, 15)
        )
    }

    /// `127.0.0.1:<client port>`, as `--target` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
