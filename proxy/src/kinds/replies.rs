//! Reply shapes more than one kind answers with: a release (`1 | 0`), an
//! extend (`validity_ms | nil`), one holder of a read-write lock or
//! semaphore (`[owner, token, pttl_ms]`), a holder acquire that did not
//! grant, and an acquire refused because its key's token space is used up. A kind with a shape of its own keeps it in its own module.

use bytes::Bytes;

use crate::fence::TokenSpaceExhausted;
use crate::kinds::holders::{Holder, KindAcquire, Mismatch};
use crate::lock::{ExtendOutcome, ReleaseOutcome};
use crate::resp::Reply;
use crate::response::{int, ms_reply, no_quorum};

/// `1` released, `0` not held by that owner.
pub fn release_reply(o: ReleaseOutcome) -> Reply {
    match o {
        ReleaseOutcome::Released => Reply::Int(1),
        ReleaseOutcome::NotHeld { .. } => Reply::Int(0),
        ReleaseOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    }
}

/// The validity left after an extend, or nil when there is none.
pub fn extend_reply(o: ExtendOutcome) -> Reply {
    match o {
        ExtendOutcome::Extended { validity } if validity.as_millis() > 0 => ms_reply(validity),
        ExtendOutcome::Extended { .. } | ExtendOutcome::NotHeld | ExtendOutcome::Expired => {
            Reply::Nil
        }
        ExtendOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    }
}

/// One holder of a read-write lock or semaphore.
pub fn holder_reply(h: &Holder) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(h.owner.clone()),
        int(h.token.0),
        ms_reply(h.pttl),
    ])
}

/// The reply to a holder acquire that did not grant; a grant is shaped by
/// the caller.
pub fn lost_reply(cmd: &str, key: &Bytes, o: KindAcquire) -> Reply {
    match o {
        KindAcquire::Exhausted => exhausted_reply(cmd, std::slice::from_ref(key)),
        KindAcquire::Granted(_) | KindAcquire::Busy | KindAcquire::Expired => Reply::NilArray,
        KindAcquire::NoQuorum { voted, needed } => no_quorum(voted, needed),
        KindAcquire::Refused(Mismatch { permits }) => Reply::error(format!(
            "ERR permits mismatch in '{cmd}' command: the semaphore is in use with {permits} permits"
        )),
    }
}

/// Longest part of a key an error reply shows.
const SHOWN_KEY_BYTES: usize = 128;

/// The reply to an acquire of `keys` that no token can be proposed for
/// (`ERR lock.acquire 'x': fencing token space exhausted ...`), the one
/// text for every kind and path. Only that acquire is refused.
pub fn exhausted_reply(cmd: &str, keys: &[Bytes]) -> Reply {
    let shown: Vec<String> = keys
        .iter()
        .map(|k| {
            let cut = &k[..k.len().min(SHOWN_KEY_BYTES)];
            let more = if cut.len() < k.len() { "..." } else { "" };
            format!("'{}{more}'", String::from_utf8_lossy(cut))
        })
        .collect();
    Reply::error(format!(
        "ERR {cmd} {}: {TokenSpaceExhausted}",
        shown.join(" ")
    ))
}
