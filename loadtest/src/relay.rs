//! A fault-injecting TCP relay for the chaos suite: it sits between a
//! gateway and one master and, at runtime, adds latency and jitter,
//! blackholes traffic, holds one direction, resets connections, or cuts the
//! link and heals it again.
//!
//! The relay never loses or reorders bytes of a live connection: TCP cannot,
//! so a relay that did would test a network that does not exist (and would
//! desynchronise any pipelined protocol on purpose). A blackholed or held
//! direction therefore *keeps* its bytes and delivers them, in order, when it
//! heals, exactly as retransmissions would; only [`Relay::reset`] and
//! [`Relay::cut`] end connections, with an RST (zero linger), never a FIN.
//! Latency is applied per chunk with a delivery time that never goes
//! backwards, so jitter cannot reorder a stream either.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One direction of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream (gateway to master: requests).
    Up,
    /// Upstream to client (master to gateway: replies).
    Down,
}

/// The faults in force; every connection reads them as bytes pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Faults {
    latency: Duration,
    jitter: Duration,
    blackhole: bool,
    hold_up: bool,
    hold_down: bool,
    /// New connections are reset at once.
    cut: bool,
}

impl Faults {
    fn holds(&self, dir: Direction) -> bool {
        self.blackhole
            || match dir {
                Direction::Up => self.hold_up,
                Direction::Down => self.hold_down,
            }
    }
}

/// A running relay; dropping it stops accepting and resets every connection.
pub struct Relay {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    /// Bumped by [`Relay::reset`]; each connection resets when it changes.
    resets: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

// === impl Relay ===

impl Relay {
    /// Listens on a free loopback port and relays every connection to
    /// `upstream`.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (faults, faults_rx) = watch::channel(Faults::default());
        let (resets, resets_rx) = watch::channel(0u64);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    // Out of descriptors or similar: back off, keep serving.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(connection(
                    client,
                    upstream,
                    faults_rx.clone(),
                    resets_rx.clone(),
                ));
            }
        });
        Ok(Relay {
            addr,
            faults,
            resets,
            accept,
        })
    }

    /// Where clients (gateways) connect instead of the master.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every chunk by `latency` plus a uniform `0..=jitter`.
    pub fn set_latency(&self, latency: Duration, jitter: Duration) {
        self.faults.send_modify(|f| {
            f.latency = latency;
            f.jitter = jitter;
        });
    }

    /// Accepts connections and bytes but delivers nothing either way until
    /// healed.
    pub fn blackhole(&self, on: bool) {
        self.faults.send_modify(|f| f.blackhole = on);
    }

    /// Holds one direction (delivered when healed, as TCP would).
    pub fn drop_direction(&self, dir: Direction, on: bool) {
        self.faults.send_modify(|f| match dir {
            Direction::Up => f.hold_up = on,
            Direction::Down => f.hold_down = on,
        });
    }

    /// Resets every open connection (new ones are still accepted).
    pub fn reset(&self) {
        self.resets.send_modify(|g| *g += 1);
    }

    /// Resets every open connection and every new one until healed.
    pub fn cut(&self) {
        self.faults.send_modify(|f| f.cut = true);
        self.reset();
    }

    /// Clears every fault; held bytes flow again.
    pub fn heal(&self) {
        self.faults.send_replace(Faults::default());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.reset();
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    mut resets: watch::Receiver<u64>,
) {
    // Zero linger: dropping a socket sends RST, which is what a reset or
    // cut must look like to the gateway.
    let _ = client.set_zero_linger();
    if faults.borrow().cut {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_zero_linger();
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    resets.borrow_and_update();
    // tokio::io::split, not into_split: an owned write half sends FIN on
    // drop, and a reset must not look like an orderly close.
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    let mut up = Box::pin(pump(cr, sw, Direction::Up, faults.clone()));
    let mut down = Box::pin(pump(sr, cw, Direction::Down, faults));
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => match r {
                Ok(()) => up_done = true,
                Err(_) => return,
            },
            r = &mut down, if !down_done => match r {
                Ok(()) => down_done = true,
                Err(_) => return,
            },
            changed = resets.changed() => {
                // A reset, or the relay was dropped: RST both sides.
                let _ = changed;
                return;
            }
        }
    }
}

