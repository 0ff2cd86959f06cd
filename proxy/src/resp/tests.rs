//! Tests of request framing and reply encoding.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

fn limits() -> Limits {
    Limits::default()
}

fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(a) = parse_request(&mut buf, &limits())? {
        out.push(a);
    }
    Ok(out)
}

fn err_text(input: &[u8]) -> String {
    match parse_all(input) {
        Err(ProtocolError::Invalid(m)) | Err(ProtocolError::Limit { msg: m, .. }) => m,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

#[test]
fn pipelined_frames_parse_one_by_one() {
    let got =
        parse_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n").unwrap_or_default();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1],
        vec![Bytes::from_static(b"ECHO"), Bytes::from_static(b"hi")]
    );
}

#[test]
fn partial_input_waits_then_completes() {
    let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$5\r\nhel"[..]);
    assert_eq!(parse_request(&mut buf, &limits()), Ok(None));
    buf.extend_from_slice(b"lo\r\n");
    let got = parse_request(&mut buf, &limits());
    assert_eq!(
        got,
        Ok(Some(vec![
            Bytes::from_static(b"ECHO"),
            Bytes::from_static(b"hello")
        ]))
    );
    assert!(buf.is_empty());
}

#[test]
fn binary_data_with_crlf_inside_bulk_strings_survives() {
    let got =
        parse_all(&encode_request(&[b"ECHO".to_vec(), b"a\r\nb\0c".to_vec()])).unwrap_or_default();
    assert_eq!(&got[0][1][..], b"a\r\nb\0c");
}

#[test]
fn inline_commands_split_like_redis() {
    let got = parse_all(b"PING\r\nSET \"a b\" 'c\\'d' \"\\x41\\n\"\n\r\n").unwrap_or_default();
    assert_eq!(got[0], vec![Bytes::from_static(b"PING")]);
    assert_eq!(
        got[1],
        vec![
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"a b"),
            Bytes::from_static(b"c'd"),
            Bytes::from_static(b"A\n")
        ]
    );
    assert_eq!(got.len(), 2, "blank lines are skipped");
}

#[test]
fn unbalanced_quotes_are_refused_like_redis() {
    assert_eq!(
        err_text(b"SET \"a b\r\n"),
        "Protocol error: unbalanced quotes in request"
    );
    assert_eq!(
        err_text(b"SET \"a\"b\r\n"),
        "Protocol error: unbalanced quotes in request"
    );
}

#[test]
fn empty_multibulks_are_skipped() {
    let got = parse_all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").unwrap_or_default();
    assert_eq!(got, vec![vec![Bytes::from_static(b"PING")]]);
}

#[test]
fn bad_lengths_get_redis_error_texts() {
    assert_eq!(
        err_text(b"*x\r\n"),
        "Protocol error: invalid multibulk length"
    );
    assert_eq!(
        err_text(b"*1\r\n$x\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        err_text(b"*1\r\n$-5\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        err_text(b"*1\r\n:5\r\n"),
        "Protocol error: expected '$', got ':'"
    );
    assert_eq!(
        err_text(b"*99999999999999999999999\r\n"),
        "Protocol error: invalid multibulk length"
    );
}

#[test]
fn nested_array_is_refused_like_redis() {
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend_from_slice(b"*1\r\n");
    }
    assert_eq!(err_text(&deep), "Protocol error: expected '$', got '*'");
}

