//! Request framing: one client request off the front of the read buffer.
//!
//! Clients send arrays of bulk strings (`*N\r\n$L\r\n...`) or inline
//! commands (a plain-text line, as HAProxy's checks and telnet send). Every
//! length is checked against [`Limits`] as soon as its header is read, so a
//! claimed 1 GiB bulk string or a million arguments fail at once instead of
//! being buffered, and nothing is allocated from a claimed length. Nested
//! arrays are refused exactly as Redis refuses them (`expected '$'`), which
//! bounds nesting at one level. Error texts are Redis's own.
//!
//! Once the pre-scan has proven a multibulk frame complete, within the
//! limits and one level deep, the `redis-protocol` decoder splits it off the
//! buffer zero-copy (every argument is a slice of the frame). The pre-scan is
//! what makes that safe: the decoder recurses and waits for claimed lengths.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame;

use super::{Limits, ProtocolError};
use crate::metrics::Limit;

fn err(msg: &str) -> ProtocolError {
    ProtocolError::Invalid(format!("Protocol error: {msg}"))
}

/// A well-formed request past `limit`; same wording as Redis's own limits.
fn over(limit: Limit, msg: &str) -> ProtocolError {
    ProtocolError::Limit {
        limit,
        msg: format!("Protocol error: {msg}"),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let hay = buf.get(from..)?;
    hay.windows(2).position(|w| w == b"\r\n").map(|p| p + from)
}

/// Parses a length header value: digits with an optional leading `-`.
fn parse_len(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Takes one complete request off the front of `buf` (see the module docs).
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    loop {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let parsed = if first == b'*' {
            parse_multibulk(buf, limits)?
        } else {
            parse_inline(buf, limits)?
        };
        match parsed {
            Parsed::Incomplete => return Ok(None),
            Parsed::Skipped => continue,
            Parsed::Args(a) => return Ok(Some(a)),
        }
    }
}

enum Parsed {
    Incomplete,
    /// An empty request (`*0`, `*-1`, a blank line) was consumed.
    Skipped,
    Args(Vec<Bytes>),
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed, ProtocolError> {
    let Some(eol) = find_crlf(buf, 1) else {
        if buf.len() > limits.max_inline_bytes {
            return Err(over(Limit::MaxInlineBytes, "too big mbulk count string"));
        }
        return Ok(Parsed::Incomplete);
    };
    let count = parse_len(&buf[1..eol]).ok_or_else(|| err("invalid multibulk length"))?;
    if count <= 0 {
        let _ = buf.split_to(eol + 2);
        return Ok(Parsed::Skipped);
    }
    let count = usize::try_from(count).map_err(|_| err("invalid multibulk length"))?;
    if count > limits.max_args {
        return Err(over(Limit::MaxArgs, "invalid multibulk length"));
    }
    let mut pos = eol + 2;
    for _ in 0..count {
        let Some(&tag) = buf.get(pos) else {
            return Ok(Parsed::Incomplete);
        };
        if tag != b'$' {
            let shown = if tag.is_ascii_graphic() {
                tag as char
            } else {
                '?'
            };
            return Err(err(&format!("expected '$', got '{shown}'")));
        }
        let Some(eol) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > limits.max_inline_bytes {
                return Err(over(Limit::MaxInlineBytes, "too big bulk count string"));
            }
            return Ok(Parsed::Incomplete);
        };
        let len = parse_len(&buf[pos + 1..eol])
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| err("invalid bulk length"))?;
        if len > limits.max_bulk_bytes {
            return Err(over(Limit::MaxBulkBytes, "invalid bulk length"));
        }
        let start = eol + 2;
        let end = start
            .checked_add(len)
            .ok_or_else(|| err("invalid bulk length"))?;
        if end.saturating_add(2) > limits.max_frame_bytes {
            return Err(over(
                Limit::MaxFrameBytes,
                "request exceeds the maximum frame size",
            ));
        }
        if buf.len() < end + 2 {
            return Ok(Parsed::Incomplete);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(err("expected CRLF after bulk data"));
        }
        pos = end + 2;
    }
    let mut frame = buf.split_to(pos);
    match redis_protocol::resp2::decode::decode_bytes_mut(&mut frame) {
        Ok(Some((BytesFrame::Array(items), _, _))) => items
            .into_iter()
            .map(|f| match f {
                BytesFrame::BulkString(b) => Ok(b),
                _ => Err(err("expected '$'")),
            })
            .collect::<Result<Vec<Bytes>, _>>()
            .map(Parsed::Args),
        _ => Err(err("invalid multibulk request")),
    }
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline_bytes {
            return Err(over(Limit::MaxInlineBytes, "too big inline request"));
        }
        return Ok(Parsed::Incomplete);
    };
    if nl > limits.max_inline_bytes {
        return Err(over(Limit::MaxInlineBytes, "too big inline request"));
    }
    let line = buf.split_to(nl + 1);
    let mut text = &line[..nl];
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    let args = split_args(text).ok_or_else(|| err("unbalanced quotes in request"))?;
    if args.is_empty() {
        return Ok(Parsed::Skipped);
    }
    if args.len() > limits.max_args {
        return Err(over(Limit::MaxArgs, "invalid multibulk length"));
    }
    Ok(Parsed::Args(args.into_iter().map(Bytes::from).collect()))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline command line like Redis's `sdssplitargs`: whitespace
/// separates arguments; double quotes allow `\n \r \t \b \a \\ \"` and
/// `\xHH` escapes; single quotes allow `\'`. A closing quote must be followed
/// by whitespace or the end. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                let c = *line.get(i)?;
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2])? * 16 + hex_val(line[i + 3])?);
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                let c = *line.get(i)?;
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                match line.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(&c) => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}
