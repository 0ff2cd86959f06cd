//! The connection task of one master: connect, handshake, serve the
//! pipeline, reconnect with backoff.
//!
//! [`supervise`] owns the request channel for the master's whole life. While
//! the link is down it answers anything still found in the channel with
//! [`MasterError::Down`] (callers normally fail fast before queueing; this
//! covers the race with a link going down). While the link is up it acts as
//! the writer, and a spawned reader task decodes replies.
//!
//! # Ordering note
//! The writer pushes a request's reply slot onto the FIFO before its bytes
//! reach the socket, and the reader pops one slot per reply, so replies are
//! matched strictly in order. A slot whose caller already gave up is still
//! popped by its reply, which is then dropped. Requests whose caller gave up
//! before they were written are skipped altogether (neither written nor
//! queued). When the connection ends, every slot still in the FIFO is
//! answered with [`MasterError::ConnectionLost`], except the one whose reply
//! was malformed, which gets [`MasterError::Protocol`].
//!
//! # Guard note
//! The handshake also learns who the server is (`INFO server`) and what it
//! may evict (`CONFIG GET maxmemory*`). Both are recorded, and the server
//! claimed in the gateway's peers, *before* the link turns up, so a master
//! never votes on an unchecked connection. The claim is given up only after
//! every pending slot of the connection has been failed, so no reply from
//! it can be counted once another address of the same server votes.
//!
//! Everything here is generic over the byte stream ([`Connector`]) so tests
//! drive it over `tokio::io::duplex`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::backoff::Backoff;
use super::identity::ServerId;
use super::policy::{self, Verdict};
use super::replication::Replication;
use super::wire::{encode_command, ReplyDecoder, ReplyLimits};
use super::{MasterError, Request, Shared, Value};
use crate::config::{MasterConfig, MasterTuning};
use crate::scripts::ScriptSet;

/// Most requests written in one batch; bounds the time replies wait behind
/// one huge write.
const MAX_BATCH_REQUESTS: usize = 512;
/// Most bytes gathered into one batch before writing it.
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Read buffer size; replies are small, so this is rarely outgrown.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Why a connection attempt failed or a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve {0}: no address")]
    Resolve(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("{step} refused: {reason}")]
    Refused { step: &'static str, reason: String },
    #[error("malformed reply during handshake: {0}")]
    Protocol(String),
    #[error("connection closed by master")]
    Closed,
    /// The TLS handshake failed: most often the master's certificate did
    /// not verify (wrong CA, wrong name, expired).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

// === impl LinkError ===

impl LinkError {
    /// The `reason` label of `lockgate_master_connect_failures_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            LinkError::Resolve(_) => "resolve",
            // Under TLS 1.3 a master that refuses our client certificate
            // says so only after the handshake, as an alert on the first
            // read or write: still a TLS failure, not a network one.
            LinkError::Io(e) if is_tls(e) => "tls",
            LinkError::Io(_) => "connect",
            LinkError::Timeout(_) => "timeout",
            LinkError::Refused { .. } => "refused",
            LinkError::Protocol(_) => "protocol",
            LinkError::Closed => "closed",
            LinkError::Tls(_) => "tls",
        }
    }
}

