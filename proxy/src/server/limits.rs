//! Per-connection limits that depend on time and on the output side: the
//! idle timeout, the partial-frame deadline (slowloris), the output buffer
//! cap and the write-stall timeout; and the file-descriptor cap on
//! `max_clients`.
//!
//! The serve loop reads the configuration once into a [`Watch`], reports
//! what happened (bytes read, requests parsed, replies written), and sleeps
//! until [`Watch::next_deadline`] alongside its other work. Nothing here
//! does I/O, so every rule is a pure function of instants and tested with
//! made-up ones.
//!
//! # What counts as idle
//! Idle means no request in flight, no reply waiting to be written, no
//! partial request buffered, and no byte received for `idle_timeout`. A
//! client blocked in `LOCK.ACQUIRE ... WAIT` or `BLPOP` has a request in
//! flight, so it is never idle. A future connection-bound KEEPALIVE must
//! make [`Watch::next_deadline`]'s caller pass `holds_session = true`.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Limits;
use crate::metrics::Limit;

/// Why the connection must end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Nothing happened for `idle_timeout`: close silently, as Redis does
    /// (a reply would be read as the answer to the client's next command).
    Idle,
    /// A request started arriving and did not complete in time: the client
    /// gets a protocol error, then the connection closes.
    PartialFrame,
    /// Replies waited for the client to read them for `write_timeout`
    /// without one byte leaving: close silently, the client is not reading.
    WriteStall,
}

impl Expired {
    /// The limit label this expiry counts under.
    pub fn limit(self) -> Limit {
        match self {
            Expired::Idle => Limit::IdleTimeout,
            Expired::PartialFrame => Limit::PartialFrameTimeout,
            Expired::WriteStall => Limit::WriteTimeout,
        }
    }
}

/// The time-based limits of one connection and the instants they run from.
#[derive(Debug)]
pub struct Watch {
    idle_timeout: Option<Duration>,
    partial_frame_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The last time a byte arrived or a reply was fully written.
    last_activity: Instant,
    /// When the first byte of the request still being received arrived.
    partial_since: Option<Instant>,
    /// When the output buffer last went from empty to not empty, or last
    /// made progress while not empty.
    write_stalled_since: Option<Instant>,
}

// === impl Watch ===

