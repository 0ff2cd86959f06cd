//! The writer's side of a [`Response`]: re-checks a grant's validity just
//! before its reply is encoded, and releases a grant whose validity ran out
//! while it waited behind earlier replies (docs/design.md, *Validity
//! re-check before reply*). A keepalive grant starts renewing here, once the
//! client is told it holds it.

use bytes::BytesMut;

use super::Shared;
use crate::resp::{Protocol, Reply};
use crate::response::{reentrant_reply, GrantShape, Response};

/// Encodes `resp` into `out`; returns true when the connection must close
/// after this write.
pub fn finish(shared: &Shared, resp: Response, proto: Protocol, out: &mut BytesMut) -> bool {
    let engine = &shared.engine;
    match resp {
        Response::Reply(r) => r.encode(proto, out),
        Response::Quit => {
            Reply::Ok.encode(proto, out);
            return true;
        }
        Response::Grant {
            grant,
            keys,
            owner,
            shape,
        } => {
            let left = engine
                .finish_grant(&grant, &keys, &owner)
                .filter(|d| d.as_millis() > 0);
            shape.reply(left, &owner, &grant).encode(proto, out);
        }
        Response::HolderGrant {
            op,
            grant,
            keys,
            owner,
        } => {
            let left = engine
                .finish_holder_grant(op, &grant, &keys, &owner)
                .filter(|d| d.as_millis() > 0);
            GrantShape::Native
                .reply(left, &owner, &grant)
                .encode(proto, out);
        }
        Response::Kept {
            grant,
            key,
            owner,
            ttl,
            set,
        } => {
            let keys = std::slice::from_ref(&key);
            let left = engine
                .finish_grant(&grant, keys, &owner)
                .filter(|d| d.as_millis() > 0);
            if let Some(d) = left {
                // Renewal starts only once the client is told it holds it.
                set.start(key.clone(), owner.clone(), grant.token, ttl, d);
            }
            GrantShape::Native
                .reply(left, &owner, &grant)
                .encode(proto, out);
        }
        Response::Reentrant {
            grant,
            key,
            owner,
            holds,
        } => {
            let left = engine
                .finish_rgrant(&grant, &key, &owner, holds)
                .filter(|d| d.as_millis() > 0);
            reentrant_reply(left, owner, &grant, holds).encode(proto, out);
        }
    }
    false
}