fn is_tls(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// Opens byte streams to one master.
pub(crate) trait Connector: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a fresh stream; each step bounded by `timeout`.
    fn connect(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Stream, LinkError>> + Send;
}

/// TCP to `host:port`, resolving the host again on every attempt.
pub(crate) struct TcpConnector {
    address: String,
}

/// TLS over [`TcpConnector`]: the host is still re-resolved on every
/// attempt, and the certificate is checked against `name` every time.
pub(crate) struct TlsConnector {
    tcp: TcpConnector,
    tls: tokio_rustls::TlsConnector,
    name: rustls_pki_types::ServerName<'static>,
}

/// What runs on a fresh stream before the link counts as up.
pub(crate) struct Handshake {
    /// `(username, password)`; AUTH is skipped without a password.
    auth: Option<(Option<String>, String)>,
    declared_policy: Option<String>,
    scripts: Arc<ScriptSet>,
    step_timeout: Duration,
    limits: ReplyLimits,
}

/// What a handshake learnt about the server.
pub(crate) struct Greeting {
    pub id: ServerId,
    pub verdict: Verdict,
    /// `INFO replication` shows a second replication history: the server
    /// may be a promoted replica, held out until its record is checked.
    pub second_history: bool,
}

/// A reply slot waiting in the FIFO.
struct Slot {
    reply: oneshot::Sender<Result<Value, MasterError>>,
    started: Instant,
    /// Released when the slot is answered or dropped.
    _permit: OwnedSemaphorePermit,
}

/// Slots in request order; shared by the writer (push) and reader (pop).
type Fifo = Arc<Mutex<VecDeque<Slot>>>;

fn lock(fifo: &Fifo) -> MutexGuard<'_, VecDeque<Slot>> {
    // Nothing panics while holding it; a poisoned queue is still in order.
    fifo.lock().unwrap_or_else(|p| p.into_inner())
}

// === impl TcpConnector ===

impl TcpConnector {
    pub(crate) fn new(address: String) -> Self {
        TcpConnector { address }
    }
}

impl Connector for TcpConnector {
    type Stream = TcpStream;

    async fn connect(&self, timeout: Duration) -> Result<TcpStream, LinkError> {
        // Re-resolved on every attempt: a master behind DNS may move.
        let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host(&self.address))
            .await
            .map_err(|_| LinkError::Timeout("resolve"))??;
        let mut last = LinkError::Resolve(self.address.clone());
        for addr in addrs {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    // Requests are small and latency-bound; never wait for
                    // Nagle to coalesce them (the writer batches already).
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Ok(Err(e)) => last = LinkError::Io(e),
                Err(_) => last = LinkError::Timeout("connect"),
            }
        }
        Err(last)
    }
}

// === impl TlsConnector ===

impl TlsConnector {
    pub(crate) fn new(
        address: String,
        config: Arc<rustls::ClientConfig>,
        name: rustls_pki_types::ServerName<'static>,
    ) -> Self {
        TlsConnector {
            tcp: TcpConnector::new(address),
            tls: tokio_rustls::TlsConnector::from(config),
            name,
        }
    }
}

impl Connector for TlsConnector {
    type Stream = tokio_rustls::client::TlsStream<TcpStream>;

    async fn connect(&self, timeout: Duration) -> Result<Self::Stream, LinkError> {
        let tcp = self.tcp.connect(timeout).await?;
        match tokio::time::timeout(timeout, self.tls.connect(self.name.clone(), tcp)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(LinkError::Tls(e.to_string())),
            Err(_) => Err(LinkError::Timeout("TLS handshake")),
        }
    }
}

// === impl Handshake ===

impl Handshake {
    pub(crate) fn new(
        cfg: &MasterConfig,
        scripts: Arc<ScriptSet>,
        step_timeout: Duration,
        max_nesting: usize,
    ) -> Self {
        Handshake {
            auth: cfg.password.clone().map(|pw| (cfg.username.clone(), pw)),
            declared_policy: cfg.eviction_policy.clone(),
            scripts,
            step_timeout,
            limits: ReplyLimits::new(max_nesting),
        }
    }

