//! One client connection: read, parse, run, reply in order.
//!
//! Requests are parsed as they arrive and started at once, so a pipelining or
//! multiplexing client (many workers sharing one connection) keeps many lock
//! operations in flight. Replies still leave in request order: each request
//! is a future in a `FuturesOrdered`, and finished replies are written in
//! batches. Two requests of one connection that touch the same key never run
//! concurrently: the later one waits for the earlier, which keeps the
//! pipelined result equal to what one Redis would have produced.
//!
//! The transport is generic (plain TCP or a TLS stream after its handshake):
//! this module only reads and writes bytes.
//! Replies are written while reading goes on, as Redis does; the limits
//! that keep that bounded in memory and time (output buffer, write stall,
//! partial-frame and idle deadlines) live in [`super::limits`].
//!
//! Connection-state commands (HELLO, AUTH, SELECT, CLIENT SETNAME) apply at
//! parse time, in order, and each reply is encoded in the protocol that was
//! in force when its request was read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt, Shared as SharedFut};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, Instrument};

use super::exec::{self, Response};
use super::limits::{output_over_limit, Expired, Watch};
use super::{local, Shared};
use crate::command::{self, Local, Request};
use crate::lock::keepalive::KeepAlives;
use crate::metrics::Limit;
use crate::resp::{parse_request, Protocol, Reply};

/// What `CLIENT LIST` and `CLIENT INFO` show of a connection.
#[derive(Debug)]
pub struct ClientEntry {
    pub id: u64,
    pub addr: SocketAddr,
    pub created: Instant,
    /// Came in through the TLS listener.
    pub tls: bool,
    pub meta: Mutex<ClientMeta>,
}

/// The mutable part of [`ClientEntry`], written only by its own connection.
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub resp: u8,
    pub last_cmd: &'static str,
}

/// Per-connection protocol state.
pub struct ConnState {
    pub id: u64,
    pub proto: Protocol,
    pub authed: bool,
    /// The user the connection authenticated as; `None` is the default
    /// user of a gateway without authentication.
    pub user: Option<String>,
    /// Failed AUTH attempts on this connection (see [`super::auth`]).
    pub auth_failures: u32,
    /// Set by a failed AUTH: how its reply is delayed, and whether the
    /// connection closes after it.
    pub auth_penalty: Option<super::auth::Penalty>,
    /// `LOCK.TOKENS ON`: RESP3 `SET NX` grants carry their token.
    pub token_attribute: bool,
    pub entry: Arc<ClientEntry>,
    /// Locks this connection keeps alive; dropped (and released) with it.
    pub keepalive: Arc<KeepAlives>,
}

type Done = SharedFut<oneshot::Receiver<()>>;

