//! The master-side wire: RESP2 command encoding and a bounded, resumable
//! reply decoder.
//!
//! Master bytes are untrusted. The `redis-protocol` decoder recurses once per
//! nesting level and trusts declared lengths, so it never sees bytes that
//! [`ReplyScanner`] has not walked first. The scanner is iterative (an
//! explicit stack of open arrays), refuses nesting deeper than
//! [`ReplyLimits::max_depth`], any reply larger than
//! [`ReplyLimits::max_reply_bytes`] and header lines longer than
//! [`MAX_LINE_BYTES`], and finds exactly where the first reply ends. Only
//! that slice is handed to `redis-protocol`, which must consume all of it.
//!
//! # Invariants
//! - The scanner keeps its progress between calls, so a reply arriving in
//!   many small reads costs linear time, not quadratic; it is reset each time
//!   a reply is taken off the buffer, and the buffer must start at a reply
//!   boundary.
//! - Memory held for one incomplete reply never exceeds `max_reply_bytes`
//!   plus one read.

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame;

use super::{MasterError, Value};

/// Largest whole reply accepted from a master by default. Lock replies are a
/// few hundred bytes; this only stops a broken or hostile peer from making
/// the gateway buffer without bound.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Longest header line (`+status`, `-error`, `:int`, `$len`, `*len`).
/// Redis error messages are short; numeric headers are at most 20 digits.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What a master may send in one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Deepest array nesting; a flat array has depth 1.
    pub max_depth: usize,
    /// Largest reply, headers included.
    pub max_reply_bytes: usize,
}

/// Why a reply was refused. The connection it came on cannot be trusted to
/// stay in step any more and is torn down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

// === impl WireError ===

impl WireError {
    fn new(msg: impl Into<String>) -> Self {
        WireError(msg.into())
    }
}

/// Finds reply boundaries in a growing buffer; see the module docs.
#[derive(Debug)]
pub struct ReplyScanner {
    limits: ReplyLimits,
    /// Offset of the first element of the current reply not yet validated.
    pos: usize,
    /// Where to resume looking for the CRLF that ends the header at `pos`.
    line_from: usize,
    /// Elements still expected by each open array, innermost last.
    open: Vec<usize>,
}

/// What one element's header says, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    /// The element ends just before this offset.
    Complete(usize),
    /// An array of this many elements opens; they follow its header.
    Array(usize),
    /// A bulk string whose body has not all arrived.
    Incomplete,
}

/// Takes complete replies off a read buffer.
#[derive(Debug)]
pub struct ReplyDecoder {
    scanner: ReplyScanner,
}

// === impl ReplyLimits ===

impl ReplyLimits {
    /// Limits with `max_depth` from configuration (`limits.max_nesting`) and
    /// the default reply size.
    ///
    /// A depth below 1 is raised to 1: every lock script returns an array,
    /// and a zero would turn each reply into a torn-down connection.
    pub fn new(max_depth: usize) -> Self {
        ReplyLimits {
            max_depth: max_depth.max(1),
            max_reply_bytes: MAX_REPLY_BYTES,
        }
    }
}

// === impl ReplyScanner ===

impl ReplyScanner {
    /// A scanner waiting for the first byte of a reply.
    pub fn new(limits: ReplyLimits) -> Self {
        ReplyScanner {
            limits,
            pos: 0,
            line_from: 0,
            open: Vec::new(),
        }
    }

