//! Admin HTTP listener: `/metrics`, `/healthz`, `/readyz` and a small index.
//!
//! INTERFACE STUB: the implementation is being written (issue 4).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// What `/readyz` asks: `Ok` while a quorum of masters is healthy, otherwise
/// a short reason.
pub trait Readiness: Send + Sync + 'static {
    fn ready(&self) -> Result<(), String>;
}

/// Serves admin HTTP on `listener` until `shutdown` is cancelled.
pub async fn serve(
    _listener: TcpListener,
    _metrics: Metrics,
    _readiness: Arc<dyn Readiness>,
    _shutdown: CancellationToken,
) {
}