#[test]
fn huge_claimed_lengths_fail_without_waiting_for_the_bytes() {
    assert_eq!(
        err_text(b"*1\r\n$1073741824\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        err_text(b"*2000000\r\n"),
        "Protocol error: invalid multibulk length"
    );
    let mut long = vec![b'A'; 70 * 1024];
    assert_eq!(err_text(&long), "Protocol error: too big inline request");
    long[0] = b'*';
    assert_eq!(
        err_text(&long),
        "Protocol error: too big mbulk count string"
    );
}

#[test]
fn frames_over_the_size_limit_are_refused() {
    let l = Limits {
        max_frame_bytes: 64,
        ..Limits::default()
    };
    let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$100\r\n"[..]);
    assert!(parse_request(&mut buf, &l).is_err());
}

#[test]
fn resp2_degrades_resp3_types() {
    let mut out = BytesMut::new();
    Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]).encode(Protocol::Resp2, &mut out);
    Reply::Nil.encode(Protocol::Resp2, &mut out);
    Reply::NilArray.encode(Protocol::Resp2, &mut out);
    Reply::Bool(true).encode(Protocol::Resp2, &mut out);
    Reply::Attributed(vec![(Reply::bulk("t"), Reply::Int(1))], Box::new(Reply::Ok))
        .encode(Protocol::Resp2, &mut out);
    assert_eq!(
        &out[..],
        b"*2\r\n$1\r\na\r\n:1\r\n$-1\r\n*-1\r\n:1\r\n+OK\r\n"
    );
}

#[test]
fn resp3_encodes_its_own_types() {
    let mut out = BytesMut::new();
    Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]).encode(Protocol::Resp3, &mut out);
    Reply::Nil.encode(Protocol::Resp3, &mut out);
    Reply::Bool(false).encode(Protocol::Resp3, &mut out);
    Reply::Verbatim(Bytes::from_static(b"hi")).encode(Protocol::Resp3, &mut out);
    Reply::Attributed(vec![(Reply::bulk("t"), Reply::Int(1))], Box::new(Reply::Ok))
        .encode(Protocol::Resp3, &mut out);
    assert_eq!(
        &out[..],
        b"%1\r\n$1\r\na\r\n:1\r\n_\r\n#f\r\n=6\r\ntxt:hi\r\n|1\r\n$1\r\nt\r\n:1\r\n+OK\r\n"
    );
}

#[test]
fn error_text_never_breaks_the_frame() {
    let mut out = BytesMut::new();
    Reply::Error(Bytes::from_static(b"ERR a\r\nb")).encode(Protocol::Resp2, &mut out);
    assert_eq!(&out[..], b"-ERR a  b\r\n");
}

fn reply_tree() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        Just(Reply::Ok),
        any::<i64>().prop_map(Reply::Int),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|v| Reply::Bulk(Bytes::from(v))),
        Just(Reply::Nil),
        "[a-z ]{0,8}".prop_map(|s| Reply::Error(Bytes::from(s))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Reply::Array),
            // Map keys are always bulk strings in lockgate's replies (and
            // redis-protocol's RESP3 decoder only takes hashable keys).
            proptest::collection::vec(
                (
                    "[a-z]{1,6}".prop_map(|k| Reply::Bulk(Bytes::from(k))),
                    inner
                ),
                0..3
            )
            .prop_map(Reply::Map),
        ]
    })
}

#[test]
fn nesting_ten_thousand_deep_is_refused_at_the_first_nested_array() {
    let mut deep = b"*1\r\n".repeat(10_000);
    deep.extend_from_slice(b"$4\r\nPING\r\n");
    assert_eq!(err_text(&deep), "Protocol error: expected '$', got '*'");
    let split = crate::fuzz::requests_in_chunks(&deep, 1, &limits());
    assert!(split.error && split.requests.is_empty());
}

#[test]
fn limit_errors_name_their_limit() {
    let l = limits();
    let mut b = BytesMut::from(&b"*99999999\r\n"[..]);
    let e = parse_request(&mut b, &l).err();
    assert_eq!(
        e.and_then(|e| e.limit()),
        Some(crate::metrics::Limit::MaxArgs)
    );
    let mut b = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$1073741824\r\n"[..]);
    let e = parse_request(&mut b, &l).err();
    assert_eq!(
        e.and_then(|e| e.limit()),
        Some(crate::metrics::Limit::MaxBulkBytes)
    );
    // A malformed length is not a limit.
    let mut b = BytesMut::from(&b"*1\r\n$-5\r\n"[..]);
    let e = parse_request(&mut b, &l).err();
    assert!(e.is_some_and(|e| e.limit().is_none()));
}