    /// Continues scanning the reply at the start of `buf`.
    ///
    /// Returns `Ok(Some(len))` when `buf[..len]` is one complete reply (the
    /// scanner is then reset for the next one) and `Ok(None)` when more bytes
    /// are needed.
    ///
    /// # Errors
    /// A [`WireError`] when the bytes break RESP2 or the limits.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, WireError> {
        loop {
            let pos = self.pos;
            let Some(&tag) = buf.get(pos) else {
                return Ok(None);
            };
            let Some(eol) = self.header_end(buf)? else {
                return Ok(None);
            };
            let header = &buf[pos + 1..eol];
            let next = eol + 2;
            match self.element(tag, header, next, buf)? {
                Element::Incomplete => {
                    // The header is re-parsed next time; it is short.
                    self.line_from = 0;
                    return Ok(None);
                }
                Element::Array(n) => {
                    self.advance(next);
                    self.open.push(n);
                }
                Element::Complete(end) => {
                    self.advance(end);
                    if let Some(len) = self.close_element() {
                        return Ok(Some(len));
                    }
                }
            }
        }
    }

    /// Finds the CRLF that ends the header line of the element at
    /// `self.pos`; `None` (with the search point kept) until it has arrived.
    fn header_end(&mut self, buf: &[u8]) -> Result<Option<usize>, WireError> {
        let pos = self.pos;
        let search_from = self.line_from.max(pos + 1);
        let Some(eol) = find_crlf(buf, search_from) else {
            // `+ 1`: a line of exactly the limit may have its CR here
            // and its LF still in flight.
            if buf.len() - pos > MAX_LINE_BYTES + 1 {
                return Err(WireError::new("header line too long"));
            }
            // Resume one byte back: the CR may be the last byte read.
            self.line_from = buf.len().saturating_sub(1).max(pos + 1);
            return Ok(None);
        };
        // Checked on complete lines too, so the verdict does not depend
        // on how the bytes were split into reads.
        if eol - pos > MAX_LINE_BYTES {
            return Err(WireError::new("header line too long"));
        }
        Ok(Some(eol))
    }

    /// Checks the element whose header line (type byte `tag`, then
    /// `header`) ends just before `next`, against RESP2 and the limits.
    fn element(
        &self,
        tag: u8,
        header: &[u8],
        next: usize,
        buf: &[u8],
    ) -> Result<Element, WireError> {
        match tag {
            b'+' | b'-' => {}
            b':' => {
                parse_i64(header).ok_or_else(|| WireError::new("invalid integer"))?;
            }
            b'$' => {
                let len = parse_i64(header)
                    .ok_or_else(|| WireError::new("invalid bulk string length"))?;
                if len >= 0 {
                    return self.bulk(len, next, buf);
                } else if len != -1 {
                    return Err(WireError::new("negative bulk string length"));
                }
            }
            b'*' => {
                let n = parse_i64(header).ok_or_else(|| WireError::new("invalid array length"))?;
                if n > 0 {
                    if self.open.len() >= self.limits.max_depth {
                        return Err(WireError::new(format!(
                            "reply nested deeper than {}",
                            self.limits.max_depth
                        )));
                    }
                    // Each element takes at least 4 bytes (`:0\r\n`), so
                    // a longer array cannot fit in the reply limit.
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|n| *n <= self.limits.max_reply_bytes / 4)
                        .ok_or_else(|| WireError::new("array too long"))?;
                    return Ok(Element::Array(n));
                } else if n != 0 && n != -1 {
                    return Err(WireError::new("negative array length"));
                }
            }
            other => {
                return Err(WireError::new(format!(
                    "unexpected type byte 0x{other:02x}"
                )))
            }
        }
        // A simple string, an error, an integer, or a null: the header
        // line is the whole element.
        if next > self.limits.max_reply_bytes {
            return Err(WireError::new("reply over the size limit"));
        }
        Ok(Element::Complete(next))
    }

    /// The bulk string of `len` bytes whose body starts at `next`.
    fn bulk(&self, len: i64, next: usize, buf: &[u8]) -> Result<Element, WireError> {
        let len = usize::try_from(len).map_err(|_| WireError::new("invalid bulk string length"))?;
        let end = next
            .checked_add(len)
            .and_then(|e| e.checked_add(2))
            .filter(|e| *e <= self.limits.max_reply_bytes)
            .ok_or_else(|| {
                WireError::new(format!(
                    "bulk string of {len} bytes is over the {} byte reply limit",
                    self.limits.max_reply_bytes
                ))
            })?;
        if buf.len() < end {
            return Ok(Element::Incomplete);
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(WireError::new("bulk string not terminated by CRLF"));
        }
        Ok(Element::Complete(end))
    }

    fn advance(&mut self, to: usize) {
        self.pos = to;
        self.line_from = 0;
    }

    /// Records that the element ending at `self.pos` is complete; returns the
    /// reply length (and resets) when that completed the top-level reply.
    fn close_element(&mut self) -> Option<usize> {
        while let Some(left) = self.open.last_mut() {
            *left -= 1;
            if *left > 0 {
                return None;
            }
            self.open.pop();
        }
        let len = self.pos;
        self.advance(0);
        Some(len)
    }
}

