//! Local `redis-server` processes, for dev mode and the integration tests:
//! each on a free loopback port, in its own temporary directory, with no
//! persistence unless asked for AOF, optionally serving TLS only (the
//! integration tests and `bench --only tls`). Dropping a [`LocalRedis`]
//! kills it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Why a local Redis could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum LocalRedisError {
    #[error(
        "redis-server was not found on PATH; install it (Debian/Ubuntu: apt-get install \
         redis-server, macOS: brew install redis)"
    )]
    NotInstalled,
    #[error("cannot start redis-server: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("redis-server on port {0} did not answer PING in time")]
    NotReady(u16),
}

/// The files of a TLS-only master: it listens on `--tls-port` and not at
/// all in plain text.
#[derive(Debug, Clone)]
pub struct RedisTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Verifies client certificates when `auth_clients` is set.
    pub ca_file: PathBuf,
    /// `--tls-auth-clients yes`: refuse clients without a certificate.
    pub auth_clients: bool,
}

/// One `redis-server` child process.
pub struct LocalRedis {
    port: u16,
    aof: bool,
    /// Extra `redis-server` arguments (e.g. `--requirepass`), kept for
    /// restarts.
    extra: Vec<String>,
    tls: Option<RedisTls>,
    dir: TempDir,
    child: Option<Child>,
}

/// A free loopback port (the OS picks one; a race with another process
/// taking it is handled by retrying the start).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    // A master started with a password answers NOAUTH, which still proves
    // it is up.
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
}

// === impl LocalRedis ===

impl LocalRedis {
    /// Starts a master with no persistence.
    pub fn start() -> Result<LocalRedis, LocalRedisError> {
        Self::start_with(false, &[], None)
    }

    /// Starts a master with no persistence and extra `redis-server`
    /// arguments, e.g. `["--requirepass", "pw"]`.
    ///
    /// # Errors
    /// As [`LocalRedis::start`].
    pub fn start_with_args(args: &[&str]) -> Result<LocalRedis, LocalRedisError> {
        Self::start_with(false, args, None)
    }

    /// Starts a master with no persistence that serves TLS only.
    pub fn start_tls(tls: RedisTls) -> Result<LocalRedis, LocalRedisError> {
        Self::start_with(false, &[], Some(tls))
    }

    /// Starts a master with `appendonly yes` and `appendfsync always`, so a
    /// restart reloads everything it acknowledged.
    pub fn start_aof() -> Result<LocalRedis, LocalRedisError> {
        Self::start_with(true, &[], None)
    }

    fn start_with(
        aof: bool,
        extra: &[&str],
        tls: Option<RedisTls>,
    ) -> Result<LocalRedis, LocalRedisError> {
        let mut last = LocalRedisError::NotReady(0);
        for _ in 0..5 {
            let port = free_port()?;
            let mut r = LocalRedis {
                port,
                aof,
                extra: extra.iter().map(|a| (*a).to_string()).collect(),
                tls: tls.clone(),
                dir: tempfile::Builder::new()
                    .prefix("lockgate-redis-")
                    .tempdir()?,
                child: None,
            };
            match r.spawn() {
                Ok(()) => return Ok(r),
                Err(e @ LocalRedisError::NotInstalled) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn(&mut self) -> Result<(), LocalRedisError> {
        let dir: PathBuf = self.dir.path().to_path_buf();
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(t) => cmd
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(&t.cert_file)
                .arg("--tls-key-file")
                .arg(&t.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca_file)
                .arg("--tls-auth-clients")
                .arg(if t.auth_clients { "yes" } else { "no" }),
        };
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--dir")
            .arg(&dir)
            .arg("--protected-mode")
            .arg("no")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        cmd.args(&self.extra);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LocalRedisError::NotInstalled
            } else {
                LocalRedisError::Spawn(e)
            }
        })?;
        let give_up = Instant::now() + Duration::from_secs(10);
        while Instant::now() < give_up {
            // A TLS port cannot be pinged in clear text; redis-server opens
            // its listeners only once it is ready to serve, and a client
            // (the gateway) retries anyway.
            let ready = match self.tls {
                None => ping(self.port),
                Some(_) => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if ready {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited: most likely the port was taken
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(LocalRedisError::NotReady(self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(sig)
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub fn stop(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`LocalRedis::stop`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGKILL, and wait for the process to go.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and directory: empty without AOF,
    /// with everything acknowledged under AOF.
    ///
    /// # Errors
    /// When the process cannot be started again.
    pub fn restart(&mut self) -> Result<(), LocalRedisError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// Starts `n` masters for dev mode.
///
/// # Errors
/// When `redis-server` is missing or a master does not come up.
pub fn start_masters(n: usize) -> Result<Vec<LocalRedis>, LocalRedisError> {
    (0..n).map(|_| LocalRedis::start()).collect()
}