    /// AUTH (when configured), PING, INFO server (the server's identity),
    /// CONFIG GET maxmemory* (its eviction policy; a refusal is an answer
    /// too), then SCRIPT LOAD of every script, checking the digest the
    /// master returns. Each step is bounded by the connect timeout, so a
    /// master that accepts TCP but never answers (SIGSTOP) fails here and
    /// stays down.
    ///
    /// # Errors
    /// The first step that failed, timed out or was refused; an `INFO`
    /// without a run id is refused.
    pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: &mut S,
        rbuf: &mut BytesMut,
        decoder: &mut ReplyDecoder,
    ) -> Result<Greeting, LinkError> {
        if let Some((user, pw)) = &self.auth {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = user {
                args.push(u.as_bytes());
            }
            args.push(pw.as_bytes());
            self.step("AUTH", s, rbuf, decoder, &args).await?;
        }
        self.step("PING", s, rbuf, decoder, &[b"PING"]).await?;
        let info = self
            .step("INFO server", s, rbuf, decoder, &[b"INFO", b"server"])
            .await?;
        let Some(id) = ServerId::from_info(&info) else {
            return Err(LinkError::Refused {
                step: "INFO server",
                reason: "no run_id in the reply; the gateway needs it to tell masters apart".into(),
            });
        };
        // A refused or unreadable INFO replication is no reading: the
        // amnesia guard reads it again and withholds the vote if it must.
        let second_history = match self
            .answer(
                "INFO replication",
                s,
                rbuf,
                decoder,
                &[b"INFO", b"replication"],
            )
            .await?
        {
            Ok(v) => Replication::from_info(&v).is_some_and(|r| r.replid2.is_some()),
            Err(_) => false,
        };
        let verdict = match self
            .answer("CONFIG GET", s, rbuf, decoder, &policy::CONFIG_GET)
            .await?
        {
            Ok(v) => policy::judge(Ok(&v), self.declared_policy.as_deref()),
            Err(MasterError::Reply(e)) => policy::judge(Err(&e), self.declared_policy.as_deref()),
            Err(e) => policy::judge(Err(&e.to_string()), self.declared_policy.as_deref()),
        };
        for sc in self.scripts.all() {
            let args: [&[u8]; 3] = [b"SCRIPT", b"LOAD", sc.body.as_bytes()];
            match self.step("SCRIPT LOAD", s, rbuf, decoder, &args).await? {
                Value::Bulk(sha) if sha.eq_ignore_ascii_case(sc.sha1.as_bytes()) => {}
                other => {
                    return Err(LinkError::Refused {
                        step: "SCRIPT LOAD",
                        reason: format!(
                            "script {} loaded as {other:?}, expected {}",
                            sc.name, sc.sha1
                        ),
                    })
                }
            }
        }
        Ok(Greeting {
            id,
            verdict,
            second_history,
        })
    }

    async fn step<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        step: &'static str,
        s: &mut S,
        rbuf: &mut BytesMut,
        decoder: &mut ReplyDecoder,
        args: &[&[u8]],
    ) -> Result<Value, LinkError> {
        self.answer(step, s, rbuf, decoder, args)
            .await?
            .map_err(|e| LinkError::Refused {
                step,
                reason: e.to_string(),
            })
    }

    /// One round trip; an error reply is an answer (`Ok(Err(..))`), for the
    /// steps where a refusal is information rather than failure.
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        step: &'static str,
        s: &mut S,
        rbuf: &mut BytesMut,
        decoder: &mut ReplyDecoder,
        args: &[&[u8]],
    ) -> Result<Result<Value, MasterError>, LinkError> {
        let roundtrip = async {
            s.write_all(&encode_command(args)).await?;
            s.flush().await?;
            loop {
                match decoder.decode(rbuf) {
                    Ok(Some(Ok(v))) => return Ok(Ok(v)),
                    Ok(Some(Err(e))) => return Ok(Err(e)),
                    Ok(None) => {}
                    Err(e) => return Err(LinkError::Protocol(e.to_string())),
                }
                if s.read_buf(rbuf).await? == 0 {
                    return Err(LinkError::Closed);
                }
            }
        };
        tokio::time::timeout(self.step_timeout, roundtrip)
            .await
            .map_err(|_| LinkError::Timeout(step))?
    }
}

// === the connection task ===

