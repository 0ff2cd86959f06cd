//! Tests of the master connection, in two layers.
//!
//! - `fake`: a scripted `FakeMaster` over `tokio::io::duplex`. The fake sees
//!   every byte the gateway writes and answers exactly what the test says, so
//!   ordering is deterministic. These run in real time with short timeouts
//!   because the crate does not enable tokio's `test-util` feature (needed
//!   for `start_paused`); nothing in them depends on it, so switching the
//!   attribute to `#[tokio::test]` is all it takes once
//!   it does. Deadlines that must *not* expire are seconds long
//!   ([`answered`]); only deadlines meant to expire are short.
//! - `real`: a real `redis-server` on a free loopback port, in real time
//!   (paused time never meets real sockets), stopped with SIGSTOP and killed
//!   to check fail-fast and recovery end to end.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Master, MasterError, MasterSet, MasterState, Recovery, Value};
use crate::config::{MasterConfig, MasterTuning};
use crate::metrics::{MasterMetrics, Metrics, MASTER_ERROR_KINDS};
use crate::scripts::{Script, ScriptSet};

const MS: Duration = Duration::from_millis(1);

fn in_ms(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

/// Deadline for requests the test expects to be answered: long enough that
/// a loaded CI machine never turns an answer into a timeout.
fn answered() -> Instant {
    in_ms(2000)
}

fn errors(m: &MasterMetrics, kind: &str) -> u64 {
    let i = MASTER_ERROR_KINDS
        .iter()
        .position(|k| *k == kind)
        .expect("a known error kind");
    m.errors[i].get()
}

fn state_gauge(m: &MasterMetrics) -> Vec<i64> {
    m.states.iter().map(|g| g.get()).collect()
}

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

mod fake {
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::BytesMut;
    use redis_protocol::resp2::types::BytesFrame;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    use super::super::conn::{Connector, LinkError};
    use super::*;

    /// Hands the server end of every new connection to the test.
    struct DuplexConnector {
        conns: mpsc::UnboundedSender<DuplexStream>,
        refuse: Arc<AtomicBool>,
    }

    impl Connector for DuplexConnector {
        type Stream = DuplexStream;

        async fn connect(&self, _timeout: Duration) -> Result<DuplexStream, LinkError> {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(LinkError::Io(io::ErrorKind::ConnectionRefused.into()));
            }
            let (client, server) = tokio::io::duplex(64 * 1024);
            self.conns.send(server).map_err(|_| LinkError::Closed)?;
            Ok(client)
        }
    }

    /// The master's side of one connection.
    struct FakeMaster {
        io: DuplexStream,
        buf: BytesMut,
    }

    impl FakeMaster {
        /// The next command, or `None` once the gateway closed the stream.
        async fn command(&mut self) -> Option<Vec<Bytes>> {
            loop {
                let decoded = redis_protocol::resp2::decode::decode_bytes_mut(&mut self.buf)
                    .expect("the gateway sends valid RESP2");
                if let Some((frame, _, _)) = decoded {
                    let BytesFrame::Array(items) = frame else {
                        panic!("not a multibulk command: {frame:?}");
                    };
                    return Some(
                        items
                            .into_iter()
                            .map(|f| match f {
                                BytesFrame::BulkString(b) => b,
                                other => panic!("not a bulk argument: {other:?}"),
                            })
                            .collect(),
                    );
                }
                match self.io.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        }

        async fn expect(&mut self, args: &[&[u8]]) {
            let got = self.command().await.expect("a command");
            let want: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            assert_eq!(got, want);
        }

        async fn reply(&mut self, bytes: &[u8]) {
            self.io.write_all(bytes).await.expect("the gateway reads");
        }

        /// Answers PING, INFO server (as the server `run_id`) and CONFIG GET
        /// (with `config`, a whole RESP reply) like Redis would.
        async fn greet(&mut self, run_id: &str, config: &[u8]) {
            self.expect(&[b"PING"]).await;
            self.reply(b"+PONG\r\n").await;
            self.expect(&[b"INFO", b"server"]).await;
            let info = format!("# Server\r\nrun_id:{run_id}\r\ntcp_port:6379\r\n");
            self.reply(format!("${}\r\n{info}\r\n", info.len()).as_bytes())
                .await;
            self.expect(&[b"INFO", b"replication"]).await;
            let repl = "# Replication\r\nrole:master\r\n\
                        master_replid:9bc9b4d95138da1e89386107115d6db344e48c28\r\n\
                        master_replid2:0000000000000000000000000000000000000000\r\n\
                        second_repl_offset:-1\r\n";
            self.reply(format!("${}\r\n{repl}\r\n", repl.len()).as_bytes())
                .await;
            self.expect(&[b"CONFIG", b"GET", b"maxmemory*"]).await;
            self.reply(config).await;
        }

        /// Answers PING, INFO, CONFIG GET (noeviction) and every SCRIPT LOAD
        /// like Redis would.
        async fn handshake(&mut self, scripts: &ScriptSet) {
            self.handshake_as(scripts, RUN_ID, &policy_reply("noeviction"))
                .await;
        }

        async fn handshake_as(&mut self, scripts: &ScriptSet, run_id: &str, config: &[u8]) {
            self.greet(run_id, config).await;
            for sc in scripts.all() {
                self.expect(&[b"SCRIPT", b"LOAD", sc.body.as_bytes()]).await;
                self.reply(format!("$40\r\n{}\r\n", sc.sha1).as_bytes())
                    .await;
            }
        }

        /// Reads until the gateway closes the stream; anything sent on the
        /// way is discarded.
        async fn closed(mut self) {
            while self.command().await.is_some() {}
        }
    }

    const RUN_ID: &str = "4218936d0ee39c4bfd730a2aa73b804bce5218fe";

    /// `CONFIG GET maxmemory*` as Redis answers it, with `policy`.
    fn policy_reply(policy: &str) -> Vec<u8> {
        let mut out = b"*4\r\n".to_vec();
        for s in ["maxmemory-policy", policy, "maxmemory", "0"] {
            out.extend_from_slice(format!("${}\r\n{s}\r\n", s.len()).as_bytes());
        }
        out
    }

    struct Fixture {
        master: Arc<Master>,
        conns: mpsc::UnboundedReceiver<DuplexStream>,
        refuse: Arc<AtomicBool>,
        scripts: Arc<ScriptSet>,
        metrics: MasterMetrics,
    }

    fn tuning() -> MasterTuning {
        MasterTuning {
            timeout: 50 * MS,
            connect_timeout: 200 * MS,
            down_after_timeouts: 3,
            reconnect_min: 10 * MS,
            reconnect_max: 50 * MS,
            max_inflight: 16,
            // Out of the way of the scripted conversations; the test of the
            // re-read sets its own.
            policy_check: Duration::from_secs(3600),
        }
    }

    fn start_with(cfg: MasterConfig, tuning: MasterTuning, refuse: bool) -> Fixture {
        let scripts = Arc::new(ScriptSet::new());
        start_in(&MasterSet::new(tuning, 8, scripts), 0, cfg, refuse)
    }

    /// A fake master as master `index` of `set`.
    fn start_in(set: &MasterSet, index: usize, cfg: MasterConfig, refuse: bool) -> Fixture {
        let (tx, conns) = mpsc::unbounded_channel();
        let refuse = Arc::new(AtomicBool::new(refuse));
        let scripts = set.scripts.clone();
        let metrics = Metrics::new().master(&cfg.address);
        let connector = DuplexConnector {
            conns: tx,
            refuse: refuse.clone(),
        };
        let master = set.spawn_with(index, cfg, metrics.clone(), connector);
        Fixture {
            master,
            conns,
            refuse,
            scripts,
            metrics,
        }
    }

    fn start() -> Fixture {
        start_with(MasterConfig::plain("fake:6379"), tuning(), false)
    }

    /// A hang is a failure, not a stuck test.
    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("did not happen within 10 s")
    }

    /// Failing fast means no wait at all; the bound only absorbs scheduling.
    fn assert_immediate(since: Instant) {
        assert!(since.elapsed() < 20 * MS, "took {:?}", since.elapsed());
    }

    impl Fixture {
        async fn next_conn(&mut self) -> FakeMaster {
            let io = within(self.conns.recv())
                .await
                .expect("a connection attempt");
            FakeMaster {
                io,
                buf: BytesMut::new(),
            }
        }

        /// Accepts the next connection and completes its handshake.
        async fn connect(&mut self) -> FakeMaster {
            let mut conn = self.next_conn().await;
            conn.handshake(&self.scripts).await;
            assert!(self.master.wait_connected(Duration::from_secs(1)).await);
            conn
        }

        async fn wait_for_state(&self, want: MasterState) {
            within(async {
                while self.master.state() != want {
                    tokio::time::sleep(MS).await;
                }
            })
            .await;
        }
    }

    #[tokio::test]
    async fn master_is_down_until_its_handshake_completes() {
        let mut f = start();
        assert_eq!(f.master.state(), MasterState::Down);
        assert_eq!(f.master.connection_generation(), 0);
        assert_eq!(state_gauge(&f.metrics), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let _conn = f.connect().await;
        assert_eq!(f.master.state(), MasterState::Up);
        assert!(f.master.is_voting());
        assert_eq!(f.master.connection_generation(), 1);
        assert_eq!(state_gauge(&f.metrics), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(f.metrics.reconnects.get(), 0);
    }

    #[tokio::test]
    async fn eval_now_enqueues_before_its_future_is_polled() {
        // The engine leaves releases to finish in the background; they must
        // still reach the master ahead of anything issued after them.
        let mut f = start();
        let mut conn = f.connect().await;
        let m = &f.master;
        let keys = [Bytes::from_static(b"k")];
        let owner = [Bytes::from_static(b"me")];
        let late = m.eval_now(&f.scripts.release, &keys, &owner, answered(), false);
        let (later, ()) = tokio::join!(m.call(&[b"GET", b"k"], answered()), async {
            let first = conn.command().await.expect("a command");
            assert_eq!(first[0], Bytes::from_static(b"EVALSHA"), "{first:?}");
            conn.reply(b":1\r\n").await;
            conn.expect(&[b"GET", b"k"]).await;
            conn.reply(b"$-1\r\n").await;
        });
        assert_eq!(later, Ok(Value::Nil));
        assert_eq!(within(late).await, Ok(Value::Int(1)));
    }

    #[tokio::test]
    async fn eval_now_without_fallback_reloads_instead_of_resending() {
        let mut f = start();
        let mut conn = f.connect().await;
        let m = &f.master;
        let keys = [Bytes::from_static(b"k")];
        let owner = [Bytes::from_static(b"me")];
        let body = f.scripts.release.body.as_bytes().to_vec();
        let (got, ()) = tokio::join!(
            m.eval_now(&f.scripts.release, &keys, &owner, answered(), false),
            async {
                let _ = conn.command().await.expect("EVALSHA");
                conn.reply(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
                    .await;
                conn.expect(&[b"SCRIPT", b"LOAD", &body]).await;
                conn.reply(b"$40\r\n0000000000000000000000000000000000000000\r\n")
                    .await;
            }
        );
        assert!(matches!(got, Err(MasterError::Reply(ref e)) if e.starts_with("NOSCRIPT")));
    }

    #[tokio::test]
    async fn pipelined_replies_are_matched_to_callers_in_order() {
        let mut f = start();
        let mut conn = f.connect().await;
        let m = &f.master;
        let dl = answered();
        let (a, b, c, ()) = tokio::join!(
            m.call(&[b"GET", b"a"], dl),
            m.call(&[b"GET", b"b"], dl),
            m.call(&[b"GET", b"c"], dl),
            async {
                // All three arrive before any reply: they are pipelined.
                let mut out = Vec::new();
                for _ in 0..3 {
                    let cmd = conn.command().await.expect("a command");
                    let key = std::str::from_utf8(&cmd[1]).expect("utf8").to_string();
                    out.extend_from_slice(format!("$3\r\nv-{key}\r\n").as_bytes());
                }
                conn.reply(&out).await;
            }
        );
        assert_eq!(a, Ok(bulk("v-a")));
        assert_eq!(b, Ok(bulk("v-b")));
        assert_eq!(c, Ok(bulk("v-c")));
        assert_eq!(f.metrics.request_duration.get_sample_count(), 3);
    }

    #[tokio::test]
    async fn late_reply_to_a_timed_out_caller_is_discarded() {
        let mut f = start();
        let mut conn = f.connect().await;
        let m = &f.master;
        let (first, ()) = tokio::join!(m.call(&[b"GET", b"slow"], in_ms(50)), async {
            conn.expect(&[b"GET", b"slow"]).await;
        });
        assert_eq!(first, Err(MasterError::Timeout));
        assert_eq!(errors(&f.metrics, "timeout"), 1);

        let (second, ()) = tokio::join!(m.call(&[b"GET", b"next"], answered()), async {
            conn.expect(&[b"GET", b"next"]).await;
            // The late reply to the first request comes first.
            conn.reply(b"$4\r\nlate\r\n$4\r\nmine\r\n").await;
        });
        assert_eq!(second, Ok(bulk("mine")));
        assert_eq!(m.state(), MasterState::Up);
        // Both replies were read, so both are in the latency histogram.
        assert_eq!(f.metrics.request_duration.get_sample_count(), 2);
    }

    #[tokio::test]
    async fn noscript_falls_back_to_eval_with_the_body() {
        let mut f = start();
        let mut conn = f.connect().await;
        let script = f.scripts.release.clone();
        let (r, ()) = tokio::join!(
            f.master.eval(&script, &[b"k"], &[b"owner"], answered()),
            async {
                conn.expect(&[b"EVALSHA", script.sha1.as_bytes(), b"1", b"k", b"owner"])
                    .await;
                conn.reply(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
                    .await;
                conn.expect(&[b"EVAL", script.body.as_bytes(), b"1", b"k", b"owner"])
                    .await;
                conn.reply(b":1\r\n").await;
            }
        );
        assert_eq!(r, Ok(Value::Int(1)));
        // A NOSCRIPT the fallback repaired is not an error.
        assert_eq!(errors(&f.metrics, "reply"), 0);

        // Any other error reply is returned as is, without a retry.
        let (r, ()) = tokio::join!(
            f.master.eval(&script, &[b"k"], &[b"owner"], answered()),
            async {
                conn.expect(&[b"EVALSHA", script.sha1.as_bytes(), b"1", b"k", b"owner"])
                    .await;
                conn.reply(b"-ERR boom\r\n").await;
            }
        );
        assert_eq!(r, Err(MasterError::Reply("ERR boom".into())));
        assert_eq!(errors(&f.metrics, "reply"), 1);
        assert_eq!(f.master.state(), MasterState::Up);
    }

    #[tokio::test]
    async fn broken_replies_fail_with_protocol_and_drop_the_connection() {
        let deep = b"*1\r\n".repeat(20);
        let cases: [(&str, &[u8]); 4] = [
            ("unknown type byte", b"?what\r\n"),
            ("oversized bulk", b"$999999999999\r\n"),
            ("nested too deep", &deep),
            ("bad integer", b":12abc\r\n"),
        ];
        for (case, payload) in cases {
            let mut f = start();
            let mut conn = f.connect().await;
            let m = &f.master;
            let (first, second, ()) = tokio::join!(
                m.call(&[b"GET", b"a"], answered()),
                m.call(&[b"GET", b"b"], answered()),
                async {
                    conn.expect(&[b"GET", b"a"]).await;
                    conn.expect(&[b"GET", b"b"]).await;
                    conn.reply(payload).await;
                }
            );
            assert!(
                matches!(first, Err(MasterError::Protocol(_))),
                "{case}: {first:?}"
            );
            assert_eq!(second, Err(MasterError::ConnectionLost), "{case}");
            assert_eq!(m.state(), MasterState::Down, "{case}");
            assert_eq!(errors(&f.metrics, "protocol"), 1, "{case}");
            within(conn.closed()).await;

            // The reconnect loop brings it back on a fresh connection.
            let _conn = f.connect().await;
            assert_eq!(f.master.connection_generation(), 2, "{case}");
            assert_eq!(f.metrics.reconnects.get(), 1, "{case}");
        }
    }

    #[tokio::test]
    async fn unsolicited_reply_drops_the_connection() {
        let mut f = start();
        let mut conn = f.connect().await;
        conn.reply(b"+surprise\r\n").await;
        within(conn.closed()).await;
        f.wait_for_state(MasterState::Down).await;
        let _conn = f.connect().await;
        assert_eq!(f.master.connection_generation(), 2);
    }

    #[tokio::test]
    async fn master_goes_down_after_consecutive_timeouts_and_reconnects() {
        let mut f = start();
        let mut conn = f.connect().await;
        let m = f.master.clone();
        for i in 1..=3u32 {
            let (r, ()) = tokio::join!(m.call(&[b"PING"], in_ms(50)), async {
                conn.expect(&[b"PING"]).await;
            });
            assert_eq!(r, Err(MasterError::Timeout));
            let want = if i < 3 {
                MasterState::Up
            } else {
                MasterState::Down
            };
            assert_eq!(m.state(), want, "after {i} timeouts");
        }
        assert_eq!(state_gauge(&f.metrics), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);

        // Down fails fast: no time passes, nothing is written.
        let before = Instant::now();
        assert_eq!(m.call(&[b"PING"], in_ms(50)).await, Err(MasterError::Down));
        assert_immediate(before);
        assert_eq!(errors(&f.metrics, "down"), 1);

        // The stalled connection was torn down; a fresh one replaces it.
        within(conn.closed()).await;
        let mut conn = f.connect().await;
        assert_eq!(m.connection_generation(), 2);
        let (r, ()) = tokio::join!(m.call(&[b"PING"], answered()), async {
            conn.expect(&[b"PING"]).await;
            conn.reply(b"+PONG\r\n").await;
        });
        assert_eq!(r, Ok(Value::Status(Bytes::from_static(b"PONG"))));
    }

    #[tokio::test]
    async fn an_answer_in_time_resets_the_timeout_count() {
        let mut f = start();
        let mut conn = f.connect().await;
        let m = f.master.clone();
        for round in 0..3 {
            for _ in 0..2 {
                let (r, ()) = tokio::join!(m.call(&[b"GET", b"x"], in_ms(50)), async {
                    conn.expect(&[b"GET", b"x"]).await;
                });
                assert_eq!(r, Err(MasterError::Timeout));
            }
            // The answer drains the two late replies first.
            let (r, ()) = tokio::join!(m.call(&[b"GET", b"y"], answered()), async {
                conn.expect(&[b"GET", b"y"]).await;
                conn.reply(b"$-1\r\n$-1\r\n:1\r\n").await;
            });
            assert_eq!(r, Ok(Value::Int(1)), "round {round}");
            assert_eq!(m.state(), MasterState::Up, "round {round}");
        }
    }

    #[tokio::test]
    async fn timeouts_of_requests_in_flight_together_count_once() {
        // A pause of the gateway (or of the machine) times out everything in
        // flight at once; that is one silence, not `down_after_timeouts`
        // silent answers from this master.
        let mut f = start();
        let mut conn = f.connect().await;
        let m = f.master.clone();
        let deadline = in_ms(50);
        let calls = (0..5).map(|_| m.call(&[b"PING"], deadline));
        let (results, ()) = tokio::join!(futures::future::join_all(calls), async {
            for _ in 0..5 {
                conn.expect(&[b"PING"]).await;
            }
        });
        assert!(results.iter().all(|r| *r == Err(MasterError::Timeout)));
        assert_eq!(m.state(), MasterState::Up, "five timeouts of one silence");

        // Requests sent after that silence still count: two more silent
        // rounds make three, and the master goes down.
        for i in 2..=3u32 {
            let (r, ()) = tokio::join!(m.call(&[b"PING"], in_ms(50)), async {
                conn.expect(&[b"PING"]).await;
            });
            assert_eq!(r, Err(MasterError::Timeout));
            let want = if i < 3 {
                MasterState::Up
            } else {
                MasterState::Down
            };
            assert_eq!(m.state(), want, "after {i} silences");
        }
    }

    #[tokio::test]
    async fn expired_deadline_is_a_timeout_that_does_not_blame_the_master() {
        let mut f = start();
        let _conn = f.connect().await;
        for _ in 0..5 {
            assert_eq!(
                f.master.call(&[b"PING"], Instant::now()).await,
                Err(MasterError::Timeout)
            );
        }
        assert_eq!(f.master.state(), MasterState::Up);
    }

    #[tokio::test]
    async fn closed_connection_fails_pending_callers_at_once() {
        let mut f = start();
        let conn = f.connect().await;
        let m = f.master.clone();
        let started = Instant::now();
        let (r, ()) = tokio::join!(m.call(&[b"GET", b"a"], in_ms(1000)), async {
            let mut conn = conn;
            conn.expect(&[b"GET", b"a"]).await;
            drop(conn);
        });
        assert_eq!(r, Err(MasterError::ConnectionLost));
        assert!(started.elapsed() < 1000 * MS);
        assert_eq!(m.state(), MasterState::Down);
        let _conn = f.connect().await;
        assert_eq!(m.connection_generation(), 2);
    }

    #[tokio::test]
    async fn unreachable_master_fails_fast_and_is_retried_with_backoff() {
        let mut f = start_with(MasterConfig::plain("fake:6379"), tuning(), true);
        let before = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                f.master.call(&[b"PING"], in_ms(1000)).await,
                Err(MasterError::Down)
            );
        }
        assert_immediate(before);
        assert_eq!(errors(&f.metrics, "down"), 3);

        // Let several attempts fail, then heal: it is back within about
        // reconnect_max.
        tokio::time::sleep(200 * MS).await;
        f.refuse.store(false, Ordering::SeqCst);
        let healed = Instant::now();
        let _conn = f.connect().await;
        // Scheduling slack on top of the backoff ceiling.
        assert!(healed.elapsed() <= tuning().reconnect_max + 100 * MS);
        assert_eq!(f.master.connection_generation(), 1);
    }

    #[tokio::test]
    async fn master_that_accepts_but_never_answers_stays_down() {
        let mut f = start();
        let mut stalled = f.next_conn().await;
        stalled.expect(&[b"PING"]).await;
        // While the handshake hangs, callers are refused at once.
        let before = Instant::now();
        assert_eq!(
            f.master.call(&[b"PING"], in_ms(5000)).await,
            Err(MasterError::Down)
        );
        assert_immediate(before);
        // The PING step times out after connect_timeout and the stream is
        // dropped; the next attempt follows.
        within(stalled.closed()).await;
        assert!(before.elapsed() >= tuning().connect_timeout);
        assert_eq!(f.master.state(), MasterState::Down);
        let _conn = f.connect().await;
        assert_eq!(f.master.state(), MasterState::Up);
    }

    #[tokio::test]
    async fn auth_comes_first_and_a_refusal_keeps_the_master_down() {
        let mut cfg = MasterConfig::plain("fake:6379");
        cfg.username = Some("gate".into());
        cfg.password = Some("s3cret".into());
        let mut f = start_with(cfg, tuning(), false);
        let mut conn = f.next_conn().await;
        conn.expect(&[b"AUTH", b"gate", b"s3cret"]).await;
        conn.reply(b"-WRONGPASS invalid username-password pair\r\n")
            .await;
        within(conn.closed()).await;
        assert_eq!(f.master.state(), MasterState::Down);

        let mut conn = f.next_conn().await;
        conn.expect(&[b"AUTH", b"gate", b"s3cret"]).await;
        conn.reply(b"+OK\r\n").await;
        conn.handshake(&f.scripts).await;
        assert!(f.master.wait_connected(Duration::from_secs(1)).await);

        // Password only: the one-argument AUTH.
        let mut cfg = MasterConfig::plain("fake:6379");
        cfg.password = Some("pw".into());
        let mut f = start_with(cfg, tuning(), false);
        let mut conn = f.next_conn().await;
        conn.expect(&[b"AUTH", b"pw"]).await;
    }

    #[tokio::test]
    async fn script_digest_mismatch_keeps_the_master_down() {
        let mut f = start();
        let mut conn = f.next_conn().await;
        conn.greet(RUN_ID, &policy_reply("noeviction")).await;
        let _ = conn.command().await;
        conn.reply(b"$40\r\n0000000000000000000000000000000000000000\r\n")
            .await;
        within(conn.closed()).await;
        assert_eq!(f.master.state(), MasterState::Down);
        let _conn = f.connect().await;
        assert_eq!(f.master.connection_generation(), 1);
    }

    #[tokio::test]
    async fn full_pipeline_is_overloaded_at_once() {
        let mut tuning = tuning();
        tuning.max_inflight = 2;
        let mut f = start_with(MasterConfig::plain("fake:6379"), tuning, false);
        let mut conn = f.connect().await;
        let m = &f.master;
        let (a, b, c, ()) = tokio::join!(
            m.call(&[b"GET", b"a"], answered()),
            m.call(&[b"GET", b"b"], answered()),
            m.call(&[b"GET", b"c"], answered()),
            async {
                conn.expect(&[b"GET", b"a"]).await;
                conn.expect(&[b"GET", b"b"]).await;
                conn.reply(b":1\r\n:2\r\n").await;
            }
        );
        assert_eq!((a, b), (Ok(Value::Int(1)), Ok(Value::Int(2))));
        assert_eq!(c, Err(MasterError::Overloaded));
        assert_eq!(errors(&f.metrics, "overloaded"), 1);
        // Answered requests give their place back.
        let (d, ()) = tokio::join!(m.call(&[b"GET", b"d"], answered()), async {
            conn.expect(&[b"GET", b"d"]).await;
            conn.reply(b":4\r\n").await;
        });
        assert_eq!(d, Ok(Value::Int(4)));
    }

    #[tokio::test]
    async fn shutdown_fails_pending_callers_and_stops_reconnecting() {
        let mut f = start();
        let mut conn = f.connect().await;
        let m = f.master.clone();
        let (r, ()) = tokio::join!(m.call(&[b"GET", b"a"], in_ms(1000)), async {
            conn.expect(&[b"GET", b"a"]).await;
            m.shutdown();
            assert_eq!(m.state(), MasterState::Down);
        });
        assert_eq!(r, Err(MasterError::ConnectionLost));
        within(conn.closed()).await;
        assert_eq!(m.call(&[b"PING"], in_ms(10)).await, Err(MasterError::Down));
        // The task ended: its connector (the sender) is gone.
        assert!(within(f.conns.recv()).await.is_none());
        assert_eq!(state_gauge(&f.metrics), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn dropping_the_last_handle_stops_the_task() {
        let mut f = start();
        let conn = f.connect().await;
        drop(f.master);
        within(conn.closed()).await;
        assert!(within(f.conns.recv()).await.is_none());
    }

    #[tokio::test]
    async fn recovery_flag_shapes_the_state_while_the_link_is_up() {
        let mut f = start();
        f.master.set_recovery(Recovery::Amnesia);
        // The link wins while it is down.
        assert_eq!(f.master.state(), MasterState::Down);
        let conn = f.connect().await;
        assert_eq!(f.master.state(), MasterState::Amnesia);
        assert!(!f.master.is_voting());
        assert_eq!(state_gauge(&f.metrics), [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        f.master.set_recovery(Recovery::Quarantined);
        assert_eq!(state_gauge(&f.metrics), [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);

        drop(conn);
        f.wait_for_state(MasterState::Down).await;
        assert_eq!(state_gauge(&f.metrics), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        // The flag is the lock engine's to clear; a reconnect keeps it.
        let _conn = f.connect().await;
        assert_eq!(f.master.state(), MasterState::Quarantined);
        f.master.set_recovery(Recovery::Healthy);
        assert_eq!(f.master.recovery(), Recovery::Healthy);
        assert_eq!(state_gauge(&f.metrics), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn tls_masters_without_a_tls_configuration_stay_down() {
        let mut cfg = MasterConfig::plain("127.0.0.1:1");
        cfg.tls = true;
        let m = Master::spawn(
            0,
            cfg,
            tuning(),
            8,
            Arc::new(ScriptSet::new()),
            Metrics::new().master("127.0.0.1:1"),
            None,
        );
        assert!(!m.wait_connected(300 * MS).await);
        assert_eq!(m.call(&[b"PING"], in_ms(10)).await, Err(MasterError::Down));
    }

    // === the guards ===

    #[tokio::test]
    async fn an_evicting_policy_keeps_a_connected_master_from_voting() {
        for policy in ["allkeys-lru", "volatile-ttl", "not-a-policy"] {
            let mut f = start();
            let mut conn = f.next_conn().await;
            conn.handshake_as(&f.scripts, RUN_ID, &policy_reply(policy))
                .await;
            assert!(f.master.wait_connected(Duration::from_secs(1)).await);
            assert_eq!(f.master.state(), MasterState::Evicting, "{policy}");
            assert!(!f.master.is_voting());
            assert_eq!(state_gauge(&f.metrics), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
            let why = f.master.guard_detail().expect("a reason");
            assert!(why.contains(policy), "{why}");
            assert!(
                why.contains("CONFIG SET maxmemory-policy noeviction"),
                "{why}"
            );
            // Negative control: without the guard the same master votes.
            f.master.set_eviction_guard(false);
            assert_eq!(f.master.state(), MasterState::Up);
            assert_eq!(f.master.guard_detail(), None);
        }
    }

    #[tokio::test]
    async fn a_refused_config_votes_only_with_a_declared_policy() {
        let refusal = b"-ERR unknown command 'CONFIG', with args beginning with: 'GET'\r\n";
        let mut f = start();
        let mut conn = f.next_conn().await;
        conn.handshake_as(&f.scripts, RUN_ID, refusal).await;
        assert!(f.master.wait_connected(Duration::from_secs(1)).await);
        assert_eq!(f.master.state(), MasterState::PolicyUnknown);
        assert_eq!(state_gauge(&f.metrics), [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        let why = f.master.guard_detail().expect("a reason");
        assert!(why.contains("unknown command"), "{why}");
        assert!(why.contains("eviction_policy"), "{why}");

        let mut cfg = MasterConfig::plain("fake:6379");
        cfg.eviction_policy = Some("noeviction".into());
        let mut f = start_with(cfg, tuning(), false);
        let mut conn = f.next_conn().await;
        conn.handshake_as(&f.scripts, RUN_ID, refusal).await;
        assert!(f.master.wait_connected(Duration::from_secs(1)).await);
        assert_eq!(f.master.state(), MasterState::Up);
    }

    #[tokio::test]
    async fn the_policy_is_read_again_at_the_interval() {
        let mut tuning = tuning();
        tuning.policy_check = 30 * MS;
        let mut f = start_with(MasterConfig::plain("fake:6379"), tuning, false);
        let mut conn = f.connect().await;
        assert_eq!(f.master.state(), MasterState::Up);
        for (policy, want) in [
            ("allkeys-lru", MasterState::Evicting),
            ("noeviction", MasterState::Up),
        ] {
            within(conn.expect(&[b"CONFIG", b"GET", b"maxmemory*"])).await;
            conn.reply(&policy_reply(policy)).await;
            f.wait_for_state(want).await;
        }
        // The re-reads are the gateway's own upkeep, not master errors.
        for kind in MASTER_ERROR_KINDS {
            assert_eq!(errors(&f.metrics, kind), 0, "{kind}");
        }
    }

    #[tokio::test]
    async fn info_without_a_run_id_keeps_the_master_down() {
        let mut f = start();
        let mut conn = f.next_conn().await;
        conn.expect(&[b"PING"]).await;
        conn.reply(b"+PONG\r\n").await;
        conn.expect(&[b"INFO", b"server"]).await;
        conn.reply(b"$10\r\n# Server\r\n\r\n").await;
        within(conn.closed()).await;
        assert_eq!(f.master.state(), MasterState::Down);
        let _conn = f.connect().await;
        assert_eq!(f.master.state(), MasterState::Up);
    }

    #[tokio::test]
    async fn an_oom_refusal_is_counted_under_its_own_kind() {
        let mut f = start();
        let mut conn = f.connect().await;
        let (r, ()) = tokio::join!(f.master.call(&[b"SET", b"k", b"v"], answered()), async {
            conn.expect(&[b"SET", b"k", b"v"]).await;
            conn.reply(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")
                .await;
        });
        assert!(matches!(r, Err(MasterError::Reply(e)) if e.starts_with("OOM")));
        assert_eq!(errors(&f.metrics, "oom"), 1);
        assert_eq!(errors(&f.metrics, "reply"), 0);
        assert_eq!(
            f.master.state(),
            MasterState::Up,
            "a full master still answers"
        );
    }

    #[tokio::test]
    async fn one_server_behind_two_addresses_casts_one_vote() {
        let set = MasterSet::new(tuning(), 8, Arc::new(ScriptSet::new()));
        let mut a = start_in(&set, 0, MasterConfig::plain("127.0.0.1:6379"), false);
        let mut b = start_in(&set, 1, MasterConfig::plain("localhost:6379"), false);
        let mut c = start_in(&set, 2, MasterConfig::plain("10.0.0.3:6379"), false);
        let _ca = a.connect().await;
        let mut cb = b.next_conn().await;
        cb.handshake(&b.scripts).await;
        assert!(b.master.wait_connected(Duration::from_secs(1)).await);
        let _cc = c.next_conn().await;
        // c never answers its first attempt; the start-up check does not
        // wait for it beyond its bound.
        assert_eq!(a.master.state(), MasterState::Up);
        assert_eq!(b.master.state(), MasterState::Duplicate);
        assert_eq!(state_gauge(&b.metrics), [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        let why = b.master.guard_detail().expect("a reason");
        assert!(why.contains("127.0.0.1:6379"), "{why}");

        let masters = [a.master.clone(), b.master.clone(), c.master.clone()];
        let e = super::super::refuse_duplicates(&masters, &tuning())
            .await
            .expect_err("a duplicate refuses the start");
        assert!(
            e.contains("127.0.0.1:6379 and localhost:6379 reach the same Redis server"),
            "{e}"
        );

        // Negative control: without the identity guard both vote.
        b.master.set_identity_guard(false);
        assert!(b.master.is_voting());
        b.master.set_identity_guard(true);

        // The holder's connection goes: the duplicate takes the vote over,
        // and the old holder, back on the same server, is the duplicate.
        drop(_ca);
        a.wait_for_state(MasterState::Down).await;
        b.wait_for_state(MasterState::Up).await;
        let mut ca = a.next_conn().await;
        ca.handshake(&a.scripts).await;
        a.wait_for_state(MasterState::Duplicate).await;
        assert_eq!(b.master.state(), MasterState::Up);

        // Reconnected to another server, it votes again.
        drop(ca);
        a.wait_for_state(MasterState::Down).await;
        let mut ca = a.next_conn().await;
        ca.handshake_as(
            &a.scripts,
            "ffffffffffffffffffffffffffffffffffffffff",
            &policy_reply("noeviction"),
        )
        .await;
        a.wait_for_state(MasterState::Up).await;
        assert_eq!(b.master.state(), MasterState::Up);
        let masters = [a.master.clone(), b.master.clone()];
        assert_eq!(
            super::super::refuse_duplicates(&masters, &tuning()).await,
            Ok(())
        );
    }
}

mod real {
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// A `redis-server` child on a loopback port, killed on drop.
    struct RedisServer {
        child: Child,
        port: u16,
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        l.local_addr().expect("local addr").port()
    }

    impl RedisServer {
        async fn start(port: u16) -> Self {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            let server = RedisServer { child, port };
            let give_up = Instant::now() + Duration::from_secs(5);
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(Instant::now() < give_up, "redis-server did not start");
                tokio::time::sleep(10 * MS).await;
            }
            server
        }

        fn signal(&self, sig: &str) {
            let ok = Command::new("kill")
                .args([format!("-{sig}"), self.child.id().to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill -{sig} failed");
        }

        fn kill(&mut self) {
            let _ = Command::new("kill")
                .args(["-CONT".to_string(), self.child.id().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.kill();
        }
    }

    fn tuning() -> MasterTuning {
        MasterTuning {
            timeout: 100 * MS,
            connect_timeout: 200 * MS,
            down_after_timeouts: 2,
            reconnect_min: 20 * MS,
            reconnect_max: 250 * MS,
            max_inflight: 1024,
            policy_check: Duration::from_secs(3600),
        }
    }

    fn spawn_master(port: u16) -> (Arc<Master>, Arc<ScriptSet>, MasterMetrics) {
        let name = format!("127.0.0.1:{port}");
        let scripts = Arc::new(ScriptSet::new());
        let metrics = Metrics::new().master(&name);
        let m = Master::spawn(
            0,
            MasterConfig::plain(name),
            tuning(),
            8,
            scripts.clone(),
            metrics.clone(),
            None,
        );
        (m, scripts, metrics)
    }

    async fn scripts_loaded(m: &Master, scripts: &ScriptSet) -> Value {
        let mut args: Vec<&[u8]> = vec![b"SCRIPT", b"EXISTS"];
        args.extend(scripts.all().iter().map(|s| s.sha1.as_bytes()));
        m.call(&args, in_ms(1000)).await.expect("SCRIPT EXISTS")
    }

    fn all_loaded(scripts: &ScriptSet) -> Value {
        Value::Array(scripts.all().iter().map(|_| Value::Int(1)).collect())
    }

    async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let give_up = Instant::now() + within;
        while !cond() {
            assert!(Instant::now() < give_up, "{what} within {within:?}");
            tokio::time::sleep(5 * MS).await;
        }
    }

    #[tokio::test]
    async fn real_redis_loads_scripts_and_evaluates_them() {
        let redis = RedisServer::start(free_port()).await;
        let (m, scripts, metrics) = spawn_master(redis.port);
        assert!(m.wait_connected(Duration::from_secs(3)).await);
        assert_eq!(m.connection_generation(), 1);
        assert_eq!(scripts_loaded(&m, &scripts).await, all_loaded(&scripts));

        // Not loaded at connect: NOSCRIPT, then EVAL; EVALSHA works after.
        let echo = Script::new("echo", "return ARGV[1]");
        for _ in 0..2 {
            let r = m.eval(&echo, &[b"k"], &[b"hi"], in_ms(1000)).await;
            assert_eq!(r, Ok(bulk("hi")));
        }
        let boom = Script::new("boom", "return redis.error_reply('NOPE x')");
        assert_eq!(
            m.eval(&boom, &[], &[], in_ms(1000)).await,
            Err(MasterError::Reply("NOPE x".into()))
        );
        assert_eq!(
            m.call(&[b"SET", b"k", b"v"], in_ms(1000)).await,
            Ok(Value::Status(Bytes::from_static(b"OK")))
        );
        assert_eq!(m.call(&[b"GET", b"k"], in_ms(1000)).await, Ok(bulk("v")));
        assert!(metrics.request_duration.get_sample_count() >= 6);
        m.shutdown();
    }

    #[tokio::test]
    async fn stopped_redis_fails_within_the_deadline_and_comes_back_after_cont() {
        let redis = RedisServer::start(free_port()).await;
        let (m, _scripts, metrics) = spawn_master(redis.port);
        assert!(m.wait_connected(Duration::from_secs(3)).await);

        redis.signal("STOP");
        for _ in 0..2 {
            let started = Instant::now();
            let r = m.call(&[b"PING"], started + 100 * MS).await;
            assert_eq!(r, Err(MasterError::Timeout));
            assert!(started.elapsed() < 150 * MS, "{:?}", started.elapsed());
        }
        assert_eq!(m.state(), MasterState::Down);
        let started = Instant::now();
        assert_eq!(
            m.call(&[b"PING"], started + 100 * MS).await,
            Err(MasterError::Down)
        );
        assert!(started.elapsed() < 5 * MS);

        // TCP still connects to a stopped process, but PING never answers.
        tokio::time::sleep(600 * MS).await;
        assert_eq!(m.state(), MasterState::Down);

        redis.signal("CONT");
        let healed = Instant::now();
        assert!(m.wait_connected(Duration::from_secs(2)).await);
        assert!(healed.elapsed() < Duration::from_secs(2));
        assert_eq!(m.connection_generation(), 2);
        assert_eq!(
            m.call(&[b"PING"], in_ms(1000)).await,
            Ok(Value::Status(Bytes::from_static(b"PONG")))
        );
        assert_eq!(metrics.reconnects.get(), 1);
        m.shutdown();
    }

    #[tokio::test]
    async fn restarted_redis_is_reconnected_with_scripts_reloaded() {
        let port = free_port();
        let mut redis = RedisServer::start(port).await;
        let (m, scripts, metrics) = spawn_master(port);
        assert!(m.wait_connected(Duration::from_secs(3)).await);
        assert_eq!(m.connection_generation(), 1);

        redis.kill();
        wait_until("master marked down", Duration::from_secs(2), || {
            m.state() == MasterState::Down
        })
        .await;
        let r = m.call(&[b"PING"], in_ms(100)).await;
        assert_eq!(r, Err(MasterError::Down));

        let _redis = RedisServer::start(port).await;
        wait_until("master back up", Duration::from_secs(3), || {
            m.state() == MasterState::Up
        })
        .await;
        assert_eq!(m.connection_generation(), 2);
        // A fresh redis has an empty script cache: the handshake reloaded it.
        assert_eq!(scripts_loaded(&m, &scripts).await, all_loaded(&scripts));
        assert_eq!(metrics.reconnects.get(), 1);
        m.shutdown();
    }
}