// === impl ReplyDecoder ===

impl ReplyDecoder {
    /// A decoder for a fresh connection.
    pub fn new(limits: ReplyLimits) -> Self {
        ReplyDecoder {
            scanner: ReplyScanner::new(limits),
        }
    }

    /// Takes one reply off the front of `buf`, if complete. A top-level
    /// error reply becomes `Err(MasterError::Reply)`; nested errors stay
    /// [`Value::Error`].
    ///
    /// # Errors
    /// A [`WireError`] when the reply breaks RESP2 or the limits; the
    /// buffer's contents are then meaningless.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Result<Value, MasterError>>, WireError> {
        let Some(len) = self.scanner.scan(buf)? else {
            return Ok(None);
        };
        let mut frame_bytes = buf.split_to(len);
        match redis_protocol::resp2::decode::decode_bytes_mut(&mut frame_bytes) {
            Ok(Some((frame, used, _))) if used == len => Ok(Some(match frame {
                BytesFrame::Error(e) => Err(MasterError::Reply(e.to_string())),
                other => Ok(to_value(other)),
            })),
            Ok(_) => Err(WireError::new("reply framing disagrees with the decoder")),
            Err(e) => Err(WireError::new(format!(
                "undecodable reply: {}",
                e.details()
            ))),
        }
    }
}

// === encoding ===