/// Keeps one master connected until it is shut down or its handle dropped.
pub(crate) async fn supervise<C: Connector>(
    shared: Arc<Shared>,
    connector: C,
    handshake: Handshake,
    tuning: MasterTuning,
    mut rx: mpsc::Receiver<Request>,
) {
    let stop = shared.stop_token().clone();
    let mut backoff = Backoff::new(tuning.reconnect_min, tuning.reconnect_max);
    // Only the first failure of a run of failures is worth an info line.
    let mut quiet = false;
    loop {
        let attempt = async {
            let mut stream = connector.connect(tuning.connect_timeout).await?;
            let mut rbuf = BytesMut::with_capacity(READ_BUFFER_BYTES);
            let mut decoder = ReplyDecoder::new(handshake.limits);
            let greeting = handshake.run(&mut stream, &mut rbuf, &mut decoder).await?;
            Ok::<_, LinkError>((stream, rbuf, decoder, greeting))
        };
        let attempt = tokio::select! {
            _ = stop.cancelled() => return,
            r = refuse_while(&mut rx, attempt) => r,
        };
        match attempt {
            None => return, // every handle dropped
            Some(Ok((stream, rbuf, decoder, greeting))) => {
                backoff.reset();
                quiet = false;
                // Judged and claimed before the link is up: see the guard
                // note above.
                shared.set_policy(greeting.verdict);
                if greeting.second_history {
                    shared.hold_until_checked();
                }
                shared.peers().claim(shared.index(), &shared, &greeting.id);
                let kill = stop.child_token();
                let up = shared.link_up(kill.clone());
                shared.attempted();
                let Some(generation) = up else {
                    shared.peers().release(shared.index());
                    return; // shut down during the handshake
                };
                if generation > 1 {
                    shared.metrics().reconnects.inc();
                }
                serve(&shared, stream, rbuf, decoder, &mut rx, &kill).await;
                // Accepted while the link was up but never written.
                while let Ok(r) = rx.try_recv() {
                    let _ = r.reply.send(Err(MasterError::ConnectionLost));
                }
                shared.peers().release(shared.index());
            }
            Some(Err(e)) => {
                shared.attempted();
                shared.metrics().connect_failure(e.reason());
                if quiet {
                    debug!(master = %shared.name(), cause = %e, "master still unreachable");
                } else {
                    info!(master = %shared.name(), cause = %e, "cannot connect to master; retrying with backoff");
                    quiet = true;
                }
            }
        }
        let wait = backoff.next_wait();
        tokio::select! {
            _ = stop.cancelled() => return,
            r = refuse_while(&mut rx, tokio::time::sleep(wait)) => if r.is_none() { return },
        }
    }
}

/// Runs `fut` while answering every request that reaches the channel with
/// [`MasterError::Down`]. `None` when the channel closed (handle dropped).
async fn refuse_while<F: Future>(rx: &mut mpsc::Receiver<Request>, fut: F) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            r = rx.recv() => match r {
                Some(r) => { let _ = r.reply.send(Err(MasterError::Down)); }
                None => return None,
            },
        }
    }
}

