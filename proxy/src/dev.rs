//! Dev mode and local Redis processes: starts `redis-server` children on
//! free loopback ports (temporary dirs, no persistence). Used by
//! `lockgate dev` and by the integration tests' harness.
//!
//! INTERFACE STUB: being written.
