//! Admin HTTP listener: `/metrics`, `/healthz`, `/readyz`, `POST /reload`
//! and a small index.
//!
//! `/reload` changes what the gateway does, so unlike the read-only paths it
//! is guarded: with `admin_token` set it needs `Authorization: Bearer
//! <token>`; without one it is served only while the admin listener is on
//! loopback (the same idea as protected mode). Metrics and probes stay open
//! because Prometheus and kubelets scrape them without credentials.
//!
//! HTTP/1.1 only, one task per connection, with a cap on concurrent admin
//! connections, a header-read timeout (slowloris) and an overall per-
//! connection deadline, so a misbehaving scraper cannot hold resources.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::master::Master;
use crate::metrics::Metrics;

/// What `/readyz` asks: `Ok` while a quorum of masters is healthy and the
/// gateway is not draining, otherwise a short reason.
pub trait Readiness: Send + Sync + 'static {
    fn ready(&self) -> Result<(), String>;

    /// The masters, so `/readyz` can say which connected ones do not vote
    /// and why (an evicting policy, an unknown one, a second address of one
    /// server): those are the operator's to fix, whether or not the
    /// quorum holds without them.
    fn masters(&self) -> &[Arc<Master>] {
        &[]
    }
}

/// One line per connected master that the guards keep from voting:
/// `master <address>: <state> (<why and the fix>)`.
fn not_voting(readiness: &dyn Readiness) -> String {
    let mut out = String::new();
    for m in readiness.masters() {
        if let Some(why) = m.guard_detail() {
            out.push_str(&format!(
                "master {}: {} ({why})\n",
                m.name(),
                m.state().as_str()
            ));
        }
    }
    out
}

/// Why `/reload` was refused before it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardError {
    /// A token is configured and the request did not carry it.
    Unauthorized,
    /// No token is configured and the admin listener is not on loopback.
    NeedsToken,
}

/// What `POST /reload` runs.
pub trait Reloader: Send + Sync + 'static {
    /// Re-reads and applies the configuration: what changed, or why not.
    fn reload(&self) -> Result<String, String>;
    /// Checks the request's bearer token, if any.
    fn guard(&self, bearer: Option<&[u8]>) -> Result<(), GuardError>;
}

/// Most admin connections served at once.
const MAX_ADMIN_CONNECTIONS: usize = 64;
/// Time allowed to send the request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest an admin connection may stay open.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// Largest request head accepted.
const MAX_HEADER_BYTES: usize = 16 * 1024;

fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn bearer(req: &Request<Incoming>) -> Option<&[u8]> {
    let v = req.headers().get(hyper::header::AUTHORIZATION)?.as_bytes();
    let scheme = v.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| v.get(7..))
        .flatten()
}

fn reload(req: &Request<Incoming>, reloader: &dyn Reloader) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use POST /reload\n", PLAIN);
    }
    match reloader.guard(bearer(req)) {
        Ok(()) => {}
        Err(GuardError::Unauthorized) => {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "reload needs Authorization: Bearer <admin_token>\n",
                PLAIN,
            );
            if let Ok(v) = "Bearer".parse() {
                r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
        Err(GuardError::NeedsToken) => {
            return text(
                StatusCode::FORBIDDEN,
                "reload is refused on a non-loopback admin listener without admin_token; \
                 set admin_token or send SIGHUP\n",
                PLAIN,
            )
        }
    }
    match reloader.reload() {
        Ok(body) => text(StatusCode::OK, body, PLAIN),
        Err(body) => text(StatusCode::UNPROCESSABLE_ENTITY, body, PLAIN),
    }
}

fn handle(
    req: &Request<Incoming>,
    metrics: &Metrics,
    readiness: &dyn Readiness,
    reloader: &dyn Reloader,
) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.uri().path() == "/reload" {
        return reload(req, reloader);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
            PLAIN,
        );
    }
    match req.uri().path() {
        "/metrics" => {
            let body = prometheus::TextEncoder::new()
                .encode_to_string(&metrics.registry.gather())
                .unwrap_or_else(|e| format!("# encoding failed: {e}\n"));
            text(
                StatusCode::OK,
                body,
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
        "/healthz" => text(StatusCode::OK, "ok\n", PLAIN),
        "/readyz" => match readiness.ready() {
            Ok(()) => text(
                StatusCode::OK,
                format!("ready\n{}", not_voting(readiness)),
                PLAIN,
            ),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n{}", not_voting(readiness)),
                PLAIN,
            ),
        },
        "/" => text(
            StatusCode::OK,
            "lockgate admin\n/metrics  Prometheus metrics\n/healthz  200 while the process runs\n\
             /readyz   200 while a quorum of masters is healthy and not draining\n\
             /reload   POST: re-read the configuration file\n",
            PLAIN,
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n", PLAIN),
    }
}

/// Serves admin HTTP on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    readiness: Arc<dyn Readiness>,
    reloader: Arc<dyn Reloader>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let (sock, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(cause = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "too many admin connections; dropping one");
            continue;
        };
        let (metrics, readiness, shutdown) = (metrics.clone(), readiness.clone(), shutdown.clone());
        let reloader = reloader.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = handle(&req, &metrics, readiness.as_ref(), reloader.as_ref());
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(sock), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, cause = %e, "admin connection ended with an error");
                    }
                }
                _ = tokio::time::sleep(CONNECTION_DEADLINE) => {}
                _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}