/// Serves the pipeline over `stream` until it fails or `kill` fires (too many
/// timeouts, shutdown), then marks the link down and fails every pending
/// slot.
async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    shared: &Arc<Shared>,
    stream: S,
    rbuf: BytesMut,
    decoder: ReplyDecoder,
    rx: &mut mpsc::Receiver<Request>,
    kill: &CancellationToken,
) {
    let (rd, wr) = tokio::io::split(stream);
    let fifo: Fifo = Arc::default();
    // The reader runs as its own task so decoding replies and writing
    // requests can proceed on different cores.
    let mut reader = tokio::spawn(read_loop(shared.clone(), rd, rbuf, decoder, fifo.clone()));
    let mut reader_done = false;
    let cause = tokio::select! {
        c = write_loop(wr, rx, &fifo) => c,
        c = &mut reader => {
            reader_done = true;
            c.unwrap_or_else(|e| format!("reader task failed: {e}"))
        }
        _ = kill.cancelled() => if shared.stop_token().is_cancelled() {
            "shutdown".to_string()
        } else {
            "stopped answering".to_string()
        },
    };
    // Down before any pending caller hears about it, so a caller that got
    // ConnectionLost never sees the master still `Up`.
    shared.link_down(&cause);
    if !reader_done {
        // Wait for the reader to be gone so the socket is closed (both halves
        // dropped) before the next connection is attempted.
        reader.abort();
        let _ = reader.await;
    }
    let pending: Vec<Slot> = lock(&fifo).drain(..).collect();
    for slot in pending {
        let _ = slot.reply.send(Err(MasterError::ConnectionLost));
    }
}

/// Moves requests from the channel to the socket in batches.
async fn write_loop<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    rx: &mut mpsc::Receiver<Request>,
    fifo: &Fifo,
) -> String {
    let mut batch: Vec<Bytes> = Vec::new();
    let mut out = BytesMut::new();
    loop {
        let Some(first) = rx.recv().await else {
            return "master handle dropped".to_string();
        };
        let mut next = Some(first);
        let mut bytes = 0;
        {
            let mut q = lock(fifo);
            while let Some(r) = next.take() {
                // A caller that already gave up would only get its reply
                // discarded; not sending saves the master the work.
                if !r.reply.is_closed() {
                    bytes += r.bytes.len();
                    batch.push(r.bytes);
                    q.push_back(Slot {
                        reply: r.reply,
                        started: r.started,
                        _permit: r.permit,
                    });
                }
                if batch.len() < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
        }
        let result = match batch.len() {
            0 => continue,
            1 => wr.write_all(&batch[0]).await,
            _ => {
                out.clear();
                out.reserve(bytes);
                for b in &batch {
                    out.extend_from_slice(b);
                }
                wr.write_all(&out).await
            }
        };
        batch.clear();
        if out.capacity() > 4 * MAX_BATCH_BYTES {
            // One burst of huge requests should not pin the memory forever.
            out = BytesMut::new();
        }
        if let Err(e) = result {
            return format!("write: {e}");
        }
        if let Err(e) = wr.flush().await {
            return format!("write: {e}");
        }
    }
}

/// Decodes replies and hands each to the slot at the front of the FIFO.
async fn read_loop<S: AsyncRead>(
    shared: Arc<Shared>,
    mut rd: ReadHalf<S>,
    mut rbuf: BytesMut,
    mut decoder: ReplyDecoder,
    fifo: Fifo,
) -> String {
    loop {
        loop {
            match decoder.decode(&mut rbuf) {
                Ok(Some(reply)) => {
                    let Some(slot) = lock(&fifo).pop_front() else {
                        return "master sent a reply nobody asked for".to_string();
                    };
                    shared
                        .metrics()
                        .request_duration
                        .observe(slot.started.elapsed().as_secs_f64());
                    // The caller may have given up; the reply is then dropped.
                    let _ = slot.reply.send(reply);
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream cannot be resynchronised after this. Down
                    // first, then blame the request the broken reply
                    // belonged to.
                    let cause = format!("malformed reply: {e}");
                    shared.link_down(&cause);
                    if let Some(slot) = lock(&fifo).pop_front() {
                        let _ = slot.reply.send(Err(MasterError::Protocol(e.to_string())));
                    }
                    return cause;
                }
            }
        }
        if rbuf.capacity() - rbuf.len() < READ_BUFFER_BYTES / 4 {
            rbuf.reserve(READ_BUFFER_BYTES);
        }
        match rd.read_buf(&mut rbuf).await {
            Ok(0) => return "connection closed by master".to_string(),
            Ok(_) => {}
            Err(e) => return format!("read: {e}"),
        }
    }
}
