//! lockgate: a Redlock gateway.
//!
//! Clients speak RESP2 or RESP3 to one address; every lock command becomes a
//! quorum operation over N independent Redis masters, and every grant carries
//! a fencing token that never repeats and never goes backwards.
//!
//! # Layout
//!
//! - [`resp`]: client-side framing (RESP2/RESP3, inline commands) and limits.
//! - [`command`]: turns a client's argument vector into a typed request.
//! - [`kinds`]: one module per lock kind (plain, reentrant, read-write,
//!   semaphore): its commands, checks, engine calls and reply shapes.
//! - [`response`]: what a command hands back to the connection, and the
//!   reply helpers every kind shares.
//! - [`lock`]: the quorum engine (acquire, release, extend, status), validity
//!   arithmetic, token proposals and master recovery (amnesia guard).
//! - [`master`]: one pipelined connection per master, health, scripts.
//! - [`scripts`]: the Lua that runs on the masters.
//! - [`compat`]: recognising what existing lock client libraries send.
//! - [`server`]: accept loop, per-connection task, graceful shutdown.
//! - [`acl`]: client authentication, command families and key patterns.
//! - [`admin`]: HTTP for metrics, health and live reload.
//! - [`fuzz`]: the entry points of the fuzz targets and their corpus test.
//! - [`tls`]: PEM files and the rustls configurations of the TLS listener
//!   and of links towards masters.
//! - [`metrics`], [`config`], [`dev`].

pub mod acl;
pub mod admin;
pub mod command;
pub mod compat;
pub mod config;
pub mod dev;
pub mod fence;
pub mod fuzz;
pub mod kinds;
pub mod lock;
pub mod master;
pub mod metrics;
pub mod resp;
pub mod response;
pub mod scripts;
pub mod server;
pub mod tls;