/// Copies one direction until EOF (then half-closes the other side) or an
/// error, honouring latency and holds.
async fn pump(
    mut r: ReadHalf<TcpStream>,
    mut w: WriteHalf<TcpStream>,
    dir: Direction,
    faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<(Instant, Bytes)>>();
    let read_faults = faults.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut last = Instant::now();
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                let _ = tx.send(None);
                return Ok::<(), io::Error>(());
            }
            let f = *read_faults.borrow();
            let jitter = if f.jitter.is_zero() {
                Duration::ZERO
            } else {
                let us = u64::try_from(f.jitter.as_micros()).unwrap_or(u64::MAX);
                Duration::from_micros(rand::rng().random_range(0..=us))
            };
            // Never earlier than the previous chunk: jitter must not reorder.
            last = last.max(Instant::now() + f.latency + jitter);
            if tx
                .send(Some((last, Bytes::copy_from_slice(&buf[..n]))))
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let mut faults = faults;
    let writer = async move {
        while let Some(item) = rx.recv().await {
            let Some((at, bytes)) = item else {
                w.shutdown().await?;
                return Ok::<(), io::Error>(());
            };
            tokio::time::sleep_until(at).await;
            loop {
                if !faults.borrow_and_update().holds(dir) {
                    break;
                }
                if faults.changed().await.is_err() {
                    return Ok(());
                }
            }
            w.write_all(&bytes).await?;
        }
        Ok(())
    };
    let (a, b) = tokio::join!(reader, writer);
    a.and(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, within: Duration) -> io::Result<Option<Duration>> {
        let t = Instant::now();
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(within, s.read_exact(&mut buf)).await {
            Ok(r) => {
                r?;
                assert_eq!(&buf, b"ping");
                Ok(Some(t.elapsed()))
            }
            Err(_) => Ok(None),
        }
    }

    #[tokio::test]
    async fn latency_delays_and_heal_removes_it() {
        let relay = Relay::start(echo().await).await.expect("relay");
        let mut s = TcpStream::connect(relay.addr()).await.expect("connect");
        let fast = roundtrip(&mut s, Duration::from_secs(2)).await.expect("io");
        assert!(fast.expect("answered") < Duration::from_millis(100));
        relay.set_latency(Duration::from_millis(100), Duration::from_millis(20));
        let slow = roundtrip(&mut s, Duration::from_secs(2)).await.expect("io");
        // Both directions are delayed.
        assert!(slow.expect("answered") >= Duration::from_millis(200));
        relay.heal();
        let fast = roundtrip(&mut s, Duration::from_secs(2)).await.expect("io");
        assert!(fast.expect("answered") < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn blackhole_holds_bytes_and_delivers_them_on_heal() {
        let relay = Relay::start(echo().await).await.expect("relay");
        let mut s = TcpStream::connect(relay.addr()).await.expect("connect");
        relay.blackhole(true);
        let lost = roundtrip(&mut s, Duration::from_millis(300))
            .await
            .expect("io");
        assert_eq!(lost, None, "a blackhole answered");
        relay.heal();
        // The held request is delivered, then its echo.
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .expect("delivered after heal")
            .expect("read");
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn one_held_direction_stops_replies_only() {
        let relay = Relay::start(echo().await).await.expect("relay");
        let mut s = TcpStream::connect(relay.addr()).await.expect("connect");
        relay.drop_direction(Direction::Down, true);
        let lost = roundtrip(&mut s, Duration::from_millis(300))
            .await
            .expect("io");
        assert_eq!(lost, None);
        relay.drop_direction(Direction::Down, false);
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .expect("delivered after heal")
            .expect("read");
    }

    #[tokio::test]
    async fn reset_and_cut_end_connections_until_healed() {
        let relay = Relay::start(echo().await).await.expect("relay");
        let mut s = TcpStream::connect(relay.addr()).await.expect("connect");
        roundtrip(&mut s, Duration::from_secs(2))
            .await
            .expect("io")
            .expect("answered");
        relay.reset();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            roundtrip(&mut s, Duration::from_secs(2)).await.is_err(),
            "a reset connection still works"
        );
        // New connections work after a reset, not during a cut.
        let mut s = TcpStream::connect(relay.addr()).await.expect("connect");
        roundtrip(&mut s, Duration::from_secs(2))
            .await
            .expect("io")
            .expect("answered");
        relay.cut();
        let mut s2 = TcpStream::connect(relay.addr()).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(roundtrip(&mut s2, Duration::from_secs(2)).await.is_err());
        relay.heal();
        let mut s3 = TcpStream::connect(relay.addr()).await.expect("connect");
        roundtrip(&mut s3, Duration::from_secs(2))
            .await
            .expect("io")
            .expect("answered after heal");
    }
}
