//! The connection task of one master: connect, handshake, serve the pipeline,
//! reconnect with backoff.
//!
//! # Ordering note
//! The writer pushes a request's reply slot onto the FIFO before its bytes
//! reach the socket, and the reader pops one slot per reply, so replies are
//! matched strictly in order. When the connection ends, every slot still in
//! the FIFO is answered with [`MasterError::ConnectionLost`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{wire, Master, MasterError, Request, Value};
use crate::config::MasterConfig;
use crate::scripts::ScriptSet;

type Slot = oneshot::Sender<Result<Value, MasterError>>;

/// Why a connection attempt or a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("handshake timed out")]
    Timeout,
    #[error("handshake refused: {0}")]
    Handshake(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Keeps master `m` connected until it is shut down.
pub(crate) async fn supervise(
    m: Arc<Master>,
    cfg: MasterConfig,
    max_nesting: usize,
    scripts: Arc<ScriptSet>,
    mut rx: mpsc::Receiver<Request>,
) {
    let tuning = m.tuning().clone();
    let mut attempt: u32 = 0;
    let mut logged_down = false;
    loop {
        if m.stop_token().is_cancelled() {
            return;
        }
        let connected = tokio::select! {
            _ = m.stop_token().cancelled() => return,
            r = tokio::time::timeout(tuning.connect_timeout, connect(&cfg, &scripts, max_nesting)) => r,
        };
        match connected {
            Ok(Ok((stream, rbuf))) => {
                attempt = 0;
                logged_down = false;
                // Requests queued while the link was down are stale: their
                // callers were told Down or have timed out.
                while let Ok(r) = rx.try_recv() {
                    let _ = r.reply.send(Err(MasterError::ConnectionLost));
                }
                // A kick left over from the previous connection must not
                // end this one.
                let _ = futures::FutureExt::now_or_never(m.kicked().notified());
                m.set_link(true);
                info!(master = m.name(), "master connected");
                let end = serve(&m, stream, rbuf, max_nesting, &mut rx).await;
                m.set_link(false);
                m.metrics().reconnects.inc();
                if !m.stop_token().is_cancelled() {
                    warn!(master = m.name(), cause = %end, "master connection lost");
                }
            }
            Ok(Err(e)) => {
                if !logged_down {
                    warn!(master = m.name(), cause = %e, "cannot connect to master; retrying");
                    logged_down = true;
                }
            }
            Err(_) => {
                if !logged_down {
                    warn!(master = m.name(), "master handshake timed out; retrying");
                    logged_down = true;
                }
            }
        }
        // Full jitter over an exponential ceiling.
        let ceiling = tuning
            .reconnect_min
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(tuning.reconnect_max);
        attempt = attempt.saturating_add(1);
        let ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let wait = Duration::from_millis(rand::rng().random_range(ms / 2..=ms));
        tokio::select! {
            _ = m.stop_token().cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn roundtrip<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    rbuf: &mut BytesMut,
    args: &[&[u8]],
    max_nesting: usize,
) -> Result<Value, LinkError> {
    s.write_all(&wire::encode_command(args)).await?;
    loop {
        match wire::decode(rbuf, max_nesting).map_err(LinkError::Protocol)? {
            Some(Ok(v)) => return Ok(v),
            Some(Err(e)) => return Err(LinkError::Handshake(e.to_string())),
            None => {
                if s.read_buf(rbuf).await? == 0 {
                    return Err(LinkError::Protocol("connection closed".into()));
                }
            }
        }
    }
}

/// Connects and runs the handshake: AUTH (when configured), PING, and
/// SCRIPT LOAD of every script, checking the digests Redis returns.
async fn connect(
    cfg: &MasterConfig,
    scripts: &ScriptSet,
    max_nesting: usize,
) -> Result<(TcpStream, BytesMut), LinkError> {
    // Re-resolved on every attempt: a master behind DNS may move.
    let addr = tokio::net::lookup_host(&cfg.address)
        .await?
        .next()
        .ok_or_else(|| LinkError::Resolve(cfg.address.clone()))?;
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    handshake(&mut s, &mut rbuf, cfg, scripts, max_nesting).await?;
    Ok((s, rbuf))
}

/// The handshake over any stream (tests drive it over an in-memory pipe).
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    rbuf: &mut BytesMut,
    cfg: &MasterConfig,
    scripts: &ScriptSet,
    max_nesting: usize,
) -> Result<(), LinkError> {
    if let Some(pw) = &cfg.password {
        match &cfg.username {
            Some(u) => {
                roundtrip(
                    s,
                    rbuf,
                    &[b"AUTH", u.as_bytes(), pw.as_bytes()],
                    max_nesting,
                )
                .await?
            }
            None => roundtrip(s, rbuf, &[b"AUTH", pw.as_bytes()], max_nesting).await?,
        };
    }
    roundtrip(s, rbuf, &[b"PING"], max_nesting).await?;
    for sc in scripts.all() {
        let v = roundtrip(
            s,
            rbuf,
            &[b"SCRIPT", b"LOAD", sc.body.as_bytes()],
            max_nesting,
        )
        .await?;
        match v {
            Value::Bulk(sha) if sha.eq_ignore_ascii_case(sc.sha1.as_bytes()) => {}
            other => {
                return Err(LinkError::Handshake(format!(
                    "SCRIPT LOAD of {} returned {other:?}, expected {}",
                    sc.name, sc.sha1
                )))
            }
        }
    }
    Ok(())
}

/// Serves the pipeline over `stream` until it fails, the master is kicked
/// (too many timeouts) or shut down. Returns why it ended.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    m: &Master,
    stream: S,
    mut rbuf: BytesMut,
    max_nesting: usize,
    rx: &mut mpsc::Receiver<Request>,
) -> String {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let fifo: Mutex<VecDeque<Slot>> = Mutex::new(VecDeque::new());

    let writer = async {
        let mut out = BytesMut::with_capacity(16 * 1024);
        loop {
            let Some(first) = rx.recv().await else {
                return "request channel closed".to_string();
            };
            let mut batch = vec![first];
            while batch.len() < 1024 {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            {
                let mut q = fifo.lock().unwrap_or_else(|p| p.into_inner());
                for r in batch {
                    out.extend_from_slice(&r.bytes);
                    q.push_back(r.reply);
                }
            }
            if let Err(e) = wr.write_all(&out).await {
                return format!("write: {e}");
            }
            out.clear();
        }
    };

    let reader = async {
        loop {
            loop {
                match wire::decode(&mut rbuf, max_nesting) {
                    Ok(Some(reply)) => {
                        let slot = fifo.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                        match slot {
                            Some(s) => {
                                let _ = s.send(reply);
                            }
                            None => return "reply with no request pending".to_string(),
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return format!("malformed reply: {e}"),
                }
            }
            match rd.read_buf(&mut rbuf).await {
                Ok(0) => return "closed by master".to_string(),
                Ok(_) => {}
                Err(e) => return format!("read: {e}"),
            }
        }
    };

    let end = tokio::select! {
        e = writer => e,
        e = reader => e,
        _ = m.kicked().notified() => "stopped answering".to_string(),
        _ = m.stop_token().cancelled() => "shutdown".to_string(),
    };
    let pending: Vec<Slot> = fifo
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .collect();
    for s in pending {
        let _ = s.send(Err(MasterError::ConnectionLost));
    }
    end
}
