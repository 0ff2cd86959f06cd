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
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt, Shared as SharedFut};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, Instrument};

use super::limits::{output_over_limit, Expired, Watch};
use super::state::{ClientEntry, ConnState};
use super::{auth, compat, local, respond, Shared};
use crate::command::{self, DropIn, Local, Request};
use crate::config::Limits;
use crate::kinds::holds::Holds;
use crate::kinds::plain::keepalive::KeepAlives;
use crate::kinds::{self, Ctx};
use crate::metrics::Limit;
use crate::resp::{parse_request, Protocol, Reply};
use crate::response::Response;

type Done = SharedFut<oneshot::Receiver<()>>;

/// A started request: its reply, and the protocol to encode it in.
type Pending = BoxFuture<'static, (Response, Protocol)>;

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
        let entry = Arc::new(ClientEntry::new(id, peer, tls));
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

/// The select loop of one connection: start what was read, write what is
/// answered, read more, and watch the deadlines, until the connection ends.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    sock: S,
    shared: &Arc<Shared>,
    entry: Arc<ClientEntry>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(sock);
    let (keepalive, mut pushes) = KeepAlives::new(shared.engine.clone());
    let mut c = Conn::new(shared, entry, keepalive);
    loop {
        c.start_buffered();
        if c.finished() {
            break;
        }
        let deadline = c.watch.next_deadline(c.busy());
        let can_read = c.can_read();
        tokio::select! {
            biased;
            Some(first) = c.inflight.next(), if !c.inflight.is_empty() => {
                if !c.take_replies(first) {
                    return Ok(());
                }
            }
            r = write_or_flush(&mut wr, &c.wbuf), if !c.wbuf.is_empty() || c.unflushed => {
                c.wrote(r?)?;
            }
            r = read_some(&mut rd, &mut c.rbuf), if can_read => {
                if r? == 0 {
                    c.closing = true;
                } else {
                    c.watch.on_read(Instant::now());
                }
            }
            _ = shutdown.cancelled(), if !c.closing => {
                c.closing = true;
            }
            // Out-of-band pushes (a keepalive lock lost) go out between
            // replies, whole: wbuf only ever holds complete replies. RESP2
            // connections learn through LOCK.STATUS.
            Some(push) = pushes.recv() => {
                if c.state.proto == Protocol::Resp3 {
                    push.encode(c.state.proto, &mut c.wbuf);
                    c.watch.on_output(true, 0, Instant::now());
                }
            }
            () = sleep_until_some(deadline) => {
                let Some((_, why)) = deadline else { continue };
                if !c.expired(why) {
                    return Ok(());
                }
            }
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

/// Everything one connection holds between reads: its protocol state, its
/// buffers, the requests in flight and the deadlines running.
struct Conn<'a> {
    shared: &'a Arc<Shared>,
    limits: Limits,
    /// The tighter limits in force until the connection authenticates.
    preauth: Limits,
    state: ConnState,
    watch: Watch,
    /// Bytes read and not yet parsed into a request.
    rbuf: BytesMut,
    /// Replies not yet written. Reading goes on while they wait, as in
    /// Redis, so this is bounded by limits.max_output_buffer_bytes instead
    /// of by blocking: a client that never reads is disconnected.
    wbuf: BytesMut,
    /// Bytes handed to the stream but maybe not yet on the socket: a TLS
    /// stream can hold its last records when the socket pushed back, and
    /// nothing else would write them out. A no-op flush on TCP.
    unflushed: bool,
    /// Requests started and not yet answered, in request order.
    inflight: FuturesOrdered<Pending>,
    /// The last request started on each key, which the next one on that
    /// key waits for.
    chains: HashMap<Bytes, Done>,
    /// Set once no more requests will be read: after QUIT, a protocol error,
    /// the client's EOF, or shutdown. Replies already owed are still written.
    closing: bool,
    /// QUIT was answered: close once its reply is on the socket.
    quit_after_flush: bool,
}

// === impl Conn ===

impl<'a> Conn<'a> {
    fn new(shared: &'a Arc<Shared>, entry: Arc<ClientEntry>, keepalive: Arc<KeepAlives>) -> Self {
        let limits = shared.config().limits.clone();
        let authed = !crate::acl::required(&shared.config());
        Conn {
            shared,
            preauth: auth::preauth_limits(&limits),
            watch: Watch::new(&limits, Instant::now()),
            limits,
            state: ConnState::new(entry, keepalive, authed),
            // Small to start: most connections are idle most of the time (a
            // pool of 10,000 idle clients should cost little), and both
            // buffers grow on demand; the read side reserves READ_CHUNK
            // before each read.
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::new(),
            unflushed: false,
            inflight: FuturesOrdered::new(),
            chains: HashMap::new(),
            closing: false,
            quit_after_flush: false,
        }
    }

    /// Parses and starts every complete request buffered, up to the
    /// pipeline limit, then tells the watch what was found.
    fn start_buffered(&mut self) {
        let mut parsed_any = false;
        let mut waiting = false;
        while !self.closing && self.inflight.len() < self.limits.max_pipeline {
            let lim = if self.state.authed {
                &self.limits
            } else {
                &self.preauth
            };
            match parse_request(&mut self.rbuf, lim) {
                Ok(Some(args)) => {
                    parsed_any = true;
                    let (fut, close) =
                        dispatch(self.shared, &mut self.state, &mut self.chains, args);
                    self.inflight.push_back(fut);
                    if close {
                        self.closing = true;
                    }
                }
                Ok(None) => {
                    waiting = !self.rbuf.is_empty();
                    break;
                }
                Err(e) => {
                    self.shared.metrics.protocol_errors.inc();
                    if let Some(l) = e.limit() {
                        self.shared.metrics.limit_hit(l);
                    }
                    protocol_error(&mut self.inflight, format!("ERR {e}"), self.state.proto);
                    self.closing = true;
                }
            }
        }
        self.watch
            .after_parse(parsed_any, waiting && !self.closing, Instant::now());
    }

    /// Whether the connection is over: nothing more will be read and every
    /// reply owed is on the socket.
    fn finished(&self) -> bool {
        (self.quit_after_flush || (self.closing && self.inflight.is_empty()))
            && self.wbuf.is_empty()
            && !self.unflushed
    }

    /// Whether the idle clock must stay off. A connection that keeps locks
    /// alive is never idle: closing it would release them.
    fn busy(&self) -> bool {
        !self.inflight.is_empty()
            || !self.wbuf.is_empty()
            || self.unflushed
            || !self.state.keepalive.is_empty()
    }

    fn can_read(&self) -> bool {
        !self.closing && !self.quit_after_flush && self.inflight.len() < self.limits.max_pipeline
    }

    /// Encodes `first` and every later reply already done into the output
    /// buffer, so they leave in one write. `false` when the buffer is over
    /// its limit and the connection must be dropped.
    fn take_replies(&mut self, first: (Response, Protocol)) -> bool {
        let (resp, proto) = first;
        self.quit_after_flush |= respond::finish(self.shared, resp, proto, &mut self.wbuf);
        while let Some(Some((resp, proto))) = self.inflight.next().now_or_never() {
            self.quit_after_flush |= respond::finish(self.shared, resp, proto, &mut self.wbuf);
        }
        if output_over_limit(self.wbuf.len(), &self.limits) {
            self.shared.metrics.limit_hit(Limit::MaxOutputBuffer);
            debug!(
                pending = self.wbuf.len(),
                "output buffer limit reached; disconnecting"
            );
            return false;
        }
        self.watch
            .on_output(!self.wbuf.is_empty(), 0, Instant::now());
        if self.inflight.is_empty() && self.chains.len() > 64 {
            self.chains.clear();
        }
        true
    }

    /// Accounts for `n` bytes written (0: a flush of an empty buffer).
    fn wrote(&mut self, n: usize) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            self.unflushed = false;
            self.watch.on_output(false, 0, Instant::now());
        } else {
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.wbuf.advance(n);
            self.unflushed = true;
            // Progress: the stall clock restarts, and a buffer written out
            // counts as activity for the idle clock. The flush that follows
            // is not timed: nothing waits on it, and `busy` keeps the idle
            // clock off meanwhile.
            self.watch
                .on_output(!self.wbuf.is_empty(), n, Instant::now());
        }
        Ok(())
    }

    /// Counts a deadline that passed and acts on it. `false` when the
    /// connection must be dropped at once.
    fn expired(&mut self, why: Expired) -> bool {
        self.shared.metrics.limit_hit(why.limit());
        match why {
            Expired::PartialFrame => {
                debug!("partial request deadline passed; closing");
                let ms = self
                    .limits
                    .partial_frame_timeout
                    .unwrap_or_default()
                    .as_millis();
                protocol_error(
                    &mut self.inflight,
                    format!(
                        "ERR Protocol error: request not completed within {ms} ms \
                         (limits.partial_frame_timeout_ms)"
                    ),
                    self.state.proto,
                );
                self.rbuf.clear();
                self.closing = true;
                true
            }
            Expired::Idle | Expired::WriteStall => {
                debug!(?why, "connection limit reached; disconnecting");
                false
            }
        }
    }
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
fn protocol_error(inflight: &mut FuturesOrdered<Pending>, msg: String, proto: Protocol) {
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
) -> (Pending, bool) {
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
    if let Err((reply, close)) = auth::gate(shared, state, &args, &req) {
        return (ready(Response::Reply(reply), proto_before), close);
    }
    let keys = req.keys();
    let run = Runner::new(shared, state);
    let fut = match req {
        Request::Local(Local::Quit) => return (ready(Response::Quit, proto_before), true),
        Request::Local(l) => return answer_local(shared, state, l),
        Request::Lock(cmd) => async move { kinds::plain::lock(&run.ctx(), cmd).await }.boxed(),
        Request::Reentrant(cmd) => {
            async move { kinds::reentrant::reentrant(&run.ctx(), cmd).await }.boxed()
        }
        Request::RwLock(cmd) => async move { kinds::rwlock::rwlock(&run.ctx(), cmd).await }.boxed(),
        Request::Sem(cmd) => async move { kinds::semaphore::sem(&run.ctx(), cmd).await }.boxed(),
        // BLPOP waits on the catalogued libraries' signal keys.
        Request::DropIn(DropIn::Blpop { keys, timeout }) => {
            async move { compat::blpop(&run.ctx(), keys, timeout).await }.boxed()
        }
        Request::DropIn(cmd) => async move { kinds::plain::dropin(&run.ctx(), cmd).await }.boxed(),
        Request::Script(cmd) => async move { compat::script(&run.ctx(), cmd).await }.boxed(),
    };
    (chain(chains, keys, fut, proto_before), false)
}