impl Watch {
    /// A watch for a connection accepted at `now`.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Watch {
            idle_timeout: limits.idle_timeout,
            partial_frame_timeout: limits.partial_frame_timeout,
            write_timeout: limits.write_timeout,
            last_activity: now,
            partial_since: None,
            write_stalled_since: None,
        }
    }

    /// Bytes arrived from the client.
    pub fn on_read(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The parser ran. `parsed_any`: at least one request came off the
    /// buffer; `waiting`: the parser stopped because a request is only
    /// partly here (not because the pipeline is full). A completed request
    /// restarts the deadline for the next one, which began no earlier.
    pub fn after_parse(&mut self, parsed_any: bool, waiting: bool, now: Instant) {
        if !waiting {
            self.partial_since = None;
        } else if parsed_any || self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    /// Replies are waiting to be written (`pending`), after a write that
    /// moved `written` bytes (0 when nothing was attempted).
    pub fn on_output(&mut self, pending: bool, written: usize, now: Instant) {
        if !pending {
            self.write_stalled_since = None;
            if written > 0 {
                self.last_activity = now;
            }
        } else if written > 0 || self.write_stalled_since.is_none() {
            self.write_stalled_since = Some(now);
        }
    }

    /// The earliest deadline in force and what it enforces. `busy`: a
    /// request is in flight, a reply is waiting or a session holds state,
    /// so the connection is not idle.
    pub fn next_deadline(&self, busy: bool) -> Option<(Instant, Expired)> {
        let partial = self
            .partial_since
            .zip(self.partial_frame_timeout)
            .map(|(t, d)| (t + d, Expired::PartialFrame));
        let stall = self
            .write_stalled_since
            .zip(self.write_timeout)
            .map(|(t, d)| (t + d, Expired::WriteStall));
        let idle = (!busy && self.partial_since.is_none())
            .then_some(self.idle_timeout)
            .flatten()
            .map(|d| (self.last_activity + d, Expired::Idle));
        [partial, stall, idle]
            .into_iter()
            .flatten()
            .min_by_key(|(t, _)| *t)
    }
}

/// Whether `pending` reply bytes are past the connection's output limit.
pub fn output_over_limit(pending: usize, limits: &Limits) -> bool {
    pending > limits.max_output_buffer_bytes
}

/// File descriptors kept back from `max_clients`: the listeners, one
/// connection per master (two while one reconnects), the admin server's
/// connections, logs, and a margin for `accept` itself.
pub fn reserved_fds(masters: usize) -> u64 {
    64 + 2 * u64::try_from(masters).unwrap_or(u64::MAX / 4)
}

/// `configured` capped so that every client fits under the open-files limit
/// `nofile` with [`reserved_fds`] kept back; the bool says whether it was
/// capped. At least 1, so a tiny limit still serves someone.
pub fn effective_max_clients(configured: usize, nofile: u64, masters: usize) -> (usize, bool) {
    let room = nofile.saturating_sub(reserved_fds(masters)).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if configured > room {
        (room, true)
    } else {
        (configured, false)
    }
}

/// The soft `RLIMIT_NOFILE` of this process, if the platform tells.
pub fn nofile_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _hard)| soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(idle: u64, partial: u64, write: u64) -> Limits {
        let d = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        Limits {
            idle_timeout: d(idle),
            partial_frame_timeout: d(partial),
            write_timeout: d(write),
            ..Limits::default()
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_idle_connection_expires_only_when_nothing_is_in_flight() {
        let t0 = Instant::now();
        let mut w = Watch::new(&limits(1000, 0, 0), t0);
        assert_eq!(w.next_deadline(false), Some((t0 + ms(1000), Expired::Idle)));
        // A WAIT in flight is not idleness.
        assert_eq!(w.next_deadline(true), None);
        w.on_read(t0 + ms(500));
        assert_eq!(w.next_deadline(false), Some((t0 + ms(1500), Expired::Idle)));
    }

    #[test]
    fn the_idle_timeout_is_off_by_default() {
        let w = Watch::new(&Limits::default(), Instant::now());
        assert_eq!(w.next_deadline(false), None);
    }

    #[test]
    fn a_partial_request_runs_from_its_first_byte_not_its_latest() {
        let t0 = Instant::now();
        let mut w = Watch::new(&limits(0, 100, 0), t0);
        w.on_read(t0 + ms(10));
        w.after_parse(false, true, t0 + ms(10));
        // More bytes of the same request do not push the deadline back.
        w.on_read(t0 + ms(90));
        w.after_parse(false, true, t0 + ms(90));
        assert_eq!(
            w.next_deadline(false),
            Some((t0 + ms(110), Expired::PartialFrame))
        );
        // The request completes and the next one starts in the same read.
        w.after_parse(true, true, t0 + ms(105));
        assert_eq!(
            w.next_deadline(false),
            Some((t0 + ms(205), Expired::PartialFrame))
        );
        w.after_parse(true, false, t0 + ms(106));
        assert_eq!(w.next_deadline(false), None);
    }

    #[test]
    fn a_partial_request_is_never_idle() {
        let t0 = Instant::now();
        let mut w = Watch::new(&limits(50, 0, 0), t0);
        w.after_parse(false, true, t0);
        assert_eq!(w.next_deadline(false), None);
    }

    #[test]
    fn a_write_stall_runs_from_the_last_progress() {
        let t0 = Instant::now();
        let mut w = Watch::new(&limits(0, 0, 100), t0);
        w.on_output(true, 0, t0);
        assert_eq!(
            w.next_deadline(true),
            Some((t0 + ms(100), Expired::WriteStall))
        );
        w.on_output(true, 0, t0 + ms(50));
        assert_eq!(
            w.next_deadline(true),
            Some((t0 + ms(100), Expired::WriteStall))
        );
        w.on_output(true, 10, t0 + ms(60));
        assert_eq!(
            w.next_deadline(true),
            Some((t0 + ms(160), Expired::WriteStall))
        );
        w.on_output(false, 10, t0 + ms(70));
        assert_eq!(w.next_deadline(true), None);
    }

    #[test]
    fn the_earliest_deadline_wins() {
        let t0 = Instant::now();
        let mut w = Watch::new(&limits(1000, 300, 200), t0);
        w.after_parse(false, true, t0);
        w.on_output(true, 0, t0);
        assert_eq!(
            w.next_deadline(true),
            Some((t0 + ms(200), Expired::WriteStall))
        );
    }

    #[test]
    fn max_clients_is_capped_by_the_open_files_limit() {
        assert_eq!(effective_max_clients(10_000, 1024, 3), (954, true));
        assert_eq!(effective_max_clients(100, 1024, 3), (100, false));
        assert_eq!(effective_max_clients(10_000, 10, 5), (1, true));
        assert_eq!(effective_max_clients(10_000, u64::MAX, 5), (10_000, false));
    }

    #[test]
    fn output_past_the_limit_is_detected() {
        let l = Limits {
            max_output_buffer_bytes: 10,
            ..Limits::default()
        };
        assert!(!output_over_limit(10, &l));
        assert!(output_over_limit(11, &l));
    }
}
