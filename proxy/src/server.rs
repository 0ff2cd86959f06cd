//! The gateway process: binds the client and admin listeners, spawns the
//! masters and the lock engine, runs the accept loop and drains on shutdown.
//!
//! INTERFACE STUB: being written.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Config;

/// Why the gateway could not start; the operator is at fault (bad address,
/// port in use) or the environment is.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A running gateway.
pub struct Gateway {
    _private: (),
}

impl Gateway {
    /// Binds the listeners, connects to the masters and starts serving.
    pub async fn start(_config: Config) -> Result<Gateway, StartError> {
        unimplemented!()
    }

    /// The bound client address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        unimplemented!()
    }

    /// The bound admin address, if the admin listener is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        unimplemented!()
    }

    /// Stops accepting, lets in-flight requests finish within `grace`, then
    /// closes client and master connections.
    pub async fn shutdown(self, _grace: Duration) {}
}