/// Answers a command the gateway answers itself, after the penalty a
/// failed AUTH earned.
fn answer_local(shared: &Arc<Shared>, state: &mut ConnState, l: Local) -> (Pending, bool) {
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

/// What a lock request needs of its connection while it runs, owned so
/// that its future outlives the borrow of the connection. The [`Ctx`] is
/// built when the request starts running, after the earlier requests on
/// its keys, so it sees the configuration in force then.
struct Runner {
    shared: Arc<Shared>,
    keepalive: Arc<KeepAlives>,
    holds: Holds,
    token_attribute: bool,
}

impl Runner {
    fn new(shared: &Arc<Shared>, state: &ConnState) -> Self {
        Runner {
            shared: shared.clone(),
            keepalive: state.keepalive.clone(),
            holds: Holds {
                conn: state.holds.clone(),
                user: shared.user_holds(state.user.as_deref()),
                user_name: Arc::from(state.user.as_deref().unwrap_or("default")),
            },
            token_attribute: state.token_attribute,
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            engine: &self.shared.engine,
            config: self.shared.config(),
            metrics: &self.shared.metrics,
            keepalive: &self.keepalive,
            holds: &self.holds,
            token_attribute: self.token_attribute,
        }
    }
}

/// Runs `fut` after every earlier request of this connection on the same
/// keys has finished.
fn chain(
    chains: &mut HashMap<Bytes, Done>,
    mut keys: Vec<Bytes>,
    fut: BoxFuture<'static, Response>,
    proto: Protocol,
) -> Pending {
    // A key named twice (`EXISTS k k`, a script given one key twice) must
    // not make the request wait for itself.
    keys.sort_unstable();
    keys.dedup();
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

fn ready(resp: Response, proto: Protocol) -> Pending {
    futures::future::ready((resp, proto)).boxed()
}

fn allowed_before_auth(name: &[u8]) -> bool {
    ["AUTH", "HELLO", "PING", "QUIT"]
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}
