//! Masters: one long-lived pipelined connection per Redis master, shared by
//! every client connection of this gateway process.
//!
//! INTERFACE STUB: the public API below is fixed; the implementation is being
//! written (connection, health, reconnect, script loading).

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::config::{MasterConfig, MasterTuning};
use crate::metrics::MasterMetrics;
use crate::scripts::{Script, ScriptSet};

/// A reply from a master, decoded from RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    Bulk(Bytes),
    Status(Bytes),
    Error(Bytes),
    Array(Vec<Value>),
}

/// Why a request to a master produced no usable reply. The master (or the
/// path to it) is at fault, never the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterError {
    #[error("master is down")]
    Down,
    #[error("master did not answer within its deadline")]
    Timeout,
    #[error("connection to master lost")]
    ConnectionLost,
    #[error("too many requests queued for master")]
    Overloaded,
    #[error("master replied with an error: {0}")]
    Reply(String),
    #[error("master sent a malformed reply: {0}")]
    Protocol(String),
}

impl MasterError {
    /// The `kind` label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MasterError::Down => "down",
            MasterError::Timeout => "timeout",
            MasterError::ConnectionLost => "connection",
            MasterError::Overloaded => "overloaded",
            MasterError::Reply(_) => "reply",
            MasterError::Protocol(_) => "protocol",
        }
    }
}

/// Health of a master. Only `Up` masters vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterState {
    Up = 0,
    Down = 1,
    /// Connected, but its metadata record is missing: it forgot its data.
    Amnesia = 2,
    /// Connected, record missing, waiting out the quarantine before re-seed.
    Quarantined = 3,
}

impl MasterState {
    pub fn as_str(self) -> &'static str {
        match self {
            MasterState::Up => "up",
            MasterState::Down => "down",
            MasterState::Amnesia => "amnesia",
            MasterState::Quarantined => "quarantined",
        }
    }
}

/// The recovery flag the lock engine sets; combined with link health it
/// gives [`MasterState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    Healthy = 0,
    Amnesia = 1,
    Quarantined = 2,
}

/// One master: a handle onto its connection task.
pub struct Master {
    _private: (),
}

impl Master {
    /// Starts the connection task (connect, AUTH, SCRIPT LOAD, reconnect with
    /// jittered backoff) and returns the handle at once; the master starts
    /// `Down` and turns `Up` when its first connection is ready.
    pub fn spawn(
        _index: usize,
        _cfg: MasterConfig,
        _tuning: MasterTuning,
        _max_nesting: usize,
        _scripts: Arc<ScriptSet>,
        _metrics: MasterMetrics,
    ) -> Arc<Master> {
        unimplemented!("master connection")
    }

    /// Position in the configured master list.
    pub fn index(&self) -> usize {
        unimplemented!()
    }

    /// The configured address, used in logs and metric labels.
    pub fn name(&self) -> &str {
        unimplemented!()
    }

    /// Link health combined with the recovery flag.
    pub fn state(&self) -> MasterState {
        unimplemented!()
    }

    /// Only `Up` masters are sent lock requests.
    pub fn is_voting(&self) -> bool {
        self.state() == MasterState::Up
    }

    /// Set by the lock engine's recovery task.
    pub fn set_recovery(&self, _r: Recovery) {
        unimplemented!()
    }

    pub fn recovery(&self) -> Recovery {
        unimplemented!()
    }

    /// Bumped on every successful (re)connect, so recovery can re-check the
    /// metadata record of a master that may have restarted.
    pub fn connection_generation(&self) -> u64 {
        unimplemented!()
    }

    /// Runs `script` with EVALSHA (EVAL on NOSCRIPT), answering by `deadline`.
    /// Fails fast with [`MasterError::Down`] when the link is down.
    pub async fn eval(
        &self,
        _script: &Script,
        _keys: &[&[u8]],
        _args: &[&[u8]],
        _deadline: Instant,
    ) -> Result<Value, MasterError> {
        unimplemented!()
    }

    /// Sends a plain command, answering by `deadline`.
    pub async fn call(&self, _args: &[&[u8]], _deadline: Instant) -> Result<Value, MasterError> {
        unimplemented!()
    }

    /// Closes the connection and stops reconnecting.
    pub fn shutdown(&self) {
        unimplemented!()
    }
}
