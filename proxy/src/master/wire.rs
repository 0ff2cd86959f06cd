//! The master-side wire: RESP2 command encoding and a bounded reply decoder.
//!
//! Master bytes are not trusted blindly: before a reply is handed to the
//! `redis-protocol` decoder (which recurses), [`scan`] walks its headers
//! iteratively, refusing nesting deeper than the configured limit and bulk
//! strings over [`MAX_REPLY_BULK`], and finding where the frame ends.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame;

use super::{MasterError, Value};

/// Largest bulk string accepted from a master. Lock replies are tiny; this
/// only stops a broken or hostile peer from making us buffer without bound.
pub const MAX_REPLY_BULK: usize = 64 * 1024 * 1024;

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    let _ = write!(out, "${}\r\n", b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// `*n\r\n$len\r\narg\r\n...`
pub fn encode_command(args: &[&[u8]]) -> Bytes {
    let size: usize = args.iter().map(|a| a.len() + 16).sum();
    let mut out = BytesMut::with_capacity(size + 16);
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        put_bulk(&mut out, a);
    }
    out.freeze()
}

/// `EVALSHA|EVAL <sha|body> numkeys keys.. args..`
pub fn encode_eval(verb: &[u8], script: &[u8], keys: &[&[u8]], args: &[&[u8]]) -> Bytes {
    let size: usize = keys.iter().chain(args).map(|a| a.len() + 16).sum();
    let mut out = BytesMut::with_capacity(size + script.len() + 48);
    let _ = write!(out, "*{}\r\n", 3 + keys.len() + args.len());
    put_bulk(&mut out, verb);
    put_bulk(&mut out, script);
    put_bulk(&mut out, keys.len().to_string().as_bytes());
    for a in keys.iter().chain(args) {
        put_bulk(&mut out, a);
    }
    out.freeze()
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Finds the end of the first complete reply in `buf`: `Ok(Some(len))`,
/// `Ok(None)` when more bytes are needed, or an error for a reply that
/// breaks the protocol or the limits.
pub fn scan(buf: &[u8], max_depth: usize) -> Result<Option<usize>, String> {
    let mut pos = 0;
    let mut stack: Vec<i64> = Vec::new();
    loop {
        let Some(&tag) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(eol) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > 64 * 1024 {
                return Err("header line too long".into());
            }
            return Ok(None);
        };
        let header = &buf[pos + 1..eol];
        match tag {
            b'+' | b'-' => pos = eol + 2,
            b':' => {
                parse_i64(header).ok_or("invalid integer")?;
                pos = eol + 2;
            }
            b'$' => {
                let len = parse_i64(header).ok_or("invalid bulk length")?;
                if len < 0 {
                    pos = eol + 2;
                } else {
                    let len = usize::try_from(len).map_err(|_| "invalid bulk length")?;
                    if len > MAX_REPLY_BULK {
                        return Err(format!("bulk string of {len} bytes is over the limit"));
                    }
                    let end = eol + 2 + len + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err("bulk string not terminated by CRLF".into());
                    }
                    pos = end;
                }
            }
            b'*' => {
                let n = parse_i64(header).ok_or("invalid array length")?;
                pos = eol + 2;
                if n > 0 {
                    if stack.len() + 1 > max_depth {
                        return Err(format!("reply nested deeper than {max_depth}"));
                    }
                    if n > 1 << 20 {
                        return Err("array too long".into());
                    }
                    stack.push(n);
                    continue;
                }
            }
            other => return Err(format!("unexpected type byte 0x{other:02x}")),
        }
        // One element completed: pop finished arrays.
        loop {
            match stack.last_mut() {
                None => return Ok(Some(pos)),
                Some(c) => {
                    *c -= 1;
                    if *c == 0 {
                        stack.pop();
                    } else {
                        break;
                    }
                }
            }
        }
    }
}

/// Takes one reply off `buf`, if complete. A top-level error reply becomes
/// `Err(MasterError::Reply)`.
pub fn decode(
    buf: &mut BytesMut,
    max_depth: usize,
) -> Result<Option<Result<Value, MasterError>>, String> {
    let Some(len) = scan(buf, max_depth)? else {
        return Ok(None);
    };
    let mut frame_bytes = buf.split_to(len);
    match redis_protocol::resp2::decode::decode_bytes_mut(&mut frame_bytes) {
        Ok(Some((frame, _, _))) => Ok(Some(match frame {
            BytesFrame::Error(e) => Err(MasterError::Reply(e.to_string())),
            other => Ok(to_value(other)),
        })),
        Ok(None) => Err("reply incomplete after scan".into()),
        Err(e) => Err(format!("undecodable reply: {e:?}")),
    }
}

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

    #[test]
    fn nested_replies_decode() {
        let mut b = BytesMut::from(&b"*2\r\n:0\r\n*2\r\n$1\r\na\r\n$-1\r\n+OK\r\n"[..]);
        let v = decode(&mut b, 4).ok().flatten();
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
    fn error_replies_become_reply_errors() {
        let mut b = BytesMut::from(&b"-NOSCRIPT No matching script.\r\n"[..]);
        let v = decode(&mut b, 4).ok().flatten();
        assert!(matches!(v, Some(Err(MasterError::Reply(e))) if e.starts_with("NOSCRIPT")));
    }

    #[test]
    fn too_deep_and_oversized_replies_are_refused() {
        let deep = b"*1\r\n".repeat(100);
        assert!(scan(&deep, 8).is_err());
        assert!(scan(b"$999999999999\r\n", 8).is_err());
        assert!(scan(b"?x\r\n", 8).is_err());
    }

    #[test]
    fn partial_replies_wait() {
        assert_eq!(scan(b"*2\r\n:1\r\n", 4), Ok(None));
        assert_eq!(scan(b"$5\r\nhel", 4), Ok(None));
    }

    #[test]
    fn commands_encode_as_multibulk() {
        assert_eq!(
            &encode_eval(b"EVALSHA", b"abc", &[b"k"], &[b"v"])[..],
            b"*5\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_master_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut b = BytesMut::from(&input[..]);
            for _ in 0..8 {
                match decode(&mut b, 4) {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }
    }
}
