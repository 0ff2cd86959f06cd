//! Reply encoding for RESP2 and RESP3.
//!
//! RESP3-only types degrade on RESP2 connections the way Redis degrades
//! them: maps become flat arrays, sets arrays, doubles bulk strings,
//! booleans integers, verbatim strings bulk strings; attributes are dropped.
//! Encoding writes straight into the connection's output buffer.

use bytes::{BufMut, BytesMut};

use super::{Protocol, Reply};

fn line(out: &mut BytesMut, tag: u8, n: impl itoa::Integer) {
    out.put_u8(tag);
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn sanitized(out: &mut BytesMut, text: &[u8]) {
    for &b in text {
        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    line(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        // Rust's shortest round-trip form, as Redis 7 prints doubles.
        format!("{d}")
    }
}

impl Reply {
    /// Appends the encoding of `self` for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let v3 = proto == Protocol::Resp3;
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Simple(s) => {
                out.put_u8(b'+');
                sanitized(out, s);
                out.put_slice(b"\r\n");
            }
            Reply::Error(e) => {
                out.put_u8(b'-');
                sanitized(out, e);
                out.put_slice(b"\r\n");
            }
            Reply::Int(i) => line(out, b':', *i),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil if v3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if v3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                line(out, b'*', items.len());
                for r in items {
                    r.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                if v3 {
                    line(out, b'%', pairs.len());
                } else {
                    line(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                line(out, if v3 { b'~' } else { b'*' }, items.len());
                for r in items {
                    r.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                let s = format_double(*d);
                if v3 {
                    out.put_u8(b',');
                    out.put_slice(s.as_bytes());
                    out.put_slice(b"\r\n");
                } else {
                    bulk(out, s.as_bytes());
                }
            }
            Reply::Bool(b) => {
                if v3 {
                    out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Reply::Verbatim(text) => {
                if v3 {
                    line(out, b'=', text.len() + 4);
                    out.put_slice(b"txt:");
                    out.put_slice(text);
                    out.put_slice(b"\r\n");
                } else {
                    bulk(out, text);
                }
            }
            Reply::Push(items) => {
                line(out, if v3 { b'>' } else { b'*' }, items.len());
                for r in items {
                    r.encode(proto, out);
                }
            }
            Reply::Attributed(attrs, inner) => {
                if v3 {
                    line(out, b'|', attrs.len());
                    for (k, v) in attrs {
                        k.encode(proto, out);
                        v.encode(proto, out);
                    }
                }
                inner.encode(proto, out);
            }
        }
    }
}
