//! Black-box wire tests: raw RESP bytes in, exact bytes out.

mod support;

use std::time::Duration;

use support::{raw_roundtrip, start_gateway, test_config, Cluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn inline_ping_gets_pong() {
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    assert_eq!(
        raw_roundtrip(gw.local_addr(), b"PING\r\n").await,
        b"+PONG\r\n"
    );
}

#[tokio::test]
async fn pipelined_commands_reply_in_order() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let req = b"*5\r\n$12\r\nLOCK.ACQUIRE\r\n$1\r\np\r\n$4\r\n5000\r\n$5\r\nOWNER\r\n$2\r\nme\r\n\
*1\r\n$4\r\nPING\r\n\
*3\r\n$12\r\nLOCK.RELEASE\r\n$1\r\np\r\n$2\r\nme\r\n\
*3\r\n$12\r\nLOCK.RELEASE\r\n$1\r\np\r\n$2\r\nme\r\n\
*2\r\n$4\r\nECHO\r\n$3\r\nend\r\n";
    let out = raw_roundtrip(gw.local_addr(), req).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("*3\r\n$2\r\nme\r\n:"), "{text}");
    assert!(
        text.ends_with("+PONG\r\n:1\r\n:0\r\n$3\r\nend\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn hello_3_switches_to_resp3_and_bad_versions_get_noproto() {
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    let out = raw_roundtrip(gw.local_addr(), b"HELLO 3\r\nLOCK.STATUS none\r\n").await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("%7\r\n"), "{text}");
    assert!(text.ends_with("_\r\n"), "{text}");
    let out = raw_roundtrip(gw.local_addr(), b"HELLO 4\r\n").await;
    assert_eq!(out, b"-NOPROTO unsupported protocol version\r\n");
}

#[tokio::test]
async fn unknown_commands_keep_the_connection_open() {
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    let out = raw_roundtrip(gw.local_addr(), b"FLY away\r\nPING\r\n").await;
    assert_eq!(
        out,
        b"-ERR unknown command 'FLY', with args beginning with: 'away' \r\n+PONG\r\n"
    );
}

async fn closes_after(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    // The gateway closes: read_to_end returns instead of timing out.
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("connection was not closed")
        .expect("read");
    out
}

#[tokio::test]
async fn malformed_frames_get_a_protocol_error_and_close() {
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    let out = closes_after(gw.local_addr(), b"*1\r\n$x\r\n").await;
    assert!(
        out.starts_with(b"-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let out = closes_after(gw.local_addr(), b"*2\r\n*1\r\n$4\r\nPING\r\n").await;
    assert!(
        out.starts_with(b"-ERR Protocol error: expected '$'"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn oversized_frames_are_refused_without_waiting_for_the_bytes() {
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    // Claims a 1 GiB bulk string: refused at once, not buffered.
    let out = closes_after(gw.local_addr(), b"*2\r\n$4\r\nECHO\r\n$1073741824\r\n").await;
    assert!(
        out.starts_with(b"-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let out = closes_after(gw.local_addr(), b"*99999999\r\n").await;
    assert!(
        out.starts_with(b"-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