/// Serves one client until it quits, breaks the protocol, disconnects, or
/// the gateway drains.
pub async fn run<S>(
    sock: S,
    peer: SocketAddr,
    id: u64,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let span = info_span!("conn", id, peer = %peer);
    async move {
        let entry = Arc::new(ClientEntry {
            id,
            addr: peer,
            created: Instant::now(),
            tls,
            meta: Mutex::new(ClientMeta {
                resp: 2,
                ..ClientMeta::default()
            }),
        });
        shared.clients.insert(id, entry.clone());
        shared.metrics.client_connections.inc();
        let result = serve(sock, &shared, entry, shutdown).await;
        shared.clients.remove(&id);
        shared.metrics.client_connections.dec();
        if let Err(e) = result {
            debug!(cause = %e, "connection closed with an error");
        }
    }
    .instrument(span)
    .await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    sock: S,
    shared: &Arc<Shared>,
    entry: Arc<ClientEntry>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(sock);
    let limits = shared.config().limits.clone();
    let preauth = super::auth::preauth_limits(&limits);
    let mut watch = Watch::new(&limits, Instant::now());
    // Small to start: most connections are idle most of the time (a pool
    // of 10,000 idle clients should cost little), and both buffers grow on
    // demand; the read side reserves READ_CHUNK before each read.
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    // Replies not yet written. Reading goes on while they wait, as in
    // Redis, so this is bounded by limits.max_output_buffer_bytes instead
    // of by blocking: a client that never reads is disconnected.
    let mut wbuf = BytesMut::new();
    // Bytes handed to the stream but maybe not yet on the socket: a TLS
    // stream can hold its last records when the socket pushed back, and
    // nothing else would write them out. A no-op flush on TCP.
    let mut unflushed = false;
    let mut inflight: FuturesOrdered<BoxFuture<'static, (Response, Protocol)>> =
        FuturesOrdered::new();
    let mut chains: HashMap<Bytes, Done> = HashMap::new();
    let (keepalive, mut pushes) = KeepAlives::new(shared.engine.clone());
    let mut state = ConnState {
        id: entry.id,
        proto: Protocol::Resp2,
        authed: !crate::acl::required(&shared.config()),
        user: None,
        auth_failures: 0,
        auth_penalty: None,
        token_attribute: false,
        entry,
        keepalive,
    };
    // Set once no more requests will be read: after QUIT, a protocol error,
    // the client's EOF, or shutdown. Replies already owed are still written.
    let mut closing = false;
    let mut quit_after_flush = false;

    loop {
        let mut parsed_any = false;
        let mut waiting = false;
        while !closing && inflight.len() < limits.max_pipeline {
            let lim = if state.authed { &limits } else { &preauth };
            match parse_request(&mut rbuf, lim) {
                Ok(Some(args)) => {
                    parsed_any = true;
                    let (fut, close) = dispatch(shared, &mut state, &mut chains, args);
                    inflight.push_back(fut);
                    if close {
                        closing = true;
                    }
                }
                Ok(None) => {
                    waiting = !rbuf.is_empty();
                    break;
                }
                Err(e) => {
                    shared.metrics.protocol_errors.inc();
                    if let Some(l) = e.limit() {
                        shared.metrics.limit_hit(l);
                    }
                    protocol_error(&mut inflight, format!("ERR {e}"), state.proto);
                    closing = true;
                }
            }
        }
        watch.after_parse(parsed_any, waiting && !closing, Instant::now());
        if (quit_after_flush || (closing && inflight.is_empty())) && wbuf.is_empty() && !unflushed {
            break;
        }
        // A connection that keeps locks alive is never idle: closing it
        // would release them.
        let busy =
            !inflight.is_empty() || !wbuf.is_empty() || unflushed || !state.keepalive.is_empty();
        let deadline = watch.next_deadline(busy);
        let can_read = !closing && !quit_after_flush && inflight.len() < limits.max_pipeline;
        tokio::select! {
            biased;
            Some((resp, proto)) = inflight.next(), if !inflight.is_empty() => {
                quit_after_flush |= exec::finish(shared, resp, proto, &mut wbuf);
                // Batch every reply that is already done into one write.
                while let Some(Some((resp, proto))) = inflight.next().now_or_never() {
                    quit_after_flush |= exec::finish(shared, resp, proto, &mut wbuf);
                }
                if output_over_limit(wbuf.len(), &limits) {
                    shared.metrics.limit_hit(Limit::MaxOutputBuffer);
                    debug!(pending = wbuf.len(), "output buffer limit reached; disconnecting");
                    return Ok(());
                }
                watch.on_output(!wbuf.is_empty(), 0, Instant::now());
                if inflight.is_empty() && chains.len() > 64 {
                    chains.clear();
                }
            }
            r = write_or_flush(&mut wr, &wbuf), if !wbuf.is_empty() || unflushed => {
                let n = r?;
                if wbuf.is_empty() {
                    unflushed = false;
                    watch.on_output(false, 0, Instant::now());
                } else {
                    if n == 0 {
                        return Err(std::io::ErrorKind::WriteZero.into());
                    }
                    wbuf.advance(n);
                    unflushed = true;
                    // Progress: the stall clock restarts, and a buffer
                    // written out counts as activity for the idle clock.
                    // The flush that follows is not timed: nothing waits
                    // on it, and `busy` keeps the idle clock off meanwhile.
                    watch.on_output(!wbuf.is_empty(), n, Instant::now());
                }
            }
            r = read_some(&mut rd, &mut rbuf), if can_read => {
                if r? == 0 {
                    closing = true;
                } else {
                    watch.on_read(Instant::now());
                }
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
            }
            // Out-of-band pushes (a keepalive lock lost) go out between
            // replies, whole: wbuf only ever holds complete replies. RESP2
            // connections learn through LOCK.STATUS.
            Some(push) = pushes.recv() => {
                if state.proto == Protocol::Resp3 {
                    push.encode(state.proto, &mut wbuf);
                    watch.on_output(true, 0, Instant::now());
                }
            }
            () = sleep_until_some(deadline) => {
                let Some((_, why)) = deadline else { continue };
                shared.metrics.limit_hit(why.limit());
                match why {
                    Expired::PartialFrame => {
                        debug!("partial request deadline passed; closing");
                        let ms = limits.partial_frame_timeout.unwrap_or_default().as_millis();
                        protocol_error(
                            &mut inflight,
                            format!(
                                "ERR Protocol error: request not completed within {ms} ms \
                                 (limits.partial_frame_timeout_ms)"
                            ),
                            state.proto,
                        );
                        rbuf.clear();
                        closing = true;
                    }
                    Expired::Idle | Expired::WriteStall => {
                        debug!(?why, "connection limit reached; disconnecting");
                        return Ok(());
                    }
                }
            }
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

/// Writes some of `buf`, or, once it is all written, flushes what the
/// stream may still hold (TLS records). One future, so the select loop
/// borrows the writer once.
async fn write_or_flush<W: AsyncWrite + Unpin>(wr: &mut W, buf: &[u8]) -> std::io::Result<usize> {
    if buf.is_empty() {
        wr.flush().await?;
        Ok(0)
    } else {
        wr.write(buf).await
    }
}

/// Queues a protocol-level error reply behind the replies already owed.
fn protocol_error(
    inflight: &mut FuturesOrdered<BoxFuture<'static, (Response, Protocol)>>,
    msg: String,
    proto: Protocol,
) {
    let reply = Reply::error(msg);
    inflight.push_back(async move { (Response::Reply(reply), proto) }.boxed());
}

/// Sleeps until the deadline, or forever without one.
async fn sleep_until_some(deadline: Option<(Instant, Expired)>) {
    match deadline {
        Some((t, _)) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The least room offered to one read.
const READ_CHUNK: usize = 4 * 1024;

async fn read_some(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    buf.reserve(READ_CHUNK);
    rd.read_buf(buf).await
}

/// Starts one request. Returns its reply future and whether the connection
/// reads no further requests after it (QUIT).
fn dispatch(
    shared: &Arc<Shared>,
    state: &mut ConnState,
    chains: &mut HashMap<Bytes, Done>,
    args: Vec<Bytes>,
) -> (BoxFuture<'static, (Response, Protocol)>, bool) {
    let proto_before = state.proto;
    let name = args.first().cloned().unwrap_or_default();
    shared.count_command(&name);
    // Authentication may have been turned off by a reload since connect.
    if !state.authed && !allowed_before_auth(&name) && crate::acl::required(&shared.config()) {
        let r = Reply::error("NOAUTH Authentication required.");
        return (ready(Response::Reply(r), proto_before), false);
    }
    let req = match command::parse(&args) {
        Ok(r) => r,
        Err(reply) => return (ready(Response::Reply(reply), proto_before), false),
    };
    if let Err((reply, close)) = super::auth::gate(shared, state, &args, &req) {
        return (ready(Response::Reply(reply), proto_before), close);
    }
    match req {
        Request::Local(Local::Quit) => (ready(Response::Quit, proto_before), true),
        Request::Local(l) => {
            let reply = local::answer(shared, state, l);
            // HELLO answers in the protocol it switches to.
            let proto = state.proto;
            if let Some(p) = state.auth_penalty.take() {
                let fut = async move {
                    tokio::time::sleep(p.delay).await;
                    (Response::Reply(reply), proto)
                };
                return (fut.boxed(), p.close);
            }
            (ready(Response::Reply(reply), proto), false)
        }
        Request::Lock(cmd) => {
            let keys = cmd.keys();
            let fut = exec::lock(shared.clone(), cmd, state.keepalive.clone());
            (chain(chains, keys, fut, proto_before), false)
        }
        Request::DropIn(cmd) => {
            let keys = cmd.keys();
            let fut = exec::dropin(shared.clone(), cmd, state.token_attribute);
            (chain(chains, keys, fut, proto_before), false)
        }
        Request::Script(cmd) => {
            let keys = cmd.keys();
            let fut = super::compat::script(shared.clone(), cmd);
            (chain(chains, keys, fut, proto_before), false)
        }
        Request::RwLock(cmd) => {
            let keys = cmd.keys();
            let fut = super::kinds::rwlock(shared.clone(), cmd);
            (chain(chains, keys, fut, proto_before), false)
        }
        Request::Sem(cmd) => {
            let keys = cmd.keys();
            let fut = super::kinds::sem(shared.clone(), cmd);
            (chain(chains, keys, fut, proto_before), false)
        }
    }
}

/// Runs `fut` after every earlier request of this connection on the same
/// keys has finished.
fn chain(
    chains: &mut HashMap<Bytes, Done>,
    keys: Vec<Bytes>,
    fut: BoxFuture<'static, Response>,
    proto: Protocol,
) -> BoxFuture<'static, (Response, Protocol)> {
    let (tx, rx) = oneshot::channel::<()>();
    let done = rx.shared();
    let mut before = Vec::new();
    for k in keys {
        if let Some(prev) = chains.insert(k, done.clone()) {
            if prev.peek().is_none() {
                before.push(prev);
            }
        }
    }
    async move {
        for prev in before {
            let _ = prev.await;
        }
        let resp = fut.await;
        // Completing (or dropping) the sender releases the next request.
        let _ = tx.send(());
        (resp, proto)
    }
    .boxed()
}

fn ready(resp: Response, proto: Protocol) -> BoxFuture<'static, (Response, Protocol)> {
    futures::future::ready((resp, proto)).boxed()
}

fn allowed_before_auth(name: &[u8]) -> bool {
    ["AUTH", "HELLO", "PING", "QUIT"]
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}
