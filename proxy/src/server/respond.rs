//! The writer's side of a [`Response`]: re-checks a grant's validity just
//! before its reply is encoded, and releases a grant whose validity ran out
//! while it waited behind earlier replies (docs/design.md, *Validity
//! re-check before reply*). A keepalive grant starts renewing here, once the
//! client is told it holds it.

use bytes::BytesMut;

use super::Shared;
use crate::resp::{Protocol, Reply};
use crate::response::Response;

/// Encodes `resp` into `out`; returns true when the connection must close
/// after this write.
pub fn finish(shared: &Shared, resp: Response, proto: Protocol, out: &mut BytesMut) -> bool {
    match resp {
        Response::Reply(r) => r.encode(proto, out),
        Response::Grant(g) => g.report(&shared.engine).encode(proto, out),
        Response::Quit => {
            Reply::Ok.encode(proto, out);
            return true;
        }
    }
    false
}
