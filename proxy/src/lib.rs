//! lockgate: a Redlock gateway.
//!
//! Clients speak RESP2 or RESP3 to one address; every lock command becomes a
//! quorum operation over N independent Redis masters, and every grant carries
//! a fencing token that never repeats and never goes backwards.
//!
//! # Layout
//!
//! From the wire inwards (docs/design.md, *The layers*):
//!
//! - [`resp`]: client-side framing (RESP2/RESP3, inline commands) and limits.
//! - [`server`]: accept loop, per-connection task, authentication, reload,
//!   the answers to local commands, graceful shutdown.
//! - [`command`]: the command registry (every command declared once) and
//!   classification of an argument vector into a typed request.
//! - [`acl`]: client authentication, command families and key patterns.
//! - [`kinds`]: one module per lock kind (plain with its drop-in commands,
//!   reentrant, read-write, semaphore): its commands, checks, operations on
//!   the masters, Lua scripts, reply decoders and reply shapes.
//! - [`response`]: what a command hands back to the connection.
//! - [`args`]: the argument shapes every parser shares.
//! - [`lock`]: the quorum core: the fan-out, the one acquire round, the
//!   tallies, validity arithmetic, the key layout and the amnesia guard.
//! - [`fence`]: token proposals.
//! - [`scripts`]: the script type and the set loaded on every master.
//! - [`master`]: one pipelined connection per master, health, the eviction
//!   and identity guards.
//! - [`compat`]: recognising what existing lock client libraries send.
//! - [`admin`]: HTTP for metrics, health and live reload.
//! - [`fuzz`]: the entry points of the fuzz targets and their corpus test.
//! - [`tls`]: PEM files and the rustls configurations of the TLS listener
//!   and of links towards masters.
//! - [`metrics`], [`config`], [`dev`].

pub mod acl;
pub mod admin;
pub mod args;
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