/// `tag`, the decimal `n`, CRLF: itoa, because core::fmt showed up in
/// profiles of the hot path (every request to every master has 3 or more).
fn put_header(out: &mut BytesMut, tag: u8, n: usize) {
    out.put_u8(tag);
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_header(out, b'$', b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// `*n\r\n$len\r\narg\r\n...`
pub fn encode_command(args: &[&[u8]]) -> Bytes {
    let size: usize = args.iter().map(|a| a.len() + 16).sum();
    let mut out = BytesMut::with_capacity(size + 16);
    put_header(&mut out, b'*', args.len());
    for a in args {
        put_bulk(&mut out, a);
    }
    out.freeze()
}

/// `EVALSHA|EVAL <sha|body> numkeys keys.. args..`
pub fn encode_eval(verb: &[u8], script: &[u8], keys: &[&[u8]], args: &[&[u8]]) -> Bytes {
    let size: usize = keys.iter().chain(args).map(|a| a.len() + 16).sum();
    let mut out = BytesMut::with_capacity(size + script.len() + 48);
    put_header(&mut out, b'*', 3 + keys.len() + args.len());
    put_bulk(&mut out, verb);
    put_bulk(&mut out, script);
    put_bulk(&mut out, itoa::Buffer::new().format(keys.len()).as_bytes());
    for a in keys.iter().chain(args) {
        put_bulk(&mut out, a);
    }
    out.freeze()
}

// === helpers ===

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

/// Strict RESP integer: optional `-`, then 1 to 19 digits.
fn parse_i64(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Depth is bounded by the scanner, so this recursion is too.
fn to_value(f: BytesFrame) -> Value {
    match f {
        BytesFrame::SimpleString(b) => Value::Status(b),
        BytesFrame::Error(e) => Value::Error(Bytes::copy_from_slice(e.as_bytes())),
        BytesFrame::Integer(i) => Value::Int(i),
        BytesFrame::BulkString(b) => Value::Bulk(b),
        BytesFrame::Array(items) => Value::Array(items.into_iter().map(to_value).collect()),
        BytesFrame::Null => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write as _;

    fn decoder(depth: usize) -> ReplyDecoder {
        ReplyDecoder::new(ReplyLimits::new(depth))
    }

    fn scan_all(input: &[u8], depth: usize) -> Result<Option<usize>, WireError> {
        ReplyScanner::new(ReplyLimits::new(depth)).scan(input)
    }

    #[test]
    fn nested_replies_decode_and_leave_the_rest() {
        let mut b = BytesMut::from(&b"*2\r\n:0\r\n*2\r\n$1\r\na\r\n$-1\r\n+OK\r\n"[..]);
        let v = decoder(4).decode(&mut b).ok().flatten();
        assert_eq!(
            v,
            Some(Ok(Value::Array(vec![
                Value::Int(0),
                Value::Array(vec![Value::Bulk(Bytes::from_static(b"a")), Value::Nil])
            ])))
        );
        assert_eq!(&b[..], b"+OK\r\n");
    }

    #[test]
    fn null_and_empty_arrays_are_single_replies() {
        let mut d = decoder(2);
        let mut b = BytesMut::from(&b"*-1\r\n*0\r\n$0\r\n\r\n"[..]);
        assert_eq!(d.decode(&mut b), Ok(Some(Ok(Value::Nil))));
        assert_eq!(d.decode(&mut b), Ok(Some(Ok(Value::Array(vec![])))));
        assert_eq!(d.decode(&mut b), Ok(Some(Ok(Value::Bulk(Bytes::new())))));
        assert!(b.is_empty());
    }

    #[test]
    fn top_level_error_replies_become_reply_errors() {
        let mut b = BytesMut::from(&b"-NOSCRIPT No matching script.\r\n"[..]);
        let v = decoder(4).decode(&mut b).ok().flatten();
        assert!(matches!(v, Some(Err(MasterError::Reply(e))) if e.starts_with("NOSCRIPT")));
    }

    #[test]
    fn nested_error_replies_stay_values() {
        let mut b = BytesMut::from(&b"*1\r\n-ERR x\r\n"[..]);
        let v = decoder(4).decode(&mut b).ok().flatten();
        assert_eq!(
            v,
            Some(Ok(Value::Array(vec![Value::Error(Bytes::from_static(
                b"ERR x"
            ))])))
        );
    }

    #[test]
    fn too_deep_oversized_and_unknown_replies_are_refused() {
        let deep = b"*1\r\n".repeat(100);
        assert!(scan_all(&deep, 8).is_err());
        // Exactly at the limit is fine.
        let mut ok = b"*1\r\n".repeat(8);
        ok.extend_from_slice(b":1\r\n");
        assert_eq!(scan_all(&ok, 8), Ok(Some(ok.len())));
        assert!(scan_all(b"$999999999999\r\n", 8).is_err());
        assert!(scan_all(b"$99999999999999999999999\r\n", 8).is_err());
        assert!(scan_all(b"*999999999999\r\n", 8).is_err());
        assert!(scan_all(b"$-2\r\n", 8).is_err());
        assert!(scan_all(b"*-5\r\n", 8).is_err());
        assert!(scan_all(b":1x\r\n", 8).is_err());
        assert!(scan_all(b"$3\r\nabcXY", 8).is_err());
        assert!(scan_all(b"?x\r\n", 8).is_err());
        assert!(scan_all(&vec![b'+'; MAX_LINE_BYTES + 2], 8).is_err());
    }

    #[test]
    fn nesting_ten_thousand_deep_is_an_error_not_a_stack_overflow() {
        let deep = b"*1\r\n".repeat(10_000);
        let whole = crate::fuzz::replies_in_chunks(&deep, deep.len(), 8);
        assert!(whole.replies.is_empty());
        assert!(whole.error.is_some_and(|e| e.to_string().contains("nest")));
        // Byte by byte, the verdict comes as soon as the limit is passed.
        let split = crate::fuzz::replies_in_chunks(&deep, 1, 8);
        assert!(split.error.is_some());
        // And at the deepest the configuration allows.
        let mut d = decoder(crate::config::Limits::default().max_nesting);
        let mut b = BytesMut::from(&deep[..]);
        assert!(d.decode(&mut b).is_err());
    }

    #[test]
    fn a_long_header_line_gets_the_same_verdict_whole_and_split() {
        for len in [MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1] {
            let mut line = vec![b'+'];
            line.resize(len, b'a');
            line.extend_from_slice(b"\r\n");
            let whole = crate::fuzz::replies_in_chunks(&line, line.len(), 8);
            for chunk in [1, 7, 4096] {
                let split = crate::fuzz::replies_in_chunks(&line, chunk, 8);
                assert_eq!(split.replies, whole.replies, "len {len}, chunk {chunk}");
                assert_eq!(split.error.is_some(), whole.error.is_some(), "len {len}");
            }
            assert_eq!(whole.error.is_some(), len > MAX_LINE_BYTES, "len {len}");
        }
    }

    #[test]
    fn partial_replies_wait_for_more_bytes() {
        assert_eq!(scan_all(b"*2\r\n:1\r\n", 4), Ok(None));
        assert_eq!(scan_all(b"$5\r\nhel", 4), Ok(None));
        assert_eq!(scan_all(b"+OK\r", 4), Ok(None));
        assert_eq!(scan_all(b"", 4), Ok(None));
    }

    #[test]
    fn a_reply_split_into_single_bytes_resumes_where_it_stopped() {
        let whole = b"*3\r\n+hello world\r\n$5\r\nab\r\nc\r\n*1\r\n:-42\r\n";
        let mut s = ReplyScanner::new(ReplyLimits::new(4));
        for end in 0..whole.len() {
            assert_eq!(s.scan(&whole[..end]), Ok(None), "at {end}");
        }
        assert_eq!(s.scan(&whole[..]), Ok(Some(whole.len())));
        // Reset for the next reply.
        assert_eq!(s.scan(b":1\r\n"), Ok(Some(4)));
    }

    #[test]
    fn commands_encode_as_multibulk() {
        assert_eq!(
            &encode_eval(b"EVALSHA", b"abc", &[b"k"], &[b"v"])[..],
            b"*5\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        assert_eq!(&encode_command(&[b"PING"])[..], b"*1\r\n$4\r\nPING\r\n");
    }

    fn reply_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Bulk(b.into())),
            "[a-zA-Z0-9 ]{0,12}".prop_map(|s| Value::Status(Bytes::from(s))),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            proptest::collection::vec(inner, 1..4).prop_map(Value::Array)
        })
    }

    fn encode_value(v: &Value, out: &mut BytesMut) {
        match v {
            Value::Nil => out.put_slice(b"$-1\r\n"),
            Value::Int(i) => {
                let _ = write!(out, ":{i}\r\n");
            }
            Value::Bulk(b) => put_bulk(out, b),
            Value::Status(s) => {
                out.put_u8(b'+');
                out.put_slice(s);
                out.put_slice(b"\r\n");
            }
            Value::Error(e) => {
                out.put_u8(b'-');
                out.put_slice(e);
                out.put_slice(b"\r\n");
            }
            Value::Array(items) => {
                let _ = write!(out, "*{}\r\n", items.len());
                for i in items {
                    encode_value(i, out);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_master_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = decoder(4);
            let mut b = BytesMut::from(&input[..]);
            for _ in 0..64 {
                match d.decode(&mut b) {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }

        #[test]
        fn arbitrary_master_bytes_decode_the_same_in_any_chunks(
            input in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            // Panics (the property) are inside: no panic, and one piece and
            // chunks agree on every reply and on the final verdict.
            crate::fuzz::master_reply(&input);
        }

        #[test]
        fn resp_shaped_master_bytes_decode_the_same_in_any_chunks(
            tokens in proptest::collection::vec(proptest::sample::select(vec![
                "*1\r\n", "*2\r\n", "*-1\r\n", "*0\r\n", "$3\r\nabc\r\n", "$-1\r\n",
                "$2\r\n", ":7\r\n", ":-9223372036854775808\r\n", "+OK\r\n", "-ERR x\r\n",
                "\r\n", "\r", "\n", "x", "*99999999999\r\n", "$-2\r\n",
            ]), 0..64),
            chunk in 1usize..32,
        ) {
            let input: Vec<u8> = tokens.concat().into_bytes();
            let whole = crate::fuzz::replies_in_chunks(&input, input.len(), 8);
            let split = crate::fuzz::replies_in_chunks(&input, chunk, 8);
            prop_assert_eq!(&whole.replies, &split.replies);
            prop_assert_eq!(whole.error.is_some(), split.error.is_some());
        }

        #[test]
        fn replies_round_trip_however_the_bytes_are_split(
            values in proptest::collection::vec(reply_strategy(), 1..4),
            cut in 1usize..64,
        ) {
            let mut wire = BytesMut::new();
            for v in &values {
                encode_value(v, &mut wire);
            }
            let mut d = decoder(8);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(cut) {
                buf.extend_from_slice(chunk);
                while let Some(r) = d.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(r.map_err(|e| TestCaseError::fail(e.to_string()))?);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, values);
        }
    }
}
