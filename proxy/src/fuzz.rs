//! Entry points for feeding untrusted bytes to the decoders, shared by the
//! cargo-fuzz targets in `proxy/fuzz/`, the corpus replay test and the
//! property tests, so all three exercise exactly the same path.
//!
//! Each entry point decodes its input twice, in one piece and in chunks
//! whose size the first input byte picks, and panics if the two disagree
//! or if a decoder broke its contract (consumed bytes it did not return,
//! or returned an empty request). Those panics are the findings: the
//! decoders themselves must never panic, whatever the bytes.

use bytes::{Bytes, BytesMut};

use crate::command;
use crate::master::wire::{ReplyDecoder, ReplyLimits, WireError};
use crate::master::{MasterError, Value};
use crate::resp::{parse_request, Limits};

/// Small limits, so short inputs reach every limit branch.
pub fn small_limits() -> Limits {
    Limits {
        max_frame_bytes: 4096,
        max_bulk_bytes: 1024,
        max_args: 16,
        max_inline_bytes: 256,
        ..Limits::default()
    }
}

/// What a request stream decoded to: the requests, and whether it ended in
/// a protocol error (its wording may differ with the split; see
/// [`request`]).
#[derive(Debug, PartialEq)]
pub struct RequestOutcome {
    pub requests: Vec<Vec<Bytes>>,
    pub error: bool,
}

fn chunk_size(data: &[u8]) -> usize {
    data.first().map_or(1, |b| usize::from(b % 17) + 1)
}

/// Parses `data` as a client's byte stream fed in `chunk`-byte reads, and
/// classifies every complete request with [`command::parse`].
///
/// # Panics
/// When the framer consumed more than it returned or returned an empty
/// argument vector: a broken contract, which the fuzzer reports.
pub fn requests_in_chunks(data: &[u8], chunk: usize, limits: &Limits) -> RequestOutcome {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut fed = 0;
    let chunk = chunk.max(1);
    while fed < data.len() {
        let end = (fed + chunk).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            let before = buf.len();
            match parse_request(&mut buf, limits) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "a request with no arguments");
                    assert!(buf.len() < before, "a request that consumed nothing");
                    // The remaining buffer is always the tail of the input.
                    assert_eq!(&buf[..], &data[fed - buf.len()..fed]);
                    let _ = command::parse(&args);
                    requests.push(args);
                }
                Ok(None) => {
                    assert_eq!(&buf[..], &data[fed - buf.len()..fed]);
                    break;
                }
                Err(_) => {
                    return RequestOutcome {
                        requests,
                        error: true,
                    }
                }
            }
        }
    }
    RequestOutcome {
        requests,
        error: false,
    }
}

/// The request fuzz target: the framer then the command parser, in one
/// piece and in chunks, which must agree.
///
/// # Panics
/// See [`requests_in_chunks`]; and when the two splits disagree.
pub fn request(data: &[u8]) {
    let limits = small_limits();
    let whole = requests_in_chunks(data, data.len(), &limits);
    let split = requests_in_chunks(data, chunk_size(data), &limits);
    assert_eq!(whole, split, "a split changed the decoded requests");
}

/// What a master byte stream decoded to.
#[derive(Debug, PartialEq)]
pub struct ReplyOutcome {
    pub replies: Vec<Result<Value, MasterError>>,
    pub error: Option<WireError>,
}

/// Decodes `data` as a master's byte stream fed in `chunk`-byte reads.
///
/// # Panics
/// When the decoder consumed bytes without returning a reply.
pub fn replies_in_chunks(data: &[u8], chunk: usize, max_depth: usize) -> ReplyOutcome {
    let mut decoder = ReplyDecoder::new(ReplyLimits::new(max_depth));
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    let mut fed = 0;
    let chunk = chunk.max(1);
    while fed < data.len() {
        let end = (fed + chunk).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(r)) => {
                    assert!(buf.len() < before, "a reply that consumed nothing");
                    replies.push(r);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "bytes consumed without a reply");
                    break;
                }
                Err(e) => {
                    return ReplyOutcome {
                        replies,
                        error: Some(e),
                    }
                }
            }
        }
    }
    ReplyOutcome {
        replies,
        error: None,
    }
}

/// The master reply fuzz target: one piece and chunks must agree, errors
/// included (the scanner resumes, so a split must not change its verdict).
///
/// # Panics
/// See [`replies_in_chunks`]; and when the two splits disagree.
pub fn master_reply(data: &[u8]) {
    let whole = replies_in_chunks(data, data.len(), 8);
    let split = replies_in_chunks(data, chunk_size(data), 8);
    assert_eq!(
        whole.replies, split.replies,
        "a split changed the decoded replies"
    );
    assert_eq!(whole.error.is_some(), split.error.is_some());
}