/// A token alphabet that makes RESP-shaped streams likelier than uniform
/// bytes do.
fn resp_tokens() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "*1\r\n",
            "*2\r\n",
            "*3\r\n",
            "*0\r\n",
            "*-1\r\n",
            "$4\r\nPING\r\n",
            "$3\r\nSET\r\n",
            "$1\r\nk\r\n",
            "$2\r\nNX\r\n",
            "$2\r\nPX\r\n",
            "$19\r\n9223372036854775807\r\n",
            "$2\r\n-1\r\n",
            "$-5\r\n",
            "$0\r\n\r\n",
            "$12\r\nLOCK.ACQUIRE\r\n",
            "$4\r\nWAIT\r\n",
            "PING\r\n",
            "\"a b\" 'c'\n",
            "\r\n",
            "\r",
            "\n",
            "x",
            "\u{ff}",
            "$99999999999\r\n",
        ]),
        0..48,
    )
    .prop_map(|t| t.concat().into_bytes())
}

proptest! {
    #[test]
    fn arbitrary_bytes_decode_the_same_in_any_chunks(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        chunk in 1usize..64,
    ) {
        // No panic, the buffer never consumed past what was returned (both
        // asserted inside), and one piece and chunks agree.
        let whole = crate::fuzz::requests_in_chunks(&input, input.len(), &crate::fuzz::small_limits());
        let split = crate::fuzz::requests_in_chunks(&input, chunk, &crate::fuzz::small_limits());
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn resp_shaped_bytes_decode_the_same_in_any_chunks(input in resp_tokens(), chunk in 1usize..32) {
        let whole = crate::fuzz::requests_in_chunks(&input, input.len(), &limits());
        let split = crate::fuzz::requests_in_chunks(&input, chunk, &limits());
        prop_assert_eq!(whole, split);
        crate::fuzz::request(&input);
    }

    #[test]
    fn pipelined_valid_requests_survive_any_chunking(
        reqs in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
            1..6,
        ),
        chunk in 1usize..64,
    ) {
        let wire: Vec<u8> = reqs.iter().flat_map(|r| encode_request(r)).collect();
        let got = crate::fuzz::requests_in_chunks(&wire, chunk, &limits());
        let want: Vec<Vec<Bytes>> = reqs
            .into_iter()
            .map(|r| r.into_iter().map(Bytes::from).collect())
            .collect();
        prop_assert!(!got.error);
        prop_assert_eq!(got.requests, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_all(&input);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_frame_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut v = b"*1\r\n$4\r\nPING\r\n".to_vec();
        v.extend(tail);
        let _ = parse_all(&v);
    }

    #[test]
    fn requests_round_trip_across_any_split(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
        split in 0usize..400,
    ) {
        let wire = encode_request(&args);
        let split = split.min(wire.len());
        let mut buf = BytesMut::from(&wire[..split]);
        let first = parse_request(&mut buf, &limits());
        let got = match first {
            Ok(Some(a)) => a,
            Ok(None) => {
                buf.extend_from_slice(&wire[split..]);
                parse_request(&mut buf, &limits()).ok().flatten().unwrap_or_default()
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let want: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn encoded_replies_decode_with_redis_protocol(r in reply_tree()) {
        let mut out = BytesMut::new();
        r.encode(Protocol::Resp2, &mut out);
        let d2 = redis_protocol::resp2::decode::decode(&out);
        prop_assert!(matches!(d2, Ok(Some((_, n))) if n == out.len()), "resp2 {:?}", out);
        let mut out3 = BytesMut::new();
        r.encode(Protocol::Resp3, &mut out3);
        let d3 = redis_protocol::resp3::decode::complete::decode(&out3);
        prop_assert!(matches!(d3, Ok(Some((_, n))) if n == out3.len()), "resp3 {:?}", out3);
    }
}
